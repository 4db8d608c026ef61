"""DICOM images (`image_ext: dcm`): pixels to Hounsfield units, HU windows to 8-bit channels.

Pixels become Hounsfield units through the file's RescaleSlope and RescaleIntercept (pydicom's modality LUT), for
signed and unsigned storage alike (PixelRepresentation says which; pydicom reads the stored integers as such).
Each (center, width) window maps HU linearly onto 0..255, `center - width/2` to 0 and `center + width/2` to 255,
clipped (the windowing of RSNA's winners; DICOM's own VOI formula differs by half a unit, nothing a model sees).
`windows: file` takes the file's own WindowCenter/WindowWidth (the first, where several are listed); without
`windows` the HU range -1024..3071 is scaled to 0..255. A MONOCHROME1 file (an X-ray that shows low values
bright) comes out inverted, so every image shows dense tissue bright as MONOCHROME2 files do.
"""
from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from kit.errors import KitError

HU_RANGE = (-1024.0, 3071.0)  # what a 12-bit CT stores, air to dense bone: the range scaled without windows

# What `pip install` adds the decoder of a compressed transfer syntax pydicom does not decode by itself.
DECODERS = {
    "1.2.840.10008.1.2.4.50": "pylibjpeg-libjpeg",  # JPEG baseline
    "1.2.840.10008.1.2.4.51": "pylibjpeg-libjpeg",  # JPEG extended
    "1.2.840.10008.1.2.4.57": "pylibjpeg-libjpeg",  # JPEG lossless
    "1.2.840.10008.1.2.4.70": "pylibjpeg-libjpeg",  # JPEG lossless, first-order prediction
    "1.2.840.10008.1.2.4.80": "pyjpegls",  # JPEG-LS lossless
    "1.2.840.10008.1.2.4.81": "pyjpegls",  # JPEG-LS near-lossless
    "1.2.840.10008.1.2.4.90": "pylibjpeg-openjpeg",  # JPEG 2000 lossless
    "1.2.840.10008.1.2.4.91": "pylibjpeg-openjpeg",  # JPEG 2000
}


def read_dataset(path: Path):
    """The parsed file, or one line naming it when it is not DICOM."""
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        return pydicom.dcmread(path)
    except (InvalidDicomError, OSError, ValueError, EOFError) as err:
        raise KitError(f"{path}: not a readable DICOM file ({type(err).__name__}: {err})") from None


def stored_pixels(dataset, path: Path) -> np.ndarray:
    """The slice's stored integers (pydicom applies PixelRepresentation and BitsStored), or one line naming the file
    and what is missing."""
    if "PixelData" not in dataset:
        raise KitError(f"{path}: no pixel data (the DICOM file has no PixelData element)")
    try:
        stored = dataset.pixel_array
    except Exception as err:  # noqa: BLE001 - pydicom raises several types for a missing decoder
        syntax = dataset.file_meta.get("TransferSyntaxUID") if hasattr(dataset, "file_meta") else None
        if syntax is not None and getattr(syntax, "is_compressed", False):
            package = DECODERS.get(str(syntax), "pylibjpeg")
            raise KitError(f"{path}: transfer syntax {syntax.name} ({syntax}) cannot be decoded here: "
                           f"pip install {package}") from None
        raise KitError(f"{path}: cannot decode the pixel data ({type(err).__name__}: {err})") from None
    if stored.ndim != 2:
        raise KitError(f"{path}: pixel data of shape {stored.shape}; expected one 2-D slice")
    return stored


def rescale(dataset) -> tuple[float, float]:
    return float(dataset.get("RescaleSlope", 1.0) or 1.0), float(dataset.get("RescaleIntercept", 0.0) or 0.0)


def hounsfield(dataset, path: Path) -> np.ndarray:
    """H x W float64 Hounsfield units of one slice (pydicom's modality LUT: RescaleSlope and RescaleIntercept, or
    a Modality LUT Sequence where the file has one)."""
    from pydicom.pixels import apply_modality_lut

    return np.asarray(apply_modality_lut(stored_pixels(dataset, path), dataset), dtype=np.float64)


def window(hu: np.ndarray, center: float, width: float) -> np.ndarray:
    """Hounsfield units -> uint8 through one (center, width) window."""
    low = center - width / 2.0
    return np.rint(np.clip((np.asarray(hu, dtype=np.float64) - low) * (255.0 / width), 0.0, 255.0)).astype(np.uint8)


@functools.lru_cache(maxsize=64)
def window_table(dtype: str, slope: float, intercept: float, windows: tuple) -> np.ndarray:
    """Each 16-bit stored value's 8-bit values through the windows (up to 4), packed into one uint32 per value.
    Reading a slice is then one 4-byte table look-up per pixel instead of float arithmetic over it, about 50x
    faster (the same numbers: the table is `window` of the HU of every stored value)."""
    values = np.arange(65536, dtype=np.uint16).view(dtype).astype(np.float64)
    hu = values * slope + intercept
    packed = np.zeros((65536, 4), dtype=np.uint8)
    for c, (center, width) in enumerate(windows):
        packed[:, c] = window(hu, center, width)
    return packed.view(np.uint32).ravel()


def windowed(stored: np.ndarray, table: np.ndarray, channels: int) -> np.ndarray:
    """H x W x channels uint8 of a 16-bit slice through a packed `window_table`."""
    import cv2

    looked_up = np.take(table, stored.view(np.uint16)).view(np.uint8).reshape(*stored.shape, 4)
    # OpenCV drops the padding bytes ~20x faster than numpy's strided copy of 3 (or 1) bytes in 4.
    if channels == 3:
        return cv2.cvtColor(looked_up, cv2.COLOR_RGBA2RGB)
    if channels == 1:
        return cv2.extractChannel(looked_up, 0)[..., None]
    return np.ascontiguousarray(looked_up[..., :channels])


def first_value(value) -> float:
    """WindowCenter/WindowWidth may list several values (multi-valued): the first is the primary window."""
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        value = value[0]
    return float(value)


def file_window(dataset, path: Path) -> tuple[float, float]:
    if "WindowCenter" not in dataset or "WindowWidth" not in dataset:
        raise KitError(f"{path}: no WindowCenter/WindowWidth, which windows: file reads (list windows in kit.yaml)")
    center, width = first_value(dataset.WindowCenter), first_value(dataset.WindowWidth)
    if not width > 0:
        raise KitError(f"{path}: WindowWidth {width} is not positive")
    return center, width


def read_dicom(path: Path, windows: Sequence[Sequence[float]] | str | None) -> np.ndarray:
    """One DICOM slice -> H x W x C uint8: one channel per window (in order), the file's own window, or the HU
    range -1024..3071 scaled."""
    dataset = read_dataset(path)
    if windows == "file":
        chosen = (file_window(dataset, path),)
    elif windows is None:
        low, high = HU_RANGE
        chosen = (((low + high) / 2.0, high - low),)
    else:
        chosen = tuple((float(c), float(w)) for c, w in windows)
    stored = stored_pixels(dataset, path)
    if stored.dtype in (np.int16, np.uint16) and len(chosen) <= 4 and "ModalityLUTSequence" not in dataset:
        image = windowed(stored, window_table(stored.dtype.str, *rescale(dataset), chosen), len(chosen))
    else:
        hu = hounsfield(dataset, path)
        image = np.stack([window(hu, center, width) for center, width in chosen], axis=-1)
    if str(dataset.get("PhotometricInterpretation", "")).strip() == "MONOCHROME1":
        np.subtract(255, image, out=image)
    return image


# What a DICOM becomes changed with this number: a cache of DICOMs made by another records another and is rebuilt.
# 2: MONOCHROME1 files are inverted.
DECODER_VERSION = 2


def window_meta(spec) -> dict:
    """What a cache records of how DICOMs were decoded: their windows (a DICOM's pixels are its windowed channels,
    so other windows mean another cache) and the decoder's version; nothing for other images, whose caches stay
    valid."""
    if spec.image_ext.lower() != "dcm":
        return {}
    windows = {} if spec.windows is None else {"windows": spec.to_dict()["windows"]}
    return {**windows, "dicom_decoder": DECODER_VERSION}
