import hashlib

import numpy as np
import pandas as pd
from click.testing import CliRunner

from kit.cli import main
from kit.data.reading import CompetitionData, DecodingStore, labels_to_matrix
from kit.data.spec import HPA
from kit.data.synth import PATTERNS, Canvas, render, write_dataset


def digest(folder):
    h = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            h.update(path.name.encode() + path.read_bytes())
    return h.hexdigest()


def test_synth_writes_the_competition_layout(tmp_path):
    out = tmp_path / "d"
    result = CliRunner().invoke(main, ["synth", str(out), "--n-train", "20", "--n-test", "5", "--size", "48"])
    assert result.exit_code == 0, result.output
    data = CompetitionData(out, HPA)
    labels = data.train_labels()
    assert len(labels) == 20 and all(1 <= len(lab) <= 4 for lab in labels["labels"])
    test_ids = data.test_ids()
    assert len(test_ids) == 5
    assert pd.read_csv(out / "sample_submission.csv").columns.tolist() == ["Id", "Predicted"]
    assert len(list((out / "train").glob("*.png"))) == 20 * 4
    assert len(list((out / "test").glob("*.png"))) == 5 * 4
    assert DecodingStore(test_ids, data.test_source, HPA).read(0).shape == (48, 48, 4)


def test_synth_is_deterministic_for_a_seed(tmp_path):
    write_dataset(tmp_path / "a", HPA, 15, 3, 32, seed=3, workers=1)
    write_dataset(tmp_path / "b", HPA, 15, 3, 32, seed=3, workers=2)
    write_dataset(tmp_path / "c", HPA, 15, 3, 32, seed=4, workers=1)
    assert digest(tmp_path / "a") == digest(tmp_path / "b")
    assert digest(tmp_path / "a") != digest(tmp_path / "c")


def test_label_frequencies_follow_the_long_tail(tmp_path):
    result = write_dataset(tmp_path / "d", HPA, 1500, 1, 16, seed=0)
    frequencies = result["frequencies"]
    assert 0.35 <= frequencies[0] <= 0.5  # Nucleoplasm, ~40% in HPA
    assert frequencies.min() < 0.01  # the rarest class
    assert frequencies[0] == frequencies.max()
    labels = pd.read_csv(tmp_path / "d" / "train.csv")["Target"].str.split()
    assert labels.map(len).between(1, 4).all()


def test_each_class_has_its_own_green_pattern_and_the_reference_stains_do_not_depend_on_labels():
    size = 64
    greens = []
    for label in range(len(PATTERNS)):
        greens.append(render([label], size, np.random.default_rng(11), 4)[..., 1].astype(float))
        blue_with = render([label], size, np.random.default_rng(11), 4)[..., 2]
        blue_other = render([(label + 1) % 28], size, np.random.default_rng(11), 4)[..., 2]
        assert np.array_equal(blue_with, blue_other)  # nuclei are the same whatever the protein
    for i in range(len(PATTERNS)):
        for j in range(i + 1, len(PATTERNS)):
            assert np.abs(greens[i] - greens[j]).mean() > 0.5, (i, j)


def test_nucleoplasm_lies_inside_nuclei_and_cytosol_outside():
    rng = np.random.default_rng(5)
    canvas = Canvas(96, rng)
    nuclei = sum(canvas.nucleus_mask(cell) for cell in canvas.cells) > 0
    nucleoplasm = PATTERNS[0](canvas)
    cytosol = PATTERNS[25](canvas)
    assert nucleoplasm[nuclei].mean() > 5 * nucleoplasm[~nuclei].mean()
    assert cytosol[~nuclei].mean() > cytosol[nuclei].mean()


def test_fewer_classes_from_the_command_line(tmp_path):
    out = tmp_path / "d"
    result = CliRunner().invoke(main, ["synth", str(out), "--n-train", "30", "--n-test", "2", "--size", "32", "--classes", "10"])
    assert result.exit_code == 0, result.output
    labels = pd.read_csv(out / "train.csv")["Target"].str.split().explode().astype(int)
    assert labels.max() < 10
    assert labels_to_matrix([[1, 9]], 10).shape == (1, 10)
