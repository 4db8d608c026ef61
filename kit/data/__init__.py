"""Competition files: the spec, labels and images, the resized cache, synthetic sets, folds, the loader, submissions.

>>> from kit.data import HPA, labels_to_matrix
>>> HPA.num_classes, labels_to_matrix([[0, 27], []], HPA.num_classes).sum(axis=1).tolist()
(28, [2, 0])
"""
from kit.exports import lazy_exports

EXPORTS = {
    "CompetitionSpec": "spec", "HPA": "spec", "spec_from_dict": "spec",
    "CompetitionData": "reading", "ImageStore": "reading", "read_labels": "reading", "read_sample_ids": "reading",
    "labels_to_matrix": "reading", "matrix_to_targets": "reading",
    "build_cache": "cache", "open_store": "cache",
    "write_dataset": "synth", "add_near_copies": "synth_dups",
    "find_dups": "dups", "near_pairs": "dups", "read_pairs": "dups",
    "assign_folds": "folds", "make_folds": "folds", "read_folds": "folds",
    "build_transform": "augment",
    "ImageDataset": "loader", "make_loader": "loader",
    "submission_frame": "submission", "validate_submission": "submission",
}
__all__ = sorted(EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, EXPORTS)
