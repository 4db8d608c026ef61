"""Label codecs (indices, names, wide, long; multiclass), the submission writers and their validation, and group
folds, on real CSVs in tmp_path: each bad file is one line naming the file and the row or Id."""
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from kit.data.folds import make_folds
from kit.data.labels import LABEL_CODECS, labels_to_matrix, read_label_groups, read_labels, resolve_classes
from kit.data.spec import CHOICES, spec_from_dict
from kit.data.submission import WRITERS, read_sample_ids, validate_submission, write_submission
from kit.errors import KitError

RSNA = {"classes": ["epidural", "intraparenchymal", "subdural", "any"], "label_format": "long",
        "submission_format": "long", "id_column": "ID", "target_column": "Label", "prediction_column": "Label"}
PLANT = {"classes": ["healthy", "multiple_diseases", "rust", "scab"], "label_format": "wide", "task": "multiclass",
         "submission_format": "wide", "id_column": "image_id"}
CASSAVA = {"classes": ["cbb", "cbsd", "cgm", "cmd", "healthy"], "task": "multiclass", "id_column": "image_id",
           "target_column": "label", "prediction_column": "label", "image_ext": "none", "image_layout": "file"}


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def one_line_error(call, *args) -> str:
    with pytest.raises(KitError) as err:
        call(*args)
    message = str(err.value)
    assert "\n" not in message
    return message


def test_registries_name_every_format():
    assert set(LABEL_CODECS) == set(CHOICES["label_format"])
    assert set(WRITERS) == set(CHOICES["submission_format"])


def test_long_labels_with_a_class_holding_the_separator(tmp_path):
    spec = spec_from_dict({**RSNA, "classes": ["dural", "sub_dural", "any"]})
    path = write(tmp_path / "train.csv", "ID,Label\n" + "".join(
        f"ID_{image}_{name},{value}\n" for image, values in (("a1", "010"), ("b_2", "101"))
        for name, value in zip(["sub_dural", "dural", "any"], values)))
    labels = read_labels(path, spec)
    assert labels["Id"].tolist() == ["ID_a1", "ID_b_2"]
    # the class of `ID_a1_sub_dural` is the longest suffix naming one: sub_dural, not dural
    np.testing.assert_array_equal(labels_to_matrix(labels["labels"], 3), [[1, 0, 0], [0, 1, 1]])


def long_file(tmp_path, rows: list[tuple[str, str, int]]) -> Path:
    return write(tmp_path / "train.csv", "ID,Label\n" + "".join(f"ID_{i}_{c},{v}\n" for i, c, v in rows))


def full_rows(image: str, values=(0, 1, 0, 1)) -> list:
    return [(image, name, value) for name, value in zip(RSNA["classes"], values)]


def test_long_file_missing_a_class(tmp_path):
    path = long_file(tmp_path, full_rows("a") + full_rows("b")[:3])
    message = one_line_error(read_labels, path, spec_from_dict(RSNA))
    assert message.startswith(str(path)) and "ID_b" in message and "'any'" in message


def test_long_file_holding_a_class_twice(tmp_path):
    path = long_file(tmp_path, full_rows("a") + full_rows("b") + [("a", "subdural", 1)])
    message = one_line_error(read_labels, path, spec_from_dict(RSNA))
    assert message.startswith(f"{path}: line 10: Id ID_a_subdural") and "twice" in message


def test_long_cell_not_0_or_1(tmp_path):
    path = long_file(tmp_path, full_rows("a", (0, 1, 2, 1)))
    message = one_line_error(read_labels, path, spec_from_dict(RSNA))
    assert message.startswith(f"{path}: line 4: Id ID_a_subdural")


def test_long_id_naming_no_class(tmp_path):
    path = long_file(tmp_path, full_rows("a") + [("a", "epiduralx", 1)])
    assert "line 6" in one_line_error(read_labels, path, spec_from_dict(RSNA))


def test_wide_labels_classes_default_to_the_other_columns(tmp_path):
    path = write(tmp_path / "train.csv", "StudyInstanceUID,ETT - Abnormal,CVC - Normal,PatientID\n"
                                         "1.2.3,0,1,p1\n1.2.4,1,1,p1\n1.2.5,0,0,p2\n")
    spec = resolve_classes(spec_from_dict({"label_format": "wide", "id_column": "StudyInstanceUID",
                                           "group_column": "PatientID"}), tmp_path)
    assert spec.classes == ("ETT - Abnormal", "CVC - Normal")
    labels = read_labels(path, spec)
    np.testing.assert_array_equal(labels_to_matrix(labels["labels"], 2), [[0, 1], [1, 1], [0, 0]])
    assert read_label_groups(path, spec).to_dict() == {"1.2.3": "p1", "1.2.4": "p1", "1.2.5": "p2"}


def test_wide_cell_not_0_or_1(tmp_path):
    path = write(tmp_path / "train.csv", "image_id,healthy,multiple_diseases,rust,scab\nT_0,1,0,0,0\nT_1,0,0.5,0,1\n")
    message = one_line_error(read_labels, path, spec_from_dict({**PLANT, "task": "multilabel"}))
    assert message.startswith(f"{path}: line 3: Id T_1: column 'multiple_diseases'")


def test_zero_one_written_as_floats_reads_as_zero_one(tmp_path):
    """pandas writes a 0/1 column that once held a gap as 0.0/1.0: wide and long files read them alike."""
    wide = write(tmp_path / "wide.csv", "image_id,healthy,multiple_diseases,rust,scab\nT_0,1.0,0.0,0,0\n"
                                        "T_1,0.0,0.0,1.0,0\n")
    labels = read_labels(wide, spec_from_dict(PLANT))
    np.testing.assert_array_equal(labels_to_matrix(labels["labels"], 4), [[1, 0, 0, 0], [0, 0, 1, 0]])
    long = long_file(tmp_path, [(i, c, f"{v}.0") for i, c, v in full_rows("a")])
    np.testing.assert_array_equal(labels_to_matrix(read_labels(long, spec_from_dict(RSNA))["labels"], 4),
                                  [[0, 1, 0, 1]])
    for bad in ("nan", "1.5", "inf"):
        path = write(tmp_path / "bad.csv", f"image_id,healthy,multiple_diseases,rust,scab\nT_0,1,0,0,{bad}\n")
        assert one_line_error(read_labels, path, spec_from_dict(PLANT)).startswith(f"{path}: line 2: Id T_0")


def test_wide_missing_class_column(tmp_path):
    path = write(tmp_path / "train.csv", "image_id,healthy,rust,scab\nT_0,1,0,0\n")
    message = one_line_error(read_labels, path, spec_from_dict(PLANT))
    assert message.startswith(f"{path}: line 1") and "multiple_diseases" in message


def test_multiclass_two_labels_for_one_image(tmp_path):
    wide = write(tmp_path / "train.csv", "image_id,healthy,multiple_diseases,rust,scab\nT_0,1,0,0,0\nT_1,0,0,1,1\n")
    assert one_line_error(read_labels, wide, spec_from_dict(PLANT)).startswith(f"{wide}: line 3: Id T_1: 2 labels")
    cells = write(tmp_path / "cells.csv", "image_id,label\n1.jpg,3\n2.jpg,1 4\n")
    spec = spec_from_dict({**CASSAVA, "label_separator": " "})
    assert one_line_error(read_labels, cells, spec).startswith(f"{cells}: line 3: Id 2.jpg: 2 labels")
    ok = read_labels(write(tmp_path / "ok.csv", "image_id,label\n1.jpg,3\n2.jpg,0\n"), spec)
    assert ok["labels"].tolist() == [[3], [0]]


# ---------------------------------------------------------------- submissions


def test_long_submission_in_sample_order(tmp_path):
    spec = spec_from_dict(RSNA)
    rows = [f"ID_{image}_{name}" for image in ("t2", "t1") for name in reversed(RSNA["classes"])]
    sample = write(tmp_path / "sample.csv", "ID,Label\n" + "".join(f"{r},0.5\n" for r in rows))
    ids = read_sample_ids(sample, spec)
    assert ids == ["ID_t2", "ID_t1"]
    scores = np.array([[0.1, 0.2, 0.3, 0.4], [0.5, 0.6, 0.7, 0.8]])
    out = write_submission(tmp_path / "sub.csv", ids, spec, sample, scores=scores)
    written = pd.read_csv(out)
    assert written["ID"].tolist() == rows
    np.testing.assert_allclose(written["Label"], [0.4, 0.3, 0.2, 0.1, 0.8, 0.7, 0.6, 0.5])
    assert validate_submission(out, sample, spec) == 8


def test_wide_submission_in_sample_column_order(tmp_path):
    spec = spec_from_dict({**PLANT, "task": "multilabel"})
    sample = write(tmp_path / "sample.csv", "image_id,scab,rust,healthy,multiple_diseases\nT_1,0,0,0,0\nT_0,0,0,0,0\n")
    scores = np.array([[0.1, 0.2, 0.3, 0.4], [0.9, 0.0, 0.05, 0.05]])
    out = write_submission(tmp_path / "sub.csv", ["T_1", "T_0"], spec, sample, scores=scores)
    written = pd.read_csv(out)
    assert list(written.columns) == ["image_id", "scab", "rust", "healthy", "multiple_diseases"]
    np.testing.assert_allclose(written["scab"], [0.4, 0.05])


def test_multiclass_labels_write_the_most_probable_class(tmp_path):
    spec = spec_from_dict(CASSAVA)
    sample = write(tmp_path / "sample.csv", "image_id,label\n1.jpg,4\n2.jpg,4\n")
    out = write_submission(tmp_path / "sub.csv", ["1.jpg", "2.jpg"], spec, sample,
                           scores=np.array([[0.1, 0.6, 0.1, 0.1, 0.1], [0.0, 0.0, 0.1, 0.2, 0.7]]))
    assert pd.read_csv(out)["label"].tolist() == [1, 4]


@pytest.mark.parametrize("text, expected", [
    ("image_id,healthy,multiple_diseases,rust,scab\nT_0,0.1,0.2,1.5,0\nT_1,0,0,0,1\n",
     "line 2: Id T_0: rust '1.5' is not a probability"),
    ("image_id,healthy,multiple_diseases,rust,scab\nT_0,0.1,0.2,nan,0\nT_1,0,0,0,1\n", "line 2: Id T_0: rust 'nan'"),
    ("image_id,healthy,multiple_diseases,rust\nT_0,0.1,0.2,0.1\nT_1,0,0,0\n", "no column 'scab'"),
    ("image_id,healthy,multiple_diseases,rust,scab\nT_0,0.1,0.2,0.1,0\n", "1 Id(s) of sample.csv missing, first T_1"),
    ("image_id,healthy,multiple_diseases,rust,scab\nT_0,0,0,0,1\nT_0,0,0,0,1\nT_1,0,0,0,1\n", "line 3: Id T_0 appears"),
    ("image_id,healthy,multiple_diseases,rust,scab\nT_0,0,0,0,1\nT_9,0,0,0,1\n", "line 3: Id T_9 is not in sample.csv"),
])
def test_bad_wide_submissions_are_one_line(tmp_path, text, expected):
    spec = spec_from_dict({**PLANT, "task": "multilabel"})
    sample = write(tmp_path / "sample.csv", "image_id,healthy,multiple_diseases,rust,scab\nT_0,0,0,0,0\nT_1,0,0,0,0\n")
    path = write(tmp_path / "sub.csv", text)
    message = one_line_error(validate_submission, path, sample, spec)
    assert message.startswith(str(path)) and expected in message


def test_long_submission_missing_a_row(tmp_path):
    spec = spec_from_dict(RSNA)
    rows = [f"ID_t1_{name}" for name in RSNA["classes"]]
    sample = write(tmp_path / "sample.csv", "ID,Label\n" + "".join(f"{r},0.5\n" for r in rows))
    path = write(tmp_path / "sub.csv", "ID,Label\n" + "".join(f"{r},0.5\n" for r in rows[:3]))
    assert "first ID_t1_any" in one_line_error(validate_submission, path, sample, spec)


@pytest.mark.parametrize("fmt, sample_text, says", [
    ("wide", "image_id,label\nT_0,0\n", "wide shape"),
    ("labels", "image_id,healthy,multiple_diseases,rust,scab\nT_0,0,0,0,0\n", "submission_format: wide?"),
    ("long", "image_id,label\nT_0,0\n", "long shape"),
])
def test_a_sample_submission_of_another_shape_says_which(tmp_path, fmt, sample_text, says):
    spec = spec_from_dict({**PLANT, "task": "multilabel", "submission_format": fmt, "prediction_column": "label"})
    sample = write(tmp_path / "sample.csv", sample_text)
    message = one_line_error(read_sample_ids, sample, spec)
    assert message.startswith(str(sample)) and says in message and f"submission_format: {fmt}" in message


def test_nothing_is_written_for_a_bad_submission(tmp_path):
    spec = spec_from_dict({**PLANT, "task": "multilabel"})
    sample = write(tmp_path / "sample.csv", "image_id,healthy,multiple_diseases,rust,scab\nT_0,0,0,0,0\n")
    with pytest.raises(KitError, match="not a probability"):
        write_submission(tmp_path / "sub.csv", ["T_0"], spec, sample, scores=np.array([[0.1, 2.0, 0.0, 0.0]]))
    assert not (tmp_path / "sub.csv").exists() and sorted(p.name for p in tmp_path.iterdir()) == ["sample.csv"]


# ---------------------------------------------------------------- folds


def test_group_column_keeps_every_patient_in_one_fold(tmp_path):
    rng = np.random.default_rng(3)
    n, patients = 200, 37
    frame = pd.DataFrame({"StudyInstanceUID": [f"1.2.{i}" for i in range(n)],
                          "ETT": rng.integers(0, 2, n), "CVC": rng.integers(0, 2, n),
                          "PatientID": [f"p{rng.integers(patients)}" for _ in range(n)]})
    frame.to_csv(tmp_path / "train.csv", index=False)
    spec = resolve_classes(spec_from_dict({"label_format": "wide", "id_column": "StudyInstanceUID",
                                           "group_column": "PatientID"}), tmp_path)
    labels = read_labels(tmp_path / "train.csv", spec)
    groups = read_label_groups(tmp_path / "train.csv", spec)
    # a --groups file joining pairs of patients: both groupings apply
    dups = pd.DataFrame({"Id": frame["StudyInstanceUID"], "group": frame["PatientID"].str[1:].astype(int) // 2})
    dups.to_csv(tmp_path / "dups.csv", index=False)
    folds, _summary, _ = make_folds(labels, spec, out=tmp_path / "folds.csv", k=4, label_groups=groups,
                                    groups_file=tmp_path / "dups.csv")
    merged = frame.merge(folds, left_on="StudyInstanceUID", right_on="Id")
    assert merged.groupby("PatientID")["fold"].nunique().max() == 1
    assert merged.assign(pair=dups["group"]).groupby("pair")["fold"].nunique().max() == 1
    assert sorted(merged["fold"].unique()) == [0, 1, 2, 3]


def test_multiclass_folds_stratify_the_one_class(tmp_path):
    from sklearn.model_selection import StratifiedKFold

    rng = np.random.default_rng(1)
    classes = rng.choice(5, size=300, p=[0.5, 0.2, 0.15, 0.1, 0.05])
    pd.DataFrame({"image_id": [f"{i}.jpg" for i in range(300)], "label": classes}).to_csv(tmp_path / "t.csv",
                                                                                          index=False)
    spec = spec_from_dict(CASSAVA)
    labels = read_labels(tmp_path / "t.csv", spec)
    folds, _summary, _ = make_folds(labels, spec, out=tmp_path / "folds.csv", k=5, seed=7)
    reference = np.empty(300, dtype=int)
    for fold, (_, held) in enumerate(StratifiedKFold(5, shuffle=True, random_state=7).split(classes, classes)):
        reference[held] = fold
    np.testing.assert_array_equal(folds["fold"].to_numpy(), reference)


# ---------------------------------------------------------------- through the CLI, and the image readers


def test_a_bad_long_file_stops_kit_folds_with_one_line_and_nothing_written(tmp_path):
    from helpers import error_line
    from helpers import invoke_in as invoke

    (tmp_path / "kit.yaml").write_text(yaml.safe_dump({"competition": {**RSNA, "train_csv": "stage_2_train.csv",
                                                                       "image_layout": "file", "image_ext": "dcm",
                                                                       "channels": ["hu"]}}))
    data = tmp_path / "data"
    data.mkdir()
    rows = full_rows("a") + full_rows("b")[:2]
    write(data / "stage_2_train.csv", "ID,Label\n" + "".join(f"ID_{i}_{c},{v}\n" for i, c, v in rows))
    line = error_line(invoke(tmp_path, ["folds", "--k", "2"], expect=1))
    assert "data/stage_2_train.csv: image ID_b" in line and "'subdural'" in line
    assert not (tmp_path / "folds").exists()


def test_gray_and_16_bit_images_and_ids_that_are_file_names(tmp_path):
    import cv2

    from kit.data.images import Source, read_image

    rng = np.random.default_rng(0)
    deep = rng.integers(0, 65536, size=(10, 12), dtype=np.uint16)
    cv2.imwrite(str(tmp_path / "deep.png"), deep)
    np.testing.assert_array_equal(read_image(Source(tmp_path, "png", "file"), "deep", ["gray"])[..., 0],
                                  (deep.astype(np.float64) * 255 / 65535).astype(np.uint8))
    colour = rng.integers(0, 256, size=(10, 12, 3), dtype=np.uint8)
    cv2.imwrite(str(tmp_path / "1000015157.jpg.png"), colour)
    got = read_image(Source(tmp_path, "none", "file"), "1000015157.jpg.png", ["gray"])
    expected = cv2.cvtColor(cv2.imread(str(tmp_path / "1000015157.jpg.png")), cv2.COLOR_BGR2GRAY)
    np.testing.assert_array_equal(got[..., 0], expected)
    assert got.shape == (10, 12, 1)
