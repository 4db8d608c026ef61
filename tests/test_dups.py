"""`kit dups` (perceptual-hash duplicates), `kit synth --duplicates` and `kit blend --dups/--leak`."""
from __future__ import annotations

import json

import imagehash
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from helpers import error_line
from PIL import Image
from test_blend import SMALL, cli_args, make_project, write_small_config

from kit.cli import main
from kit.data.dups import hash_image, near_pairs


def brute_force_pairs(hashes: np.ndarray, distance: float) -> set[tuple[int, int, int]]:
    """Every pair by a plain double loop over Python integers (bin().count)."""
    found = set()
    rows = [[int(word) for word in row] for row in hashes]
    for i in range(len(rows)):
        for j in range(i + 1, len(rows)):
            total = sum(bin(a ^ b).count("1") for a, b in zip(rows[i], rows[j]))
            if total <= distance * hashes.shape[1]:
                found.add((i, j, total))
    return found


@pytest.mark.parametrize("channels, distance", [(4, 8), (1, 12), (3, 0), (4, 64)])
def test_near_pairs_equal_a_brute_force_search(channels, distance, monkeypatch):
    import kit.data.dups as dups

    monkeypatch.setattr(dups, "COLUMN_TILE", 37)  # many tiles, ragged edges, the diagonal tile split
    rng = np.random.default_rng(channels)
    hashes = rng.integers(0, 2**64, size=(150, channels), dtype=np.uint64)
    for k in range(0, 150, 3):  # near copies: a few bits flipped
        flips = rng.integers(0, 64, size=(channels, int(rng.integers(0, 10))))
        hashes[k + 1] = hashes[k] ^ np.bitwise_or.reduce(np.uint64(1) << flips.astype(np.uint64), axis=1)
    hashes[149] = ~hashes[148]  # distance 64 per channel: wraps a uint8 sum of 4 channels to 0
    i, j, total = near_pairs(hashes, distance, workers=2)
    assert set(zip(i.tolist(), j.tolist(), total.tolist())) == brute_force_pairs(hashes, distance)
    assert len(i) == len(set(zip(i.tolist(), j.tolist())))


def test_hashes_are_imagehash_phash_per_channel():
    rng = np.random.default_rng(1)
    image = (rng.random((40, 40, 3)) * 255).astype(np.uint8)
    words = hash_image(image)
    for c in range(3):
        expected = imagehash.phash(Image.fromarray(image[..., c]))
        assert f"{int(words[c]):016x}" == str(expected)


@pytest.fixture(scope="module")
def dup_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("dups") / "data"
    result = CliRunner().invoke(main, ["synth", str(root), "--n-train", "150", "--n-test", "40", "--size", "64",
                                       "--seed", "3", "--duplicates", "40"])
    assert result.exit_code == 0, result.output
    return root


def pair_set(frame: pd.DataFrame, first: str, second: str) -> set[frozenset]:
    return {frozenset(pair) for pair in zip(frame[first], frame[second])}


def test_dups_finds_the_injected_copies_and_folds_keep_twins_together(dup_data, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["dups", "--data", str(dup_data)])
    assert result.exit_code == 0, result.output
    for text in ("test images have a train or external twin", "labels agree in", "duplicate groups"):
        assert text in result.output
    twins = pd.read_csv(dup_data / "duplicates.csv")
    assert sorted(twins["split"].value_counts().items()) == [("test", 20), ("train", 20)]
    pairs = pd.read_csv(tmp_path / "folds" / "dups_pairs.csv", keep_default_na=False)
    assert list(pairs.columns) == ["Id1", "Id2", "split1", "split2", "distance", "labels_agree"]
    truth, found = pair_set(twins, "Id", "twin"), pair_set(pairs, "Id1", "Id2")
    assert len(truth & found) >= 0.99 * len(truth)
    assert len(found - truth) <= 0.01 * len(found)
    train_pairs = pairs[(pairs["split1"] == "train") & (pairs["split2"] == "train")]
    assert len(train_pairs) and set(train_pairs["labels_agree"]) == {"yes"}  # copies keep their labels
    assert set(pairs.loc[pairs["split2"] == "test", "labels_agree"]) <= {""}

    groups = pd.read_csv(tmp_path / "folds" / "dups.csv")
    train = pd.read_csv(dup_data / "train.csv")
    assert list(groups["Id"]) == list(train["Id"]) and len(train) == 170
    group_of = dict(zip(groups["Id"], groups["group"]))
    train_twins = twins[twins["split"] == "train"]
    assert all(group_of[a] == group_of[b] for a, b in zip(train_twins["Id"], train_twins["twin"]))

    result = CliRunner().invoke(main, ["folds", "--data", str(dup_data), "--groups", "folds/dups.csv", "--k", "4"])
    assert result.exit_code == 0, result.output
    fold_of = dict(pd.read_csv(tmp_path / "folds" / "folds.csv").values)
    assert all(fold_of[a] == fold_of[b] for a, b in zip(train_twins["Id"], train_twins["twin"]))


def test_dups_reads_a_fresh_cache_and_finds_the_same_pairs(dup_data, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("KIT_CACHE", str(tmp_path / "cache"))
    assert CliRunner().invoke(main, ["dups", "--data", str(dup_data), "--out", "a/dups.csv"]).exit_code == 0
    result = CliRunner().invoke(main, ["cache", "--data", str(dup_data), "--size", "64", "--workers", "1"])
    assert result.exit_code == 0, result.output
    result = CliRunner().invoke(main, ["dups", "--data", str(dup_data), "--out", "b/dups.csv"])
    assert result.exit_code == 0, result.output
    assert "using cache" in result.output
    # The cache holds the same pixels at the same size, so the hashes and pairs are the same.
    assert (tmp_path / "a" / "dups_pairs.csv").read_text() == (tmp_path / "b" / "dups_pairs.csv").read_text()


# ---------------------------------------------------------------- kit blend --dups


@pytest.fixture
def twin_project(tmp_path):
    project = make_project(tmp_path, {"a": 0.8, "b": 0.5}, n_train=45, n_test=12)
    pairs = pd.DataFrame({"Id1": ["te000", "te000", "te003", "tr005"], "Id2": ["te001", "te002", "te004", "te007"],
                          "split1": ["test", "test", "test", "train"], "split2": "test",
                          "distance": [1.0, 2.5, 0.0, 0.5], "labels_agree": ""})
    pairs.to_csv(tmp_path / "folds" / "dups_pairs.csv", index=False)
    write_small_config(tmp_path)
    return project


def blended_scores(project, *extra: str) -> tuple[dict, pd.DataFrame]:
    result = CliRunner().invoke(main, cli_args(project, "--config", str(project.root / "kit.yaml"), *extra))
    assert result.exit_code == 0, result.output
    name = extra[extra.index("--name") + 1]
    report = json.loads((project.root / "submissions" / f"{name}.json").read_text())
    submission = pd.read_csv(project.root / "submissions" / f"{name}.csv", keep_default_na=False)
    return report, submission


def test_blend_averages_duplicate_test_groups_and_copies_labels_only_when_asked(twin_project, monkeypatch):
    project = twin_project
    monkeypatch.chdir(project.root)
    plain, _ = blended_scores(project, "--name", "plain")
    report, submission = blended_scores(project, "--name", "dups", "--dups", "folds/dups_pairs.csv")
    assert report["duplicates"]["test_groups_averaged"] == 2 and report["duplicates"]["test_rows_averaged"] == 5
    assert report["duplicates"]["labels_copied"] == {}
    # The mean blend of test rows, by hand: average of members' fold means, then the groups' means.
    blend = np.mean([np.mean(project.test[m], axis=0) for m in ("a", "b")], axis=0)
    expected = blend.copy()
    expected[[0, 1, 2]] = blend[[0, 1, 2]].mean(axis=0)
    expected[[3, 4]] = blend[[3, 4]].mean(axis=0)
    thresholds = np.array([report["thresholds"][c] for c in SMALL.classes])
    assert thresholds.tolist() == [plain["thresholds"][c] for c in SMALL.classes]
    predicted = expected >= thresholds
    empty = ~predicted.any(axis=1)
    predicted[empty, expected[empty].argmax(axis=1)] = True
    got = [set(map(int, str(text).split())) for text in submission["Predicted"]]
    assert got == [set(np.flatnonzero(row)) for row in predicted]
    assert got[0] == got[1] == got[2] and got[3] == got[4]

    report, submission = blended_scores(project, "--name", "leak", "--dups", "folds/dups_pairs.csv",
                                        "--leak", "copy")
    assert report["duplicates"]["labels_copied"] == {"te007": "tr005"}
    row = project.test_ids.index("te007")
    assert set(map(int, str(submission["Predicted"][row]).split())) == set(np.flatnonzero(project.truth[5]))


def test_blend_refuses_pairs_naming_unknown_ids_and_a_leak_without_pairs(twin_project, monkeypatch):
    project = twin_project
    monkeypatch.chdir(project.root)
    path = project.root / "folds" / "dups_pairs.csv"
    pairs = pd.read_csv(path, keep_default_na=False)
    pairs.loc[2, "Id2"] = "stranger"
    pairs.to_csv(path, index=False)
    config = ["--config", str(project.root / "kit.yaml")]
    result = CliRunner().invoke(main, cli_args(project, *config, "--dups", str(path)))
    assert error_line(result) == (f"Error: {path}: line 4: Id stranger is neither a train nor a test Id of this data "
                                  "set (pairs from another data set? rerun `kit dups`)")
    result = CliRunner().invoke(main, cli_args(project, *config, "--leak", "copy"))
    assert "--leak copy needs the pairs of `kit dups`" in error_line(result)
    assert not (project.root / "submissions").exists()


def test_external_images_are_hashed_grouped_and_named(dup_data, tmp_path):
    from kit.data.dups import find_dups
    from kit.data.reading import CompetitionData, Source
    from kit.data.spec import HPA

    train = pd.read_csv(dup_data / "train.csv")
    (tmp_path / "ext").mkdir()
    rows = []
    for k, (sample_id, target) in enumerate(zip(train["Id"][:3], train["Target"][:3])):
        for channel in HPA.channels:  # an external source that holds exact copies of three train images
            (tmp_path / "ext" / f"x{k}_{channel}.png").write_bytes((dup_data / "train" / f"{sample_id}_{channel}.png")
                                                                   .read_bytes())
        rows.append((f"x{k}", target))
    pd.DataFrame(rows, columns=["Id", "Target"]).to_csv(tmp_path / "ext.csv", index=False)
    data = CompetitionData(dup_data, HPA, external=(Source(tmp_path / "ext", "png"),),
                           external_labels=(tmp_path / "ext.csv",))
    result = find_dups(data, groups_path=tmp_path / "folds" / "dups.csv", workers=1)
    assert result.counts == {"train": 170, "external": 3, "test": 60}
    pairs = result.pairs[result.pairs["split2"] == "external"]
    assert sorted(zip(pairs["Id1"], pairs["Id2"])) == sorted(zip(train["Id"][:3], ["x0", "x1", "x2"]))
    assert set(pairs["distance"]) == {0.0} and set(pairs["labels_agree"]) == {"yes"}
    group_of = dict(zip(result.groups["Id"], result.groups["group"]))
    assert [group_of[f"x{k}"] for k in range(3)] == [group_of[i] for i in train["Id"][:3]]
    assert "hashed 170 train, 3 external and 60 test images" in result.summary[0]


def test_near_copies_and_dups_in_a_one_file_per_sample_layout(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    data = tmp_path / "planet"
    result = CliRunner().invoke(main, ["synth", str(data), "--preset", "planet", "--n-train", "80", "--n-test", "20",
                                       "--size", "64", "--duplicates", "20"])
    assert result.exit_code == 0, result.output
    assert CliRunner().invoke(main, ["init", "planet", str(tmp_path)]).exit_code == 0
    result = CliRunner().invoke(main, ["dups", "--data", str(data), "--config", "kit.yaml"])
    assert result.exit_code == 0, result.output
    twins = pd.read_csv(data / "duplicates.csv")
    pairs = pd.read_csv(tmp_path / "folds" / "dups_pairs.csv", keep_default_na=False)
    truth, found = pair_set(twins, "Id", "twin"), pair_set(pairs, "Id1", "Id2")
    assert truth <= found and len(found - truth) <= 0.01 * len(found)
