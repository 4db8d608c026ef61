"""`kit infer` writes `kit blend`'s own CSV byte for byte for the blend settings that change the submission after
the blend method: ratio thresholds matched to a --prior, and --dups / --leak copy. Each case blends through the
command, applies its JSON with `kit infer`, and compares the two files' bytes (blend's file is the reference)."""
from __future__ import annotations

import json

import pandas as pd
import pytest
from click.testing import CliRunner

from kit.cli import main
from kit.data.spec import HPA

pytestmark = pytest.mark.usefixtures("one_thread")


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture
def pairs_file(tiny_blend, tmp_path):
    """Pairs of `kit dups` shape: two test groups (3 and 2 images) and two test images with a train twin."""
    test_ids = pd.read_csv(tiny_blend.data / "sample_submission.csv", dtype=str)["Id"].tolist()
    train = pd.read_csv(tiny_blend.data / "train.csv", dtype=str, keep_default_na=False)
    # train twins whose labels the blend would not predict for those test rows: labels of many classes
    many = train.assign(n=train["Target"].str.split().str.len()).sort_values("n", kind="stable")["Id"].tolist()
    rows = [(test_ids[0], test_ids[1], "test", "test", 1.0), (test_ids[1], test_ids[2], "test", "test", 2.0),
            (test_ids[3], test_ids[4], "test", "test", 0.0), (many[-1], test_ids[5], "train", "test", 0.5),
            (test_ids[6], many[-2], "test", "train", 1.5)]
    frame = pd.DataFrame(rows, columns=["Id1", "Id2", "split1", "split2", "distance"]).assign(labels_agree="")
    path = tmp_path / "dups_pairs.csv"
    frame.to_csv(path, index=False)
    return path


def blend_then_infer(tiny_blend, tmp_path, *options):
    out = tmp_path / "submissions"
    blended = run("blend", tiny_blend.runs, "--data", tiny_blend.data, "--folds", tiny_blend.folds, "--out", out,
                  "--method", "rank", "--name", "b", *options)
    assert blended.exit_code == 0, blended.output
    inferred = run("infer", out / "b.json", "--data", tiny_blend.data, "--out", tmp_path / "again.csv",
                   "--workers", "0", "--device", "cpu")
    assert inferred.exit_code == 0, inferred.output
    return out / "b.csv", tmp_path / "again.csv", json.loads((out / "b.json").read_text()), inferred.output


def test_ratio_thresholds_with_a_prior_are_matched_to_the_prior_again(tiny_blend, tmp_path):
    prior = tmp_path / "prior.csv"
    prior.write_text("class,rate\n" + "".join(f"{c},0.5\n" for c in range(0, HPA.num_classes, 2)))
    plain, _, _, _ = blend_then_infer(tiny_blend, tmp_path / "plain", "--thresholds", "ratio")
    blend_csv, infer_csv, report, _ = blend_then_infer(tiny_blend, tmp_path, "--thresholds", "ratio",
                                                       "--prior", prior)
    assert blend_csv.read_bytes() != plain.read_bytes()  # the prior changes the submission (the case is live)
    assert infer_csv.read_bytes() == blend_csv.read_bytes()


@pytest.mark.parametrize("leak", ["none", "copy"])
def test_duplicates_and_the_leak_are_applied_again(tiny_blend, tmp_path, pairs_file, leak):
    plain, _, _, _ = blend_then_infer(tiny_blend, tmp_path / "plain")
    blend_csv, infer_csv, report, output = blend_then_infer(tiny_blend, tmp_path, "--dups", pairs_file,
                                                            "--leak", leak)
    assert report["duplicates"]["test_groups_averaged"] == 2
    assert (len(report["duplicates"]["labels_copied"]) == 2) == (leak == "copy")
    if leak == "copy":  # the copied labels change the submission (the case is live)
        assert blend_csv.read_bytes() != plain.read_bytes()
    assert infer_csv.read_bytes() == blend_csv.read_bytes()
    assert "2 test groups averaged (5 rows)" in output


def test_a_blend_json_without_its_pairs_is_one_line(tiny_blend, tmp_path, pairs_file):
    _, _, report, _ = blend_then_infer(tiny_blend, tmp_path, "--dups", pairs_file)
    path = tmp_path / "submissions" / "b.json"
    del report["duplicates"]["test_pairs"]
    path.write_text(json.dumps(report))
    result = run("infer", path, "--data", tiny_blend.data, "--out", tmp_path / "s.csv")
    assert result.exit_code != 0 and "does not carry them" in result.output
    assert not (tmp_path / "s.csv").exists()
