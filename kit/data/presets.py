"""Competition presets: the `competition:` part of a kit.yaml for competitions the kit knows (`kit init PRESET`).

Each preset is the facts of the real competition's files: slug, file and column names, label encoding, image
layout, channels and metric. `kit synth --preset NAME` writes a synthetic set in the same layout.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from kit import io
from kit.data.spec import HPA_CLASSES, CompetitionSpec, spec_from_dict
from kit.errors import KitError

PLANET_TAGS = (
    "agriculture", "artisinal_mine", "bare_ground", "blooming", "blow_down", "clear", "cloudy", "conventional_mine",
    "cultivation", "habitation", "haze", "partly_cloudy", "primary", "road", "selective_logging", "slash_burn",
    "water",
)
# Training-set counts of each Planet tag (train_v2.csv, 40,479 images): what `kit synth` imitates.
PLANET_TAG_COUNTS = (12315, 339, 862, 332, 101, 28431, 2089, 100, 4547, 3660, 2697, 7261, 37513, 8071, 340, 209,
                     7411)
PLANET_TRAIN_SIZE = 40479
PLANET_WEATHER = ("clear", "partly_cloudy", "haze", "cloudy")  # exactly one per image; cloudy stands alone
IMET_CLASSES = 1103
IMET_CULTURES = 398  # attribute ids 0..397 are `culture::...`, the rest `tag::...`


@dataclass(frozen=True)
class Preset:
    name: str
    title: str
    competition: dict  # the kit.yaml `competition:` mapping
    comments: dict  # key -> the comment written beside it
    size: int  # a sensible `train.size` for the real images

    def spec(self) -> CompetitionSpec:
        return spec_from_dict(self.competition, source=f"preset {self.name}")


COMMON_COMMENTS = {
    "slug": "the Kaggle competition (`kit download` fetches it, `kit submit` submits to it)",
    "train_csv": "labels of the training images",
    "sample_submission": "the test Ids, in the order the submission lists them",
    "id_column": "the Id column of both CSVs",
    "target_column": "the label column of the train CSV",
    "prediction_column": "the label column of the submission",
    "label_separator": "between the labels of one cell",
    "train_dir": "training images",
    "image_ext": "image file extension",
    "metric": "<average>_f<beta>: drives the best epoch, thresholds, blending and every reported score",
}

PRESETS = {
    "hpa": Preset(
        "hpa", "Human Protein Atlas Image Classification (2018)",
        {
            "slug": "human-protein-atlas-image-classification",
            "train_csv": "train.csv", "sample_submission": "sample_submission.csv",
            "id_column": "Id", "target_column": "Target", "prediction_column": "Predicted",
            "label_format": "indices", "label_separator": " ", "classes": list(HPA_CLASSES),
            "image_layout": "channels", "channels": ["red", "green", "blue", "yellow"], "image_ext": "png",
            "train_dir": "train", "test_dir": "test", "metric": "macro_f1",
        },
        {"label_format": "cells hold class indices into `classes`",
         "classes": "28 protein locations; the order gives the class index",
         "image_layout": "one grayscale file per channel: train/{Id}_{channel}.png",
         "channels": "file suffixes, in the model's input order",
         "test_dir": "test images", "metric": "macro F1 over the 28 classes"},
        512,
    ),
    "planet": Preset(
        "planet", "Planet: Understanding the Amazon from Space (2017)",
        {
            "slug": "planet-understanding-the-amazon-from-space",
            "train_csv": "train_v2.csv", "sample_submission": "sample_submission_v2.csv",
            "id_column": "image_name", "target_column": "tags", "prediction_column": "tags",
            "label_format": "names", "label_separator": " ", "classes": list(PLANET_TAGS),
            "image_layout": "file", "channels": ["red", "green", "blue"], "image_ext": "jpg",
            "train_dir": "train-jpg", "test_dir": ["test-jpg", "test-jpg-additional"], "metric": "samples_f2",
        },
        {"label_format": "cells hold tag names from `classes`",
         "classes": "the 17 tags; the order gives the class index",
         "image_layout": "one RGB JPEG per sample: train-jpg/{image_name}.jpg (the 4-band TIFFs: image_ext tif, "
                         "train_dir train-tif-v2, channels [blue, green, red, nir])",
         "channels": "the file's channels, in order",
         "test_dir": "the test Ids are spread over both folders",
         "metric": "F2 averaged over samples"},
        256,
    ),
    "imet-2019": Preset(
        "imet-2019", "iMet Collection 2019 - FGVC6",
        {
            "slug": "imet-2019-fgvc6",
            "train_csv": "train.csv", "sample_submission": "sample_submission.csv",
            "id_column": "id", "target_column": "attribute_ids", "prediction_column": "attribute_ids",
            "label_format": "indices", "label_separator": " ", "classes": "labels.csv",
            "image_layout": "file", "channels": ["red", "green", "blue"], "image_ext": "png",
            "train_dir": "train", "test_dir": "test", "metric": "samples_f2",
        },
        {"label_format": "cells hold attribute ids (class indices)",
         "classes": "a CSV in the data folder: attribute_id,attribute_name (1,103 classes)",
         "image_layout": "one RGB PNG per sample, sizes vary: train/{id}.png",
         "channels": "the file's channels, in order",
         "test_dir": "test images", "metric": "F2 averaged over samples"},
        320,
    ),
}


def get_preset(name: str) -> Preset:
    if name not in PRESETS:
        raise KitError(f"unknown preset {name!r}: expected one of {', '.join(PRESETS)}")
    return PRESETS[name]


def preset_yaml(preset: Preset) -> str:
    """A commented kit.yaml for `preset`: the competition spec, the data folder and a few training defaults."""
    lines = [f"# kit.yaml for {preset.title} (written by `kit init {preset.name}`).",
             "# Every key is optional; command-line options win over this file.", "", "competition:"]
    for key, value in preset.competition.items():
        text = yaml.safe_dump({key: value}, default_flow_style=True, width=10**6, allow_unicode=True).strip()
        text = text[1:-1] if text.startswith("{") else text  # flow style wraps the mapping in braces
        comment = preset.comments.get(key) or COMMON_COMMENTS.get(key)
        if key == "classes" and isinstance(value, list) and len(value) > 8:
            lines.append(f"  # {comment}" if comment else "  # classes")
            lines.append(f"  {key}:")
            lines += [f"    - {yaml.safe_dump(name, default_style=None).splitlines()[0]}" for name in value]
            continue
        lines.append(f"  {text}" + (f"  # {comment}" if comment else ""))
    lines += ["", "data: data/  # the competition files (or --data DIR, or $KIT_DATA)", "",
              "train:  # defaults for `kit train`: any of its options",
              f"  size: {preset.size}", "  epochs: 20", ""]
    return "\n".join(lines)


def write_preset(name: str, folder: str = ".", force: bool = False) -> Path:
    """Write `<folder>/kit.yaml` for preset `name`; an existing kit.yaml is kept unless `force`."""
    preset = get_preset(name)
    path = Path(folder) / "kit.yaml"
    if path.exists() and not force:
        raise KitError(f"{path}: already exists (give --force to overwrite it)")
    text = preset_yaml(preset)
    spec_from_dict(yaml.safe_load(text)["competition"], source=path)  # what is written reads back
    return io.write_text(path, text)
