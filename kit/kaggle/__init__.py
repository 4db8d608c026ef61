"""The Kaggle API through the official `kaggle` client: download, submit, and the submission log."""
