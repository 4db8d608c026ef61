"""`kit synth --duplicates N`: near copies of train images added to a written data set, with known twins.

Each copy takes one train image (a different one per copy while there are enough), shifts it by up to 1%
of its side, rescales it by up to 2%, scales its brightness by 0.85-1.15 and re-encodes every channel as a
JPEG (quality 80-95) before writing it back in the data set's layout (a file per channel, or one file). Copies go alternately to train (with
their original's labels) and test (their original's labels go to test_labels.csv); `duplicates.csv`
records `Id,twin,split` for each, so `kit dups` can be scored against the truth.
"""
from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from kit import io
from kit.data.reading import Source, read_image
from kit.data.spec import CompetitionSpec
from kit.errors import KitError

TWINS_FILE = "duplicates.csv"
MAX_SHIFT, MAX_SCALE, GAIN = 0.01, 0.02, (0.85, 1.15)


def near_copy(planes: list[np.ndarray], rng: np.random.Generator) -> list[np.ndarray]:
    """The same small shift, rescale, brightness change and JPEG round trip applied to every channel plane."""
    height, width = planes[0].shape
    matrix = cv2.getRotationMatrix2D((width / 2, height / 2), 0.0, float(rng.uniform(1 - MAX_SCALE, 1 + MAX_SCALE)))
    matrix[:, 2] += rng.uniform(-MAX_SHIFT, MAX_SHIFT, 2) * (width, height)
    gain = float(rng.uniform(*GAIN))
    quality = int(rng.integers(80, 96))
    copies = []
    for plane in planes:
        moved = cv2.warpAffine(plane, matrix, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        brighter = np.clip(moved.astype(np.float32) * gain, 0, 255).astype(np.uint8)
        ok, encoded = cv2.imencode(".jpg", brighter, [cv2.IMWRITE_JPEG_QUALITY, quality])
        copies.append(cv2.imdecode(encoded, cv2.IMREAD_GRAYSCALE))
    return copies


def write_image(source: Source, sample_id: str, channels, planes: list[np.ndarray]) -> None:
    """One sample's planes in the source's layout: a grayscale file per channel, or one file (RGB order, as
    `kit.data.reading.decode_file` reads it back)."""
    if source.layout != "file":
        for channel, plane in zip(channels, planes):
            cv2.imwrite(str(source.channel_path(sample_id, channel)), plane)
        return
    image = np.stack(planes, axis=-1)
    if image.shape[2] == 3:
        image = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    elif image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_RGBA2BGRA)
    cv2.imwrite(str(source.file_path(sample_id)), image[..., 0] if image.shape[2] == 1 else image)


def add_near_copies(out_dir: str | os.PathLike, spec: CompetitionSpec, count: int, seed: int = 0) -> pd.DataFrame:
    """Add `count` near copies of train images of the data set in `out_dir` (written by `write_dataset`);
    returns and writes `duplicates.csv` (Id, twin, split)."""
    from kit.data.synth import make_id

    out_dir = Path(out_dir)
    if count < 0:
        raise KitError(f"--duplicates {count}: expected a count >= 0")
    train = io.read_csv(out_dir / spec.train_csv, dtype=str, keep_default_na=False)
    sample = io.read_csv(out_dir / spec.sample_submission, dtype=str, keep_default_na=False)
    truth_path = out_dir / "test_labels.csv"
    truth = io.read_csv(truth_path, dtype=str, keep_default_na=False)
    if spec.image_ext.lower() not in ("png", "jpg", "jpeg"):
        raise KitError(f"--duplicates writes png or jpg images, the spec's are {spec.image_ext}")
    source = Source(out_dir / spec.train_dir, spec.image_ext, spec.image_layout)
    rng = np.random.default_rng([seed, 0x5EED])
    originals = rng.permutation(len(train))
    target_of = dict(zip(train[spec.id_column], train[spec.target_column]))
    rows, train_rows, test_rows = [], [], []
    for k in range(count):
        twin = train[spec.id_column].iloc[originals[k % len(originals)]]
        split = "train" if k % 2 == 0 else "test"
        target = Source(out_dir / (spec.train_dir if split == "train" else spec.test_dirs[0]), spec.image_ext,
                        spec.image_layout)
        sample_id = make_id(rng)
        image = read_image(source, twin, spec.channels)
        write_image(target, sample_id, spec.channels, near_copy([image[..., c] for c in range(image.shape[2])], rng))
        rows.append((sample_id, twin, split))
        (train_rows if split == "train" else test_rows).append((sample_id, target_of[twin]))
    twins = pd.DataFrame(rows, columns=["Id", "twin", "split"])
    new_train = pd.DataFrame(train_rows, columns=[spec.id_column, spec.target_column])
    new_test = pd.DataFrame(test_rows, columns=[spec.id_column, spec.target_column])
    io.write_csv(pd.concat([truth, new_test], ignore_index=True), truth_path)
    io.write_csv(pd.concat([sample, new_test[[spec.id_column]].assign(**{spec.prediction_column: "0"})],
                           ignore_index=True), out_dir / spec.sample_submission)
    io.write_csv(pd.concat([train, new_train], ignore_index=True), out_dir / spec.train_csv)
    io.write_csv(twins, out_dir / TWINS_FILE)
    return twins
