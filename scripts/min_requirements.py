"""Print kit's install requirements pinned to their minimums' release series (`torch>=2.3` -> `torch==2.3.*`),
one a line: the constraints `make test-min` installs, so the suite runs on the oldest versions setup.cfg admits
(the newest patch release of each minimum: `==2.3` alone would match 2.3.0 only, and `opencv-python-headless==4.8`
no release at all, as its versions have four parts).

    python scripts/min_requirements.py > minimums.txt
    pip install -c minimums.txt -e '.[dev]'
"""
from __future__ import annotations

import configparser
import sys
from pathlib import Path

from packaging.requirements import Requirement

SETUP = Path(__file__).resolve().parent.parent / "setup.cfg"


def minimums(setup: Path = SETUP) -> list[str]:
    config = configparser.ConfigParser()
    config.read(setup)
    pins = []
    for line in config["options"]["install_requires"].splitlines():
        line = line.split("#")[0].strip()
        if not line:
            continue
        requirement = Requirement(line)
        low = [spec.version for spec in requirement.specifier if spec.operator in (">=", "==")]
        if not low:
            sys.exit(f"setup.cfg: {requirement.name} has no minimum (>=): say which version the code needs")
        pins.append(f"{requirement.name}=={low[0]}.*")
    return pins


if __name__ == "__main__":
    print("\n".join(minimums()))
