"""Kaggle through its official client: the session (retries, credentials), competition downloads, submissions
and their append-only log, datasets and kernels. The `kaggle` package itself loads only when a call needs it.

    from kit.kaggle import KaggleSession, list_submissions
    kit.kaggle.submit.submit(...), kit.kaggle.download.download(...)   # the functions behind the commands
"""
from kit.exports import lazy_exports

EXPORTS = {
    "KaggleSession": "client", "RetryPolicy": "client", "Submission": "client",
    "DownloadResult": "download",
    "SubmitResult": "submit", "default_message": "submit", "list_submissions": "submit", "submit_kernel": "submit",
    "append_row": "log", "previous_submission": "log", "read_log": "log",
    "push_kernel": "publish", "upload_dataset": "publish",
    "PullResult": "pull", "pull": "pull",
}
__all__ = sorted(EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, EXPORTS)
