"""`kit bundle`: everything a Kaggle notebook needs to apply a blend offline, as one folder that becomes a dataset.

    OUT/bundle.json                  what is in it (kit version, blend, members, sizes): marks OUT as a bundle
    OUT/dataset-metadata.json        title, id (owner/slug), licenses: what `kaggle` uploads it as
    OUT/kit.yaml                     the competition spec
    OUT/<blend>.json (+ .npz)        the blend, its members' paths pointing into models/
    OUT/models/<member>/fold<k>/     best.pt and config.yaml of the blend's members only (no last.pt)
    OUT/wheels/                      kit's wheel and the dependency wheels a Kaggle image may lack

The folder is built beside OUT and swapped in at the end, so an interrupted bundle never leaves half of one; an
existing OUT is replaced only if it is a bundle.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from kit.deploy.wheels import build_kit_wheel, dependency_list, fetch_wheels
from kit.errors import KitError
from kit.infer.ensemble import load_ensemble
from kit.io import write_text, write_yaml
from kit.kaggle.publish import check_ref
from kit.layout import fold_dir_name

MARKER = "bundle.json"
METADATA = "dataset-metadata.json"
LICENSE = "CC0-1.0"


@dataclass
class Bundle:
    path: Path
    ref: str
    blend: str  # the blend JSON's file name inside the bundle
    sizes: dict[str, int] = field(default_factory=dict)  # part -> bytes

    def describe(self) -> str:
        parts = ", ".join(f"{part} {human(size)}" for part, size in self.sizes.items())
        return f"wrote bundle {self.path} for dataset {self.ref}: {parts}; total {human(sum(self.sizes.values()))}"


def human(size: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GB"  # pragma: no cover


def slugify(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "bundle"


def folder_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else path.stat().st_size


def member_folder(name: str) -> str:
    """A member's folder name inside models/ (a member named by its path when two share a name)."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("._") or "member"


def is_bundle(path: Path) -> bool:
    return (path / MARKER).is_file()


def default_ref(out: Path) -> str:
    return f"{os.environ.get('KAGGLE_USERNAME') or 'INSERT_OWNER'}/{slugify(out.name)}"


def dataset_metadata(ref: str, title: str | None = None) -> dict:
    slug = ref.split("/")[1]
    title = title or f"kit bundle {slug}"
    return {"title": title[:50], "id": ref, "licenses": [{"name": LICENSE}]}


def make_bundle(out: str | os.PathLike, blend: str | os.PathLike, *, ref: str | None = None, title: str | None = None,
                deps: Sequence[str] | None = None, log: Callable[[str], None] = print) -> Bundle:
    """Write the bundle folder `out` for the blend JSON `blend` (see the module docstring)."""
    out = Path(out)
    check_out(out)
    ensemble = load_ensemble(blend)
    ref = ref or default_ref(out)
    check_ref(ref, "dataset")
    with staged(out) as staging:
        bundle = _fill(staging, ensemble, ref, title, deps, log)
    bundle.path = out
    return bundle


def check_out(out: Path) -> None:
    """`out` may become a bundle: it is absent, empty, or a bundle already (which the new one replaces)."""
    if out.exists() and not (out.is_dir() and (is_bundle(out) or not any(out.iterdir()))):
        raise KitError(f"{out}: exists and is not a kit bundle (no {MARKER}); give a new folder or remove it")


@contextmanager
def staged(out: Path) -> Iterator[Path]:
    """A staging folder beside `out`, swapped in for `out` when the block ends well and removed in any case:
    a failed build leaves an earlier bundle at `out` as it was."""
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        yield staging
        _swap(staging, out)
    finally:
        if staging.exists():
            shutil.rmtree(staging)


def add_wheels(root: Path, deps: Sequence[str] | None, log: Callable[[str], None]) -> tuple[Path, list[str]]:
    """kit's wheel and the dependency wheels (`deps`, else what a Kaggle image lacks) in `root`/wheels:
    (the folder, the dependency list used)."""
    wheels = root / "wheels"
    kit_wheel = build_kit_wheel(wheels)
    log(f"wheel {kit_wheel.name}: {human(kit_wheel.stat().st_size)}")
    deps = dependency_list(deps, kit_wheel)
    for path in fetch_wheels(deps, wheels):
        log(f"wheel {path.name}: {human(path.stat().st_size)}")
    return wheels, deps


def kit_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("kit")
    except PackageNotFoundError:  # pragma: no cover - run from a bare checkout
        return "unknown"


def _fill(root: Path, ensemble, ref: str, title: str | None, deps: Sequence[str] | None, log) -> Bundle:
    source = ensemble.source
    report = json.loads(source.read_text(encoding="utf-8"))
    models = root / "models"
    for member, entry in zip(ensemble.members, report["members"]):
        folder = member_folder(member.name)
        for fold in member.folds:
            run, target = member.fold_run(fold), models / folder / fold_dir_name(fold)
            target.mkdir(parents=True)
            for path, required in ((run.best, True), (run.config, False)):  # what predicts; not last.pt
                if path.is_file():
                    shutil.copy2(path, target / path.name)
                elif required:
                    raise KitError(f"{source}: member {member.name}: fold {fold} has no {path.name} ({path})")
        entry["path"] = f"models/{folder}"
    state = report.get("state") or {}
    if state.get("arrays"):
        shutil.copy2(source.parent / state["arrays"], root / state["arrays"])
    write_text(root / source.name, json.dumps(report, indent=2) + "\n")
    write_yaml(root / "kit.yaml", {"competition": ensemble.spec.to_dict()})
    log(f"models: {sum(len(m.folds) for m in ensemble.members)} checkpoint(s) of {len(ensemble.members)} member(s)")
    wheels, deps = add_wheels(root, deps, log)
    write_text(root / METADATA, json.dumps(dataset_metadata(ref, title), indent=2) + "\n")
    sizes = {"wheels": folder_size(wheels), "models": folder_size(models),
             "blend": sum(folder_size(p) for p in root.iterdir() if p.is_file())}
    write_text(root / MARKER, json.dumps({
        "kit": kit_version(), "dataset": ref, "blend": source.name, "competition": ensemble.spec.slug,
        "members": [{"name": m.name, "folder": member_folder(m.name), "folds": m.folds} for m in ensemble.members],
        "wheels": sorted(p.name for p in wheels.glob("*.whl")), "deps": deps, "sizes": sizes,
    }, indent=2) + "\n")
    return Bundle(root, ref, source.name, sizes)


def _swap(staging: Path, out: Path) -> None:
    """Put the finished staging folder at `out`; an old bundle there goes only once the new one is in place."""
    old = None
    if out.exists():
        old = out.with_name(f".{out.name}.old-{os.getpid()}")
        os.replace(out, old)
    os.replace(staging, out)
    if old is not None:
        shutil.rmtree(old)


def read_bundle(path: str | os.PathLike) -> dict:
    path = Path(path)
    if not is_bundle(path):
        raise KitError(f"{path}: not a kit bundle (no {MARKER}); make one with `kit bundle`")
    return json.loads((path / MARKER).read_text(encoding="utf-8"))


def upload_bundle(path: str | os.PathLike, ref: str, *, notes: str = "kit bundle", public: bool = False,
                  wait: float | None = None, log: Callable[[str], None] = print, policy=None) -> str:
    """Upload bundle `path` as dataset `ref` (created, or a new version), then wait until Kaggle has it ready."""
    from kit.kaggle.client import KaggleSession
    from kit.kaggle.publish import DATASET_WAIT, upload_dataset, wait_dataset_ready

    path = Path(path)
    meta = read_bundle(path)
    check_ref(ref, "dataset")
    metadata = json.loads((path / METADATA).read_text(encoding="utf-8"))
    if metadata.get("id") != ref:  # the metadata names the dataset kaggle creates
        write_text(path / METADATA, json.dumps({**metadata, "id": ref}, indent=2) + "\n")
    session = KaggleSession(meta.get("competition") or "", policy, echo=log)
    outcome = upload_dataset(session, path, ref, notes, public, log)
    wait_dataset_ready(session, ref, DATASET_WAIT if wait is None else wait, echo=log)
    return outcome
