"""The presets of competitions scored on probabilities (RANZCR CLiP, RSNA ICH 2019, Plant Pathology 2020) and
Cassava's one label per image: `kit init` writes a commented kit.yaml that reads back as the preset, and
`kit synth --preset` writes the real files and columns, read back here with pandas and pydicom."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pydicom
import pytest
import yaml
from helpers import error_line
from helpers import invoke_in as invoke

from kit.data.presets import get_preset
from kit.data.reading import CompetitionData

SUBTYPES = ["epidural", "intraparenchymal", "intraventricular", "subarachnoid", "subdural", "any"]
LAYOUTS = {  # preset -> (train CSV, its columns (None: checked below), sample submission, train dir, file suffix)
    "ranzcr-clip": ("train.csv", None, "sample_submission.csv", "train", ".jpg"),
    "rsna-ich-2019": ("stage_2_train.csv", ["ID", "Label"], "stage_2_sample_submission.csv", "stage_2_train", ".dcm"),
    "plant-pathology-2020": ("train.csv", ["image_id", "healthy", "multiple_diseases", "rust", "scab"],
                             "sample_submission.csv", "images", ".jpg"),
    "cassava-2020": ("train.csv", ["image_id", "label"], "sample_submission.csv", "train_images", ""),
}


@pytest.fixture(scope="module", params=list(LAYOUTS))
def synthetic(request, tmp_path_factory):
    preset = request.param
    root = tmp_path_factory.mktemp(preset)
    invoke(root, ["init", preset])
    invoke(root, ["synth", "data", "--preset", preset, "--n-train", "24", "--n-test", "6", "--size", "48"])
    return preset, root


def test_init_writes_a_commented_kit_yaml_that_reads_back(synthetic):
    preset, root = synthetic
    text = (root / "kit.yaml").read_text()
    assert text.count("#") > 8
    competition = yaml.safe_load(text)["competition"]
    assert competition == get_preset(preset).competition
    assert get_preset(preset).spec().scorer  # its metric parses


def test_synth_writes_the_real_files_and_columns(synthetic):
    preset, root = synthetic
    train_csv, columns, sample_csv, train_dir, suffix = LAYOUTS[preset]
    data = root / "data"
    train = pd.read_csv(data / train_csv, dtype=str)
    spec = get_preset(preset).spec()
    if columns is None:  # RANZCR: the Id, the 11 classes, then PatientID
        columns = ["StudyInstanceUID", *spec.classes, "PatientID"]
    assert list(train.columns) == columns
    sample = pd.read_csv(data / sample_csv, dtype=str)
    images = sorted(p.name for p in (data / train_dir).iterdir() if not p.name.startswith("Test_"))  # Plant's share
    if preset == "rsna-ich-2019":
        image_ids = sorted(train["ID"].str.rsplit("_", n=1).str[0].unique())
        assert len(image_ids) == 24 and len(train) == 24 * 6
        assert list(sample.columns) == ["ID", "Label"] and len(sample) == 6 * 6
    else:
        image_ids = sorted(train[columns[0]])
        assert len(image_ids) == 24 and len(sample) == 6
    assert images == sorted(f"{i}{suffix}" for i in image_ids)
    loaded = CompetitionData(data, spec)
    assert sorted(loaded.train_labels()["Id"]) == image_ids and len(loaded.test_ids()) == 6


def test_rsna_any_is_some_subtype_and_dicoms_mix_signed_and_unsigned(tmp_path):
    invoke(tmp_path, ["synth", "data", "--preset", "rsna-ich-2019", "--n-train", "30", "--n-test", "4",
                      "--size", "40"])
    train = pd.read_csv(tmp_path / "data" / "stage_2_train.csv")
    parts = train["ID"].str.extract(r"^(ID_[0-9a-f]+)_(\w+)$")
    table = train.assign(image=parts[0], subtype=parts[1]).pivot(index="image", columns="subtype", values="Label")
    assert sorted(table.columns) == sorted(SUBTYPES)
    np.testing.assert_array_equal(table["any"], table[SUBTYPES[:-1]].max(axis=1))
    assert table["any"].sum() > 0
    representations = []
    for path in sorted((tmp_path / "data" / "stage_2_train").glob("*.dcm")):
        ds = pydicom.dcmread(path)
        representations.append(int(ds.PixelRepresentation))
        assert ds.pixel_array.dtype == (np.int16 if ds.PixelRepresentation else np.uint16)
        assert "RescaleSlope" in ds and "RescaleIntercept" in ds
    assert representations.count(0) == representations.count(1) == 15


def test_plant_is_one_hot_and_cassava_one_label(tmp_path):
    invoke(tmp_path, ["synth", "plant", "--preset", "plant-pathology-2020", "--n-train", "40", "--n-test", "3"])
    plant = pd.read_csv(tmp_path / "plant" / "train.csv").set_index("image_id")
    assert (plant.sum(axis=1) == 1).all() and (plant.sum() > 0).all()
    assert list(pd.read_csv(tmp_path / "plant" / "test.csv").columns) == ["image_id"]
    invoke(tmp_path, ["synth", "cassava", "--preset", "cassava-2020", "--n-train", "40", "--n-test", "3"])
    cassava = pd.read_csv(tmp_path / "cassava" / "train.csv", dtype=str)
    assert cassava["image_id"].str.fullmatch(r"[0-9]+\.jpg").all()
    assert set(cassava["label"]) <= {"0", "1", "2", "3", "4"}
    assert (tmp_path / "cassava" / "label_num_to_disease_map.json").is_file()


def test_ranzcr_folds_keep_each_patient_in_one_fold(tmp_path):
    invoke(tmp_path, ["init", "ranzcr-clip"])
    invoke(tmp_path, ["synth", "data", "--preset", "ranzcr-clip", "--n-train", "60", "--n-test", "2",
                      "--size", "32"])
    invoke(tmp_path, ["folds", "--k", "3"])
    train = pd.read_csv(tmp_path / "data" / "train.csv", dtype=str)
    folds = pd.read_csv(tmp_path / "folds" / "folds.csv", dtype=str)
    merged = train.merge(folds, left_on="StudyInstanceUID", right_on="Id", validate="one_to_one")
    assert len(merged) == 60 and merged["PatientID"].nunique() < 60  # patients with several studies
    assert merged.groupby("PatientID")["fold"].nunique().max() == 1
    assert merged["fold"].nunique() == 3


def test_options_that_do_not_apply_to_these_presets_are_refused(tmp_path):
    result = invoke(tmp_path, ["synth", "data", "--preset", "rsna-ich-2019", "--duplicates", "3"], expect=1)
    assert "--duplicates does not apply to --preset rsna-ich-2019" in error_line(result)
    assert not (tmp_path / "data").exists()
