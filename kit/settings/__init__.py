"""Every setting of every command, one table per `kit.yaml` section: defaults, types, choices and help.

    kit.settings.train     `train:`  (FIELDS; `kit train`; saved beside each run as config.yaml)
    kit.settings.sections  `folds:`, `blend:`, `submit:` (`kit folds`, `kit blend`, `kit submit`)
    kit.settings.tune      `tune:` (`kit tune`: the search space over train: settings, trials, folds, pruner)
    kit.settings.fields    the mechanism: Field, Table, Registry

Values come from the defaults, then the section of `kit.yaml` (or `--config FILE`), then the command-line
options: the single command and `kit run` read a section alike.
"""
from kit.settings.fields import Field, Registry, Table
from kit.settings.sections import BLEND, FOLDS, SUBMIT
from kit.settings.train import (
    DEFAULT_AUGMENT,
    FIELD,
    FIELDS,
    LOSSES,
    TRAIN,
    Settings,
    normalise,
    parse_loss,
    resolve_settings,
    run_config,
)
from kit.settings.tune import TUNE

TABLES = {table.section: table for table in (FOLDS, TRAIN, BLEND, SUBMIT, TUNE)}

__all__ = ["BLEND", "DEFAULT_AUGMENT", "FIELD", "FIELDS", "FOLDS", "LOSSES", "SUBMIT", "TABLES", "TRAIN", "TUNE", "Field",
           "Registry", "Settings", "Table", "normalise", "parse_loss", "resolve_settings", "run_config"]
