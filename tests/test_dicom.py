"""DICOM slices: Hounsfield units from the raw tags (signed and unsigned storage), windows as 8-bit channels, the
file's own window, and the files that cannot be read, each one line naming the file."""
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, JPEG2000Lossless, SecondaryCaptureImageStorage, generate_uid

from kit.data.dicom import read_dicom
from kit.data.images import DecodingStore, Source
from kit.data.spec import spec_from_dict
from kit.errors import KitError

WINDOWS = [[40, 80], [80, 200], [40, 380]]


def write_slice(path: Path, stored: np.ndarray, slope: float, intercept: float, window=None, pixels=True,
                syntax=ExplicitVRLittleEndian, photometric="MONOCHROME2") -> Path:
    """A CT-like slice written with pydicom: `stored` int16 (PixelRepresentation 1) or uint16 (0)."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = syntax
    ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.Modality = "CT"
    ds.Rows, ds.Columns = stored.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, photometric
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 16, 15
    ds.PixelRepresentation = 1 if stored.dtype == np.int16 else 0
    ds.RescaleSlope, ds.RescaleIntercept = slope, intercept
    if window is not None:
        ds.WindowCenter, ds.WindowWidth = window
    if pixels and syntax == ExplicitVRLittleEndian:
        ds.PixelData = stored.tobytes()
    elif pixels:
        from pydicom.encaps import encapsulate

        ds.PixelData = encapsulate([b"\xff\x4f\xff\x51" + b"\0" * 64])  # a JPEG 2000 codestream's first marker
        ds["PixelData"].VR = "OB"
    ds.save_as(path, enforce_file_format=True)
    return path


def expected_window(hu: np.ndarray, center: float, width: float) -> np.ndarray:
    return np.rint(np.clip((hu - (center - width / 2)) / width * 255, 0, 255)).astype(np.uint8)


@pytest.fixture
def slices(tmp_path):
    rng = np.random.default_rng(0)
    signed = rng.integers(-2000, 2000, size=(24, 20)).astype(np.int16)
    unsigned = rng.integers(0, 4095, size=(24, 20)).astype(np.uint16)
    return {
        "signed": (write_slice(tmp_path / "ID_signed.dcm", signed, 1.0, 0.0), signed, 1.0, 0.0),
        "unsigned": (write_slice(tmp_path / "ID_unsigned.dcm", unsigned, 1.0, -1024.0), unsigned, 1.0, -1024.0),
        "scaled": (write_slice(tmp_path / "ID_scaled.dcm", unsigned, 0.5, -300.0), unsigned, 0.5, -300.0),
    }


@pytest.mark.parametrize("kind", ["signed", "unsigned", "scaled"])
def test_windows_are_hounsfield_units_through_each_window(slices, kind):
    path, stored, slope, intercept = slices[kind]
    raw = pydicom.dcmread(path)
    assert int(raw.PixelRepresentation) == (1 if kind == "signed" else 0)
    # HU from the raw bytes and tags alone: the stored integers in the file's signedness, times slope, plus
    # intercept.
    dtype = np.int16 if int(raw.PixelRepresentation) else np.uint16
    hu = np.frombuffer(raw.PixelData, dtype=dtype).reshape(raw.Rows, raw.Columns).astype(np.float64)
    hu = hu * float(raw.RescaleSlope) + float(raw.RescaleIntercept)
    np.testing.assert_array_equal(hu, stored.astype(np.float64) * slope + intercept)
    image = read_dicom(path, WINDOWS)
    assert image.shape == (24, 20, 3) and image.dtype == np.uint8
    for c, (center, width) in enumerate(WINDOWS):
        np.testing.assert_array_equal(image[..., c], expected_window(hu, center, width))


def test_window_edges_are_exact(tmp_path):
    stored = np.array([[0, 1000, 1024, 1064, 1064 + 40, 2000]], dtype=np.uint16)  # HU -1024, -24, 0, 40, 80, 976
    path = write_slice(tmp_path / "edge.dcm", stored, 1.0, -1024.0)
    brain = read_dicom(path, [[40, 80]])[0, :, 0]
    assert brain.tolist() == [0, 0, 0, 128, 255, 255]  # 0 HU at the window's low edge, 40 HU its middle


def test_without_windows_the_ct_range_is_scaled(slices):
    path, stored, slope, intercept = slices["signed"]
    hu = stored.astype(np.float64) * slope + intercept
    np.testing.assert_array_equal(read_dicom(path, None)[..., 0], expected_window(hu, 1023.5, 4095))


def test_a_monochrome1_slice_is_inverted_to_show_like_monochrome2(tmp_path):
    stored = np.random.default_rng(3).integers(0, 4095, size=(16, 12)).astype(np.uint16)
    normal = read_dicom(write_slice(tmp_path / "m2.dcm", stored, 1.0, -1024.0), WINDOWS)
    inverted = read_dicom(write_slice(tmp_path / "m1.dcm", stored, 1.0, -1024.0, photometric="MONOCHROME1"), WINDOWS)
    hu = stored.astype(np.float64) - 1024.0
    for c, (center, width) in enumerate(WINDOWS):
        assert np.array_equal(normal[..., c], expected_window(hu, center, width))
        assert np.array_equal(inverted[..., c], 255 - expected_window(hu, center, width))


def test_windows_file_takes_the_first_of_several(tmp_path):
    stored = np.arange(0, 4000, 10, dtype=np.uint16).reshape(20, 20)
    path = write_slice(tmp_path / "own.dcm", stored, 1.0, -1024.0, window=([40, 600], [80, 1500]))
    hu = stored.astype(np.float64) - 1024
    np.testing.assert_array_equal(read_dicom(path, "file")[..., 0], expected_window(hu, 40, 80))
    single = write_slice(tmp_path / "single.dcm", stored, 1.0, -1024.0, window=(300, 1500))
    np.testing.assert_array_equal(read_dicom(single, "file")[..., 0], expected_window(hu, 300, 1500))


def test_a_store_reads_dicom_through_the_spec(slices):
    spec = spec_from_dict({"image_ext": "dcm", "image_layout": "file", "windows": WINDOWS,
                           "channels": ["brain", "subdural", "soft"], "classes": ["a", "b"]})
    path, stored, slope, intercept = slices["unsigned"]
    store = DecodingStore([path.stem], Source(path.parent, "dcm", "file"), spec, size=12)
    assert store.read(0).shape == (12, 12, 3)


def test_no_pixel_data_is_one_line_naming_the_file(tmp_path):
    path = write_slice(tmp_path / "empty.dcm", np.zeros((4, 4), np.int16), 1.0, 0.0, pixels=False)
    with pytest.raises(KitError) as err:
        read_dicom(path, WINDOWS)
    assert str(err.value).startswith(str(path)) and "no pixel data" in str(err.value)
    assert "\n" not in str(err.value)


def test_a_transfer_syntax_without_its_decoder_names_the_package(tmp_path):
    pytest.importorskip("pydicom")
    try:
        import openjpeg  # noqa: F401 - with the decoder installed there is nothing to refuse
        pytest.skip("pylibjpeg-openjpeg is installed")
    except ImportError:
        pass
    path = write_slice(tmp_path / "j2k.dcm", np.zeros((4, 4), np.int16), 1.0, 0.0, syntax=JPEG2000Lossless)
    with pytest.raises(KitError) as err:
        read_dicom(path, WINDOWS)
    message = str(err.value)
    assert message.startswith(str(path)) and "pip install pylibjpeg-openjpeg" in message and "\n" not in message


def test_not_a_dicom_file(tmp_path):
    path = tmp_path / "text.dcm"
    path.write_text("not a dicom file")
    with pytest.raises(KitError, match="not a readable DICOM file"):
        read_dicom(path, None)


def test_a_dicom_cache_made_by_another_decoder_version_is_rebuilt(tmp_path):
    """A cache records the DICOM decoder's version: one made before a decoding change (MONOCHROME1 inversion)
    is stale, said in one line, and `build_cache` rebuilds it."""
    import json

    from kit.data.cache import CacheStore, build_cache, lookup_cache
    from kit.data.presets import get_preset
    from kit.data.reading import CompetitionData
    from kit.data.synth_probability import write_probability_preset

    write_probability_preset(tmp_path / "data", "rsna-ich-2019", n_train=8, n_test=2, size=32, seed=0)
    data = CompetitionData(tmp_path / "data", get_preset("rsna-ich-2019").spec())
    ids = data.train_labels()["Id"].tolist()
    build_cache(data, 32, workers=1, splits=["train"])
    assert isinstance(lookup_cache(data, "train", 32, ids)[0], CacheStore)
    manifest_path = tmp_path / "data" / "cache" / "32px" / "train.json"
    manifest = json.loads(manifest_path.read_text())
    assert manifest["dicom_decoder"] >= 2
    del manifest["dicom_decoder"]  # as a cache written before the version was recorded
    manifest_path.write_text(json.dumps(manifest))
    store, message = lookup_cache(data, "train", 32, ids)
    assert store is None and "dicom_decoder changed (None in the cache, 2 now)" in message
    assert "dicom_decoder changed" in build_cache(data, 32, workers=1, splits=["train"])[0].rebuilt_because
