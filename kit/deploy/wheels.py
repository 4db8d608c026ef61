"""The wheels a Kaggle notebook without internet installs from: kit's own, built from its source tree, and those
of the dependencies a Kaggle image may lack.

The Kaggle Python image already has torch, torchvision, timm, albumentations, opencv, scikit-learn, pandas,
matplotlib, pyyaml, click and the kaggle client, so only the rest travel in the bundle. KAGGLE_MAY_LACK is the one
list of them; `kit bundle --dep NAME` (repeated) replaces it, `--dep none` ships kit's wheel alone, and a NAME
that is a path to a `.whl` file is copied as it is.
"""
from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from kit.errors import KitError

KAGGLE_MAY_LACK = ("iterative-stratification", "segmentation-models-pytorch")
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


def fetch_wheels(names: Sequence[str], dest: Path) -> list[Path]:
    """Each dependency's wheel into `dest`: a `.whl` path is copied; a name is downloaded (binary only, no deps)
    by pip from its configured index."""
    dest.mkdir(parents=True, exist_ok=True)
    written = []
    for name in names:
        path = Path(name)
        if name.endswith(".whl"):
            if not path.is_file():
                raise KitError(f"--dep {name}: wheel file not found")
            written.append(Path(shutil.copy2(path, dest / path.name)))
            continue
        before = set(dest.iterdir())
        _pip(["download", "--no-deps", "--only-binary=:all:", "-q", "-d", str(dest), name],
             f"downloading the wheel of {name} (needs the package index; or give --dep PATH.whl)")
        written.extend(sorted(set(dest.iterdir()) - before))
    return written


def dependency_list(deps: Sequence[str] | None) -> list[str]:
    """The dependency wheels to ship: the default list, or the given one ('none' for none)."""
    if not deps:
        return list(KAGGLE_MAY_LACK)
    return [] if list(deps) == ["none"] else list(deps)
