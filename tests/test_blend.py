"""`kit blend` on prediction files written by the tests, with known answers (no training needed)."""
from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from helpers import png_size, saved_figures
from sklearn.metrics import f1_score

from kit.blend.blending import blend_runs
from kit.cli import main
from kit.data.spec import HPA, CompetitionSpec
from kit.data.submission import validate_submission
from kit.errors import KitError
from kit.score.metrics import best_global_threshold
from kit.score.thresholds import apply_thresholds, fit_thresholds

SMALL = CompetitionSpec(classes=("alpha", "beta", "gamma", "delta", "epsilon"))


@dataclass
class Project:
    root: Path
    spec: CompetitionSpec
    truth: np.ndarray  # train rows in train.csv order (also folds.csv order)
    folds: np.ndarray
    train_ids: list[str]
    test_ids: list[str]
    oof: dict[str, np.ndarray]  # model -> N x C, rows in train order
    test: dict[str, list[np.ndarray]]  # model -> one M x C array per fold

    @property
    def runs(self) -> Path:
        return self.root / "runs"

    def kwargs(self, **extra) -> dict:
        values = dict(spec=self.spec, folds_path=self.root / "folds" / "folds.csv",
                      sample_submission_path=self.root / "data" / "sample_submission.csv",
                      labels=self.root / "data" / "train.csv", out_dir=self.root / "submissions", plot=False)
        values.update(extra)
        return values

    def file(self, model: str, fold: int, kind: str = "oof") -> Path:
        return self.runs / model / f"fold{fold}" / f"{kind}.csv"


def make_project(root: Path, models: dict[str, float], spec: CompetitionSpec = SMALL, n_train: int = 45,
                 n_test: int = 12, k: int = 3, seed: int = 0, rates=None) -> Project:
    """Train labels, sample submission, folds and, per model, OOF and test probabilities whose signal
    strength is `models[name]` (0: pure noise, 1: the truth plus a little noise). Every score is distinct."""
    rng = np.random.default_rng(seed)
    num_classes = spec.num_classes
    rates = np.linspace(0.5, 0.15, num_classes) if rates is None else np.asarray(rates)
    truth = rng.random((n_train, num_classes)) < rates
    empty = ~truth.any(axis=1)
    truth[empty, rng.integers(0, num_classes, empty.sum())] = True
    train_ids = [f"tr{i:03d}" for i in range(n_train)]
    test_ids = [f"te{i:03d}" for i in range(n_test)]
    folds = np.arange(n_train) % k
    (root / "data").mkdir(parents=True)
    pd.DataFrame({"Id": train_ids, "Target": [" ".join(map(str, np.flatnonzero(t))) for t in truth]}).to_csv(
        root / "data" / "train.csv", index=False)
    pd.DataFrame({"Id": test_ids, "Predicted": "0"}).to_csv(root / "data" / "sample_submission.csv", index=False)
    (root / "folds").mkdir()
    pd.DataFrame({"Id": train_ids, "fold": folds}).to_csv(root / "folds" / "folds.csv", index=False)
    oof, test = {}, {}
    columns = ["Id", *spec.classes]
    for name, signal in models.items():
        noise = rng.random((n_train, num_classes))
        oof[name] = np.clip(signal * truth * 0.6 + (1 - 0.6 * signal) * noise, 0, 1)
        test[name] = []
        for fold in range(k):
            folder = root / "runs" / name / f"fold{fold}"
            folder.mkdir(parents=True)
            rows = np.flatnonzero(folds == fold)
            frame = pd.DataFrame(oof[name][rows], columns=spec.classes)
            frame.insert(0, "Id", [train_ids[r] for r in rows])
            frame[columns].to_csv(folder / "oof.csv", index=False)
            test[name].append(rng.random((n_test, num_classes)))
            frame = pd.DataFrame(test[name][-1], columns=spec.classes)
            frame.insert(0, "Id", test_ids)
            frame.to_csv(folder / "test.csv", index=False)
    return Project(root, spec, truth, folds, train_ids, test_ids, oof, test)


@pytest.fixture
def project(tmp_path):
    return make_project(tmp_path, {"a": 0.8, "b": 0.5})


def no_empty_rule(scores: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    predicted = predicted.copy()
    for row in range(len(predicted)):
        if not predicted[row].any():
            predicted[row, int(np.argmax(scores[row]))] = True
    return predicted


def brute_force_threshold(truth: np.ndarray, scores: np.ndarray) -> tuple[float, float]:
    """Try every cut between distinct scores, from the top, keeping the first strictly better F1."""
    values = np.unique(scores)[::-1]
    best_f1, best_threshold = 0.0, np.nextafter(values[0], np.inf)
    for i, value in enumerate(values):
        threshold = (value + values[i + 1]) / 2 if i + 1 < len(values) else value
        f1 = f1_score(truth, scores >= threshold, zero_division=0)
        if f1 > best_f1:
            best_f1, best_threshold = f1, threshold
    return best_threshold, best_f1


# ---------------------------------------------------------------- thresholds


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_per_class_thresholds_equal_a_brute_force_search(seed):
    rng = np.random.default_rng(seed)
    truth = rng.random((40, 6)) < [0.5, 0.3, 0.1, 0.05, 0.02, 0.0]
    scores = np.round(rng.random((40, 6)) * 0.7 + truth * 0.3, 1 + seed % 2)  # rounding makes ties
    fit = fit_thresholds(truth, scores, "per-class", min_positives=0)
    for c in range(6):
        threshold, f1 = brute_force_threshold(truth[:, c], scores[:, c])
        assert fit.thresholds[c] == threshold
        assert f1_score(truth[:, c], scores[:, c] >= fit.thresholds[c], zero_division=0) == pytest.approx(f1)


def test_exact_search_matches_brute_force_on_many_small_cases_with_ties():
    from kit.score.metrics import best_thresholds

    rng = np.random.default_rng(5)
    for _ in range(300):
        n, classes = int(rng.integers(1, 25)), int(rng.integers(1, 4))
        truth = rng.random((n, classes)) < rng.random()
        scores = np.round(rng.random((n, classes)), int(rng.integers(0, 3)))  # 0 decimals: nearly all tied
        thresholds, f1 = best_thresholds(truth, scores)
        for c in range(classes):
            values = np.unique(scores[:, c])[::-1]
            cuts = [(values[i] + values[i + 1]) / 2 for i in range(len(values) - 1)] + [values[-1]]
            expected_f1, expected = 0.0, np.nextafter(values[0], np.inf)
            for cut in cuts:
                predicted = scores[:, c] >= cut
                denominator = predicted.sum() + truth[:, c].sum()
                value = 2 * (predicted & truth[:, c]).sum() / denominator if denominator else 0.0
                if value > expected_f1:
                    expected_f1, expected = value, cut
            assert thresholds[c] == expected and f1[c] == pytest.approx(expected_f1)


def test_global_threshold_is_the_best_grid_point_by_scikit_learn():
    rng = np.random.default_rng(3)
    truth = rng.random((50, 4)) < [0.5, 0.3, 0.1, 0.0]
    scores = np.round(rng.random((50, 4)) * 0.6 + truth * 0.4, 2)
    grid = np.linspace(0.05, 0.95, 19)
    macro = [f1_score(truth, scores >= t, average="macro", zero_division=0) for t in grid]
    threshold, f1 = best_global_threshold(truth, scores, grid)
    assert threshold == grid[int(np.argmax(macro))] and f1 == pytest.approx(max(macro))


def test_blend_scores_equal_brute_force_and_scikit_learn(project):
    result = blend_runs([project.runs], name="check", min_positives=0, **project.kwargs())
    mean = (project.oof["a"] + project.oof["b"]) / 2
    assert np.allclose(result.oof, mean)
    expected = [brute_force_threshold(project.truth[:, c], mean[:, c]) for c in range(project.spec.num_classes)]
    assert np.allclose(result.thresholds, [t for t, _ in expected])
    tuned = no_empty_rule(mean, mean >= result.thresholds)
    at_05 = no_empty_rule(mean, mean >= 0.5)
    macro = result.scores.summary()
    assert macro["tuned"] == pytest.approx(f1_score(project.truth, tuned, average="macro", zero_division=0))
    assert macro["at_0.5"] == pytest.approx(f1_score(project.truth, at_05, average="macro", zero_division=0))
    assert np.allclose(result.scores.tuned, f1_score(project.truth, tuned, average=None, zero_division=0))
    member = result.member_scores["a"].summary()
    own = no_empty_rule(project.oof["a"], project.oof["a"] >= 0.5)
    assert member["at_0.5"] == pytest.approx(f1_score(project.truth, own, average="macro", zero_division=0))


def test_cross_validated_estimate_fits_thresholds_on_the_other_folds(project):
    result = blend_runs([project.runs], name="cv", min_positives=0, **project.kwargs())
    mean = (project.oof["a"] + project.oof["b"]) / 2
    predicted = np.zeros(project.truth.shape, dtype=bool)
    for fold in range(3):
        train, held = project.folds != fold, project.folds == fold
        thresholds = [brute_force_threshold(project.truth[train, c], mean[train, c])[0] for c in range(5)]
        predicted[held] = no_empty_rule(mean[held], mean[held] >= thresholds)
    expected = f1_score(project.truth, predicted, average=None, zero_division=0)
    assert np.allclose(result.scores.cv, expected)
    assert result.scores.summary()["cv"] <= result.scores.summary()["tuned"]


def test_a_perfect_model_scores_one_everywhere(tmp_path):
    project = make_project(tmp_path, {"oracle": 1.0})
    result = blend_runs([project.runs], name="oracle", min_positives=0, **project.kwargs())
    assert result.scores.summary() == {"at_0.5": 1.0, "tuned": 1.0, "cv": 1.0}


def sklearn_global_threshold(truth: np.ndarray, scores: np.ndarray) -> tuple[float, float]:
    """The grid point (0.01, 0.02, ..., 0.99) with the best macro F1 by scikit-learn; the lowest of ties."""
    grid = np.round(np.linspace(0.01, 0.99, 99), 10)
    macro = [f1_score(truth, scores >= t, average="macro", zero_division=0) for t in grid]
    return float(grid[int(np.argmax(macro))]), max(macro)


def test_global_mode_uses_one_threshold(project):
    result = blend_runs([project.runs], name="g", thresholds="global", **project.kwargs())
    expected, best = sklearn_global_threshold(project.truth, (project.oof["a"] + project.oof["b"]) / 2)
    assert len(set(result.thresholds)) == 1 and result.thresholds[0] == pytest.approx(expected, abs=1e-9)
    assert f1_score(project.truth, result.oof >= result.thresholds, average="macro", zero_division=0) == \
        pytest.approx(best)


def test_ratio_mode_matches_train_rates_on_test(project):
    result = blend_runs([project.runs], name="r", thresholds="ratio", min_positives=0, no_empty=False,
                        **project.kwargs())
    train_rate = project.truth.mean(axis=0)
    test_rate = result.predicted.mean(axis=0)
    assert np.abs(test_rate - train_rate).max() <= 0.5 / len(project.test_ids) + 1e-9


def test_classes_with_few_positives_fall_back_to_the_global_threshold(tmp_path):
    project = make_project(tmp_path, {"a": 0.7}, n_train=60, rates=[0.5, 0.4, 0.3, 0.2, 0.04])
    rare = int(project.truth[:, 4].sum())
    assert 0 < rare < 5
    result = blend_runs([project.runs], name="few", min_positives=5, **project.kwargs())
    fit = result.scores.fit
    assert fit.fallback == [4]
    expected, _ = sklearn_global_threshold(project.truth, project.oof["a"])
    assert fit.thresholds[4] == fit.global_threshold == pytest.approx(expected, abs=1e-9)
    assert fit.thresholds[0] != fit.global_threshold


def test_no_empty_gives_each_sample_its_best_class():
    scores = np.array([[0.1, 0.3, 0.2], [0.9, 0.1, 0.1], [0.2, 0.2, 0.6]])
    predicted = apply_thresholds(scores, np.array([0.5, 0.5, 0.7]), no_empty=True)
    assert predicted.tolist() == [[False, True, False], [True, False, False], [False, False, True]]
    assert apply_thresholds(scores, np.array([0.5, 0.5, 0.7]), no_empty=False).sum() == 1


# ---------------------------------------------------------------- methods


@pytest.mark.parametrize("method", ["mean", "rank", "weighted", "hill"])
def test_a_blend_of_one_member_equals_that_member(project, method):
    result = blend_runs([project.runs / "a"], name=method, method=method, **project.kwargs())
    assert result.members == ["a"] and result.weights.tolist() == [1.0]
    assert np.allclose(result.oof, project.oof["a"], rtol=0, atol=1e-12)
    assert np.allclose(result.test, np.mean(project.test["a"], axis=0), rtol=0, atol=1e-12)
    member = result.member_scores["a"]
    for key in ("at_05", "tuned", "cv"):
        assert np.array_equal(getattr(result.scores, key), getattr(member, key))
    assert np.array_equal(result.thresholds, member.fit.thresholds)


@pytest.mark.parametrize("method", ["weighted", "hill"])
def test_optimised_methods_prefer_the_informative_model(tmp_path, method):
    project = make_project(tmp_path, {"noise": 0.0, "good": 0.9, "fair": 0.4}, n_train=60)
    result = blend_runs([project.runs], name=method, method=method, **project.kwargs())
    weights = dict(zip(result.members, result.weights))
    assert weights["good"] > weights["noise"]
    assert result.weights.sum() == pytest.approx(1.0) and (result.weights >= 0).all()
    assert sorted(result.fold_weights) == [0, 1, 2]  # weights refit inside every fold for the honest score
    assert result.scores.summary()["tuned"] >= max(s.summary()["tuned"] for s in result.member_scores.values()) - 0.05


def test_rank_blend_averages_ranks(project):
    result = blend_runs([project.runs], name="rank", method="rank", **project.kwargs())
    rank_sum = sum(pd.DataFrame(project.oof[m]).rank().to_numpy() for m in ("a", "b"))
    for c in range(project.spec.num_classes):
        order = np.argsort(rank_sum[:, c], kind="stable")
        steps = np.diff(result.oof[order, c])
        assert (steps >= -1e-12).all()  # the blend orders samples by their summed ranks
        assert (steps[np.diff(rank_sum[order, c]) > 0] > 0).all()
    assert 0 < result.oof.min() and result.oof.max() < 1  # back on the probability scale, not ranks


# ---------------------------------------------------------------- outputs


def test_outputs_round_trip_through_the_validator(project, monkeypatch):
    figures = saved_figures(monkeypatch)
    blend_runs([project.runs], name="out", plot=True, min_positives=0,
           **{k: v for k, v in project.kwargs().items() if k != "plot"})
    out = project.root / "submissions"
    assert sorted(p.name for p in out.iterdir()) == ["out.csv", "out.json", "out.png"]
    rows = validate_submission(out / "out.csv", project.root / "data" / "sample_submission.csv", project.spec)
    assert rows == len(project.test_ids)
    submission = pd.read_csv(out / "out.csv", dtype=str, keep_default_na=False)
    assert submission["Id"].tolist() == project.test_ids
    # The expected labels from the inputs alone: the mean of every member's fold-averaged test predictions,
    # cut at thresholds found by brute force on the mean OOF predictions, each empty row given its best class.
    test = (np.mean(project.test["a"], axis=0) + np.mean(project.test["b"], axis=0)) / 2
    oof = (project.oof["a"] + project.oof["b"]) / 2
    thresholds = [brute_force_threshold(project.truth[:, c], oof[:, c])[0] for c in range(5)]
    expected = no_empty_rule(test, test >= thresholds)
    assert submission["Predicted"].tolist() == [" ".join(map(str, np.flatnonzero(r))) for r in expected]
    report = json.loads((out / "out.json").read_text())
    assert [m["name"] for m in report["members"]] == ["a", "b"]
    assert report["method"] == "mean" and report["weights"] == {"a": 0.5, "b": 0.5}
    assert list(report["thresholds"]) == list(project.spec.classes)
    assert list(report["thresholds"].values()) == pytest.approx(thresholds, abs=1e-6)
    tuned = no_empty_rule(oof, oof >= thresholds)
    assert report["blend"]["score"]["tuned"] == pytest.approx(
        f1_score(project.truth, tuned, average="macro", zero_division=0), abs=1e-6)
    assert len(report["members"][0]["per_class"]["cv"]) == project.spec.num_classes
    assert report["command"]

    # The PNG is a real image, and its figure draws the per-class F1 of the blend and of each member
    assert png_size(out / "out.png")[0] >= 600
    figure, = figures
    top, bottom = figure.axes[:2]
    bars = [patch.get_height() for patch in top.patches]
    assert bars == pytest.approx(list(f1_score(project.truth, tuned, average=None, zero_division=0)))
    labels = [t.get_text() for t in top.get_xticklabels()]
    assert [label.split(" (n=")[0] for label in labels] == [f"{c} {n}" for c, n in enumerate(project.spec.classes)]
    legend = [t.get_text() for t in top.get_legend().get_texts()]
    assert "a" in legend and "b" in legend and any(text.startswith("blend (mean)") for text in legend)
    member_dots = {line.get_label(): line.get_ydata() for line in top.get_lines() if line.get_label() in ("a", "b")}
    own = no_empty_rule(project.oof["a"], project.oof["a"] >= [brute_force_threshold(
        project.truth[:, c], project.oof["a"][:, c])[0] for c in range(5)])
    assert list(member_dots["a"]) == pytest.approx(list(f1_score(project.truth, own, average=None, zero_division=0)))
    assert bottom.get_lines() and "threshold" in bottom.get_xlabel()


def test_a_failure_while_writing_leaves_nothing_behind(project, monkeypatch):
    import kit.blend.report

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(kit.blend.report, "draw", broken)
    with pytest.raises(RuntimeError):
        blend_runs([project.runs], name="x", plot=True, **{k: v for k, v in project.kwargs().items() if k != "plot"})
    assert list((project.root / "submissions").iterdir()) == []


# ---------------------------------------------------------------- gathering errors


def edit(path: Path, change) -> None:
    frame = pd.read_csv(path, dtype={"Id": str})
    change(frame).to_csv(path, index=False)


def set_value(value, column="gamma"):
    def change(frame):
        frame = frame.astype({column: object})
        frame.loc[2, column] = value
        return frame
    return change


def move_first_row(project):
    """Put fold 2's first Id into fold 1's OOF file as well as removing it from fold 2."""
    moved = pd.read_csv(project.file("b", 2), dtype={"Id": str}).iloc[:1]
    edit(project.file("b", 2), lambda f: f.iloc[1:])
    edit(project.file("b", 1), lambda f: pd.concat([f, moved]))
    return moved["Id"].iloc[0]


GATHER_ERRORS = {
    "gap": (lambda p: edit(p.file("b", 1), lambda f: f.drop(index=3)), "oof", "has no prediction"),
    "duplicate": (lambda p: edit(p.file("b", 1), lambda f: pd.concat([f, f.iloc[[4]]])), "oof", "appears twice"),
    "nan": (lambda p: edit(p.file("b", 1), set_value(np.nan)), "oof", "'gamma' is missing (NaN)"),
    "above one": (lambda p: edit(p.file("b", 1), set_value(1.5)), "oof", "'gamma' 1.5 is outside [0, 1]"),
    "negative": (lambda p: edit(p.file("b", 1), set_value(-0.25)), "oof", "-0.25 is outside [0, 1]"),
    "not a number": (lambda p: edit(p.file("b", 1), set_value("high")), "oof", "'high' is not a number"),
    "renamed class": (lambda p: edit(p.file("b", 1), lambda f: f.rename(columns={"gamma": "Gamma"})), "oof",
                      "missing 'gamma'; unexpected 'Gamma'"),
    "missing class": (lambda p: edit(p.file("b", 1), lambda f: f.drop(columns="delta")), "oof", "missing 'delta'"),
    "unknown Id": (lambda p: edit(p.file("b", 1), lambda f: pd.concat([f, f.iloc[:1].assign(Id="stranger")])),
                   "oof", "Id stranger is not in"),
    "wrong fold": (move_first_row, "oof", "belongs to fold 2"),
    "test gap": (lambda p: edit(p.file("b", 1, "test"), lambda f: f.drop(index=0)), "test",
                 "of sample_submission.csv has no prediction"),
    "test duplicate": (lambda p: edit(p.file("b", 1, "test"), lambda f: pd.concat([f, f.iloc[[1]]])), "test",
                       "appears twice"),
    "test nan": (lambda p: edit(p.file("b", 1, "test"), set_value(np.nan)), "test", "is missing (NaN)"),
    "missing fold": (lambda p: shutil.rmtree(p.runs / "b" / "fold1"), "oof", "file not found"),
}


@pytest.mark.parametrize("case", list(GATHER_ERRORS))
def test_each_gathering_error_names_the_model_fold_and_id(project, case):
    break_it, kind, message = GATHER_ERRORS[case]
    bad_id = break_it(project)
    with pytest.raises(KitError) as err:
        blend_runs([project.runs], name="bad", **project.kwargs())
    text = str(err.value)
    assert "\n" not in text
    assert text.startswith(str(project.file("b", 1, kind))) and "(model b, fold 1)" in text
    assert message in text
    if case not in ("missing fold", "renamed class", "missing class"):
        assert " Id " in text
    if bad_id is not None:
        assert f"Id {bad_id}" in text
    assert not (project.root / "submissions").exists()


def test_a_fold_folder_unknown_to_the_folds_file_is_an_error(project):
    shutil.copytree(project.runs / "b" / "fold0", project.runs / "b" / "fold7")
    with pytest.raises(KitError, match=r"fold7 \(model b\): fold 7 is not a fold of .*folds.csv \(folds 0, 1, 2\)"):
        blend_runs([project.runs], name="bad", **project.kwargs())


def test_allow_partial_blends_the_complete_models_and_says_which_were_left_out(project):
    shutil.rmtree(project.runs / "b" / "fold2")
    result = blend_runs([project.runs], name="partial", allow_partial=True, **project.kwargs())
    assert result.members == ["a"]
    assert [name for name, _ in result.left_out] == ["b"] and "fold 2" in result.left_out[0][1]


def test_runs_root_and_model_folders_can_be_mixed_without_duplicates(project):
    result = blend_runs([project.runs / "b", project.runs], name="mix", **project.kwargs())
    assert result.members == ["b", "a"]


# ---------------------------------------------------------------- the command line


def cli_args(project: Project, *extra: str) -> list[str]:
    return ["blend", "--runs", str(project.runs), "--folds", str(project.root / "folds" / "folds.csv"),
            "--data", str(project.root / "data"), "--out", str(project.root / "submissions"), *extra]


@pytest.fixture
def hpa_project(tmp_path):
    return make_project(tmp_path, {"resnet": 0.7, "densenet": 0.5}, spec=HPA, n_train=48, n_test=10,
                        rates=np.linspace(0.4, 0.0, HPA.num_classes))


def test_cli_writes_a_validated_submission_and_prints_the_tables(hpa_project, monkeypatch):
    monkeypatch.chdir(hpa_project.root)
    result = CliRunner().invoke(main, cli_args(hpa_project, "--method", "weighted", "--name", "w"))
    assert result.exit_code == 0, result.output
    for text in ("resnet", "densenet", "blend (weighted)", "Rods & rings", "F1@0.5", "tuned", "cv",
                 "use the global threshold", "validated"):
        assert text in result.output
    out = hpa_project.root / "submissions"
    assert sorted(p.name for p in out.iterdir()) == ["w.csv", "w.json", "w.png"]
    report = json.loads((out / "w.json").read_text())
    assert report["command"].startswith("kit blend --runs ") and "--method weighted" in report["command"]
    assert "--no-empty" in report["command"]
    assert "Rods & rings" in report["fallback_classes"]


def test_cli_bad_input_is_one_line_and_writes_nothing(hpa_project, monkeypatch):
    monkeypatch.chdir(hpa_project.root)
    edit(hpa_project.file("densenet", 2), set_value(7, "Rods & rings"))
    result = CliRunner().invoke(main, cli_args(hpa_project))
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and "(model densenet, fold 2): line 4: Id" in lines[0]
    assert "probability of class 'Rods & rings' 7 is outside [0, 1]" in lines[0]
    assert not (hpa_project.root / "submissions").exists()

    result = CliRunner().invoke(main, cli_args(hpa_project, "--allow-partial", "--name", "p"))
    assert result.exit_code == 0, result.output
    assert "warning: left out densenet" in result.output
    report = json.loads((hpa_project.root / "submissions" / "p.json").read_text())
    assert [m["name"] for m in report["members"]] == ["resnet"] and report["left_out"][0]["name"] == "densenet"


@pytest.mark.parametrize("args, message", [
    (["--name", "../x"], "--name '../x': expected a plain file name"),
    (["--folds", "nowhere.csv"], "nowhere.csv: folds file not found"),
])
def test_cli_rejects_bad_options_in_one_line(hpa_project, monkeypatch, args, message):
    monkeypatch.chdir(hpa_project.root)
    result = CliRunner().invoke(main, cli_args(hpa_project, *args))
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [f"Error: {result.output.strip()[7:]}"]
    assert message in result.output
    assert not (hpa_project.root / "submissions").exists()


def test_cli_with_no_runs_says_where_it_looked(tmp_path, monkeypatch):
    project = make_project(tmp_path, {"a": 0.5})
    shutil.rmtree(project.runs / "a")
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, cli_args(project, "--config", str(write_small_config(tmp_path))))
    assert result.exit_code == 1
    assert "no runs found" in result.output


def write_small_config(folder: Path) -> Path:
    path = folder / "kit.yaml"
    path.write_text("competition:\n  classes: [" + ", ".join(SMALL.classes) + "]\n")
    return path
