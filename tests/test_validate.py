"""Every way `validate_submission` (used by `kit blend` and `kit submit`) refuses a file, each one line that
names the file, the line and the Id."""
from __future__ import annotations

import pytest

from kit.data.spec import HPA, CompetitionSpec
from kit.data.submission import validate_submission
from kit.errors import KitError

SPEC = CompetitionSpec(classes=("a", "b", "c", "d"))
GOOD = "Id,Predicted\nx1,0 2\nx2,3\nx3,\n"


@pytest.fixture
def sample(tmp_path):
    path = tmp_path / "sample_submission.csv"
    path.write_text("Id,Predicted\nx1,0\nx2,0\nx3,0\n")
    return path


def check(tmp_path, sample, content, spec=SPEC):
    path = tmp_path / "sub.csv"
    if isinstance(content, str):
        content = content.encode("utf-8")
    path.write_bytes(content)
    return validate_submission(path, sample, spec)


def test_a_good_file_passes_and_counts_its_rows(tmp_path, sample):
    assert check(tmp_path, sample, GOOD) == 3
    assert check(tmp_path, sample, "Id,Predicted\nx3,1\nx1,\nx2,0 1 2 3\n") == 3  # any order, empty labels


@pytest.mark.parametrize("content, message", [
    ("Id,Label\nx1,0\nx2,0\nx3,0\n", "line 1: expected columns Id,Predicted, found Id,Label"),
    ("Predicted,Id\n0,x1\n0,x2\n0,x3\n", "line 1: expected columns Id,Predicted, found Predicted,Id"),
    ("Id,Predicted,Extra\nx1,0,1\nx2,0,1\nx3,0,1\n", "expected columns Id,Predicted, found Id,Predicted,Extra"),
    ("Id\nx1\nx2\nx3\n", "expected columns Id,Predicted, found Id"),
    ("Id,Predicted\nx1,0\nx2,0\nx9,0\n", "line 4: Id x9 is not in sample_submission.csv"),
    ("Id,Predicted\nx1,0\nx2,0\nx1,1\nx3,0\n", "line 4: Id x1 appears twice"),
    ("Id,Predicted\nx1,0\nx3,0\n", "1 Id(s) of sample_submission.csv missing, first x2"),
    ("Id,Predicted\n", "3 Id(s) of sample_submission.csv missing, first x1"),
    ("Id,Predicted\nx1,0\nx2,1 3 1\nx3,0\n", "line 3: Id x2: a label is repeated in '1 3 1'"),
    ("Id,Predicted\nx1,0\nx2,4\nx3,0\n", "line 3: Id x2: label '4' is not a class index 0..3"),
    ("Id,Predicted\nx1,0\nx2,-1\nx3,0\n", "label '-1' is not a class index"),
    ("Id,Predicted\nx1,0\nx2,b\nx3,0\n", "label 'b' is not a class index"),
    ("Id,Predicted\nx1,0\nx2,1.0\nx3,0\n", "label '1.0' is not a class index"),
    ("Id,Predicted\nx1,0\nx2,1;2\nx3,0\n", "label '1;2' is not a class index"),
    ("", "not a readable CSV"),
    (b"Id,Predicted\nx1,\xff\n", "not UTF-8 text"),
    ("\ufeffId,Predicted\nx1,0\nx2,0\nx3,0\n", "starts with a byte-order mark"),
])
def test_each_rejection_is_one_line_naming_the_file(tmp_path, sample, content, message):
    with pytest.raises(KitError) as err:
        check(tmp_path, sample, content)
    text = str(err.value)
    assert text.startswith(str(tmp_path / "sub.csv")) and "\n" not in text
    assert message in text


def test_a_missing_file_and_a_broken_sample_submission(tmp_path, sample):
    with pytest.raises(KitError, match="nowhere.csv: file not found"):
        validate_submission(tmp_path / "nowhere.csv", sample, SPEC)
    sample.write_text("Id,Predicted\nx1,0\nx1,0\n")
    with pytest.raises(KitError, match="line 3: Id x1 appears twice"):
        check(tmp_path, sample, GOOD)


def test_hpa_labels_run_to_27(tmp_path, sample):
    assert check(tmp_path, sample, "Id,Predicted\nx1,27\nx2,0 27\nx3,\n", HPA) == 3
    with pytest.raises(KitError, match="label '28' is not a class index 0..27"):
        check(tmp_path, sample, "Id,Predicted\nx1,28\nx2,0\nx3,\n", HPA)
