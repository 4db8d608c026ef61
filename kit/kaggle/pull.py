"""`kit pull`: bring training kernels' runs home (`kit notebook --train` wrote and pushed them).

Each kernel's output is downloaded through the official client into a staging folder beside the runs root, and
every `runs/<model>/fold<k>/` in it is checked before anything moves: complete (best.pt, oof.csv, test.csv,
config.yaml), made for this competition's spec (config.yaml's `competition:`), and on the same folds (its oof.csv
holds exactly fold k's Ids of the local folds file: a run made on other folds has trained on some of this fold's
validation images). A local run is never replaced unless `force`; one with the same best.pt is already here and
is left as it is. Only when every kernel passes do the runs move into place, so a refusal writes nothing. A kernel
stopped by its time limit (kit-status.json exit code 75) is reported with the command that continues it; its
finished runs (a fan-out kernel's earlier folds) come home, its unfinished ones do not.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from kit import io
from kit.config import read_yaml
from kit.data.folds import read_folds
from kit.data.spec import CompetitionSpec, spec_from_dict
from kit.errors import KitError
from kit.kaggle.publish import KernelRun, check_ref, fetch_output
from kit.layout import BEST_CHECKPOINT, FoldRun, fold_dirs, model_dirs, run_dir
from kit.train.budget import STOPPED_EXIT_CODE  # 75 (CONTRACTS.md): stopped by --time-limit, resumable

STATUS = "kit-status.json"  # what a training kernel writes into /kaggle/working: {"exit_code", "command", ...}
REQUIRED = (BEST_CHECKPOINT, "oof.csv", "test.csv", "config.yaml")


@dataclass
class PulledKernel:
    ref: str
    runs: list[tuple[str, int]] = field(default_factory=list)  # (model, fold) placed
    stopped: bool = False
    resume: str = ""  # the command that continues a stopped kernel


@dataclass
class PullResult:
    kernels: list[PulledKernel]
    placed: list[Path]

    @property
    def stopped(self) -> list[PulledKernel]:
        return [k for k in self.kernels if k.stopped]


def pull(refs: Sequence[str], runs_root: str | os.PathLike, spec: CompetitionSpec, folds_file: str | os.PathLike, *,
         force: bool = False, log: Callable[[str], None] = print, policy=None) -> PullResult:
    """Download each kernel's output and place its runs under `runs_root` (see the module docstring)."""
    from kit.kaggle.client import KaggleSession

    if not refs:
        raise KitError("give the kernels to pull: kit pull owner/kernel ...")
    for ref in refs:
        check_ref(ref, "kernel")
    if len(set(refs)) != len(refs):
        raise KitError(f"kernel {next(r for r in refs if refs.count(r) > 1)} is given twice")
    runs_root, folds_file = Path(runs_root), Path(folds_file)
    folds = read_folds(folds_file)
    session = KaggleSession(spec.slug, policy, echo=log)
    anchor = next(p for p in [runs_root.absolute(), *runs_root.absolute().parents] if p.is_dir())
    staging = Path(tempfile.mkdtemp(prefix=".kit-pull-", dir=anchor))
    try:
        kernels, moves = [], {}
        for ref in refs:
            folder = staging / ref.replace("/", "+")
            log(f"kernel {ref}: downloading its output")
            fetch_output(session, KernelRun(ref, None, ""), folder)
            kernel = PulledKernel(ref)
            kernels.append(kernel)
            stopped = _stopped(ref, folder, kernel)
            found = _fold_runs(ref, folder, allow_none=stopped)
            if stopped:  # its finished folds come home; the rest waits for the kernel that continues it
                unfinished = [f"runs/{m}/fold{k}" for m, k, source in found if not _complete(source)]
                found = [(m, k, source) for m, k, source in found if _complete(source)]
                log(f"kernel {ref}: stopped by its time limit before finishing "
                    f"{', '.join(unfinished) or 'its runs'}; pulling its {len(found)} finished run(s). Continue it "
                    f"with: {kernel.resume}")
            for model, fold, source in found:
                _check_run(ref, model, fold, source, spec, folds, folds_file)
                target = run_dir(runs_root, model, fold)
                if (model, fold) in moves:
                    raise KitError(f"kernel {ref}: runs/{model}/fold{fold}/ comes from kernel "
                                   f"{moves[(model, fold)][2]} too; pull one of them")
                if target.exists() and not force:
                    if _same_weights(source, target):  # pulled before, from the version this one continues
                        log(f"kernel {ref}: runs/{model}/fold{fold}/ is already here ({target})")
                        continue
                    raise KitError(f"kernel {ref}: runs/{model}/fold{fold}/ would replace the local run {target}; "
                                   "--force replaces it")
                moves[(model, fold)] = (source, target, ref)
                kernel.runs.append((model, fold))
        placed = [_place(source, target) for source, target, _ in moves.values()]
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return PullResult(kernels, placed)


def _stopped(ref: str, folder: Path, kernel: PulledKernel) -> bool:
    status_file = folder / STATUS
    if not status_file.is_file():
        return False
    try:
        status = json.loads(status_file.read_text(encoding="utf-8"))
    except ValueError:
        raise KitError(f"kernel {ref}: {STATUS} is not JSON") from None
    code = status.get("exit_code")
    if code == STOPPED_EXIT_CODE:
        kernel.stopped, kernel.resume = True, resume_command(status, ref)
        return True
    if code not in (0, None):
        raise KitError(f"kernel {ref}: {STATUS}: kit train exited with code {code} "
                       f"({' '.join(map(str, status.get('command') or []))}); see the kernel's log")
    return False


def _complete(source: Path) -> bool:
    return all((source / name).is_file() for name in REQUIRED)


def _same_weights(source: Path, target: Path) -> bool:
    """Whether two runs hold the same best.pt: the same run (a finished fold that a resumed kernel carried along
    predicts again, so its CSVs may differ in the last digits on a GPU; its weights do not)."""
    ours, theirs = target / BEST_CHECKPOINT, source / BEST_CHECKPOINT
    return ours.is_file() and theirs.is_file() and io.sha256_file(ours) == io.sha256_file(theirs)


def _fold_runs(ref: str, folder: Path, allow_none: bool = False) -> list[tuple[str, int, Path]]:
    runs = folder / "runs"
    found = [(model.name, fold, path) for model in model_dirs(runs) for fold, path in fold_dirs(model).items()]
    if not found and not allow_none:
        raise KitError(f"kernel {ref}: its output holds no runs/<model>/fold<k>/ (not a kit training kernel, or it "
                       "has not finished a run)")
    return found


def _check_run(ref: str, model: str, fold: int, source: Path, spec: CompetitionSpec, folds, folds_file: Path) -> None:
    where = f"runs/{model}/fold{fold}"
    run = FoldRun(source)
    for name in REQUIRED:
        if not (source / name).is_file():
            raise KitError(f"kernel {ref}: {where}/{name} is missing: the run is incomplete (let it finish, or push it "
                           "again with --resume-from)")
    theirs = read_yaml(run.config).get("competition")
    try:
        their_spec = spec_from_dict(theirs, source=f"kernel {ref}: {where}/config.yaml").to_dict()
    except KitError as err:
        raise KitError(f"kernel {ref}: {where}/config.yaml: {err}") from None
    ours = spec.to_dict()
    differ = sorted(key for key in set(ours) | set(their_spec) if ours.get(key) != their_spec.get(key))
    if differ:
        raise KitError(f"kernel {ref}: {where}/config.yaml was made for another competition spec "
                       f"({', '.join(differ)} differ{'s' if len(differ) == 1 else ''} from this kit.yaml's)")
    ids = io.read_csv(run.oof, f"kernel {ref}: {where}/oof.csv", usecols=[spec.id_column],
                      dtype={spec.id_column: str})[spec.id_column]
    earlier, now = set(ids), set(folds.loc[folds["fold"] == fold, "Id"].astype(str))
    if earlier != now:
        raise KitError(f"kernel {ref}: {where}/oof.csv holds other Ids than fold {fold} of {folds_file} "
                       f"({len(earlier)} Ids, {len(earlier & now)} shared with the fold's {len(now)}): made on other "
                       "folds, so it is refused")


def _place(source: Path, target: Path) -> Path:
    """Move the checked run into place; a local run it replaces (--force) goes once the new one is there."""
    target.parent.mkdir(parents=True, exist_ok=True)
    old = None
    if target.exists():
        old = target.with_name(f".{target.name}.old-{os.getpid()}")
        os.replace(target, old)
    shutil.move(str(source), str(target))
    if old is not None:
        shutil.rmtree(old)
    return target


def resume_command(status: dict, ref: str) -> str:
    """The command that pushes the kernel again, continuing from its output (from its kit-status.json)."""
    words = [w for w in status.get("notebook") or [] if w]
    if not words:
        return f"kit notebook OUT --train ... --resume-from {ref} --push"
    if "--resume-from" in words:  # an earlier resume: point at this version instead
        at = words.index("--resume-from")
        words = words[:at] + words[at + 2:]
    words.insert(len(words) - 1 if words[-1] == "--push" else len(words), "--resume-from")
    words.insert(words.index("--resume-from") + 1, ref)
    return " ".join(_quote(w) for w in words)


def _quote(word: str) -> str:
    import shlex

    return shlex.quote(str(word))
