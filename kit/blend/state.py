"""A fitted blend as data: everything needed to apply a blend method again to new member predictions.

This is the contract between `kit blend` (which fits) and `kit infer` (which applies, on a test set that may
only exist inside a Kaggle notebook). A method's fit is a `FittedBlend`:

- `method`: the name in `kit.blend.methods.METHODS`;
- `weights`: one number per member (for display; the methods that are a weighted mean use them to apply);
- `params`: anything else JSON can hold (numbers, strings, lists);
- `arrays`: named numpy arrays of numbers (knots of a rank blend, coefficients of a stacked model, ...).

`kit blend` writes `params` and `weights` into `<name>.json` under "state" and the arrays into `<name>.npz`
beside it; they are read back with `allow_pickle=False`, so loading a blend never runs code.
`kit.blend.methods.apply(state, member_test)` turns members x rows x classes probabilities into the blended
scores the thresholds were fit on.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from kit.errors import KitError
from kit.io import atomic_path


@dataclass
class FittedBlend:
    method: str
    weights: np.ndarray
    params: dict = field(default_factory=dict)
    arrays: dict[str, np.ndarray] = field(default_factory=dict)


def state_entry(state: FittedBlend, arrays_file: str | None) -> dict:
    """The JSON part of a state; `arrays_file` is the `.npz` name (beside the JSON) holding the arrays."""
    return {"method": state.method, "weights": [float(w) for w in state.weights],
            "params": json.loads(json.dumps(state.params)), "arrays": arrays_file if state.arrays else None}


def write_arrays(state: FittedBlend, path: str | os.PathLike) -> Path:
    """The state's arrays as one `.npz` (numbers only: object arrays are refused)."""
    for name, array in state.arrays.items():
        if np.asarray(array).dtype.hasobject:
            raise KitError(f"blend state array {name!r} holds Python objects; only numbers can be saved")
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.savez(handle, **{name: np.asarray(array) for name, array in state.arrays.items()})
    return Path(path)


def read_state(entry: dict, json_path: str | os.PathLike) -> FittedBlend:
    """The state from a blend JSON's "state" entry, with its arrays read from the `.npz` beside the JSON."""
    json_path = Path(json_path)
    if not isinstance(entry, dict) or not isinstance(entry.get("method"), str) \
            or not isinstance(entry.get("weights"), list):
        raise KitError(f"{json_path}: no fitted blend state (\"state\" with method and weights); "
                       "blend again with this version of kit")
    arrays = {}
    if entry.get("arrays"):
        path = json_path.parent / str(entry["arrays"])
        if not path.is_file():
            raise KitError(f"{json_path}: the blend's arrays file {path} is missing (keep it beside the JSON)")
        try:
            with np.load(path, allow_pickle=False) as npz:
                arrays = {name: npz[name] for name in npz.files}
        except (OSError, ValueError) as err:
            raise KitError(f"{path}: not a readable .npz of numbers ({err})") from None
    return FittedBlend(entry["method"], np.asarray(entry["weights"], dtype=np.float64),
                       dict(entry.get("params") or {}), arrays)


def pack_ragged(columns: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Arrays of different lengths -> (concatenation, offsets): column i is values[offsets[i]:offsets[i+1]]."""
    offsets = np.zeros(len(columns) + 1, dtype=np.int64)
    offsets[1:] = np.cumsum([len(c) for c in columns])
    values = np.concatenate(columns) if columns else np.zeros(0)
    return values, offsets


def unpack_ragged(values: np.ndarray, offsets: np.ndarray) -> list[np.ndarray]:
    return [values[offsets[i]:offsets[i + 1]] for i in range(len(offsets) - 1)]
