"""Blending the members' out-of-fold predictions: gather, methods, evaluation, and what `kit blend` writes.

    from kit.blend import blend_runs, METHODS   # runs/<model> folders -> submissions/<name>.csv, .json, .png
"""
from kit.exports import lazy_exports

EXPORTS = {
    "blend_members": "blending", "blend_runs": "blending",
    "Member": "gather", "model_dirs": "gather",
    "METHODS": "methods", "Blender": "methods", "check_method": "methods",
    "BlendResult": "result", "Scores": "result",
    "FittedBlend": "state", "read_state": "state",
    "LEAKS": "twins",
    "STACKERS": "stack", "Stacker": "stack", "fit_stacker": "stack",
    "summary_table": "report",
}
__all__ = sorted(EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, EXPORTS)
