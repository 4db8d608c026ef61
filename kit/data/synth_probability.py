"""`kit synth --preset ranzcr-clip|rsna-ich-2019|plant-pathology-2020|cassava-2020`: learnable synthetic sets in the
exact files and columns of the competitions scored on probabilities (and Cassava's one label per image).

- RANZCR CLiP: `train.csv` (StudyInstanceUID, 11 0/1 class columns, PatientID; several studies per patient),
  one grayscale JPEG per study in `train/` and `test/`, a wide `sample_submission.csv`;
- RSNA ICH 2019: `stage_2_train.csv` long (`ID_<image>_<subtype>,Label`, `any` = some subtype present), CT slices
  as DICOM (pydicom) in `stage_2_train/` and `stage_2_test/`, Hounsfield units stored half signed (int16,
  intercept 0) and half unsigned (uint16, intercept -1024), with a per-file RescaleSlope, and the long
  `stage_2_sample_submission.csv`;
- Plant Pathology 2020: `train.csv` one-hot wide (exactly one class), `images/Train_<i>.jpg` and
  `images/Test_<i>.jpg`, `test.csv`, a wide `sample_submission.csv`;
- Cassava: `train.csv` (`image_id,label`, the Id a file name such as `1000015157.jpg`), `train_images/`,
  `test_images/`, `label_num_to_disease_map.json`, `sample_submission.csv`.

`test_labels.csv` holds the hidden test labels in the train CSV's own format. Each class is a shape of its own
(grayscale: its own brightness too; CT: a bleed of its own shape and place, visible through the brain window).
Written by hand because no library writes these layouts.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from kit import io
from kit.data.presets import get_preset
from kit.data.spec import CompetitionSpec
from kit.data.synth import run_jobs
from kit.data.synth_formats import render, write_image
from kit.errors import KitError

SHAPES = ("disc", "square", "triangle", "ring", "cross", "bar")
# Train shares of each class in the real competitions, which the synthetic labels imitate.
PLANT_SHARES = (516, 91, 622, 592)  # healthy, multiple_diseases, rust, scab of 1,821
CASSAVA_SHARES = (1087, 2189, 2386, 13158, 2577)  # of 21,397
RSNA_SUBTYPE_RATE = (0.05, 0.12, 0.09, 0.12, 0.15)  # epidural .. subdural, raised so small sets hold each


def draw_shape(image: np.ndarray, shape: str, value: float, rng: np.random.Generator, scale: float = 0.08) -> None:
    """`shape` at a random place of a one-channel float image, filled with `value`."""
    height, width = image.shape[:2]
    radius = max(2, int(round(min(height, width) * scale)))
    x, y = int(rng.integers(radius, width - radius)), int(rng.integers(radius, height - radius))
    thick = max(1, radius // 3)
    if shape == "disc":
        cv2.circle(image, (x, y), radius, value, -1)
    elif shape == "ring":
        cv2.circle(image, (x, y), radius, value, thick)
    elif shape == "square":
        cv2.rectangle(image, (x - radius, y - radius), (x + radius, y + radius), value, -1)
    elif shape == "triangle":
        points = np.array([(x, y - radius), (x - radius, y + radius), (x + radius, y + radius)], np.int32)
        cv2.fillPoly(image, [points], value)
    elif shape == "cross":
        cv2.line(image, (x - radius, y), (x + radius, y), value, thick)
        cv2.line(image, (x, y - radius), (x, y + radius), value, thick)
    else:
        cv2.line(image, (x - radius, y - radius), (x + radius, y + radius), value, max(1, radius // 2))


# ------------------------------------------------------------------ images


def gray_image(labels, size: int, rng: np.random.Generator) -> np.ndarray:
    """A chest-film-like gray image: each class its shape, light or dark by class (11 classes: 6 shapes x 2)."""
    image = cv2.GaussianBlur(rng.random((size, size)).astype(np.float32), (0, 0), size / 16)
    image = 0.35 + 0.3 * (image - image.min()) / (np.ptp(image) + 1e-6)
    for c in labels:
        for _ in range(2):
            draw_shape(image, SHAPES[c % len(SHAPES)], 0.95 if (c // len(SHAPES)) % 2 == 0 else 0.05, rng)
    image = np.clip(image + rng.normal(0, 0.02, image.shape).astype(np.float32), 0, 1)
    return (image * 255).astype(np.uint8)[..., None]


def ct_slice(labels, size: int, rng: np.random.Generator) -> np.ndarray:
    """A head CT slice in Hounsfield units: air, a skull ring, brain, and one bleed (~70 HU) per subtype."""
    hu = np.full((size, size), -1000.0, dtype=np.float32)
    centre, radius = (size // 2, size // 2), int(size * 0.42)
    cv2.circle(hu, centre, radius, 1200.0, -1)  # bone
    cv2.circle(hu, centre, radius - max(2, size // 32), 32.0, -1)  # brain
    hu += rng.normal(0, 4, hu.shape).astype(np.float32)
    for c in labels:
        draw_shape(hu, SHAPES[c % len(SHAPES)], 72.0, rng, scale=0.07)
    return hu


def write_dicom(path: Path, hu: np.ndarray, signed: bool, slope: float, uid_seed: int) -> None:
    """One CT slice written with pydicom: stored integers = (HU - intercept) / slope, int16 with intercept 0 (signed)
    or uint16 with intercept -1024 (unsigned), as RSNA's files mix both."""
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

    intercept = 0.0 if signed else -1024.0
    stored = np.rint((hu - intercept) / slope)
    stored = (np.clip(stored, -32768, 32767).astype(np.int16) if signed
              else np.clip(stored, 0, 65535).astype(np.uint16))
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid(entropy_srcs=[str(uid_seed)])
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, meta.MediaStorageSOPInstanceUID
    ds.Modality, ds.PatientID = "CT", f"ID_{uid_seed % 10**8:08x}"
    ds.Rows, ds.Columns = stored.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 16, 15
    ds.PixelRepresentation = 1 if signed else 0
    ds.RescaleSlope, ds.RescaleIntercept = slope, intercept
    ds.WindowCenter, ds.WindowWidth = [40, 40], [80, 80]  # multi-valued, as many of RSNA's files
    ds.PixelData = stored.tobytes()
    ds.save_as(path, enforce_file_format=True)


def _write_job(job: tuple) -> None:
    kind, path, labels, size, seed, signed = job
    rng = np.random.default_rng(seed)
    path = Path(path)
    if kind == "gray":
        write_image(path, gray_image(labels, size, rng))
    elif kind == "dicom":
        write_dicom(path, ct_slice(labels, size, rng), signed, 1.0 if signed else 0.5, seed)
    else:
        classes = tuple(str(c) for c in range(16))
        write_image(path, render(list(labels), size, size, rng, classes, "glyphs", 3))


# ------------------------------------------------------------------ labels and files


def _one_class(rng: np.random.Generator, shares) -> list[int]:
    shares = np.asarray(shares, dtype=np.float64)
    shares = np.maximum(shares / shares.sum(), 0.08)  # small sets still hold every class
    return [int(rng.choice(len(shares), p=shares / shares.sum()))]


def _rsna_labels(rng: np.random.Generator) -> list[int]:
    subtypes = [c for c, rate in enumerate(RSNA_SUBTYPE_RATE) if rng.random() < rate]
    return subtypes + ([len(RSNA_SUBTYPE_RATE)] if subtypes else [])  # `any`: some subtype present


def _ranzcr_labels(rng: np.random.Generator, num_classes: int) -> list[int]:
    return [c for c in range(num_classes) if rng.random() < 0.25] or [int(rng.integers(num_classes))]


def _wide(ids, labels, spec: CompetitionSpec, id_column: str) -> pd.DataFrame:
    matrix = np.zeros((len(ids), spec.num_classes), dtype=np.int64)
    for row, sample_labels in enumerate(labels):
        matrix[row, sample_labels] = 1
    frame = pd.DataFrame(matrix, columns=list(spec.classes))
    frame.insert(0, id_column, ids)
    return frame


def _long(ids, labels, spec: CompetitionSpec, value=None) -> pd.DataFrame:
    cells, values = [], []
    for sample_id, sample_labels in zip(ids, labels):
        for c, name in enumerate(spec.classes):
            cells.append(f"{sample_id}{spec.long_separator}{name}")
            values.append(value if value is not None else int(c in sample_labels))
    return pd.DataFrame({spec.id_column: cells, spec.target_column: values})


def write_probability_preset(out_dir: str | os.PathLike, preset: str, n_train: int = 1000, n_test: int = 200,
                             size: int = 128, seed: int = 0, workers: int | None = None,
                             progress: bool = False) -> dict:
    """Write preset `preset`'s synthetic set into `out_dir` (see the module's docstring); deterministic per seed."""
    if preset not in PROBABILITY_PRESETS:
        raise KitError(f"unknown preset {preset!r}: expected one of {', '.join(PROBABILITY_PRESETS)}")
    if n_train < 5 or n_test < 1 or size < 32:
        raise KitError("kit synth needs --n-train >= 5, --n-test >= 1 and --size >= 32 for this preset")
    spec = get_preset(preset).spec()
    out_dir = Path(out_dir)
    rng = np.random.default_rng(seed)
    kind = {"ranzcr-clip": "gray", "rsna-ich-2019": "dicom"}.get(preset, "rgb")

    def draw_labels() -> list[int]:
        if preset == "ranzcr-clip":
            return _ranzcr_labels(rng, spec.num_classes)
        if preset == "rsna-ich-2019":
            return _rsna_labels(rng)
        return _one_class(rng, PLANT_SHARES if preset == "plant-pathology-2020" else CASSAVA_SHARES)

    def new_id(split: str, index: int) -> str:
        if preset == "ranzcr-clip":
            return f"1.2.826.0.1.3680043.8.498.{int(rng.integers(10**10, 10**11))}"
        if preset == "rsna-ich-2019":
            return f"ID_{rng.bytes(5).hex()[:9]}"
        if preset == "plant-pathology-2020":
            return f"{split.title()}_{index}"
        return f"{int(rng.integers(10**6, 10**10))}.jpg"  # Cassava: the Id is the file name

    splits, jobs = {}, []
    for split, count, folder in (("train", n_train, spec.train_dir), ("test", n_test, spec.test_dirs[0])):
        ids, labels = [], []
        while len(ids) < count:
            sample_id = new_id(split, len(ids))
            if sample_id in ids:
                continue
            ids.append(sample_id)
            labels.append(draw_labels())
            jobs.append((kind, str(out_dir / folder / f"{sample_id}{spec.image_suffix}"), labels[-1], size,
                         int(rng.integers(0, 2**62)), len(jobs) % 2 == 0))  # DICOM: every other one signed
        splits[split] = (ids, labels)
        (out_dir / folder).mkdir(parents=True, exist_ok=True)
    run_jobs(_write_job, jobs, workers, progress)

    (train_ids, train_labels), (test_ids, test_labels) = splits["train"], splits["test"]
    if preset == "ranzcr-clip":
        patients = [f"ec{int(p):08x}" for p in rng.integers(0, max(2, n_train // 3), size=n_train)]
        train = _wide(train_ids, train_labels, spec, spec.id_column).assign(PatientID=patients)
        truth = _wide(test_ids, test_labels, spec, spec.id_column)
        sample = _wide(test_ids, [[]] * len(test_ids), spec, spec.id_column)
    elif preset == "rsna-ich-2019":
        train, truth = _long(train_ids, train_labels, spec), _long(test_ids, test_labels, spec)
        sample = _long(test_ids, test_labels, spec, value=0.5)
    elif preset == "plant-pathology-2020":
        train = _wide(train_ids, train_labels, spec, spec.id_column)
        truth = _wide(test_ids, test_labels, spec, spec.id_column)
        sample = _wide(test_ids, [[]] * len(test_ids), spec, spec.id_column).astype({c: float for c in spec.classes})
        sample[list(spec.classes)] = 0.25
        io.write_csv(pd.DataFrame({spec.id_column: test_ids}), out_dir / "test.csv")
    else:
        train = pd.DataFrame({spec.id_column: train_ids, spec.target_column: [ls[0] for ls in train_labels]})
        truth = pd.DataFrame({spec.id_column: test_ids, spec.target_column: [ls[0] for ls in test_labels]})
        sample = pd.DataFrame({spec.id_column: test_ids, spec.prediction_column: 4})
        io.write_text(out_dir / "label_num_to_disease_map.json",
                      json.dumps({str(i): name for i, name in enumerate(spec.classes)}, indent=1) + "\n")
    io.write_csv(truth, out_dir / "test_labels.csv")
    io.write_csv(sample, out_dir / spec.sample_submission)
    io.write_csv(train, out_dir / spec.train_csv)
    return {"train": n_train, "test": n_test, "classes": spec.num_classes}


PROBABILITY_PRESETS = ("ranzcr-clip", "rsna-ich-2019", "plant-pathology-2020", "cassava-2020")
