"""`kit download` end to end through the real kaggle client, against tests/kaggle_server.py."""
import io
import json
import os
import shutil
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers import error_line

from kit.cli import main
from kit.data.spec import HPA
from kit.kaggle.download import MANIFEST, STAGING, member_target, safe_extract

pytest_plugins = ["kaggle_server"]  # the stand-in server's fixtures: kaggle, stand_in


@pytest.fixture
def competition_files(synth_dir):
    """The synthetic competition's files, by relative path, as the server will send them."""
    return {path.relative_to(synth_dir).as_posix(): path.read_bytes()
            for path in sorted(synth_dir.rglob("*")) if path.is_file()}


@pytest.fixture
def stand_in(competition_files):  # overrides kaggle_server's empty competition
    from kaggle_server import StandIn

    return StandIn(files=competition_files)


def download(data, *extra):
    return CliRunner().invoke(main, ["download", "--data", str(data), *extra])


def tree(root: Path) -> dict:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*")
            if p.is_file() and not p.name.startswith(".")}


def test_download_unzips_everything_and_checks_it(kaggle, competition_files, tmp_path):
    data = tmp_path / "data"
    result = download(data)
    assert result.exit_code == 0, result.output
    assert tree(data) == competition_files
    assert f"downloaded {len(competition_files)} file(s) of {HPA.slug}" in result.output
    assert "data check: 60 train Ids, 12 test Ids; channel files of 6 Ids present" in result.output
    assert kaggle.calls("DownloadDataFiles")[0].json() == {"competitionName": HPA.slug}
    assert not (data / STAGING).exists()  # the archive is removed after extraction
    recorded = json.loads((data / MANIFEST).read_text())[HPA.slug]["*"]["files"]
    assert recorded == {name: len(body) for name, body in competition_files.items()}


def test_files_present_and_complete_are_skipped(kaggle, competition_files, tmp_path):
    data = tmp_path / "data"
    assert download(data).exit_code == 0
    again = download(data)
    assert again.exit_code == 0, again.output
    assert "already present and complete" in again.output
    assert len(kaggle.calls("DownloadDataFiles")) == 1
    (data / "train.csv").write_text("Id,Target\n")  # damaged: downloaded again
    assert download(data).exit_code == 0
    assert len(kaggle.calls("DownloadDataFiles")) == 2
    assert (data / "train.csv").read_bytes() == competition_files["train.csv"]
    assert download(data, "--force").exit_code == 0
    assert len(kaggle.calls("DownloadDataFiles")) == 3


def test_files_put_there_by_hand_are_not_fetched_again(kaggle, synth_dir, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(synth_dir, data)
    result = download(data)
    assert result.exit_code == 0, result.output
    assert "already there (not downloaded by kit)" in result.output and kaggle.calls("DownloadDataFiles") == []
    next(iter((data / "test").iterdir())).unlink()  # one image short: fetched after all
    assert download(data).exit_code == 0 and len(kaggle.calls("DownloadDataFiles")) == 1


def test_keep_archive(kaggle, tmp_path):
    data = tmp_path / "data"
    assert download(data, "--keep-archive").exit_code == 0
    archive = data / STAGING / f"{HPA.slug}.zip"
    assert zipfile.is_zipfile(archive)


def test_one_file(kaggle, competition_files, tmp_path):
    data = tmp_path / "data"
    result = download(data, "--file", "train.csv")
    assert result.exit_code == 0, result.output
    assert tree(data) == {"train.csv": competition_files["train.csv"]}
    assert kaggle.calls("DownloadDataFile")[0].json() == {"competitionName": HPA.slug, "fileName": "train.csv"}
    assert "warning: data check:" in result.output and "sample_submission.csv: file not found" in result.output
    assert "already present" in download(data, "--file", "train.csv").output
    assert len(kaggle.calls("DownloadDataFile")) == 1


def test_one_file_sent_zipped(kaggle, competition_files, tmp_path):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("sample_submission.csv", competition_files["sample_submission.csv"])
    kaggle.files = {"sample_submission.csv.zip": buffer.getvalue()}
    data = tmp_path / "data"
    result = download(data, "--file", "sample_submission.csv")
    assert result.exit_code == 0, result.output
    assert tree(data) == {"sample_submission.csv": competition_files["sample_submission.csv"]}


def test_an_archive_leaving_the_folder_is_refused(kaggle, tmp_path):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("train.csv", "Id,Target\n")
        zf.writestr("../escaped.txt", "gotcha")
    kaggle.archive = buffer.getvalue()
    data = tmp_path / "data"
    line = error_line(download(data))
    assert "member '../escaped.txt' would be written outside" in line and "refusing" in line
    assert not (tmp_path / "escaped.txt").exists()
    assert not (data / "train.csv").exists()  # nothing is extracted from a refused archive


def test_an_incomplete_download_fails_the_data_check(kaggle, competition_files, tmp_path):
    kaggle.files = {name: body for name, body in competition_files.items() if not name.startswith("test/")}
    line = error_line(download(tmp_path / "data"))
    assert "test/" in line and "missing channel file" in line and "_red.png" in line and "incomplete" in line


def test_download_errors(kaggle, tmp_path):
    line = error_line(download(tmp_path / "data", "--competition", "no-such-comp"))
    assert "competition 'no-such-comp' not found on Kaggle (404)" in line
    line = error_line(download(tmp_path / "data", "--file", "nope.csv"))
    assert f"competition '{HPA.slug}' has no file 'nope.csv' (404)" in line
    kaggle.rules_accepted = False
    assert "accept the competition's rules" in error_line(download(tmp_path / "data"))


def test_download_retries_server_errors(kaggle, competition_files, tmp_path):
    kaggle.fail("DownloadDataFiles", 500, "drop")
    result = download(tmp_path / "data")
    assert result.exit_code == 0, result.output
    assert len(kaggle.calls("DownloadDataFiles")) == 3
    assert tree(tmp_path / "data") == competition_files
    kaggle.fail("DownloadDataFiles", *[502] * 5)
    line = error_line(download(tmp_path / "data", "--force"))
    assert "Kaggle answered 502 (server error) 3 time(s)" in line


@pytest.mark.parametrize("name, inside", [
    ("train.csv", True), ("train/a_red.png", True), ("a/../b.csv", True),
    ("../x", False), ("a/../../x", False), ("/etc/passwd", False), ("..\\x", False), ("C:/x", False), ("", False),
])
def test_member_paths(tmp_path, name, inside):
    assert (member_target(tmp_path, name) is not None) == inside


def test_safe_extract_keeps_complete_members(tmp_path):
    archive = tmp_path / "a.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("x/one.txt", "1111")
        zf.writestr("two.txt", "22")
    root = tmp_path / "out"
    assert safe_extract(archive, root) == {"x/one.txt": 4, "two.txt": 2}
    (root / "two.txt").write_text("ab")  # same size: kept as is
    (root / "x" / "one.txt").write_text("1")  # truncated: written again
    safe_extract(archive, root)
    assert (root / "two.txt").read_text() == "ab" and (root / "x" / "one.txt").read_text() == "1111"


def zip_of(members: dict[str, bytes], compression=zipfile.ZIP_STORED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as zf:
        for name, body in members.items():
            zf.writestr(name, body)
    return buffer.getvalue()


def corrupt_member(archive: bytes, body: bytes) -> bytes:
    """The archive with one byte of a stored member's data flipped: the CRC no longer matches."""
    at = archive.index(body) + len(body) // 2
    return archive[:at] + bytes([archive[at] ^ 0xFF]) + archive[at + 1:]


@pytest.mark.parametrize("archive", [
    pytest.param(b"<html>Service Unavailable</html>", id="not a zip"),
    pytest.param(zip_of({"train.csv": b"Id,Target\n" * 50})[:60], id="truncated"),
    pytest.param(corrupt_member(zip_of({"train.csv": b"Id,Target\n" + b"a,0\n" * 50}), b"a,0\n" * 50),
                 id="bad CRC"),
])
def test_a_bad_archive_is_one_line_and_a_second_download_repairs_it(kaggle, competition_files, tmp_path, archive):
    kaggle.archive = archive
    data = tmp_path / "data"
    line = error_line(download(data))
    assert "zip archive" in line and "download again" in line
    assert not (data / "train.csv").exists() and not (data / "sample_submission.csv").exists()
    assert not (data / STAGING / f"{HPA.slug}.zip").exists()  # not found in place by the next download
    kaggle.archive = None  # the server sends a good archive now
    result = download(data)
    assert result.exit_code == 0, result.output
    assert tree(data) == competition_files


@pytest.mark.parametrize("name", ["../x", "../data2/train.csv", "/etc/passwd", "a/../../x"])
def test_a_file_outside_the_data_folder_is_refused_before_any_request(kaggle, tmp_path, name):
    line = error_line(download(tmp_path / "data", "--file", name))
    assert f"--file {name!r}: expected a path inside the data folder" in line
    assert kaggle.requests == [] and not (tmp_path / "x").exists()


def test_a_symlinked_data_folder_and_image_folder_are_written_through(kaggle, competition_files, tmp_path):
    disk = tmp_path / "big-disk"
    (disk / "data").mkdir(parents=True)
    (disk / "train-images").mkdir()
    (tmp_path / "data").symlink_to(disk / "data", target_is_directory=True)  # data/ on another disk
    (disk / "data" / "train").symlink_to(disk / "train-images", target_is_directory=True)  # train/ on a third
    result = download(tmp_path / "data")
    assert result.exit_code == 0, result.output
    through_links = {}
    for folder, _, names in os.walk(tmp_path / "data", followlinks=True):
        for name in names:
            path = Path(folder) / name
            if not path.relative_to(tmp_path / "data").as_posix().startswith("."):
                through_links[path.relative_to(tmp_path / "data").as_posix()] = path.read_bytes()
    assert through_links == competition_files
    assert (tmp_path / "data").is_symlink() and (disk / "data" / "train").is_symlink()  # links kept, not replaced
    train_images = {name for name in competition_files if name.startswith("train/")}
    assert {f"train/{p.name}" for p in (disk / "train-images").iterdir()} == train_images
    assert "already present and complete" in download(tmp_path / "data").output


def packed(kind: str, members: dict[str, bytes]) -> bytes:
    """An archive of `members` made with py7zr or tarfile (not kit)."""
    buffer = io.BytesIO()
    if kind == "7z":
        py7zr = pytest.importorskip("py7zr")
        with py7zr.SevenZipFile(buffer, "w") as archive:
            for name, body in members.items():
                archive.writestr(body, name)
    else:
        import tarfile

        with tarfile.open(fileobj=buffer, mode="w") as archive:
            for name, body in members.items():
                info = tarfile.TarInfo(name)
                info.size = len(body)
                archive.addfile(info, io.BytesIO(body))
    return buffer.getvalue()


def flipped(body: bytes, start: int, stop: int) -> bytes:
    damaged = bytearray(body)
    for i in range(start, stop):
        damaged[i] ^= 0xFF
    return bytes(damaged)


@pytest.mark.parametrize("kind,damage", [("7z", "flipped"), ("7z", "cut"), ("tar", "cut")])
def test_a_damaged_archive_inside_the_download_is_one_line_removed_and_nothing_half_written(
        kaggle, competition_files, tmp_path, kind, damage):
    body = packed(kind, {"extra/a.bin": os.urandom(20000), "extra/b.txt": b"hello"})
    body = flipped(body, 100, 200) if damage == "flipped" else body[:len(body) // 2]
    kaggle.files = {**competition_files, f"extra.{kind}": body}
    data = tmp_path / "data"
    line = error_line(download(data))
    assert f"extra.{kind}: the {kind} archive is damaged" in line and "download again" in line
    assert not (data / f"extra.{kind}").exists()  # removed: the next download fetches it anew
    assert not (data / "extra").exists() and not list(data.glob(".extra*"))  # no member, no staging folder


def test_a_7z_and_a_tar_inside_the_download_are_extracted_and_removed(kaggle, competition_files, tmp_path):
    kaggle.files = {**competition_files, "a.7z": packed("7z", {"seven/x.txt": b"seven"}),
                    "b.tar": packed("tar", {"tarred/y.txt": b"tar"})}
    data = tmp_path / "data"
    result = download(data)
    assert result.exit_code == 0, result.output
    assert (data / "seven" / "x.txt").read_bytes() == b"seven" and (data / "tarred" / "y.txt").read_bytes() == b"tar"
    assert not (data / "a.7z").exists() and not (data / "b.tar").exists()


def test_a_tar_member_leaving_the_folder_is_refused(kaggle, competition_files, tmp_path):
    kaggle.files = {**competition_files, "evil.tar": packed("tar", {"../evil.txt": b"gotcha", "ok.txt": b"ok"})}
    data = tmp_path / "data"
    line = error_line(download(data))
    assert "member '../evil.txt' would be written outside" in line
    assert not (tmp_path / "evil.txt").exists() and not (data / "ok.txt").exists() and not (data / "evil.tar").exists()
