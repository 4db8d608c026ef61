"""The fitted-blend contract: a blend's saved state, applied to the members' test predictions, gives back the
blended test scores `kit blend` computed while fitting (bit for bit), for every method."""
from __future__ import annotations

import json

import numpy as np
import pytest

from kit.blend.blending import blend_members
from kit.blend.gather import Member
from kit.blend.methods import METHODS, apply
from kit.blend.report import write_outputs
from kit.blend.state import read_state
from kit.data.reading import read_sample_ids
from kit.data.spec import CompetitionSpec
from kit.errors import KitError

SPEC = CompetitionSpec(classes=("a", "b", "c", "d"))


def members(rng, count=3, rows=40, test_rows=11):
    truth = rng.random((rows, SPEC.num_classes)) < 0.35
    found = []
    for m in range(count):
        noise = 0.3 + 0.2 * m
        oof = np.clip(truth * 0.6 + rng.random(truth.shape) * noise, 0, 1)
        oof[:5] = np.round(oof[:5], 1)  # ties, so that rank knots have repeated scores
        found.append(Member(f"m{m}", f"runs/m{m}", oof, rng.random((test_rows, SPEC.num_classes))))
    return found, truth, np.arange(rows) % 4


@pytest.mark.parametrize("method", METHODS)
def test_saved_state_reapplies_the_blend_exactly(method, tmp_path):
    found, truth, folds = members(np.random.default_rng(3))
    result = blend_members(found, truth, folds, SPEC, method=method)
    ids = [f"t{i}" for i in range(len(result.test))]
    (tmp_path / "sample.csv").write_text("Id,Predicted\n" + "".join(f"{i},0\n" for i in ids))
    files = write_outputs(result, tmp_path, "blend", read_sample_ids(tmp_path / "sample.csv", SPEC),
                          tmp_path / "sample.csv", plot=False)
    report = json.loads(files["json"].read_text())
    state = read_state(report["state"], files["json"])
    assert state.method == method
    assert ("npz" in files) == (method in ("rank", "stack"))
    blended = apply(state, np.stack([m.test for m in found]))
    assert np.array_equal(blended, result.test)
    assert report["members"][0]["folds"] == [0, 1, 2, 3]
    assert report["competition"]["classes"] == list(SPEC.classes)


def test_rank_blend_of_new_scores_interpolates_between_oof_knots(tmp_path):
    found, truth, folds = members(np.random.default_rng(4), count=1)
    result = blend_members(found, truth, folds, SPEC, method="rank")
    new = np.array([[[found[0].oof[:, c].min() for c in range(4)], [found[0].oof[:, c].max() for c in range(4)]]])
    blended = apply(result.state, new)
    # A rank blend of one model maps its own scores back onto themselves.
    assert np.allclose(blended, new[0])


def test_a_missing_arrays_file_or_state_is_one_line(tmp_path):
    found, truth, folds = members(np.random.default_rng(5))
    result = blend_members(found, truth, folds, SPEC, method="rank")
    (tmp_path / "sample.csv").write_text("Id,Predicted\n" + "".join(f"t{i},0\n" for i in range(11)))
    files = write_outputs(result, tmp_path, "blend", [f"t{i}" for i in range(11)], tmp_path / "sample.csv",
                          plot=False)
    entry = json.loads(files["json"].read_text())["state"]
    files["npz"].unlink()
    with pytest.raises(KitError, match="blend.npz is missing"):
        read_state(entry, files["json"])
    with pytest.raises(KitError, match="no fitted blend state"):
        read_state(None, files["json"])
    with pytest.raises(KitError, match="cannot be applied"):
        apply(type(result.state)("magic", np.ones(3)), np.zeros((3, 2, 4)))
