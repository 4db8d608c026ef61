"""The `kit` command group, and the one place where a KitError becomes one clear line."""
from __future__ import annotations

import re

import click

from kit.errors import KitError

# A KitError raised in a DataLoader worker comes back as "Caught KitError in DataLoader worker process 0.
# Original Traceback (most recent call last): ... kit.errors.KitError: <the message>".
WORKER_ERROR = re.compile(r"Original Traceback.*\n[\w.]+: ([^\n]*)\s*$", re.DOTALL)


def one_line(err: KitError) -> str:
    text = str(err)
    match = WORKER_ERROR.search(text)
    return match.group(1).strip() if match else text


class KitGroup(click.Group):
    """Turns a KitError from any command into one clear line and exit status 1, without a traceback."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except KitError as err:
            raise click.ClickException(one_line(err)) from None


@click.group(cls=KitGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="kit")
def main():
    """kit: from competition files to a strong, honest Kaggle submission.

    \b
    kit init PRESET      a commented kit.yaml: hpa, planet, imet-2019, ranzcr-clip, rsna-ich-2019,
                         plant-pathology-2020, cassava-2020
    kit run EXPERIMENT   the whole flow from one experiment file (`kit run demo`)
    kit synth DIR        write a synthetic competition-shaped data set (--preset: any of the above)
    kit download         fetch the competition files through the Kaggle API
    kit cache            decode every image (JPEG, PNG, TIFF, DICOM) once into a resized cache
    kit dups             near-duplicate images (perceptual hashes), groups for kit folds
    kit folds            5-fold stratified splits (multi-label, one class, or by group)
    kit train --fold 0   train timm backbones on a fold, TTA predictions (--time-limit for a Kaggle session)
    kit lr-find          learning-rate range test: loss-vs-lr PNG and a suggested --lr
    kit tune             search train: settings with Optuna (tune.db), each trial a fold's run
    kit predict RUN_DIR  redo a run's TTA predictions without training
    kit blend            blend out-of-fold predictions; tune thresholds (F-scores) or calibrate (log loss)
    kit report PATH      learning curves of runs, per-class chart of a blend (PNG)
    kit lb               every blend's cross-validated score beside its leaderboard score
    kit infer BLEND      apply a saved blend to a new test set
    kit bundle OUT       a blend's models (or, --train, the folds) and kit's wheels as a Kaggle dataset
    kit notebook OUT     the offline inference kernel, or (--train) training kernels; --push runs them
    kit pull KERNEL      bring a training kernel's runs home
    kit weights MODEL    pretrained weights as a folder or Kaggle dataset, for offline kernels
    kit submit FILE      push the submission through the Kaggle API (--kernel: a code competition)
    kit submissions      list the competition's submissions and scores

    Settings come from kit.yaml in the working folder (or --config FILE); options win over it.
    The Human Protein Atlas competition is the default; `kit init` writes one for another.
    """
