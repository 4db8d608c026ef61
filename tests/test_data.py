import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from kit.cli import main
from kit.data.reading import (
    CompetitionData,
    DecodingStore,
    Source,
    external_source,
    read_image,
    read_labels,
    read_sample_ids,
)
from kit.data.spec import HPA
from kit.errors import KitError


def write_train_csv(folder, text):
    path = folder / "train.csv"
    path.write_text(text)
    return path


@pytest.mark.parametrize("text, message", [
    ("Id,Label\na,0\n", "line 1: expected columns 'Id,Target'"),
    ("Id,Target\na,0\nb,28\n", "line 3: Id b: label 28 is out of range 0..27"),
    ("Id,Target\na,0\nb,x\n", "line 3: Id b: label 'x' is not an integer"),
    ("Id,Target\na,0\nb,\n", "line 3: Id b: empty Target"),
    ("Id,Target\na,0\na,1\n", "line 3: Id a duplicates line 2"),
    ("Id,Target\na,0,7\n", "line 2: expected 2 fields, found 3"),
])
def test_train_csv_problems_name_the_file_line_and_id(tmp_path, text, message):
    path = write_train_csv(tmp_path, text)
    with pytest.raises(KitError) as err:
        read_labels(path, HPA)
    assert str(err.value).startswith(str(path))
    assert message in str(err.value)


def test_unreadable_csv_files_are_one_line_naming_them(tmp_path):
    (tmp_path / "train.csv").write_bytes(b"Id,Target\n\xff\xfe\x00a,0\n")
    with pytest.raises(KitError, match=r"train.csv: not UTF-8 text \(byte 10"):
        read_labels(tmp_path / "train.csv", HPA)
    (tmp_path / "sample_submission.csv").write_bytes(b"\x89PNG\r\n\x1a\n\x00\xff")
    with pytest.raises(KitError, match="sample_submission.csv: not UTF-8 text"):
        read_sample_ids(tmp_path / "sample_submission.csv", HPA)
    (tmp_path / "sample_submission.csv").write_text("")
    with pytest.raises(KitError, match="sample_submission.csv: not a readable CSV"):
        read_sample_ids(tmp_path / "sample_submission.csv", HPA)


def test_a_byte_order_mark_is_ignored(tmp_path):
    (tmp_path / "train.csv").write_text("\ufeffId,Target\na,0\n", encoding="utf-8")
    assert read_labels(tmp_path / "train.csv", HPA)["Id"].tolist() == ["a"]
    (tmp_path / "sample_submission.csv").write_text("\ufeffId,Predicted\na,0\n", encoding="utf-8")
    assert read_sample_ids(tmp_path / "sample_submission.csv", HPA) == ["a"]


def test_labels_are_parsed_and_sorted(tmp_path):
    path = write_train_csv(tmp_path, "Id,Target\na,25 0\nb,7\n")
    labels = read_labels(path, HPA)
    assert labels["Id"].tolist() == ["a", "b"]
    assert labels["labels"].tolist() == [[0, 25], [7]]


def test_sample_reads_all_channels_in_spec_order(synth_dir):
    data = CompetitionData(synth_dir, HPA)
    sample_id = data.train_labels()["Id"][0]
    image = read_image(data.train_source, sample_id, HPA.channels)
    assert image.shape == (32, 32, 4) and image.dtype == np.uint8
    import cv2

    green = cv2.imread(str(synth_dir / "train" / f"{sample_id}_green.png"), cv2.IMREAD_UNCHANGED)
    assert np.array_equal(image[..., 1], green)


def test_missing_channel_names_the_id_and_file(data_copy):
    data = CompetitionData(data_copy, HPA)
    sample_id = data.train_labels()["Id"][3]
    (data_copy / "train" / f"{sample_id}_yellow.png").unlink()
    with pytest.raises(KitError, match=f"Id {sample_id}: missing channel file .*{sample_id}_yellow.png"):
        DecodingStore([sample_id], data.train_source, HPA).read(0)


def test_channels_of_different_sizes_are_an_error(data_copy):
    import cv2

    data = CompetitionData(data_copy, HPA)
    sample_id = data.train_labels()["Id"][0]
    cv2.imwrite(str(data_copy / "train" / f"{sample_id}_blue.png"), np.zeros((16, 16), np.uint8))
    with pytest.raises(KitError, match=f"Id {sample_id}: channel blue is 16x16 but red is 32x32"):
        read_image(data.train_source, sample_id, HPA.channels)


def test_external_jpg_source_is_combined_with_the_competition_set(data_copy, tmp_path):
    import cv2

    external = tmp_path / "hpav18"
    external.mkdir()
    for channel, value in zip(HPA.channels, (10, 20, 30, 40)):
        cv2.imwrite(str(external / f"ext1_{channel}.jpg"), np.full((32, 32), value, np.uint8))
    labels_csv = tmp_path / "hpav18.csv"
    labels_csv.write_text("Id,Target\next1,3 1\n")
    source, labels_path = external_source(f"{labels_csv}:{external}")
    data = CompetitionData(data_copy, HPA, external=(source,), external_labels=(labels_path,))
    labels = data.train_labels()
    assert labels["Id"].iloc[-1] == "ext1" and labels["labels"].iloc[-1] == [1, 3]
    store = DecodingStore(labels["Id"], data.train_sources(), HPA, size=16)
    image = store.read(len(store) - 1)
    assert image.shape == (16, 16, 4)
    assert np.allclose(image.reshape(-1, 4).mean(axis=0), (10, 20, 30, 40), atol=2)
    assert store.read(0).shape == (16, 16, 4)


def test_an_id_in_two_label_files_is_an_error(data_copy, tmp_path):
    first = pd.read_csv(data_copy / "train.csv")["Id"][0]
    labels_csv = tmp_path / "dup.csv"
    labels_csv.write_text(f"Id,Target\n{first},1\n")
    data = CompetitionData(data_copy, HPA, external=(Source(tmp_path, "jpg"),), external_labels=(labels_csv,))
    with pytest.raises(KitError, match=f"Id {first} appears in more than one labels file"):
        data.train_labels()


def test_bad_train_csv_through_the_cli_is_one_line(data_copy, tmp_path):
    (data_copy / "train.csv").write_text("Id,Target\na,0\nb,99\n")
    out = tmp_path / "folds" / "folds.csv"
    result = CliRunner().invoke(main, ["folds", "--data", str(data_copy), "--out", str(out)])
    assert result.exit_code == 1
    assert result.output.strip() == f"Error: {data_copy / 'train.csv'}: line 3: Id b: label 99 is out of range 0..27"
    assert not out.parent.exists() or not any(out.parent.iterdir())


def test_external_sources_in_kit_yaml_reach_folds_train_and_predict(data_copy, tmp_path, monkeypatch):
    import cv2

    external = tmp_path / "hpav18" / "images"
    external.mkdir(parents=True)
    rows = []
    for i in range(6):
        for channel in HPA.channels:
            cv2.imwrite(str(external / f"ext{i}_{channel}.jpg"), np.full((40, 40), 20 * i, np.uint8))
        rows.append(f"ext{i},{i} 25")
    (tmp_path / "hpav18" / "labels.csv").write_text("Id,Target\n" + "\n".join(rows) + "\n")
    (tmp_path / "kit.yaml").write_text(f"data: {data_copy}\nexternal:\n  - labels: hpav18/labels.csv\n"
                                       "    images: hpav18/images\n")
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    assert runner.invoke(main, ["folds", "--k", "2"]).exit_code == 0
    folds = pd.read_csv(tmp_path / "folds" / "folds.csv", dtype={"Id": str})
    assert {f"ext{i}" for i in range(6)} <= set(folds["Id"])
    result = runner.invoke(main, ["train", "--model", "test_resnet", "--size", "32", "--epochs", "1", "--workers",
                                  "0", "--tta", "none", "--no-progress", "--batch-size", "8"])
    assert result.exit_code == 0, result.output
    run_dir = tmp_path / "runs" / "test_resnet" / "fold0"
    oof = pd.read_csv(run_dir / "oof.csv", dtype={"Id": str})
    assert sorted(oof["Id"]) == sorted(folds.loc[folds["fold"] == 0, "Id"])
    assert runner.invoke(main, ["predict", str(run_dir), "--out", str(tmp_path / "again"),
                                "--workers", "0"]).exit_code == 0
    assert len(pd.read_csv(tmp_path / "again" / "oof.csv")) == len(oof)

    (tmp_path / "kit.yaml").write_text(f"data: {data_copy}\nexternal:\n  - labels: x.csv\n    images: nowhere\n")
    result = runner.invoke(main, ["folds"])
    assert result.exit_code == 1 and "external[0]: image folder" in result.output
