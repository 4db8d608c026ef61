"""Applying a saved ensemble to a new test set (`kit infer`): above kit.train and kit.blend, below kit.deploy."""
