"""`kit notebook`: the inference kernel of a code competition (or of an offline notebook for a regular one).

It writes `kernel-metadata.json` (what `kaggle kernels push` reads) and `inference.py`: the script installs kit
from the attached bundle's wheels with `--no-index` (notebooks of code competitions have no internet) and runs
`kit infer` on the competition's test set, writing `<working>/submission.csv`. Every path in the script lies
under one root, `/kaggle` unless $KIT_KAGGLE_ROOT says otherwise, so the same script runs on any machine whose
`<root>/input` holds the bundle and the competition files.
"""
from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from kit.data.spec import CompetitionSpec
from kit.deploy.bundle import MARKER
from kit.errors import KitError
from kit.io import write_text
from kit.kaggle.publish import KERNEL_WAIT, KernelRun, check_ref

ROOT_ENV = "KIT_KAGGLE_ROOT"
KAGGLE_ROOT = "/kaggle"
SCRIPT = "inference.py"
OUTPUT = "output"  # where --push puts the kernel's output files and log, inside OUT

# Parts of both kernels' scripts (str.format templates, so braces are doubled): find the attached inputs, the
# kit wheel and the working folder. Each script must stand alone on Kaggle, so they are pasted, not imported.
ATTACHED = '''def attached(slug, marker):
    """The attached folder named `slug` under ROOT/input that holds `marker`: input/<slug>, or deeper where
    Kaggle mounts it (input/datasets/<owner>/<slug>, input/notebooks/<owner>/<slug>, input/competitions/<slug>)."""
    inputs = ROOT / "input"
    for folder in [inputs / slug, *sorted(inputs.glob("**/" + slug))]:
        if (folder / marker).exists():
            return folder
    sys.exit(f"{{slug}}: not attached (no {{marker}} in a folder {{slug}} under {{inputs}})")


'''

LOCATE = '''bundle = attached(BUNDLE.split("/")[1], {marker!r})
data = attached(COMPETITION, SAMPLE_SUBMISSION)
wheels = next((p.parent for p in sorted(bundle.glob("**/kit-*.whl"))), None)
if wheels is None:
    sys.exit(f"{{bundle}}: no kit wheel in the bundle")
working = ROOT / "working"
working.mkdir(parents=True, exist_ok=True)
'''

TEMPLATE = '''"""Kit inference kernel: install kit offline from the bundle {bundle}, apply its blend to the test set of
{competition}, write submission.csv. Written by `kit notebook`; every path lies under one root."""
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(os.environ.get({root_env!r}, {root!r}))  # the one setting: input/ and working/ lie under it
BUNDLE = {bundle!r}
COMPETITION = {competition!r}
SAMPLE_SUBMISSION = {sample!r}
BLEND = {blend!r}
DEVICE = {device!r}


''' + ATTACHED + LOCATE + '''subprocess.run([sys.executable, "-m", "pip", "install", "--no-index", "--find-links", str(wheels), "--quiet", "kit"],
               check=True)
subprocess.run([sys.executable, "-m", "kit", "infer", str(bundle / BLEND), "--data", str(data),
                "--out", str(working / "submission.csv"), "--device", DEVICE], check=True, cwd=working)
'''


@dataclass
class Notebook:
    path: Path
    ref: str
    files: list[Path] = field(default_factory=list)


def kernel_metadata(ref: str, bundle: str, competition: str, gpu: bool) -> dict:
    slug = ref.split("/")[1]
    return {
        "id": ref,
        "title": slug.replace("-", " "),  # kaggle derives the slug from the title: keep them the same
        "code_file": SCRIPT,
        "language": "python",
        "kernel_type": "script",
        "is_private": True,
        "enable_gpu": gpu,
        "enable_internet": False,
        "dataset_sources": [bundle],
        "competition_sources": [competition],
    }


def inference_script(bundle: str, spec: CompetitionSpec, blend: str = "blend.json", device: str = "auto") -> str:
    return TEMPLATE.format(root_env=ROOT_ENV, root=KAGGLE_ROOT, bundle=bundle, competition=spec.slug,
                           sample=spec.sample_submission, blend=blend, device=device, marker=MARKER)


def write_notebook(out: str | os.PathLike, bundle: str, spec: CompetitionSpec, *, ref: str | None = None,
                   gpu: bool = False, blend: str = "blend.json") -> Notebook:
    """Write `out/kernel-metadata.json` and `out/inference.py` for bundle dataset `bundle` (owner/slug)."""
    owner, slug = check_ref(bundle, "--bundle")
    ref = ref or f"{owner}/{slug}-inference"
    check_ref(ref, "kernel")
    if len(ref.split("/")[1]) < 5:
        raise KitError(f"kernel {ref!r}: Kaggle needs a slug (and title) of at least 5 characters")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise KitError(f"{out}: exists and is not a folder")
    files = [write_text(out / "kernel-metadata.json",
                        json.dumps(kernel_metadata(ref, bundle, spec.slug, gpu), indent=2) + "\n"),
             write_text(out / SCRIPT, inference_script(bundle, spec, blend, "cuda" if gpu else "auto"))]
    return Notebook(out, ref, files)


def push_notebook(notebook: Notebook, competition: str = "", *, timeout: float = KERNEL_WAIT,
                  log: Callable[[str], None] = print, policy=None) -> KernelRun:
    """Push the kernel, wait until its run ends (bounded), fetch its output and log into `<notebook>/output`.
    A run that fails is one error line with the log's last lines (the whole log is kept in the output folder)."""
    from kit.kaggle.client import KaggleSession
    from kit.kaggle.publish import fetch_output, push_kernel, wait_kernel

    session = KaggleSession(competition, policy, echo=log)
    run = push_kernel(session, notebook.path, log)
    wait_kernel(session, run, timeout, echo=log)
    fetch_output(session, run, notebook.path / OUTPUT)
    if run.status != "COMPLETE":
        tail = run.tail()
        for line in tail:
            log(f"  {line}")
        where = f"; log in {run.log_path}" if run.log_path else ""
        raise KitError(f"kernel {run.ref} version {run.version} ended in {run.status.lower()}"
                       f"{f' ({run.failure})' if run.failure else ''}{where}; last lines: "
                       + (" | ".join(line.strip() for line in tail) or "(no log)"))
    if not any(path.name == "submission.csv" for path in run.files):
        raise KitError(f"kernel {run.ref} version {run.version} completed but wrote no submission.csv"
                       + (f"; log in {run.log_path}" if run.log_path else ""))
    return run
