"""Facts about the machine this process runs on (no torch import: fan-out children read them before CUDA)."""
from __future__ import annotations

import os


def available_cores() -> int:
    """Cores this process may use (its CPU affinity, not the machine's count)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
