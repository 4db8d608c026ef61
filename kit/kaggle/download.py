"""`kit download`: the competition's files through the Kaggle API, unzipped safely, then checked.

Archives are fetched into `<data>/.kit-download/` (where kaggle's own resume and skip logic works), then
extracted member by member, each written atomically; a member whose path would leave the data folder makes
the whole archive refused before anything is written. `<data>/.kit-download.json` records what each
download produced (name and size of every file), so a repeated download is skipped while all of it is there.
"""
from __future__ import annotations

import json
import os
import posixpath
import shutil
import tempfile
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from kit.data.reading import CompetitionData, DecodingStore
from kit.data.spec import CompetitionSpec
from kit.errors import KitError
from kit.io import atomic_open, atomic_path, write_text

STAGING = ".kit-download"
MANIFEST = ".kit-download.json"
ALL = "*"


@dataclass
class DataCheck:
    train: int
    test: int
    ids_checked: list[str]


@dataclass
class DownloadResult:
    data_dir: Path
    competition: str
    files: dict[str, int] = field(default_factory=dict)
    skipped: bool = False
    check: DataCheck | None = None
    problem: str = ""


# ---------------------------------------------------------------- safe unzip


def member_target(root: Path, name: str) -> Path | None:
    """Where archive member `name` goes under `root`, or None if its path would leave `root`."""
    if not name or "\x00" in name:
        return None
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or (path.parts and ":" in path.parts[0]):  # /etc/x, C:/x
        return None
    normal = posixpath.normpath(str(path))
    if normal == ".." or normal.startswith("../"):
        return None
    return root / normal


def safe_extract(archive: str | os.PathLike, root: str | os.PathLike, progress: bool = False) -> dict[str, int]:
    """Extract a zip into `root`; returns {relative path: size}. Members already there at full size are kept."""
    from tqdm import tqdm

    archive, root = Path(archive), Path(root)
    try:
        zf = zipfile.ZipFile(archive)
    except zipfile.BadZipFile:
        raise KitError(f"{archive}: not a valid zip archive; download again") from None
    with zf:
        members = [info for info in zf.infolist() if not info.is_dir()]
        targets = {}
        for info in zf.infolist():
            target = member_target(root, info.filename)
            if target is None:
                raise KitError(f"{archive}: member {info.filename!r} would be written outside {root}; "
                               "refusing to extract this archive")
            targets[info.filename] = target
        written = {}
        for info in tqdm(members, desc=f"unzip {archive.name}", unit="file", disable=not progress):
            target = targets[info.filename]
            written[target.relative_to(root).as_posix()] = info.file_size
            if target.is_file() and target.stat().st_size == info.file_size:
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                with zf.open(info) as source, atomic_open(target, "wb") as out:
                    shutil.copyfileobj(source, out, 1 << 20)
            except (zipfile.BadZipFile, zlib.error, EOFError) as err:  # a damaged member (bad CRC, cut short)
                raise KitError(f"{archive}: member {info.filename!r} of the zip archive is damaged ({err}); "
                               "download again") from None
    return written


def extract_or_discard(archive: Path, root: Path, progress: bool) -> dict[str, int]:
    """`safe_extract`, removing an archive it refuses (damaged or unsafe), so the next download fetches it anew
    rather than finding it in place."""
    try:
        return safe_extract(archive, root, progress)
    except KitError:
        archive.unlink(missing_ok=True)
        raise


def _unpack(path: Path, kind: str, staging: Path) -> None:
    """Every member of the 7z or tar archive `path` into `staging`, each member's path checked first."""
    if kind == "7z":
        import py7zr

        with py7zr.SevenZipFile(path) as archive:
            _check_members(path, staging, archive.getnames())
            archive.extractall(staging)
            return
    import tarfile

    with tarfile.open(path) as archive:
        _check_members(path, staging, archive.getnames())
        archive.extractall(staging, filter="data")  # also refuses links leaving the folder


def _check_members(archive: Path, root: Path, names) -> None:
    for name in names:
        if member_target(root, name) is None:
            raise KitError(f"{archive}: member {name!r} would be written outside {archive.parent}; "
                           "refusing to extract this archive")


def extract_staged(path: Path, kind: str, progress: bool = False) -> list[str]:
    """Extract the 7z or tar archive `path` beside itself, as safely as a zip: member paths are checked against
    leaving the folder before anything is written, members land in a staging folder and are renamed into place
    only once all are out (an interrupted or failed extraction leaves nothing half-written), and a damaged or
    unsafe archive is one line and removed, so the next `kit download` fetches it anew. Returns the files
    written, relative to the archive's folder (links are not kept)."""
    from tqdm import tqdm

    root = path.parent
    staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".extract", dir=root))
    try:
        try:
            _unpack(path, kind, staging)
        except KitError:
            raise
        except Exception as err:  # py7zr and tarfile raise many types for a damaged archive (CRC, EOF, LZMA)
            raise KitError(f"{path}: the {kind} archive is damaged ({type(err).__name__}: {err}); "
                           "download again") from None
        members = sorted(p.relative_to(staging) for p in staging.rglob("*") if p.is_file() and not p.is_symlink())
        for member in tqdm(members, desc=f"extract {path.name}", unit="file", disable=not progress):
            target = root / member
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(staging / member, target)
    except KitError:
        path.unlink(missing_ok=True)
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return [member.as_posix() for member in members]


def expand_nested(data_dir: Path, files: dict[str, int], progress: bool = False,
                  echo: Callable[[str], None] = lambda line: None) -> dict[str, int]:
    """Archives among the downloaded files (Planet ships `train_v2.csv.zip` and `train-jpg.tar.7z` inside its
    archive) are extracted beside themselves and removed: zip (`safe_extract`), tar and 7z (`extract_staged`;
    7z through py7zr where it is installed, else a line saying how), all refusing members that leave the folder.
    Returns the files as they are afterwards."""
    out = dict(files)
    for name in sorted(files):
        path = data_dir / name
        lower = name.lower()
        if lower.endswith(".7z"):
            try:
                import py7zr  # noqa: F401
            except ImportError:
                echo(f"{path}: a 7z archive; extract it there (`7z x {path.name}`, then `tar xf` the .tar inside) "
                     "or `pip install py7zr` and run kit download again")
                continue
            added = {(path.parent / member).relative_to(data_dir).as_posix()
                     for member in extract_staged(path, "7z", progress)}
        elif lower.endswith(".tar"):
            added = {(path.parent / member).relative_to(data_dir).as_posix()
                     for member in extract_staged(path, "tar", progress)}
        elif lower.endswith(".zip") and zipfile.is_zipfile(path):
            added = {(path.parent.relative_to(data_dir) / member).as_posix()
                     for member in extract_or_discard(path, path.parent, progress)}
        else:
            continue
        path.unlink()
        del out[name]
        new = {member: (data_dir / member).stat().st_size for member in added}
        out.update(expand_nested(data_dir, new, progress, echo))  # a .tar inside a .7z
    return out


# ---------------------------------------------------------------- the record of what was downloaded


def read_manifest(data_dir: Path) -> dict:
    try:
        manifest = json.loads((data_dir / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return manifest if isinstance(manifest, dict) else {}


def complete(data_dir: Path, files: dict[str, int]) -> bool:
    """Every file recorded for a download is still there, at its recorded size."""
    return bool(files) and all((data_dir / name).is_file() and (data_dir / name).stat().st_size == size
                               for name, size in files.items())


def recorded_files(data_dir: Path, competition: str, key: str) -> dict[str, int]:
    entry = read_manifest(data_dir).get(competition, {}).get(key, {})
    files = entry.get("files") if isinstance(entry, dict) else None
    return {str(k): int(v) for k, v in files.items()} if isinstance(files, dict) else {}


def record_files(data_dir: Path, competition: str, key: str, files: dict[str, int]) -> None:
    manifest = read_manifest(data_dir)
    manifest.setdefault(competition, {})[key] = {"files": files}
    write_text(data_dir / MANIFEST, json.dumps(manifest, indent=1, sort_keys=True))


# ---------------------------------------------------------------- checking the result


def check_data(data_dir: str | os.PathLike, spec: CompetitionSpec, sample: int = 3) -> DataCheck:
    """Read the labels and test Ids with the data layer and check the channel files of a few Ids of each."""
    data = CompetitionData(Path(data_dir), spec)
    labels = data.train_labels()
    test_ids = data.test_ids()
    checked = []
    for sources, ids in (([data.train_source], labels["Id"].tolist()), (data.test_sources(), test_ids)):
        picks = sorted({round(i * (len(ids) - 1) / max(1, sample - 1)) for i in range(sample)}) if ids else []
        store = DecodingStore([ids[i] for i in picks], sources, data.spec)
        try:
            store.check()
        except KitError as err:
            raise KitError(f"{err}; the download looks incomplete") from None
        checked.extend(store.ids)
    return DataCheck(train=len(labels), test=len(test_ids), ids_checked=checked)


def every_file_present(data_dir: Path, spec: CompetitionSpec) -> bool:
    """train.csv and the sample submission read cleanly and every channel file of every Id exists."""
    data = CompetitionData(data_dir, spec)
    try:
        DecodingStore(data.train_labels()["Id"].tolist(), data.train_source, data.spec).check()
        DecodingStore(data.test_ids(), data.test_sources(), data.spec).check()
    except KitError:
        return False
    return True


# ---------------------------------------------------------------- the download


def download(data_dir: str | os.PathLike, spec: CompetitionSpec, *, competition: str | None = None,
             file_name: str | None = None, force: bool = False, keep_archive: bool = False, progress: bool = True,
             policy=None, echo: Callable[[str], None] | None = None) -> DownloadResult:
    """Download the competition's files (or one, `file_name`) into `data_dir` and check the result.

    Skipped when a previous download is recorded and all its files are present at full size (`force`
    downloads again). Archives are removed after extraction unless `keep_archive`. A full download that
    fails the data check raises KitError; after a single-file download the check's problem is only reported.
    """
    from kit.kaggle.client import KaggleSession

    data_dir = Path(data_dir)
    competition = competition or spec.slug
    echo = echo or (lambda line: None)
    if file_name is not None and member_target(data_dir, file_name) is None:
        raise KitError(f"--file {file_name!r}: expected a path inside the data folder")
    key = file_name or ALL
    result = DownloadResult(data_dir=data_dir, competition=competition)
    recorded = recorded_files(data_dir, competition, key)
    if not force and complete(data_dir, recorded):
        result.files, result.skipped = recorded, True
    elif not force and file_name is None and not recorded and every_file_present(data_dir, spec):
        # Put there by hand (or by the kaggle CLI): every listed image is there, so nothing to fetch.
        result.skipped = True
        result.files = {path.relative_to(data_dir).as_posix(): path.stat().st_size
                        for path in (data_dir / spec.train_csv, data_dir / spec.sample_submission)}
        echo(f"{data_dir}: the competition files are already there (not downloaded by kit); --force downloads "
             "them again")
    else:
        staging = data_dir / STAGING
        session = KaggleSession(competition, policy, echo=echo)
        if file_name is None:
            fetched = session.download_all(staging, force=force, quiet=not progress)
            result.files = extract_or_discard(fetched, data_dir, progress)
        else:
            fetched = session.download_file(file_name, staging, force=force, quiet=not progress)
            target = member_target(data_dir, file_name)
            if fetched.suffix == ".zip" and not file_name.endswith(".zip") and zipfile.is_zipfile(fetched):
                files = extract_or_discard(fetched, target.parent, progress)
                prefix = target.parent.relative_to(data_dir)
                result.files = {(prefix / name).as_posix(): size for name, size in files.items()}
            else:
                with atomic_path(target) as tmp:
                    shutil.copyfile(fetched, tmp)
                result.files = {target.relative_to(data_dir).as_posix(): target.stat().st_size}
        result.files = expand_nested(data_dir, result.files, progress, echo)
        record_files(data_dir, competition, key, result.files)
        if not keep_archive:
            fetched.unlink(missing_ok=True)
            with_contents = any(staging.iterdir()) if staging.is_dir() else True
            if not with_contents:
                staging.rmdir()
    try:
        result.check = check_data(data_dir, spec)
    except KitError as err:
        if file_name is None:
            raise
        result.problem = str(err)
    return result
