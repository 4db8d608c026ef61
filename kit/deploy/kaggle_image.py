"""What a Kaggle notebook image is assumed to provide, written down once: the bundle ships everything else kit needs
(`kit bundle`), and the bundle test builds a venv holding only this (tests/kaggle_image.py).

KAGGLE_IMAGE names each distribution with the version range assumed (the Kaggle Python image of 2025 onwards has
these or newer). Whatever they require comes with them (a Kaggle image installs a package with its requirements):
`requirement_closure` follows Requires-Dist through this environment's installed distributions, evaluating markers
and leaving extras out, as pip would.
"""
from __future__ import annotations

import re
from collections.abc import Iterable
from importlib import metadata

from packaging.markers import default_environment
from packaging.requirements import InvalidRequirement, Requirement

KAGGLE_IMAGE: dict[str, str] = {
    "torch": ">=2.4",  # kit needs 2.3 (setup.cfg)
    "torchvision": ">=0.19",
    "timm": ">=1.0",
    "albumentations": ">=1.4.21",  # Compose(seed=)
    "numpy": ">=1.26",
    "pandas": ">=2.0",
    "scikit-learn": ">=1.2",
    "opencv-python-headless": ">=4.9",
    "pillow": ">=10",
    "pyyaml": ">=6",
    "tqdm": ">=4.60",
    "matplotlib": ">=3.7",
    "pip": ">=23",  # the installer the notebook script runs
}


def canonical(name: str) -> str:
    """A distribution name as PEP 503 compares them (Scikit_Learn == scikit-learn)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirements(dist: metadata.Distribution, extras: Iterable[str] = ()) -> list[Requirement]:
    """What `dist` requires installed with `extras` (torch asks for cuda-toolkit[cublas,...], say)."""
    wanted = []
    for line in dist.requires or ():
        try:
            requirement = Requirement(line)
        except InvalidRequirement:  # pragma: no cover - a broken METADATA of somebody else's
            continue
        marker = requirement.marker
        if marker is None or any(marker.evaluate({**default_environment(), "extra": extra})
                                 for extra in ("", *extras)):
            wanted.append(requirement)
    return wanted


def requirement_closure(names: Iterable[str]) -> dict[str, metadata.Distribution]:
    """Each named distribution and, transitively, what it requires (with the extras asked for), as installed
    here: canonical name -> dist. A requirement not installed here is left out (nothing here could link or
    repack it)."""
    found: dict[str, metadata.Distribution] = {}
    done: set[tuple[str, frozenset]] = set()
    todo = [(canonical(name), frozenset()) for name in names]
    while todo:
        name, extras = todo.pop()
        if (name, extras) in done:
            continue
        done.add((name, extras))
        try:
            dist = found.get(name) or metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        found[name] = dist
        todo.extend((canonical(req.name), frozenset(req.extras)) for req in _requirements(dist, extras))
    return found


def image_closure() -> dict[str, metadata.Distribution]:
    """What the assumed Kaggle image holds, as far as this environment has it installed."""
    return requirement_closure(KAGGLE_IMAGE)


def may_lack(requires: Iterable[str]) -> list[str]:
    """The distributions that `requires` (Requires-Dist lines, e.g. kit's wheel's) pull in, transitively, and the
    Kaggle image does not provide: what a bundle must ship for `pip install --no-index kit` to succeed there."""
    environment = {**default_environment(), "extra": ""}
    direct = [Requirement(line) for line in requires]
    direct = [r.name for r in direct if r.marker is None or r.marker.evaluate(environment)]  # extras: not installed
    image = image_closure()
    needed = set(requirement_closure(name for name in direct if canonical(name) not in image))
    needed |= {canonical(name) for name in direct}  # one not installed here: fetched by name from the index
    return sorted(name for name in needed if name not in image)
