"""Image files: decoding one sample into H x W x C uint8 in the spec's channel order, and the stores that read them.

`ImageStore` is the one interface training and prediction read pixels through: `ids`, `len()` and
`read(i) -> H x W x C uint8`. `DecodingStore` decodes the competition's image files (JPEG, PNG, TIFF, DICOM through
`kit.data.dicom`); `kit.data.cache` adds a memory-mapped store of pre-resized images, and `open_store` picks
between them. Integer pixels deeper than 8 bits (16-bit PNG and TIFF) are scaled by their type's range.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from kit.data.dicom import read_dicom
from kit.data.spec import DICOM_EXTENSION, NO_EXTENSION, CompetitionSpec
from kit.errors import KitError

# OpenCV would otherwise start one thread per core inside every DataLoader worker.
cv2.setNumThreads(1)

GRAY = "gray"  # `channels: [gray]`: one grayscale channel, whatever the file stores


@dataclass(frozen=True)
class Source:
    """One folder of images in the competition layout, with its own extension (png, or jpg for HPAv18).

    layout `channels`: one grayscale file per channel, `{dir}/{Id}_{channel}.{ext}` (HPA); `file`: one file per
    sample holding every channel, `{dir}/{Id}.{ext}` (RGB/RGBA or gray JPEG or PNG, a multi-band TIFF, a DICOM
    slice through its windows); `image_ext: none` means the Id is the whole file name, `{dir}/{Id}`."""

    image_dir: Path
    image_ext: str = "png"
    layout: str = "channels"

    @property
    def suffix(self) -> str:
        return "" if self.image_ext == NO_EXTENSION else f".{self.image_ext}"

    def channel_path(self, sample_id: str, channel: str) -> Path:
        return self.image_dir / f"{sample_id}_{channel}{self.suffix}"

    def file_path(self, sample_id: str) -> Path:
        return self.image_dir / f"{sample_id}{self.suffix}"

    def files(self, sample_id: str, channels: Sequence[str]) -> list[Path]:
        """The files holding one sample's pixels: one per channel, or the one file."""
        if self.layout == "file":
            return [self.file_path(sample_id)]
        return [self.channel_path(sample_id, channel) for channel in channels]


# ---------------------------------------------------------------- images


TIFF_EXTENSIONS = ("tif", "tiff")


def to_uint8(pixels: np.ndarray, path: Path) -> np.ndarray:
    """uint8 as is; other integer types scaled by their range (16-bit TIFF/PNG -> 0..255)."""
    if pixels.dtype == np.uint8:
        return pixels
    if not np.issubdtype(pixels.dtype, np.integer):
        raise KitError(f"{path}: {pixels.dtype} pixels; expected integer pixels (8 or 16 bit)")
    return (pixels.astype(np.float32) * (255.0 / max(1, np.iinfo(pixels.dtype).max))).astype(np.uint8)


def decode_file(path: Path) -> np.ndarray:
    """One image file -> H x W x C in the file's own channel order (RGB, RGBA, or the TIFF's bands)."""
    if path.suffix.lower().lstrip(".") in TIFF_EXTENSIONS:
        # tifffile keeps every band in file order at its bit depth; OpenCV would reorder 4-band files as BGRA.
        import tifffile

        try:
            pixels = tifffile.imread(path)
        except Exception as err:  # noqa: BLE001 - any decoder failure is one line naming the file
            raise KitError(f"{path}: cannot decode ({type(err).__name__}: {err})") from None
        if pixels.ndim == 3 and pixels.shape[0] < min(pixels.shape[1:]) and pixels.shape[0] <= 16:
            pixels = np.moveaxis(pixels, 0, -1)  # planar (bands first) -> bands last
    else:
        pixels = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if pixels is None:
            raise KitError(f"{path}: cannot decode")
        if pixels.ndim == 3 and pixels.shape[2] in (3, 4):
            pixels = cv2.cvtColor(pixels, cv2.COLOR_BGR2RGB if pixels.shape[2] == 3 else cv2.COLOR_BGRA2RGBA)
    if pixels.ndim == 2:
        pixels = pixels[..., None]
    if pixels.ndim != 3:
        raise KitError(f"{path}: expected an H x W x C image, found shape {pixels.shape}")
    return pixels


def read_sample_file(path: Path, sample_id: str, channels: Sequence[str], windows=None) -> np.ndarray:
    """One sample held in one file (`image_layout: file`), its channels checked against the spec's: a colour
    file read as `channels: [gray]` is converted to gray; a DICOM gives one channel per window."""
    if not path.is_file():
        raise KitError(f"Id {sample_id}: missing image file {path}")
    if path.suffix.lower() == f".{DICOM_EXTENSION}":
        return read_dicom(path, windows)
    pixels = decode_file(path)
    if tuple(channels) == (GRAY,) and pixels.shape[2] in (3, 4):
        pixels = cv2.cvtColor(pixels[..., :3], cv2.COLOR_RGB2GRAY)[..., None]
    if pixels.shape[2] != len(channels):
        raise KitError(f"{path}: {pixels.shape[2]} channel(s), but competition.channels lists {len(channels)} "
                       f"({', '.join(channels)})")
    return np.ascontiguousarray(to_uint8(pixels, path))


def read_image(source: Source, sample_id: str, channels: Sequence[str], windows=None) -> np.ndarray:
    """Read one sample into one H x W x C uint8 array, in `channels` order: its channel files, or its one file
    (`windows`: a DICOM's, see kit.data.dicom)."""
    if source.layout == "file":
        return read_sample_file(source.file_path(sample_id), sample_id, channels, windows)
    planes = []
    for channel in channels:
        path = source.channel_path(sample_id, channel)
        if not path.is_file():
            raise KitError(f"Id {sample_id}: missing channel file {path}")
        plane = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if plane is None:
            raise KitError(f"Id {sample_id}: cannot decode {path}")
        if plane.ndim == 3:  # HPAv18 JPGs are sometimes saved as RGB: the stain is the brightest plane
            plane = plane.max(axis=2)
        plane = to_uint8(plane, path)
        if planes and plane.shape != planes[0].shape:
            raise KitError(
                f"Id {sample_id}: channel {channel} is {plane.shape[1]}x{plane.shape[0]} "
                f"but {channels[0]} is {planes[0].shape[1]}x{planes[0].shape[0]}"
            )
        planes.append(plane)
    return np.stack(planes, axis=-1)


def resize(image: np.ndarray, size: int | None) -> np.ndarray:
    """Resize H x W x C to size x size with area interpolation (the right filter for shrinking)."""
    if size is None or image.shape[:2] == (size, size):
        return image
    channels = image.shape[2]
    # cv2.resize handles at most 4 channels in one call for some interpolations; resize per 4-channel group.
    groups = [cv2.resize(image[..., i : i + 4], (size, size), interpolation=cv2.INTER_AREA) for i in range(0, channels, 4)]
    groups = [g[..., None] if g.ndim == 2 else g for g in groups]
    return np.concatenate(groups, axis=-1)


class ImageStore:
    """Pixels of one split, by position: `ids`, `len(store)`, `read(i)` -> H x W x C uint8."""

    ids: list[str]
    description: str = ""

    def __len__(self) -> int:
        return len(self.ids)

    def read(self, index: int) -> np.ndarray:  # pragma: no cover - interface
        raise NotImplementedError

    def check(self) -> None:
        """Raise KitError if a sample cannot be read at all (checked before hours of training, not during)."""


class DecodingStore(ImageStore):
    """Decodes the image files on every read (and resizes to `size` if given)."""

    def __init__(self, ids: Sequence[str], sources: Sequence[Source] | Source, spec: CompetitionSpec, size: int | None = None):
        self.ids = list(ids)
        self.sources = [sources] if isinstance(sources, Source) else list(sources)
        self.spec = spec
        self.size = size
        self._source_of: dict[str, Source] | None = None
        self.description = f"decoding {spec.image_ext} files" + (f", resized to {size}px" if size else "")

    def source_for(self, sample_id: str) -> Source:
        if len(self.sources) == 1:
            return self.sources[0]
        if self._source_of is None:
            self._source_of = {}
        if sample_id not in self._source_of:
            channels = self.spec.channels
            found = next((s for s in self.sources if s.files(sample_id, channels)[0].is_file()), self.sources[0])
            self._source_of[sample_id] = found
        return self._source_of[sample_id]

    def read(self, index: int) -> np.ndarray:
        sample_id = self.ids[index]
        pixels = read_image(self.source_for(sample_id), sample_id, self.spec.channels, self.spec.windows)
        return resize(pixels, self.size)

    def check(self) -> None:
        """Every image file exists (one stat each; decoding problems still surface when read)."""
        missing = [(sample_id, path) for sample_id in self.ids for path in
                   self.source_for(sample_id).files(sample_id, self.spec.channels) if not path.is_file()]
        if not missing:
            return
        (sample_id, path), more = missing[0], len(missing) - 1
        also = f" (and {more} more)" if more else ""
        if len(self.sources) > 1 and not any(s.files(sample_id, self.spec.channels)[0].is_file() for s in self.sources):
            folders = ", ".join(str(s.image_dir) for s in self.sources)
            raise KitError(f"Id {sample_id}: found in none of the folders {folders} (no {path.name}){also}")
        kind = "image file" if self.sources[0].layout == "file" else "channel file"
        raise KitError(f"Id {sample_id}: missing {kind} {path}{also}")
