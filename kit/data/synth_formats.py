"""`kit synth --preset planet|imet-2019` (and any one-file or named-label spec): learnable synthetic sets in a
competition's exact layout: its CSV names and columns, label encoding, one RGB(A) file per sample (JPEG, PNG or
a multi-band TIFF), varying image sizes (iMet), test Ids spread over several folders (Planet), labels.csv (iMet).

Each class is a glyph with its own shape, colour and scale, drawn a few times on a textured background; Planet's
weather tags are whole-image effects (cloud cover, haze), exactly one per image, `cloudy` standing alone, as in
the real labels. Written by hand because no library makes multi-label images in these layouts.
"""
from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from kit import io
from kit.data.presets import (
    IMET_CLASSES,
    IMET_CULTURES,
    PLANET_TAG_COUNTS,
    PLANET_TAGS,
    PLANET_TRAIN_SIZE,
    PLANET_WEATHER,
    get_preset,
)
from kit.data.reading import TIFF_EXTENSIONS, LabelCodec
from kit.data.spec import CompetitionSpec
from kit.data.synth import run_jobs, write_dataset
from kit.errors import KitError

PALETTE = np.array([
    (230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48), (145, 30, 180), (70, 240, 240),
    (240, 50, 230), (210, 245, 60), (250, 190, 212), (0, 128, 128), (170, 110, 40), (128, 0, 0), (0, 0, 128),
], dtype=np.float32) / 255.0
SHAPES = ("disc", "square", "triangle", "ring", "cross", "bar")
MIN_PLANET_FREQUENCY = 0.03  # keeps Planet's rarest tags present in small synthetic sets

PLANET_COUNTS = dict(zip(PLANET_TAGS, PLANET_TAG_COUNTS))  # each tag's count in Planet's train_v2.csv


# ------------------------------------------------------------------ drawing


def glyph(c: int) -> tuple[str, np.ndarray, float]:
    """Class c's shape, colour and relative size: distinct for the first len(SHAPES) * len(PALETTE) * 14 classes."""
    shape = SHAPES[c % len(SHAPES)]
    colour = PALETTE[(c // len(SHAPES)) % len(PALETTE)]
    scale = 0.6 + 0.1 * ((c // (len(SHAPES) * len(PALETTE))) % 14)
    return shape, colour, scale


def draw_glyph(image: np.ndarray, c: int, rng: np.random.Generator) -> None:
    shape, colour, scale = glyph(c)
    height, width = image.shape[:2]
    radius = max(2, int(round(min(height, width) * 0.07 * scale)))
    colour = tuple(float(v) for v in colour * rng.uniform(0.85, 1.0))
    for _ in range(int(rng.integers(2, 4))):
        x, y = int(rng.integers(radius, width - radius)), int(rng.integers(radius, height - radius))
        if shape == "disc":
            cv2.circle(image, (x, y), radius, colour, -1, cv2.LINE_AA)
        elif shape == "ring":
            cv2.circle(image, (x, y), radius, colour, max(1, radius // 3), cv2.LINE_AA)
        elif shape == "square":
            cv2.rectangle(image, (x - radius, y - radius), (x + radius, y + radius), colour, -1)
        elif shape == "triangle":
            points = np.array([(x, y - radius), (x - radius, y + radius), (x + radius, y + radius)], np.int32)
            cv2.fillPoly(image, [points], colour, cv2.LINE_AA)
        elif shape == "cross":
            cv2.line(image, (x - radius, y), (x + radius, y), colour, max(1, radius // 3), cv2.LINE_AA)
            cv2.line(image, (x, y - radius), (x, y + radius), colour, max(1, radius // 3), cv2.LINE_AA)
        else:
            cv2.line(image, (x - radius, y - radius), (x + radius, y + radius), colour, max(1, radius // 2), cv2.LINE_AA)


def texture(height: int, width: int, base: tuple[float, float, float], rng: np.random.Generator) -> np.ndarray:
    noise = cv2.GaussianBlur(rng.random((height, width)).astype(np.float32), (0, 0), max(1.0, min(height, width) / 24))
    noise = (noise - noise.min()) / (np.ptp(noise) + 1e-6)
    return np.asarray(base, np.float32)[None, None, :] * (0.7 + 0.6 * noise[..., None])


def render(labels: list[int], height: int, width: int, rng: np.random.Generator, classes: tuple[str, ...],
           style: str, num_channels: int) -> np.ndarray:
    """One sample as height x width x num_channels uint8 (RGB, then extra bands)."""
    base = (0.25, 0.4, 0.2) if style == "planet" else (0.75, 0.7, 0.6)
    image = texture(height, width, base, rng)
    weather = [classes[c] for c in labels if style == "planet" and classes[c] in PLANET_WEATHER]
    for c in labels:
        if not (style == "planet" and classes[c] in PLANET_WEATHER):
            draw_glyph(image, c, rng)
    if "haze" in weather:
        image = 0.55 * image + 0.45 * np.float32(0.75)
    elif "partly_cloudy" in weather:
        for _ in range(3):
            centre = (int(rng.integers(0, width)), int(rng.integers(0, height)))
            cv2.circle(image, centre, int(min(height, width) * rng.uniform(0.12, 0.22)), (0.95, 0.95, 0.95), -1)
    elif "cloudy" in weather:
        image = 0.15 * image + 0.85 * texture(height, width, (0.95, 0.95, 0.95), rng)
    image = np.clip(image + rng.normal(0, 0.02, image.shape).astype(np.float32), 0, 1)
    if num_channels == 1:
        image = image.mean(axis=2, keepdims=True)
    elif num_channels > 3:
        extra = [np.clip(image[..., 1] * rng.uniform(0.8, 1.2), 0, 1) for _ in range(num_channels - 3)]
        image = np.concatenate([image, np.stack(extra, axis=-1)], axis=-1)
    elif num_channels == 2:
        image = image[..., :2]
    return (image * 255).astype(np.uint8)


def write_image(path: Path, image: np.ndarray) -> None:
    """H x W x C uint8 in channel order -> a JPEG (1 or 3 channels), PNG (1, 3 or 4) or TIFF (any number of bands)."""
    ext = path.suffix.lower().lstrip(".")
    channels = image.shape[2]
    if ext in TIFF_EXTENSIONS:
        import tifffile

        tifffile.imwrite(path, image, photometric="rgb" if channels == 3 else "minisblack", planarconfig="contig")
        return
    allowed = (1, 3) if ext in ("jpg", "jpeg") else (1, 3, 4)
    if channels not in allowed:
        raise KitError(f"kit synth cannot write {channels} channels into a .{ext} file; use image_ext tif")
    if channels == 3:
        image = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    elif channels == 4:
        image = cv2.cvtColor(image, cv2.COLOR_RGBA2BGRA)
    params = [cv2.IMWRITE_JPEG_QUALITY, 95] if ext in ("jpg", "jpeg") else []
    if not cv2.imwrite(str(path), image if channels > 1 else image[..., 0], params):
        raise KitError(f"{path}: cannot write a .{ext} image")


def _write_sample(job: tuple) -> None:
    path, labels, height, width, seed, classes, style, num_channels = job
    write_image(Path(path), render(labels, height, width, np.random.default_rng(seed), classes, style, num_channels))


# ------------------------------------------------------------------ labels


def planet_labels(rng: np.random.Generator, classes: tuple[str, ...]) -> list[int]:
    """One weather tag (cloudy alone), then each land tag with its real frequency among non-cloudy images."""
    counts = PLANET_COUNTS
    weather = [w for w in PLANET_WEATHER if w in classes]
    if not weather:
        return frequency_labels(rng, np.full(len(classes), 0.2))
    shares = np.array([counts[w] for w in weather], dtype=np.float64)
    picked = weather[int(rng.choice(len(weather), p=shares / shares.sum()))]
    labels = [classes.index(picked)]
    if picked != "cloudy":
        clear_of_clouds = PLANET_TRAIN_SIZE - counts["cloudy"]
        for c, name in enumerate(classes):
            if name not in PLANET_WEATHER and rng.random() < max(counts.get(name, 2000) / clear_of_clouds,
                                                                  MIN_PLANET_FREQUENCY):
                labels.append(c)
    return sorted(labels)


def imet_labels(rng: np.random.Generator, num_classes: int, cultures: int) -> list[int]:
    """Usually one culture, then 1 to 6 tags, both long-tailed (Zipf-like) as iMet's attributes are."""
    labels = []
    if cultures and rng.random() < 0.8:
        weights = 1.0 / np.arange(1, cultures + 1) ** 0.8
        labels.append(int(rng.choice(cultures, p=weights / weights.sum())))
    tags = num_classes - cultures
    if tags:
        weights = 1.0 / np.arange(1, tags + 1) ** 0.8
        count = min(tags, 1 + int(rng.poisson(2.0)), 6)
        labels += [cultures + int(t) for t in rng.choice(tags, size=count, replace=False, p=weights / weights.sum())]
    return sorted(set(labels)) or [0]


def frequency_labels(rng: np.random.Generator, frequencies: np.ndarray) -> list[int]:
    labels = np.flatnonzero(rng.random(len(frequencies)) < frequencies)
    if len(labels) == 0:
        labels = [int(rng.integers(len(frequencies)))]
    return sorted(int(label) for label in labels)


# ------------------------------------------------------------------ writing a set


def imet_spec(num_classes: int) -> tuple[CompetitionSpec, list[str]]:
    """iMet's spec with `num_classes` attributes (`culture::...` first, then `tag::...`, in iMet's proportion)."""
    cultures = round(num_classes * IMET_CULTURES / IMET_CLASSES)
    names = [f"culture::culture{i:04d}" for i in range(cultures)] + [f"tag::tag{i:04d}" for i in range(num_classes - cultures)]
    spec = get_preset("imet-2019").spec()
    return replace(spec, classes=tuple(names), classes_file=None), names


def write_formatted(out_dir: str | os.PathLike, spec: CompetitionSpec, style: str = "glyphs", n_train: int = 1000,
                    n_test: int = 200, size: int = 128, seed: int = 0, workers: int | None = None,
                    progress: bool = False) -> dict:
    """Write a synthetic set for `spec` (classes resolved) in its layout; `style` is planet, imet or glyphs.

    Writes the train CSV, the images of every split, the sample submission and `test_labels.csv` (the hidden
    truth, in the train CSV's columns). Test Ids are spread over the spec's test folders. Deterministic for a seed.
    """
    if spec.image_layout != "file":
        raise KitError("this writer makes one file per sample (image_layout: file)")
    if n_train < 1 or n_test < len(spec.test_dirs) or size < 16:
        raise KitError(f"kit synth needs --n-train >= 1, --n-test >= {len(spec.test_dirs)} (one per test folder) "
                       "and --size >= 16")
    out_dir = Path(out_dir)
    rng = np.random.default_rng(seed)
    classes, codec = spec.classes, LabelCodec(spec)
    cultures = sum(name.startswith("culture::") for name in classes)
    frequencies = np.clip(np.asarray(spec.frequencies()), 0.05, 0.6)

    def draw_labels() -> list[int]:
        if style == "planet":
            return planet_labels(rng, classes)
        if style == "imet":
            return imet_labels(rng, len(classes), cultures)
        return frequency_labels(rng, frequencies)

    def image_size() -> tuple[int, int]:
        if style != "imet":
            return size, size
        longer = int(size * rng.uniform(1.0, 1.7))
        return (size, longer) if rng.random() < 0.5 else (longer, size)

    def new_id(split: str, index: int, folder_index: int) -> str:
        if style == "planet":
            return f"train_{index}" if split == "train" else f"{'test' if folder_index == 0 else 'file'}_{index}"
        if style == "imet":
            return rng.bytes(8).hex()
        return f"{split}_{index:05d}"

    jobs, frames = [], {}
    test_folders = np.sort(np.arange(n_test) % len(spec.test_dirs))  # contiguous runs: test_... then file_...
    for split, count in (("train", n_train), ("test", n_test)):
        ids, targets = [], []
        for index in range(count):
            folder_index = 0 if split == "train" else int(test_folders[index])
            folder = spec.train_dir if split == "train" else spec.test_dirs[folder_index]
            local = index if split == "train" else index - int(np.searchsorted(test_folders, folder_index))
            sample_id, labels = new_id(split, local, folder_index), draw_labels()
            height, width = image_size()
            path = out_dir / folder / f"{sample_id}.{spec.image_ext}"
            jobs.append((str(path), labels, height, width, int(rng.integers(0, 2**63 - 1)), classes, style,
                         spec.num_channels))
            ids.append(sample_id)
            targets.append(codec.format(labels))
        frames[split] = (ids, targets)
    for folder in {spec.train_dir, *spec.test_dirs}:
        (out_dir / folder).mkdir(parents=True, exist_ok=True)
    run_jobs(_write_sample, jobs, workers, progress)

    (train_ids, train_targets), (test_ids, test_targets) = frames["train"], frames["test"]
    example = codec.format(range(min(3, len(classes))))
    io.write_csv(pd.DataFrame({spec.id_column: test_ids, spec.target_column: test_targets}), out_dir / "test_labels.csv")
    io.write_csv(pd.DataFrame({spec.id_column: test_ids, spec.prediction_column: example}),
                 out_dir / spec.sample_submission)
    io.write_csv(pd.DataFrame({spec.id_column: train_ids, spec.target_column: train_targets}), out_dir / spec.train_csv)
    return {"train": n_train, "test": n_test, "classes": len(classes)}


def write_preset_dataset(out_dir: str | os.PathLike, preset: str, n_train: int = 1000, n_test: int = 200,
                         size: int = 128, seed: int = 0, classes: int | None = None, workers: int | None = None,
                         progress: bool = False) -> dict:
    """A synthetic set in the layout of preset `preset` (hpa, planet, imet-2019). `classes`: how many classes
    (the first N of HPA's; iMet's labels.csv gets N attributes, 1,103 by default); Planet always has its 17 tags."""
    out_dir = Path(out_dir)
    if preset == "hpa":
        spec = get_preset("hpa").spec()
        if classes is not None:
            if not 1 <= classes <= spec.num_classes:
                raise KitError(f"--classes {classes}: HPA has 1 to {spec.num_classes} classes")
            spec = replace(spec, classes=spec.classes[:classes])
        return write_dataset(out_dir, spec, n_train=n_train, n_test=n_test, size=size, seed=seed, workers=workers,
                             progress=progress)
    if preset == "planet":
        if classes not in (None, 17):
            raise KitError("--classes: Planet has its 17 tags; leave --classes out")
        return write_formatted(out_dir, get_preset("planet").spec(), "planet", n_train, n_test, size, seed, workers,
                               progress)
    if preset == "imet-2019":
        count = IMET_CLASSES if classes is None else classes
        if count < 2:
            raise KitError("--classes: iMet needs at least 2 classes")
        spec, names = imet_spec(count)
        result = write_formatted(out_dir, spec, "imet", n_train, n_test, size, seed, workers, progress)
        labels_csv = get_preset("imet-2019").competition["classes"]
        io.write_csv(pd.DataFrame({"attribute_id": range(count), "attribute_name": names}), out_dir / labels_csv)
        return result
    get_preset(preset)  # the unknown-preset error
    raise AssertionError(preset)

