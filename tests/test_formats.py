"""Other competitions from kit.yaml alone: Planet's and iMet 2019's layouts through the whole flow (init, synth,
folds, one tiny epoch, blend, report, submit --dry-run), each scored with its own metric; 1,103 classes; and
every bad input of these formats as one line, non-zero, nothing written."""
from __future__ import annotations

import json
import shutil

import cv2
import numpy as np
import pandas as pd
import pytest
import yaml
from click.testing import CliRunner
from helpers import error_line, png_size
from helpers import invoke_in as invoke
from sklearn.metrics import fbeta_score

from kit.cli import main
from kit.config import load_config
from kit.data.reading import CompetitionData, read_sample_ids
from kit.data.synth_formats import write_preset_dataset
from kit.score.metrics import parse_metric
from kit.score.thresholds import apply_thresholds
from kit.train.loop import history_columns

pytest_plugins = ["kaggle_server"]  # the stand-in Kaggle server's fixtures: kaggle, stand_in

FAST = ["--size", "32", "--batch-size", "8", "--workers", "0", "--no-progress", "--epochs", "1", "--tta", "none"]
PRESETS = {  # preset -> (synth options, train CSV, sample submission, Id column, label column)
    "planet": (["--n-train", "40", "--n-test", "9"], "train_v2.csv", "sample_submission_v2.csv", "image_name", "tags"),
    "imet-2019": (["--n-train", "40", "--n-test", "8", "--classes", "300"], "train.csv", "sample_submission.csv",
                  "id", "attribute_ids"),
}


def files_under(root) -> set:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


@pytest.fixture(scope="module", params=list(PRESETS))
def project(request, tmp_path_factory):
    """`kit init PRESET`, a synthetic set in its layout, 2 folds, one tiny epoch per fold, a blend and a report."""
    import torch

    preset = request.param
    root = tmp_path_factory.mktemp(preset)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        outputs = [invoke(root, ["init", preset]).output]
        outputs.append(invoke(root, ["synth", "data", "--preset", preset, "--size", "32", "--seed", "1",
                                     *PRESETS[preset][0]]).output)
        outputs.append(invoke(root, ["folds", "--k", "2"]).output)
        outputs.append(invoke(root, ["train", "--fold", "all", "--model", "test_resnet", *FAST]).output)
        outputs.append(invoke(root, ["blend"]).output)
        outputs.append(invoke(root, ["report", "submissions/blend.json", "runs"]).output)
    finally:
        torch.set_num_threads(threads)
    return preset, root, "\n".join(outputs)


@pytest.mark.slow
def test_the_whole_flow_is_scored_with_the_competitions_metric(project):
    preset, root, output = project
    _, train_csv, sample_csv, id_column, label_column = PRESETS[preset]
    metric = parse_metric("samples_f2")
    data = CompetitionData(root / "data", load_config(root / "kit.yaml").spec)
    spec = data.spec
    assert spec.metric == "samples_f2" and spec.num_classes == (17 if preset == "planet" else 300)

    for fold in (0, 1):
        run = root / "runs" / "test_resnet" / f"fold{fold}"
        history = pd.read_csv(run / "history.csv")
        assert list(history.columns) == history_columns(metric)
        oof = pd.read_csv(run / "oof.csv", dtype={spec.id_column: str})
        assert list(oof.columns) == [spec.id_column, *spec.classes]
    assert "samples_f2 " in output and "best epoch 1 (val_samples_f2_tuned " in output

    # The blend's scores are scikit-learn's samples-averaged F2 of the OOF predictions at its thresholds.
    report = json.loads((root / "submissions/blend.json").read_text())
    assert report["metric"] == "samples_f2" and report["competition"]["metric"] == "samples_f2"
    labels = data.train_labels().set_index("Id")
    folds = pd.read_csv(root / "folds/folds.csv", dtype={"Id": str})
    truth = np.zeros((len(folds), spec.num_classes), bool)
    for row, sample_id in enumerate(folds["Id"]):
        truth[row, labels.loc[sample_id, "labels"]] = True
    oof = pd.concat([pd.read_csv(root / f"runs/test_resnet/fold{k}/oof.csv", dtype={spec.id_column: str})
                     for k in (0, 1)]).set_index(spec.id_column).loc[folds["Id"], list(spec.classes)].to_numpy()
    thresholds = np.array([report["thresholds"][name] for name in spec.classes])
    for key, cut in (("tuned", thresholds), ("at_0.5", 0.5)):
        predicted = apply_thresholds(oof, cut, no_empty=True)
        assert report["blend"]["score"][key] == pytest.approx(
            fbeta_score(truth, predicted, beta=2, average="samples", zero_division=0), abs=1e-6)
    assert "OOF samples F2" in output and "F2@0.5" in output

    # The submission: the competition's columns and label encoding, every sample Id once, in its order.
    submission = pd.read_csv(root / "submissions/blend.csv", dtype=str, keep_default_na=False)
    assert list(submission.columns) == [id_column, label_column]
    assert submission[id_column].tolist() == read_sample_ids(root / "data" / sample_csv, spec)
    cells = [label for cell in submission[label_column] for label in cell.split()]
    if preset == "planet":
        assert cells and set(cells) <= set(spec.classes)  # tag names
        assert {sample_id.split("_")[0] for sample_id in submission[id_column]} == {"test", "file"}  # both folders
    else:
        assert cells and all(label.isdigit() and int(label) < 300 for label in cells)  # attribute ids

    # The pictures: learning curves named after the metric, a per-class chart readable at 300 classes.
    assert (root / "runs/test_resnet/fold0/curves.png").is_file() and (root / "runs/test_resnet/folds.png").is_file()
    width, _ = png_size(root / "submissions/blend_per_class.png")
    assert width < 2000  # 300 classes: the best and worst 15, plus a histogram, not 300 bars
    assert png_size(root / "submissions/blend.png")[0] < 2000


@pytest.mark.slow
def test_the_submission_passes_the_dry_run(project, kaggle):
    preset, root, _ = project
    result = invoke(root, ["submit", "submissions/blend.csv", "--dry-run", "-m", "formats"])
    assert "dry run: would upload submissions/blend.csv" in result.output
    assert f"({9 if preset == 'planet' else 8} rows" in result.output


# ---------------------------------------------------------------- the layouts themselves


def test_synthetic_sets_have_each_competitions_exact_layout(tmp_path):
    planet, imet = tmp_path / "planet", tmp_path / "imet"
    write_preset_dataset(planet, "planet", n_train=12, n_test=5, size=32, seed=0, workers=1)
    write_preset_dataset(imet, "imet-2019", n_train=12, n_test=4, size=32, seed=0, classes=50, workers=1)

    train = pd.read_csv(planet / "train_v2.csv")
    assert list(train.columns) == ["image_name", "tags"] and train["image_name"][0] == "train_0"
    weather = {"clear", "partly_cloudy", "haze", "cloudy"}
    for tags in train["tags"].str.split():
        assert len(weather & set(tags)) == 1 and ("cloudy" not in tags or tags == ["cloudy"])
    sample = pd.read_csv(planet / "sample_submission_v2.csv")
    assert list(sample.columns) == ["image_name", "tags"]
    for sample_id in sample["image_name"]:
        folder = "test-jpg" if sample_id.startswith("test_") else "test-jpg-additional"
        image = cv2.imread(str(planet / folder / f"{sample_id}.jpg"), cv2.IMREAD_UNCHANGED)
        assert image.shape == (32, 32, 3)
    assert {p.name for p in planet.iterdir()} >= {"train-jpg", "test-jpg", "test-jpg-additional", "train_v2.csv"}

    labels = pd.read_csv(imet / "labels.csv")
    assert list(labels.columns) == ["attribute_id", "attribute_name"] and len(labels) == 50
    assert labels["attribute_name"][0].startswith("culture::") and labels["attribute_name"].iloc[-1].startswith("tag::")
    train = pd.read_csv(imet / "train.csv", dtype=str)
    assert list(train.columns) == ["id", "attribute_ids"] and len(train["id"][0]) == 16
    shapes = {cv2.imread(str(imet / "train" / f"{i}.png"), cv2.IMREAD_UNCHANGED).shape for i in train["id"]}
    assert len(shapes) > 3 and all(min(h, w) == 32 and c == 3 for h, w, c in shapes)  # sizes vary


def test_init_writes_a_commented_kit_yaml_for_each_preset(tmp_path):
    for preset, metric in (("hpa", "macro_f1"), ("planet", "samples_f2"), ("imet-2019", "samples_f2")):
        folder = tmp_path / preset
        result = CliRunner().invoke(main, ["init", preset, str(folder)])
        assert result.exit_code == 0, result.output
        text = (folder / "kit.yaml").read_text()
        assert text.startswith("# kit.yaml for") and "  # " in text
        config = load_config(folder / "kit.yaml")
        assert config.spec.metric == metric and config.raw["data"] == "data/"
        assert "kit download" in result.output and "kit folds" in result.output
    assert load_config(tmp_path / "planet/kit.yaml").spec.test_dirs == ("test-jpg", "test-jpg-additional")
    assert load_config(tmp_path / "imet-2019/kit.yaml").spec.classes_file == "labels.csv"
    again = CliRunner().invoke(main, ["init", "planet", str(tmp_path / "planet")])
    assert "already exists" in error_line(again)


def test_one_file_images_are_read_in_channel_order_and_tiffs_keep_every_band(tmp_path):
    import tifffile

    from kit.data.reading import Source, read_image

    rgba = np.random.default_rng(0).integers(0, 255, (20, 30, 4), dtype=np.uint8)
    cv2.imwrite(str(tmp_path / "a.png"), cv2.cvtColor(rgba, cv2.COLOR_RGBA2BGRA))
    bands = np.random.default_rng(1).integers(0, 65535, (20, 30, 4), dtype=np.uint16)
    tifffile.imwrite(tmp_path / "b.tif", bands, photometric="minisblack", planarconfig="contig")
    channels = ("red", "green", "blue", "alpha")
    assert np.array_equal(read_image(Source(tmp_path, "png", "file"), "a", channels), rgba)
    expected = (bands.astype(np.float32) * (255.0 / 65535)).astype(np.uint8)
    assert np.array_equal(read_image(Source(tmp_path, "tif", "file"), "b", channels), expected)


def test_names_without_classes_are_read_sorted_from_the_train_csv_and_saved(tmp_path):
    write_preset_dataset(tmp_path / "data", "planet", n_train=20, n_test=2, size=16, seed=2, workers=1)
    assert CliRunner().invoke(main, ["init", "planet", str(tmp_path)]).exit_code == 0
    competition = yaml.safe_load((tmp_path / "kit.yaml").read_text())["competition"]
    del competition["classes"]  # label_format: names without classes: the train CSV's names
    (tmp_path / "kit.yaml").write_text(yaml.safe_dump({"competition": competition, "data": "data"}))
    config = load_config(tmp_path / "kit.yaml")
    assert config.spec.pending
    data = config.competition_data()
    names = sorted({tag for tags in pd.read_csv(tmp_path / "data/train_v2.csv")["tags"] for tag in tags.split()})
    assert data.spec.classes == tuple(names) and not data.spec.pending
    assert data.spec.to_dict()["classes"] == names  # what every run's config.yaml and checkpoint keep


# ---------------------------------------------------------------- 1,103 classes


def test_a_thousand_classes_work_in_the_model_blend_csvs_and_report(tmp_path, monkeypatch):
    """iMet's 1,103 classes: the model head, the prediction CSVs, threshold search, the blend and its pictures."""
    import torch

    from kit.data.synth_formats import imet_spec
    from kit.settings import resolve_settings
    from kit.train.models import build_model

    spec, names = imet_spec(1103)
    model, _ = build_model(resolve_settings(options={"model": "test_resnet", "pretrained": "none"})[0], spec)
    assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 1103)

    rng = np.random.default_rng(0)
    n, n_test = 60, 10
    data = tmp_path / "data"
    data.mkdir()
    pd.DataFrame({"attribute_id": range(1103), "attribute_name": names}).to_csv(data / "labels.csv", index=False)
    truth = rng.random((n, 1103)) < 4 / 1103
    truth[np.arange(n), rng.integers(0, 1103, n)] = True
    ids = [f"{i:016x}" for i in range(n)]
    pd.DataFrame({"id": ids, "attribute_ids": [" ".join(map(str, np.flatnonzero(r))) for r in truth]}).to_csv(
        data / "train.csv", index=False)
    test_ids = [f"t{i:015x}" for i in range(n_test)]
    pd.DataFrame({"id": test_ids, "attribute_ids": "0"}).to_csv(data / "sample_submission.csv", index=False)
    (tmp_path / "kit.yaml").write_text(yaml.safe_dump({"competition": {
        **{k: v for k, v in spec.to_dict().items() if k in ("id_column", "target_column", "prediction_column")},
        "classes": "labels.csv", "metric": "samples_f2"}, "data": "data"}))
    pd.DataFrame({"Id": ids, "fold": np.arange(n) % 2}).to_csv(tmp_path / "folds.csv", index=False)
    for member in ("a", "b"):
        for fold in (0, 1):
            rows = np.arange(n) % 2 == fold
            scores = np.clip(0.05 + 0.6 * truth[rows] * rng.random((rows.sum(), 1103)) + 0.1 * rng.random(
                (rows.sum(), 1103)), 0, 1)
            folder = tmp_path / "runs" / member / f"fold{fold}"
            folder.mkdir(parents=True)
            pd.DataFrame(scores, columns=names).assign(id=np.array(ids)[rows])[["id", *names]].to_csv(
                folder / "oof.csv", index=False)
            pd.DataFrame(rng.random((n_test, 1103)) * 0.3, columns=names).assign(id=test_ids)[["id", *names]].to_csv(
                folder / "test.csv", index=False)
    result = invoke(tmp_path, ["blend", "--folds", "folds.csv", "--method", "hill"])
    assert "more classes (every class is in the JSON)" in result.output
    report = json.loads((tmp_path / "submissions/blend.json").read_text())
    assert report["metric"] == "samples_f2" and len(report["thresholds"]) == 1103
    assert len(report["blend"]["per_class"]["tuned"]) == 1103
    assert report["blend"]["score"]["tuned"] >= report["blend"]["score"]["at_0.5"]
    invoke(tmp_path, ["report", "submissions/blend.json"])
    for png in ("blend.png", "blend_per_class.png"):
        assert png_size(tmp_path / "submissions" / png)[0] < 2000


# ---------------------------------------------------------------- bad input: one line, non-zero, nothing written


@pytest.fixture(scope="module")
def small_sets(tmp_path_factory):
    root = tmp_path_factory.mktemp("formats")
    for preset, options in (("planet", {}), ("imet-2019", {"classes": 40})):
        write_preset_dataset(root / preset / "data", preset, n_train=16, n_test=4, size=32, seed=5, workers=1,
                             **options)
        CliRunner().invoke(main, ["init", preset, str(root / preset)])
    return root


def copy_of(small_sets, tmp_path, preset):
    target = tmp_path / preset
    shutil.copytree(small_sets / preset, target)
    return target


def failing(root, args) -> str:
    before = files_under(root)
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        result = CliRunner().invoke(main, args)
    line = error_line(result)
    assert files_under(root) == before, "a failed command wrote files"
    return line


def test_an_unknown_tag_name_names_the_line_the_id_and_the_tag(small_sets, tmp_path):
    root = copy_of(small_sets, tmp_path, "planet")
    csv = root / "data/train_v2.csv"
    train = pd.read_csv(csv)
    train.loc[1, "tags"] = train.loc[1, "tags"] + " claer"
    train.to_csv(csv, index=False)
    line = failing(root, ["folds", "--k", "2"])
    assert f"train_v2.csv: line 3: Id {train.loc[1, 'image_name']}: unknown label 'claer'" in line


def test_an_image_with_the_wrong_channel_count_names_the_file(small_sets, tmp_path):
    root = copy_of(small_sets, tmp_path, "planet")
    invoke(root, ["folds", "--k", "2"])
    first = pd.read_csv(root / "data/train_v2.csv")["image_name"][0]
    path = root / "data/train-jpg" / f"{first}.jpg"
    cv2.imwrite(str(path), np.zeros((32, 32), np.uint8))  # grayscale, where the spec lists red, green, blue
    line = failing(root, ["train", "--fold", "0", "--model", "test_resnet", *FAST])
    assert f"{first}.jpg: 1 channel(s), but competition.channels lists 3 (red, green, blue)" in line


def test_a_missing_labels_csv_is_one_line(small_sets, tmp_path):
    root = copy_of(small_sets, tmp_path, "imet-2019")
    (root / "data/labels.csv").unlink()
    line = failing(root, ["folds", "--k", "2"])
    assert "labels.csv: classes file not found" in line


def test_an_unknown_metric_names_the_key_and_the_grammar(small_sets, tmp_path):
    root = copy_of(small_sets, tmp_path, "planet")
    text = (root / "kit.yaml").read_text().replace("metric: samples_f2", "metric: samples_auc")
    (root / "kit.yaml").write_text(text)
    line = failing(root, ["folds", "--k", "2"])
    assert "competition.metric: unknown metric 'samples_auc'" in line and "<average>_f<beta>" in line


def test_an_id_in_none_of_the_test_folders_is_one_line(small_sets, tmp_path):
    root = copy_of(small_sets, tmp_path, "planet")
    invoke(root, ["folds", "--k", "2"])
    sample = root / "data/sample_submission_v2.csv"
    frame = pd.read_csv(sample)
    pd.concat([frame, pd.DataFrame({"image_name": ["file_999"], "tags": ["clear"]})]).to_csv(sample, index=False)
    line = failing(root, ["train", "--fold", "0", "--model", "test_resnet", *FAST])
    assert "Id file_999: found in none of the folders" in line and "test-jpg-additional" in line


# ---------------------------------------------------------------- kit download of a Planet-style competition


@pytest.fixture
def stand_in(tmp_path):
    """The stand-in Kaggle server (see tests/kaggle_server.py) sending a small Planet-layout set packed as Planet
    ships it: CSVs zipped, image folders as tar archives, inside the competition archive."""
    import io as bytes_io
    import tarfile
    import zipfile

    from kaggle_server import StandIn

    source = tmp_path / "source"
    write_preset_dataset(source, "planet", n_train=8, n_test=4, size=16, seed=3, workers=1)
    files = {}
    for name in ("train_v2.csv", "sample_submission_v2.csv"):
        packed = bytes_io.BytesIO()
        with zipfile.ZipFile(packed, "w") as archive:
            archive.write(source / name, name)
        files[f"{name}.zip"] = packed.getvalue()
    for folder in ("train-jpg", "test-jpg", "test-jpg-additional"):
        packed = bytes_io.BytesIO()
        with tarfile.open(fileobj=packed, mode="w") as archive:
            archive.add(source / folder, folder)
        files[f"{folder}.tar"] = packed.getvalue()
    return StandIn(competition="planet-understanding-the-amazon-from-space", files=files)


def test_download_expands_archives_inside_the_competition_archive(kaggle, tmp_path):
    project = tmp_path / "project"
    assert CliRunner().invoke(main, ["init", "planet", str(project)]).exit_code == 0
    result = invoke(project, ["download"])
    data = project / "data"
    assert "data check: 8 train Ids, 4 test Ids" in result.output
    assert sorted(p.name for p in data.iterdir() if not p.name.startswith(".")) == [
        "sample_submission_v2.csv", "test-jpg", "test-jpg-additional", "train-jpg", "train_v2.csv"]
    assert len(list((data / "train-jpg").glob("*.jpg"))) == 8
