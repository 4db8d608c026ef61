"""One settings table per kit.yaml section: `kit folds` and `kit blend` read `folds:` and `blend:` as `kit run`
does, command-line options win over kit.yaml, and choice lists come from the registries."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import yaml
from helpers import error_line
from helpers import invoke_in as invoke

from kit.blend.blending import blend_runs
from kit.blend.methods import METHODS
from kit.data.spec import HPA
from kit.score.thresholds import MODES
from kit.settings import BLEND, FOLDS, SUBMIT, TABLES, TRAIN, TUNE, Field, Table


def write_yaml(path, values):
    path.write_text(yaml.safe_dump(values))
    return path


def fold_counts(path) -> list[int]:
    return np.bincount(pd.read_csv(path)["fold"]).tolist()


def test_kit_folds_honours_the_folds_section_and_options_win(synth_dir, tmp_path):
    data = str(synth_dir)
    reference = tmp_path / "reference"
    reference.mkdir()
    write_yaml(reference / "empty.yaml", {})
    for k, seed in ((3, 5), (4, 5), (3, 9)):
        invoke(reference, ["folds", "--config", "empty.yaml", "--data", data, "--k", str(k), "--seed", str(seed),
                           "--out", f"k{k}s{seed}.csv"])

    project = tmp_path / "project"
    project.mkdir()
    write_yaml(project / "kit.yaml", {"data": data, "folds": {"k": 3, "seed": 5},
                                      "train": {"folds": "elsewhere/folds.csv"}})
    output = invoke(project, ["folds"]).output  # kit.yaml alone: k 3, seed 5, written where train.folds says
    assert "wrote elsewhere/folds.csv (60 Ids, 3 folds)" in output
    assert (project / "elsewhere/folds.csv").read_bytes() == (reference / "k3s5.csv").read_bytes()
    assert (project / "elsewhere/folds_summary.csv").is_file()

    invoke(project, ["folds", "--k", "4", "--out", "k4.csv"])  # the option wins; the seed still comes from kit.yaml
    assert (project / "k4.csv").read_bytes() == (reference / "k4s5.csv").read_bytes()
    invoke(project, ["folds", "--seed", "9", "--out", "s9.csv"])
    assert (project / "s9.csv").read_bytes() == (reference / "k3s9.csv").read_bytes()
    assert len(fold_counts(project / "k4.csv")) == 4 and sum(fold_counts(project / "k4.csv")) == 60


@pytest.mark.parametrize("section, message", [
    ({"folds": {"k": 1}}, "kit.yaml: folds.k: must be at least 2, got 1"),
    ({"folds": {"kk": 3}}, "kit.yaml: folds: unknown key(s) kk; known: k, seed, groups"),
    ({"folds": {"seed": "abc"}}, "kit.yaml: folds.seed: expected int, got 'abc'"),
])
def test_a_bad_folds_section_is_one_line(synth_dir, tmp_path, section, message):
    write_yaml(tmp_path / "kit.yaml", {"data": str(synth_dir), **section})
    assert error_line(invoke(tmp_path, ["folds"], expect=1)) == f"Error: {tmp_path / message}"
    assert not (tmp_path / "folds").exists()


@pytest.fixture
def blend_project(tmp_path):
    """Train labels, a sample submission, folds and two models' OOF/test probabilities, under names that are not
    the defaults (myruns/, myfolds/), as kit.yaml's train: section names them."""
    rng = np.random.default_rng(3)
    n_train, n_test, k = 36, 8, 3
    truth = rng.random((n_train, HPA.num_classes)) < np.linspace(0.5, 0.05, HPA.num_classes)
    truth[np.arange(n_train), rng.integers(0, HPA.num_classes, n_train)] = True
    train_ids, test_ids = [f"tr{i:02d}" for i in range(n_train)], [f"te{i:02d}" for i in range(n_test)]
    (tmp_path / "data").mkdir()
    pd.DataFrame({"Id": train_ids, "Target": [" ".join(map(str, np.flatnonzero(t))) for t in truth]}).to_csv(
        tmp_path / "data/train.csv", index=False)
    pd.DataFrame({"Id": test_ids, "Predicted": "0"}).to_csv(tmp_path / "data/sample_submission.csv", index=False)
    (tmp_path / "myfolds").mkdir()
    folds = np.arange(n_train) % k
    pd.DataFrame({"Id": train_ids, "fold": folds}).to_csv(tmp_path / "myfolds/folds.csv", index=False)
    for model, signal in (("a", 0.8), ("b", 0.5)):
        probs = np.clip(signal * truth + (1 - signal) * rng.random(truth.shape), 0, 1)
        for fold in range(k):
            run = tmp_path / "myruns" / model / f"fold{fold}"
            run.mkdir(parents=True)
            rows = folds == fold
            pd.DataFrame(probs[rows], columns=HPA.classes).assign(Id=np.array(train_ids)[rows])[
                ["Id", *HPA.classes]].to_csv(run / "oof.csv", index=False)
            pd.DataFrame(rng.random((n_test, HPA.num_classes)), columns=HPA.classes).assign(Id=test_ids)[
                ["Id", *HPA.classes]].to_csv(run / "test.csv", index=False)
    write_yaml(tmp_path / "kit.yaml", {
        "data": "data", "train": {"runs": "myruns", "folds": "myfolds/folds.csv"},
        "blend": {"name": "fromyaml", "method": "rank", "thresholds": "global", "min_positives": 2,
                  "no_empty": False},
    })
    return tmp_path


def reference_blend(root, name, **settings):
    """What the library writes when given every setting explicitly (no kit.yaml involved)."""
    return blend_runs([root / "myruns"], HPA, root / "myfolds/folds.csv", root / "data/sample_submission.csv",
                      root / "data/train.csv", root / "reference", name, plot=False, **settings)


def test_kit_blend_honours_the_blend_section_and_options_win(blend_project):
    root = blend_project
    invoke(root, ["blend"])  # everything from kit.yaml: runs, folds, name and the blend settings
    report = json.loads((root / "submissions/fromyaml.json").read_text())
    assert (report["method"], report["threshold_mode"]) == ("rank", "global")
    assert report["command"].startswith("kit blend --runs myruns --folds myfolds/folds.csv --name fromyaml ")
    assert "--method rank --thresholds global --min-positives 2 --allow-empty" in report["command"]
    expected = reference_blend(root, "fromyaml", method="rank", thresholds="global", min_positives=2,
                               no_empty=False)
    assert (root / "submissions/fromyaml.csv").read_bytes() == expected.files["csv"].read_bytes()

    invoke(root, ["blend", "--method", "mean", "--no-empty", "--name", "fromcli"])  # options win, the rest stays
    report = json.loads((root / "submissions/fromcli.json").read_text())
    assert (report["method"], report["threshold_mode"]) == ("mean", "global")
    expected = reference_blend(root, "fromcli", method="mean", thresholds="global", min_positives=2, no_empty=True)
    assert (root / "submissions/fromcli.csv").read_bytes() == expected.files["csv"].read_bytes()


def test_choices_come_from_the_registries_and_an_unknown_name_lists_them(blend_project):
    root = blend_project
    write_yaml(root / "bad.yaml", {"data": "data", "blend": {"thresholds": "per-klass"}})
    line = error_line(invoke(root, ["blend", "--config", "bad.yaml"], expect=1))
    assert line == f"Error: bad.yaml: blend.thresholds: 'per-klass' is not one of {', '.join(MODES)}"
    result = invoke(root, ["blend", "--method", "median"], expect=2)
    assert "'median' is not one of " + ", ".join(f"'{m}'" for m in METHODS) in result.output
    assert "[" + "|".join(METHODS) + "]" in invoke(root, ["blend", "--help"]).output
    assert "[none|flip|d4]" in invoke(root, ["train", "--help"]).output
    assert not (root / "submissions").exists()


def test_every_section_has_one_table_and_adding_a_field_is_one_line():
    assert list(TABLES) == ["folds", "train", "blend", "submit", "tune"]
    assert (TABLES["folds"], TABLES["train"], TABLES["blend"], TABLES["submit"], TABLES["tune"]) == \
        (FOLDS, TRAIN, BLEND, SUBMIT, TUNE)
    extended = Table("blend", (*BLEND.fields, Field("stack_c", 1.0, float, "Inverse regularisation.", minimum=0)))
    assert extended.resolve({"stack_c": "0.5"}, {}, "kit.yaml")["stack_c"] == 0.5
    assert extended.resolve({}, {"stack_c": 2}, "kit.yaml")["stack_c"] == 2.0
    with pytest.raises(ValueError, match="defined twice"):
        Table("blend", (*BLEND.fields, BLEND.fields[0]))
