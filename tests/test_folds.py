import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from kit.cli import main
from kit.data.folds import assign_folds, read_folds
from kit.data.reading import CompetitionData, labels_to_matrix
from kit.data.spec import HPA


def run_folds(data, out, *extra):
    return CliRunner().invoke(main, ["folds", "--data", str(data), "--out", str(out), *extra])


def test_folds_cover_every_id_once_and_stratify(synth_dir, tmp_path):
    out = tmp_path / "folds" / "folds.csv"
    result = run_folds(synth_dir, out)
    assert result.exit_code == 0, result.output
    folds = read_folds(out)
    labels = CompetitionData(synth_dir, HPA).train_labels()
    assert folds["Id"].tolist() == labels["Id"].tolist()
    assert sorted(folds["fold"].unique()) == [0, 1, 2, 3, 4]
    counts = np.bincount(folds["fold"])
    assert np.abs(counts - 12).max() <= 3  # 60 samples: rare classes come first, so sizes vary a little
    matrix = labels_to_matrix(labels["labels"], 28)
    per_fold = np.stack([matrix[folds["fold"].to_numpy() == f].sum(axis=0) for f in range(5)])
    assert (per_fold.max(axis=0) - per_fold.min(axis=0)).max() <= 2  # every class spread over the folds
    summary = pd.read_csv(tmp_path / "folds" / "folds_summary.csv")
    assert summary.columns.tolist() == ["index", "class", "fold0", "fold1", "fold2", "fold3", "fold4", "total"]
    nucleoplasm = summary.iloc[0]
    assert nucleoplasm["fold0":"fold4"].max() - nucleoplasm["fold0":"fold4"].min() <= 2
    assert "Nucleoplasm" in result.output  # the table is printed too


def test_rare_classes_are_warned_about(synth_dir, tmp_path):
    result = run_folds(synth_dir, tmp_path / "f.csv")
    labels = CompetitionData(synth_dir, HPA).train_labels()
    totals = labels_to_matrix(labels["labels"], 28).sum(axis=0)
    rare = [i for i in range(28) if totals[i] < 5]
    assert rare
    for i in rare:
        assert f"class {i} ({HPA.classes[i]}) has {totals[i]} sample(s), fewer than 5 folds" in result.output


def test_folds_are_deterministic_for_a_seed(synth_dir, tmp_path):
    run_folds(synth_dir, tmp_path / "a.csv", "--seed", "1", "--k", "3")
    run_folds(synth_dir, tmp_path / "b.csv", "--seed", "1", "--k", "3")
    run_folds(synth_dir, tmp_path / "c.csv", "--seed", "2", "--k", "3")
    a, b, c = (pd.read_csv(tmp_path / f"{n}.csv") for n in "abc")
    assert a.equals(b) and not a.equals(c)
    assert sorted(a["fold"].unique()) == [0, 1, 2]


def test_groups_never_straddle_folds(synth_dir, tmp_path):
    ids = pd.read_csv(synth_dir / "train.csv")["Id"]
    groups = pd.DataFrame({"Id": ids, "group": [f"g{i // 3}" for i in range(len(ids))]})
    groups.to_csv(tmp_path / "groups.csv", index=False)
    result = run_folds(synth_dir, tmp_path / "f.csv", "--groups", str(tmp_path / "groups.csv"))
    assert result.exit_code == 0, result.output
    folds = pd.read_csv(tmp_path / "f.csv").merge(groups, on="Id")
    assert (folds.groupby("group")["fold"].nunique() == 1).all()
    assert np.abs(np.bincount(folds["fold"]) - 12).max() <= 3  # 20 groups of 3: one group from an equal split


@pytest.mark.parametrize("n, seed", [(600, 0), (3000, 1)])
def test_group_folds_keep_groups_whole_and_balanced(n, seed):
    """Near-duplicate groups of 1 to 4 images sharing labels (as `kit dups` finds them), HPA's frequencies."""
    rng = np.random.default_rng(seed)
    group = np.repeat(np.arange(n), rng.integers(1, 5, n))[:n]
    matrix = (rng.random((n, 28)) < np.array(HPA.frequencies()))[group]
    labels = pd.DataFrame({"Id": [str(i) for i in range(n)], "labels": [list(np.flatnonzero(r)) for r in matrix]})
    folds = assign_folds(labels, 28, k=5, seed=seed, groups=pd.Series([f"g{g}" for g in group]))
    assert (pd.Series(folds).groupby(group).nunique() == 1).all()
    sizes = np.bincount(folds, minlength=5)
    assert np.abs(sizes - n / 5).max() <= 4  # at most one large group away from an equal split
    per_fold = np.stack([matrix[folds == f].sum(axis=0) for f in range(5)])
    spread = per_fold.max(axis=0) - per_fold.min(axis=0)
    assert spread.max() <= 8, spread  # two groups of 4 at most, for every class, common or rare
    assert np.array_equal(folds, assign_folds(labels, 28, k=5, seed=seed, groups=pd.Series(
        [f"g{g}" for g in group])))


def test_a_missing_group_is_an_error(synth_dir, tmp_path):
    ids = pd.read_csv(synth_dir / "train.csv")["Id"]
    pd.DataFrame({"Id": ids[1:], "group": "g"}).to_csv(tmp_path / "groups.csv", index=False)
    result = run_folds(synth_dir, tmp_path / "f.csv", "--groups", str(tmp_path / "groups.csv"))
    assert result.exit_code == 1
    assert f"Id {ids[0]} of train.csv has no group" in result.output
    assert not (tmp_path / "f.csv").exists()


@pytest.mark.parametrize("content, message", [
    (b"", "groups.csv: not a readable CSV"),
    (b"\x00\xff\xfe", "groups.csv: not UTF-8 text"),
    (None, "has an empty group"),
])
def test_unreadable_groups_files_are_one_line(synth_dir, tmp_path, content, message):
    ids = pd.read_csv(synth_dir / "train.csv")["Id"]
    if content is None:
        pd.DataFrame({"Id": ids, "group": ["g"] * (len(ids) - 1) + [""]}).to_csv(tmp_path / "groups.csv", index=False)
    else:
        (tmp_path / "groups.csv").write_bytes(content)
    result = run_folds(synth_dir, tmp_path / "f.csv", "--groups", str(tmp_path / "groups.csv"))
    assert result.exit_code == 1 and message in result.output and "Traceback" not in result.output
    assert not (tmp_path / "f.csv").exists()


def test_existing_folds_survive_a_failed_run(data_copy, tmp_path):
    out = tmp_path / "folds.csv"
    assert run_folds(data_copy, out).exit_code == 0
    before = out.read_bytes()
    (data_copy / "train.csv").write_text("Id,Target\na,0\na,1\n")
    result = run_folds(data_copy, out)
    assert result.exit_code == 1 and "Id a duplicates line 2" in result.output
    assert out.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_an_output_path_through_a_file_is_one_line(synth_dir, tmp_path):
    (tmp_path / "taken").write_text("a file, not a folder")
    result = run_folds(synth_dir, tmp_path / "taken" / "folds.csv")
    assert result.exit_code == 1 and "cannot write there" in result.output and "Traceback" not in result.output


def test_missing_data_folder(tmp_path):
    result = run_folds(tmp_path / "nowhere", tmp_path / "f.csv")
    assert result.exit_code == 1
    assert "data folder not found" in result.output


def test_hpa_sized_split_is_balanced():
    rng = np.random.default_rng(0)
    frequencies = np.array(HPA.frequencies())
    matrix = rng.random((3000, 28)) < frequencies
    labels = pd.DataFrame({"Id": [str(i) for i in range(3000)], "labels": [list(np.flatnonzero(r)) for r in matrix]})
    folds = assign_folds(labels, 28, k=5, seed=0)
    per_fold = np.stack([matrix[folds == f].sum(axis=0) for f in range(5)])
    assert (per_fold.max(axis=0) - per_fold.min(axis=0) <= 1).all()
    assert np.abs(np.bincount(folds) - 600).max() <= 6  # sizes within 1% of an equal split


def test_installed_kit_runs_as_a_subprocess(synth_dir, tmp_path):
    kit = [str(Path(sys.executable).with_name("kit"))]  # the console script that `pip install` made
    result = subprocess.run([*kit, "folds", "--data", str(synth_dir), "--k", "3"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "folds" / "folds.csv").is_file()
    bad = subprocess.run([*kit, "folds", "--data", str(tmp_path / "missing")], cwd=tmp_path,
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 1
    assert bad.stderr.strip().startswith("Error:") and "Traceback" not in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("content, message", [
    ("Id,fold\na,0\na,1\n", "Id a appears twice"),
    ("Id,fold\na,x\n", "fold is not an integer"),
    ("Name,fold\na,0\n", "expected columns Id,fold"),
    ("Id,fold\na,0\nb,2\n", "folds must be numbered 0..k-1 with none empty, but no fold 1"),
    ("Id,fold\na,-1\nb,0\n", "fold -1 is negative"),
    ("", "folds.csv: not a readable CSV"),
    ('Id,fold\n"a,0\n', "folds.csv: not a readable CSV"),
    ("Id,fold\n\udcff,0\n", "folds.csv: not UTF-8 text"),
])
def test_bad_folds_file(tmp_path, content, message):
    from kit.errors import KitError

    (tmp_path / "folds.csv").write_bytes(content.encode("utf-8", "surrogateescape"))
    with pytest.raises(KitError, match=message):
        read_folds(tmp_path / "folds.csv")
