"""A stand-in for a Kaggle notebook image: a fresh venv that sees only the distributions a Kaggle image provides
(kit.deploy.kaggle_image.KAGGLE_IMAGE, with their requirements), linked from this environment, and nothing else:
no kit, no click, no kaggle client, no test tools. Installing kit into it from a bundle's wheels with
`pip --no-index` fails if the bundle misses a wheel.

    python = image_venv(tmp_path / "image")        # tmp_path/image/venv/bin/python
    subprocess.run([python, ...], env=image_env())

No network: the venv is made `--without-pip`; pip is one of the image's distributions.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from packaging.specifiers import SpecifierSet

from kit.deploy.kaggle_image import KAGGLE_IMAGE, image_closure


def _top_level_entries(dist) -> set[str]:
    """The names a distribution installs directly in site-packages (packages, modules, its .dist-info)."""
    entries = set()
    for file in dist.files or ():
        parts = file.parts
        if parts and parts[0] != ".." and not parts[0].endswith(".pth") and parts[0] != "__pycache__":
            entries.add(parts[0])
    return entries


def check_assumed_versions() -> None:
    """Every image distribution is installed here in the version range KAGGLE_IMAGE assumes (else the stand-in
    would not stand for the image)."""
    closure = image_closure()
    for name, spec in KAGGLE_IMAGE.items():
        dist = closure.get(name)
        assert dist is not None, f"{name}: assumed in a Kaggle image but not installed here"
        assert dist.version in SpecifierSet(spec), f"{name} {dist.version} here is not {spec}, as assumed"


def image_venv(root: Path) -> Path:
    """Make root/venv, seeing only root/site (links to the image's distributions); return its python."""
    check_assumed_versions()
    site = root / "site"
    site.mkdir(parents=True)
    for dist in image_closure().values():
        for entry in _top_level_entries(dist):
            link, source = site / entry, Path(dist.locate_file(entry))
            if not link.exists() and source.exists():  # a namespace folder (nvidia/) is shared: linked once
                link.symlink_to(source)
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    purelib = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             check=True, capture_output=True, text=True).stdout.strip()
    (Path(purelib) / "kaggle_image.pth").write_text(f"{site}\n")
    return python


def image_env(**extra: str) -> dict[str, str]:
    """This process's environment less what would leak the dev venv or this machine's wheels into the image venv
    (PYTHONPATH, pip's configuration: its find-links, indexes and constraints), plus `extra`."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME") and not k.startswith("PIP_")}
    env.update(PIP_CONFIG_FILE=os.devnull, PIP_NO_INDEX="1", PIP_DISABLE_PIP_VERSION_CHECK="1", **extra)
    return env
