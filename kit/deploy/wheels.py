"""The wheels a Kaggle notebook without internet installs from: kit's own, built from its source tree, and those
of the dependencies a Kaggle image may lack.

What a Kaggle image provides is written down once, in kit.deploy.kaggle_image.KAGGLE_IMAGE; the bundle ships
every distribution kit's wheel requires (transitively) beyond it (`may_lack_for`). Each is the version installed
here, repacked from its installed files (offline, and the version kit ran with); one not installed here is
downloaded by pip from its index. `kit bundle --dep NAME` (repeated) replaces the list, `--dep none` ships kit
alone, and a NAME that is a path to a `.whl` file is copied as it is.
"""
from __future__ import annotations

import base64
import hashlib
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Sequence
from email.parser import Parser
from importlib import metadata
from pathlib import Path

from kit.deploy.kaggle_image import may_lack
from kit.errors import KitError

# What the source tree of kit holds that a wheel build needs (the build runs in a copy, so nothing is written
# into the tree: setuptools would leave build/ and kit.egg-info/ there).
SOURCE_PARTS = ("kit", "setup.cfg", "pyproject.toml", "README.md", "setup.py", "MANIFEST.in", "LICENSE")


def source_tree() -> Path:
    """The folder holding kit's setup.cfg/pyproject.toml (kit installed from a checkout, editable or not)."""
    import kit

    root = Path(kit.__file__).resolve().parent.parent
    if not (root / "pyproject.toml").is_file() or not (root / "setup.cfg").is_file():
        raise KitError(f"{root}: kit's source tree (pyproject.toml, setup.cfg) is not there; kit bundle builds kit's "
                       "wheel from a checkout: pip install -e <checkout>")
    return root


def _pip(args: Sequence[str], what: str) -> None:
    result = subprocess.run([sys.executable, "-m", "pip", *args], capture_output=True, text=True)
    if result.returncode != 0:
        lines = [line for line in (result.stderr or result.stdout).splitlines() if line.strip()]
        raise KitError(f"{what}: pip failed ({lines[-1].strip() if lines else f'exit {result.returncode}'})")


def build_kit_wheel(dest: Path) -> Path:
    """kit's wheel, built without network from its source tree (in a temporary copy) into `dest`."""
    root = source_tree()
    with tempfile.TemporaryDirectory(prefix="kit-wheel-") as tmp:
        copy = Path(tmp) / "src"
        copy.mkdir()
        for part in SOURCE_PARTS:
            path = root / part
            if path.is_dir():
                shutil.copytree(path, copy / part, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
            elif path.is_file():
                shutil.copy2(path, copy / part)
        out = Path(tmp) / "wheel"
        _pip(["wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q", "-w", str(out), str(copy)],
             "building kit's wheel")
        built = sorted(out.glob("kit-*.whl"))
        if not built:
            raise KitError("building kit's wheel: pip wrote no kit-*.whl")
        dest.mkdir(parents=True, exist_ok=True)
        return Path(shutil.copy2(built[0], dest / built[0].name))


def wheel_requires(wheel: Path) -> list[str]:
    """The Requires-Dist lines of a wheel's METADATA."""
    with zipfile.ZipFile(wheel) as zf:
        name = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA") and n.count("/") == 1)
        return Parser().parsestr(zf.read(name).decode("utf-8")).get_all("Requires-Dist") or []


def may_lack_for(wheel: Path) -> list[str]:
    """The distributions a Kaggle image lacks that installing `wheel` (kit's) with its requirements needs."""
    return may_lack(wheel_requires(wheel))


def _compressed_tag(wheel_file: str) -> str:
    """The file-name tag of a WHEEL file's Tag lines (py2-none-any + py3-none-any -> py2.py3-none-any)."""
    tags = [line.split(":", 1)[1].strip() for line in wheel_file.splitlines() if line.startswith("Tag:")]
    parts = [list(dict.fromkeys(part)) for part in zip(*(tag.split("-") for tag in tags))]
    return "-".join(".".join(part) for part in parts) if parts else "py3-none-any"


def repack_installed(name: str, dest: Path) -> Path | None:
    """The wheel of distribution `name` as installed here, rebuilt from its installed files (RECORD), or None when
    it is not installed or has no RECORD (installed by other means than a wheel). Scripts and data outside
    site-packages (`../` entries) and byte code are left out: pip makes scripts from entry_points.txt."""
    try:
        dist = metadata.distribution(name)
    except metadata.PackageNotFoundError:
        return None
    wheel_file = dist.read_text("WHEEL")
    if not dist.files or wheel_file is None or dist.read_text("RECORD") is None:
        return None
    info = next(f for f in dist.files if f.name == "RECORD").parent.as_posix()
    skip = {f"{info}/{n}" for n in ("RECORD", "INSTALLER", "REQUESTED", "direct_url.json")}
    dist_name = dist.metadata["Name"].replace("-", "_").replace(".", "_")
    dest.mkdir(parents=True, exist_ok=True)
    target = dest / f"{dist_name}-{dist.version}-{_compressed_tag(wheel_file)}.whl"
    partial = target.with_name(target.name + ".partial")
    records = []
    with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as zf:
        for file in dist.files:
            path = file.as_posix()
            if path.startswith("../") or "__pycache__" in path or path.endswith(".pyc") or path in skip:
                continue
            data = Path(dist.locate_file(file)).read_bytes()
            zf.writestr(path, data)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            records.append(f"{path},sha256={digest},{len(data)}")
        records.append(f"{info}/RECORD,,")
        zf.writestr(f"{info}/RECORD", "\n".join(records) + "\n")
    partial.replace(target)
    return target


def fetch_wheels(names: Sequence[str], dest: Path) -> list[Path]:
    """Each dependency's wheel into `dest`: a `.whl` path is copied; a name installed here is repacked from its
    installed files; any other name is downloaded (binary only, no deps) by pip from its configured index."""
    dest.mkdir(parents=True, exist_ok=True)
    written = []
    for name in names:
        path = Path(name)
        if name.endswith(".whl"):
            if not path.is_file():
                raise KitError(f"--dep {name}: wheel file not found")
            written.append(Path(shutil.copy2(path, dest / path.name)))
            continue
        repacked = repack_installed(name, dest)
        if repacked is not None:
            written.append(repacked)
            continue
        before = set(dest.iterdir())
        _pip(["download", "--no-deps", "--only-binary=:all:", "-q", "-d", str(dest), name],
             f"downloading the wheel of {name} (needs the package index; or give --dep PATH.whl)")
        written.extend(sorted(set(dest.iterdir()) - before))
    return written


def dependency_list(deps: Sequence[str] | None, kit_wheel: Path) -> list[str]:
    """The dependency wheels to ship: what a Kaggle image lacks for `kit_wheel`, or the given list ('none')."""
    if not deps:
        return may_lack_for(kit_wheel)
    return [] if list(deps) == ["none"] else list(deps)

