"""Checks made before any training starts, over every run of a plan (`kit train`, `kit train --gpus`,
`kit lr-find`, `kit run`): a later model's mistake fails in seconds, not after hours of the earlier models.

- every model name, and its support of drop_path / drop_rate;
- no two runs write one folder (`--name X` with several models would make each delete the last one's files);
- a --crop on a fixed-size backbone (ViT): the model must take both the crop and --size;
- a --pretrained FILE exists and, for the runs after the first, fits its model;
- an --init run folder fits each fold (spec, model, the fold's Ids) and its weights fit the model.

The model checks that need a model build it on torch's meta device (shapes only: no memory, no weights), but
a --pretrained file, whose loading is the check, is built on the CPU.
"""
from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterable

import torch

from kit.data.reading import CompetitionData
from kit.errors import KitError
from kit.layout import model_dir
from kit.settings import Settings


def check_plan(runs: list[Settings], data: CompetitionData, fold: str | int | None = None,
               where: str | None = None, inits: bool = True) -> None:
    """Every check above for `runs` on `fold` (a number, 'all', or None for each run's own), and the data folder;
    one KitError line naming the model (and `where`, e.g. the experiment file, when given). `inits=False`
    leaves the --init checks, which read the folds file, to a later `check_inits`."""
    check_shared_folders(runs, where)
    for settings in runs:  # what needs no data folder first
        with _naming(settings, runs, where):
            check_backbone(settings)
    data.check_root()
    for index, settings in enumerate(runs):
        with _naming(settings, runs, where):
            check_model(settings, data.spec, later=index > 0)
    if inits:
        check_inits(runs, data, fold, where)


def check_inits(runs: list[Settings], data: CompetitionData, fold: str | int | None = None,
                where: str | None = None) -> None:
    for settings in runs:
        if settings.init:
            with _naming(settings, runs, where):
                check_init(settings, data, fold)


@contextlib.contextmanager
def _naming(settings: Settings, runs: list[Settings], where: str | None):
    """A KitError inside names the model (and `where`) in front of its message."""
    try:
        yield
    except KitError as err:
        if where:
            raise KitError(f"{where}: train.models: {settings.model}: {err}") from None
        if len(runs) > 1:
            raise KitError(f"{settings.model}: {err}") from None
        raise


def check_shared_folders(runs: Iterable[Settings], where: str | None = None) -> None:
    """Two runs that would write one runs/<name> folder are an error (with --resume, the second would load the
    first's last.pt; with --gpus, two processes would write one folder)."""
    seen: dict[str, Settings] = {}
    for settings in runs:
        folder = str(model_dir(settings.runs, settings.run_name))
        if folder in seen:
            first = seen[folder]
            what = f"{first.model} and {settings.model}" if first.model != settings.model else f"{first.model} twice"
            raise KitError(f"{where + ': ' if where else ''}--name/train.name {settings.run_name!r}: {what} would "
                           f"both write {folder}/fold<k> (each deleting the other's files); train one model per "
                           "name, or leave the name out (each model gets its own folder)")
        seen[folder] = settings


def check_backbone(settings: Settings) -> None:
    """The model name, its support of drop_path / drop_rate, a --pretrained file that is missing."""
    from kit.train.models import _pretrained_file, check_model_name, check_regularisers

    check_model_name(settings.model)
    check_regularisers(settings.model, settings.drop_path, settings.drop_rate)
    _pretrained_file(settings.pretrained)


def check_model(settings: Settings, spec, later: bool = False) -> None:
    """The options that depend on the model built for the competition: a crop on a fixed-size backbone, and
    (`later`: a run after the first, which would load it only after the earlier runs) a --pretrained file."""
    from kit.train.models import build_model, is_fixed_size

    if settings.crop is not None and settings.crop != settings.size and is_fixed_size(settings.model):
        model = _meta_model(settings, spec)
        for side in (settings.crop, settings.size):
            try:
                with torch.no_grad():
                    model.eval()(torch.zeros(1, spec.num_channels, side, side, device="meta"))
            except (AssertionError, RuntimeError, ValueError) as err:
                raise KitError(f"model {settings.model!r} cannot take {side} px images (--crop {settings.crop}, "
                               f"--size {settings.size}): {str(err).splitlines()[0][:200]}") from None
    if later and settings.pretrained not in ("none", "auto"):
        with torch.random.fork_rng(devices=[]):
            build_model(settings, spec)


def check_init(settings: Settings, data: CompetitionData, fold: str | int | None = None) -> None:
    """`--init`: each fold's best.pt of the earlier run exists and fits (spec, model, that fold's validation Ids),
    and its weights load into this run's model."""
    from kit.train.init import init_weights, load_init
    from kit.train.split import fold_numbers, fold_split

    for number, k in enumerate(fold_numbers(settings.fold if fold is None else fold, settings.folds)):
        split = fold_split(data, settings.folds, k)
        init = init_weights(settings.init, k, settings.model, data.spec, split.val_ids)
        if number == 0:  # the folds of one run share the architecture
            with warnings.catch_warnings():  # copying into meta tensors is a no-op, which torch warns of
                warnings.simplefilter("ignore", UserWarning)
                load_init(_meta_model(settings, data.spec), init, settings.init)


def _meta_model(settings: Settings, spec) -> torch.nn.Module:
    """The run's model with shapes only (torch's meta device), without weights."""
    from kit.train.models import build_model

    with torch.random.fork_rng(devices=[]), torch.device("meta"):
        return build_model(settings.replace(pretrained="none"), spec)[0]
