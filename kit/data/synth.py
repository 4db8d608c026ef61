"""`kit synth`: a competition-shaped synthetic data set that looks like HPA in kind and is learnable.

Blue = nuclei, red = microtubules, yellow = endoplasmic reticulum, green = the protein, drawn with one
distinct spatial pattern per class (nucleoplasm fills nuclei, nucleoli are spots inside them, cytosol is
diffuse around them, mitochondria are short filaments, ...). Label frequencies follow HPA's long tail.
Written by hand because no library makes fluorescence-microscopy-like multi-label images.
"""
from __future__ import annotations

import os
import uuid
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from kit import io
from kit.data.reading import LabelCodec
from kit.data.spec import CompetitionSpec
from kit.errors import KitError
from kit.system import available_cores

MIN_FREQUENCY = 0.006  # keeps HPA's rarest classes present in small synthetic sets
MAX_LABELS = 4


@dataclass
class Cell:
    center: np.ndarray  # (x, y)
    radius: float  # cell body
    nucleus: tuple[float, float, float]  # semi-axes a, b and angle in degrees


class Canvas:
    """One image's cells and a float32 plane per stain, drawn at `size` px."""

    def __init__(self, size: int, rng: np.random.Generator):
        self.size, self.rng = size, rng
        self.cells = self._place_cells()

    def _place_cells(self) -> list[Cell]:
        size, rng = self.size, self.rng
        cells: list[Cell] = []
        for _ in range(int(rng.integers(2, 5))):
            radius = size * rng.uniform(0.16, 0.22)
            for _attempt in range(20):
                center = rng.uniform(radius * 0.7, size - radius * 0.7, size=2)
                if all(np.linalg.norm(center - c.center) > 1.3 * max(radius, c.radius) for c in cells):
                    break
            a = radius * rng.uniform(0.38, 0.5)
            cells.append(Cell(center, radius, (a, a * rng.uniform(0.7, 1.0), rng.uniform(0, 180))))
        return cells

    def blank(self) -> np.ndarray:
        return np.zeros((self.size, self.size), np.float32)

    def px(self, value: float) -> int:
        return max(1, int(round(value)))

    def point(self, cell: Cell, distance: float, angle: float) -> tuple[int, int]:
        x = cell.center[0] + distance * np.cos(angle)
        y = cell.center[1] + distance * np.sin(angle)
        return int(round(x)), int(round(y))

    def nucleus_mask(self, cell: Cell, grow: float = 1.0) -> np.ndarray:
        mask = self.blank()
        a, b, angle = cell.nucleus
        center = tuple(int(v) for v in cell.center)
        cv2.ellipse(mask, center, (self.px(a * grow), self.px(b * grow)), angle, 0, 360, 1.0, -1)
        return mask

    def cell_mask(self, cell: Cell) -> np.ndarray:
        mask = self.blank()
        cv2.circle(mask, tuple(int(v) for v in cell.center), self.px(cell.radius), 1.0, -1)
        return mask

    def random_in_nucleus(self, cell: Cell, count: int, spread: float = 0.7) -> list[tuple[int, int]]:
        a, b, angle = cell.nucleus
        theta = np.deg2rad(angle)
        points = []
        for _ in range(count):
            r, phi = np.sqrt(self.rng.uniform(0, 1)) * spread, self.rng.uniform(0, 2 * np.pi)
            x, y = a * r * np.cos(phi), b * r * np.sin(phi)
            points.append((int(cell.center[0] + x * np.cos(theta) - y * np.sin(theta)),
                           int(cell.center[1] + x * np.sin(theta) + y * np.cos(theta))))
        return points

    def random_in_cytoplasm(self, cell: Cell, count: int, inner: float = 1.15, outer: float = 0.92) -> list[tuple[int, int]]:
        a = max(cell.nucleus[0], cell.nucleus[1])
        distances = self.rng.uniform(a * inner, cell.radius * outer, size=count)
        angles = self.rng.uniform(0, 2 * np.pi, size=count)
        return [self.point(cell, d, t) for d, t in zip(distances, angles)]


# ------------------------------------------------------------------ reference stains


def draw_nuclei(canvas: Canvas) -> np.ndarray:
    plane = canvas.blank()
    for cell in canvas.cells:
        plane += canvas.nucleus_mask(cell) * canvas.rng.uniform(0.6, 0.9)
    texture = canvas.rng.normal(1.0, 0.15, plane.shape).astype(np.float32)
    return cv2.GaussianBlur(plane * texture, (0, 0), max(0.6, canvas.size / 200))


def draw_microtubules(canvas: Canvas) -> np.ndarray:
    plane = canvas.blank()
    for cell in canvas.cells:
        for angle in canvas.rng.uniform(0, 2 * np.pi, size=18):
            start = canvas.point(cell, cell.nucleus[0] * 0.9, angle)
            end = canvas.point(cell, cell.radius * canvas.rng.uniform(0.8, 1.0), angle + canvas.rng.normal(0, 0.15))
            cv2.line(plane, start, end, float(canvas.rng.uniform(0.2, 0.45)), 1, cv2.LINE_AA)
    return plane


def draw_er(canvas: Canvas) -> np.ndarray:
    """Endoplasmic reticulum: a diffuse network densest around the nucleus, fading to the cell edge."""
    plane = canvas.blank()
    yy, xx = np.mgrid[0 : canvas.size, 0 : canvas.size].astype(np.float32)
    noise = cv2.GaussianBlur(canvas.rng.random((canvas.size, canvas.size)).astype(np.float32), (0, 0), max(1.0, canvas.size / 64))
    noise = (noise - noise.min()) / (np.ptp(noise) + 1e-6)
    for cell in canvas.cells:
        distance = np.hypot(xx - cell.center[0], yy - cell.center[1]) / cell.radius
        falloff = np.clip(1.0 - distance, 0, 1) * (1 - canvas.nucleus_mask(cell))
        plane += falloff * (0.4 + 0.6 * noise)
    return plane


# ------------------------------------------------------------------ protein patterns, one per class


def _spots(canvas, points, radius, value, plane=None):
    plane = canvas.blank() if plane is None else plane
    for point in points:
        cv2.circle(plane, point, canvas.px(radius), value, -1, cv2.LINE_AA)
    return plane


def p_nucleoplasm(c: Canvas):
    return sum(c.nucleus_mask(cell, 0.95) * 0.6 for cell in c.cells)


def p_nuclear_membrane(c: Canvas):
    plane = c.blank()
    for cell in c.cells:
        a, b, angle = cell.nucleus
        cv2.ellipse(plane, tuple(int(v) for v in cell.center), (c.px(a), c.px(b)), angle, 0, 360, 0.9, c.px(c.size / 100), cv2.LINE_AA)
    return plane


def p_nucleoli(c: Canvas):
    return sum(_spots(c, c.random_in_nucleus(cell, int(c.rng.integers(2, 4)), 0.55), cell.nucleus[1] * 0.22, 1.0) for cell in c.cells)


def p_nucleoli_fibrillar(c: Canvas):
    plane = c.blank()
    for cell in c.cells:
        for center in c.random_in_nucleus(cell, 2, 0.5):
            ring = [(center[0] + int(dx), center[1] + int(dy)) for dx, dy in c.rng.normal(0, cell.nucleus[1] * 0.08, (5, 2))]
            _spots(c, ring, c.size / 180, 1.0, plane)
    return plane


def p_nuclear_speckles(c: Canvas):
    return sum(_spots(c, c.random_in_nucleus(cell, 14, 0.85), c.size / 110, 0.7) for cell in c.cells)


def p_nuclear_bodies(c: Canvas):
    return sum(_spots(c, c.random_in_nucleus(cell, int(c.rng.integers(2, 5)), 0.8), c.size / 200, 1.0) for cell in c.cells)


def p_er(c: Canvas):
    return draw_er(c) * 0.8


def p_golgi(c: Canvas):
    plane = c.blank()
    for cell in c.cells:
        side = c.rng.uniform(0, 2 * np.pi)
        center = c.point(cell, cell.nucleus[0] * 1.25, side)
        cv2.ellipse(plane, center, (c.px(cell.radius * 0.22), c.px(cell.radius * 0.1)), np.rad2deg(side) + 90, 0, 360, 0.9, -1, cv2.LINE_AA)
    return plane


def p_peroxisomes(c: Canvas):
    return sum(_spots(c, c.random_in_cytoplasm(cell, 25), c.size / 256, 0.8) for cell in c.cells)


def p_endosomes(c: Canvas):
    return sum(_spots(c, c.random_in_cytoplasm(cell, 10), c.size / 110, 0.7) for cell in c.cells)


def p_lysosomes(c: Canvas):
    return sum(_spots(c, c.random_in_cytoplasm(cell, 8, 1.05, 0.6), c.size / 90, 0.8) for cell in c.cells)


def p_intermediate_filaments(c: Canvas):
    plane = c.blank()
    for cell in c.cells:
        for _ in range(5):
            angles = c.rng.uniform(0, 2 * np.pi) + np.cumsum(c.rng.normal(0, 0.5, 6))
            radius = cell.radius * c.rng.uniform(0.6, 0.95)
            points = np.array([c.point(cell, radius * (0.6 + 0.4 * np.sin(i)), a) for i, a in enumerate(angles)], np.int32)
            cv2.polylines(plane, [points], False, 0.7, 1, cv2.LINE_AA)
    return plane


def p_actin(c: Canvas):
    plane, angle = c.blank(), c.rng.uniform(0, np.pi)
    direction = np.array([np.cos(angle), np.sin(angle)])
    normal = np.array([-direction[1], direction[0]])
    for cell in c.cells:
        for offset in np.linspace(-0.8, 0.8, 7) * cell.radius:
            middle = cell.center + normal * offset
            half = np.sqrt(max(cell.radius**2 - offset**2, 0)) * 0.9
            start, end = middle - direction * half, middle + direction * half
            cv2.line(plane, tuple(int(v) for v in start), tuple(int(v) for v in end), 0.8, 1, cv2.LINE_AA)
    return plane


def p_focal_adhesions(c: Canvas):
    plane = c.blank()
    for cell in c.cells:
        for angle in c.rng.uniform(0, 2 * np.pi, 9):
            cv2.line(plane, c.point(cell, cell.radius * 0.8, angle), c.point(cell, cell.radius * 0.98, angle), 1.0, c.px(c.size / 120), cv2.LINE_AA)
    return plane


def p_microtubules(c: Canvas):
    return draw_microtubules(c) * 2.0


def p_microtubule_ends(c: Canvas):
    return sum(_spots(c, [c.point(cell, cell.radius * 0.97, a) for a in c.rng.uniform(0, 2 * np.pi, 14)], c.size / 200, 1.0) for cell in c.cells)


def p_cytokinetic_bridge(c: Canvas):
    plane = c.blank()
    first, second = c.cells[0], c.cells[1]
    cv2.line(plane, tuple(int(v) for v in first.center), tuple(int(v) for v in second.center), 1.0, c.px(c.size / 80), cv2.LINE_AA)
    return plane * (1 - c.nucleus_mask(first, 1.1)) * (1 - c.nucleus_mask(second, 1.1))


def p_mitotic_spindle(c: Canvas):
    plane, cell = c.blank(), c.cells[0]
    axis = c.rng.uniform(0, np.pi)
    for pole in (axis, axis + np.pi):
        tip = c.point(cell, cell.radius * 0.7, pole)
        for spread in np.linspace(-0.6, 0.6, 7):
            cv2.line(plane, tip, c.point(cell, cell.radius * 0.1, pole + np.pi / 2 + spread * 0.8 + np.pi / 2), 0.9, 1, cv2.LINE_AA)
    return plane


def p_mtoc(c: Canvas):
    return sum(_spots(c, [c.point(cell, cell.nucleus[0] * 1.25, c.rng.uniform(0, 2 * np.pi))], c.size / 70, 1.0) for cell in c.cells)


def p_centrosome(c: Canvas):
    plane = c.blank()
    for cell in c.cells:
        angle = c.rng.uniform(0, 2 * np.pi)
        first = c.point(cell, cell.nucleus[0] * 1.3, angle)
        second = (first[0] + c.px(c.size / 45), first[1])
        _spots(c, [first, second], c.size / 150, 1.0, plane)
    return plane


def p_lipid_droplets(c: Canvas):
    plane = c.blank()
    for cell in c.cells:
        for point in c.random_in_cytoplasm(cell, 5):
            cv2.circle(plane, point, c.px(c.size / 70), 1.0, 1, cv2.LINE_AA)
    return plane


def p_plasma_membrane(c: Canvas):
    plane = c.blank()
    for cell in c.cells:
        cv2.circle(plane, tuple(int(v) for v in cell.center), c.px(cell.radius), 0.9, c.px(c.size / 120), cv2.LINE_AA)
    return plane


def p_cell_junctions(c: Canvas):
    plane = c.blank()
    for i, first in enumerate(c.cells):
        for second in c.cells[i + 1 :]:
            middle = (first.center + second.center) / 2
            direction = second.center - first.center
            normal = np.array([-direction[1], direction[0]]) / (np.linalg.norm(direction) + 1e-6)
            half = c.size * 0.08
            start, end = middle - normal * half, middle + normal * half
            cv2.line(plane, tuple(int(v) for v in start), tuple(int(v) for v in end), 1.0, c.px(c.size / 90), cv2.LINE_AA)
    return plane


def p_mitochondria(c: Canvas):
    plane = c.blank()
    for cell in c.cells:
        for start in c.random_in_cytoplasm(cell, 16):
            angle = c.rng.uniform(0, 2 * np.pi)
            length = c.size / 40
            end = (int(start[0] + length * np.cos(angle)), int(start[1] + length * np.sin(angle)))
            cv2.line(plane, start, end, 0.8, 1, cv2.LINE_AA)
    return plane


def p_aggresome(c: Canvas):
    cell = c.cells[int(c.rng.integers(len(c.cells)))]
    return _spots(c, c.random_in_cytoplasm(cell, 1, 1.3, 0.7), cell.radius * 0.25, 1.0)


def p_cytosol(c: Canvas):
    return sum((c.cell_mask(cell) - c.nucleus_mask(cell, 1.05)).clip(0, 1) * 0.35 for cell in c.cells)


def p_cytoplasmic_bodies(c: Canvas):
    return sum(_spots(c, c.random_in_cytoplasm(cell, 2), c.size / 60, 1.0) for cell in c.cells)


def p_rods_and_rings(c: Canvas):
    plane = c.blank()
    for cell in c.cells:
        for point in c.random_in_cytoplasm(cell, 3):
            if c.rng.random() < 0.5:
                cv2.circle(plane, point, c.px(c.size / 55), 1.0, 1, cv2.LINE_AA)
            else:
                angle = c.rng.uniform(0, np.pi)
                half = c.size / 30
                end = (int(point[0] + half * np.cos(angle)), int(point[1] + half * np.sin(angle)))
                cv2.line(plane, point, end, 1.0, c.px(c.size / 120), cv2.LINE_AA)
    return plane


PATTERNS = (
    p_nucleoplasm, p_nuclear_membrane, p_nucleoli, p_nucleoli_fibrillar, p_nuclear_speckles,
    p_nuclear_bodies, p_er, p_golgi, p_peroxisomes, p_endosomes, p_lysosomes, p_intermediate_filaments,
    p_actin, p_focal_adhesions, p_microtubules, p_microtubule_ends, p_cytokinetic_bridge, p_mitotic_spindle,
    p_mtoc, p_centrosome, p_lipid_droplets, p_plasma_membrane, p_cell_junctions, p_mitochondria,
    p_aggresome, p_cytosol, p_cytoplasmic_bodies, p_rods_and_rings,
)


# ------------------------------------------------------------------ labels and images


def sample_labels(rng: np.random.Generator, frequencies: np.ndarray) -> list[int]:
    """1 to 4 labels, each class drawn with its own frequency (at least one, drawn by frequency if none)."""
    labels = np.flatnonzero(rng.random(len(frequencies)) < frequencies)
    if len(labels) == 0:
        labels = [int(rng.choice(len(frequencies), p=frequencies / frequencies.sum()))]
    elif len(labels) > MAX_LABELS:
        labels = rng.choice(labels, MAX_LABELS, replace=False)
    return sorted(int(label) for label in labels)


def render(labels: list[int], size: int, rng: np.random.Generator, num_channels: int) -> np.ndarray:
    """One sample as size x size x num_channels uint8, stains in HPA order (red, green, blue, yellow);
    extra channels repeat the stains with fresh noise, missing ones are dropped.

    Cells and reference stains come from their own random stream, so they do not depend on the labels.
    """
    layout, protein = rng.spawn(2)
    canvas = Canvas(size, layout)
    red, blue, yellow = draw_microtubules(canvas), draw_nuclei(canvas), draw_er(canvas) * 0.7
    canvas.rng = protein
    green = canvas.blank()
    for label in labels:
        green += PATTERNS[label % len(PATTERNS)](canvas) * protein.uniform(0.8, 1.2)
    green = cv2.GaussianBlur(green, (0, 0), max(0.5, size / 256))
    stains = [red, green, blue, yellow]
    planes = []
    for index in range(num_channels):
        plane = stains[index % len(stains)] * layout.uniform(0.8, 1.1)
        plane = plane + layout.normal(0.03, 0.02, plane.shape).astype(np.float32)
        planes.append(np.clip(plane * 255, 0, 255).astype(np.uint8))
    return np.stack(planes, axis=-1)


def make_id(rng: np.random.Generator) -> str:
    return str(uuid.UUID(bytes=rng.bytes(16), version=4))


def _write_sample(job: tuple) -> None:
    folder, sample_id, labels, size, seed, channels = job
    image = render(labels, size, np.random.default_rng(seed), len(channels))
    for index, channel in enumerate(channels):
        cv2.imwrite(str(Path(folder) / f"{sample_id}_{channel}.png"), image[..., index])


def write_dataset(out_dir: str | os.PathLike, spec: CompetitionSpec, n_train: int = 1000, n_test: int = 200,
                  size: int = 128, seed: int = 0, workers: int | None = None, progress: bool = False) -> dict:
    """Write train.csv, train/, test/, sample_submission.csv (and test_labels.csv, the hidden truth) into out_dir.

    Deterministic for a seed. Returns {'train': n_train, 'test': n_test, 'frequencies': observed share per class}.
    """
    if spec.num_classes > len(PATTERNS):
        raise KitError(f"kit synth draws at most {len(PATTERNS)} distinct classes, the spec has {spec.num_classes}")
    if spec.image_ext != "png":
        raise KitError(f"kit synth writes png images, the spec asks for {spec.image_ext}")
    if n_train < 1 or n_test < 1 or size < 16:
        raise KitError("kit synth needs --n-train >= 1, --n-test >= 1 and --size >= 16")
    out_dir = Path(out_dir)
    rng = np.random.default_rng(seed)
    frequencies = np.maximum(np.asarray(spec.frequencies(), dtype=np.float64), MIN_FREQUENCY)
    splits = {}
    jobs = []
    for split, count, folder in (("train", n_train, spec.train_dir), ("test", n_test, spec.test_dirs[0])):
        (out_dir / folder).mkdir(parents=True, exist_ok=True)
        ids = [make_id(rng) for _ in range(count)]
        labels = [sample_labels(rng, frequencies) for _ in range(count)]
        seeds = rng.integers(0, 2**63 - 1, size=count)
        jobs += [(str(out_dir / folder), i, lab, size, int(s), spec.channels) for i, lab, s in zip(ids, labels, seeds)]
        splits[split] = (ids, labels)
    run_jobs(_write_sample, jobs, workers, progress)

    def targets(labels):
        return [codec.format(sorted(lab)) for lab in labels]

    codec = LabelCodec(spec)

    train_ids, train_labels = splits["train"]
    test_ids, test_labels = splits["test"]
    io.write_csv(pd.DataFrame({spec.id_column: test_ids, spec.target_column: targets(test_labels)}), out_dir / "test_labels.csv")
    io.write_csv(pd.DataFrame({spec.id_column: test_ids, spec.prediction_column: "0"}), out_dir / spec.sample_submission)
    io.write_csv(pd.DataFrame({spec.id_column: train_ids, spec.target_column: targets(train_labels)}), out_dir / spec.train_csv)
    observed = np.zeros(spec.num_classes)
    for labels in train_labels:
        observed[labels] += 1
    return {"train": n_train, "test": n_test, "frequencies": observed / n_train}


def run_jobs(write, jobs: list, workers: int | None = None, progress: bool = False) -> None:
    """`write(job)` for every job: in a process pool of `workers` (default: the cores, up to 8) for more than
    50 jobs, else here."""
    workers = workers or min(available_cores(), 8)
    if workers > 1 and len(jobs) > 50:
        with ProcessPoolExecutor(workers) as pool:
            list(_progress(pool.map(write, jobs, chunksize=16), len(jobs), progress))
    else:
        for job in _progress(jobs, len(jobs), progress):
            write(job)


def _progress(iterable, total, enabled):
    if not enabled:
        return iterable
    from tqdm import tqdm

    return tqdm(iterable, total=total, desc="synth", unit="img")
