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
RANZCR_CLASSES = (
    "ETT - Abnormal", "ETT - Borderline", "ETT - Normal", "NGT - Abnormal", "NGT - Borderline",
    "NGT - Incompletely Imaged", "NGT - Normal", "CVC - Abnormal", "CVC - Borderline", "CVC - Normal",
    "Swan Ganz Catheter Present",
)
RSNA_SUBTYPES = ("epidural", "intraparenchymal", "intraventricular", "subarachnoid", "subdural", "any")
PLANT_CLASSES = ("healthy", "multiple_diseases", "rust", "scab")
# label_num_to_disease_map.json of Cassava Leaf Disease Classification: the label is the index
CASSAVA_CLASSES = ("Cassava Bacterial Blight (CBB)", "Cassava Brown Streak Disease (CBSD)",
                   "Cassava Green Mottle (CGM)", "Cassava Mosaic Disease (CMD)", "Healthy")
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
    "label_format": "how the train CSV holds labels: indices, names, wide (a 0/1 column per class) or long",
    "submission_format": "labels (class lists), wide (a probability column per class) or long (a row per "
                         "image and class)",
    "task": "multilabel (a sigmoid per class) or multiclass (exactly one class per image: softmax)",
    "test_dir": "test images",
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
    "ranzcr-clip": Preset(
        "ranzcr-clip", "RANZCR CLiP - Catheter and Line Position Challenge (2021)",
        {
            "slug": "ranzcr-clip-catheter-line-classification",
            "train_csv": "train.csv", "sample_submission": "sample_submission.csv", "id_column": "StudyInstanceUID",
            "label_format": "wide", "classes": list(RANZCR_CLASSES), "task": "multilabel",
            "group_column": "PatientID", "submission_format": "wide",
            "image_layout": "file", "channels": ["gray"], "image_ext": "jpg", "train_dir": "train", "test_dir": "test",
            "metric": "macro_auc",
        },
        {"label_format": "wide: one 0/1 column per class, headed by its name",
         "classes": "the 11 columns between StudyInstanceUID and PatientID; the order gives the class index",
         "group_column": "`kit folds` keeps each patient's studies inside one fold",
         "submission_format": "wide: StudyInstanceUID + one probability column per class",
         "image_layout": "one grayscale JPEG per study: train/{StudyInstanceUID}.jpg",
         "channels": "one grayscale channel", "metric": "mean column-wise ROC AUC (no thresholds)"},
        512,
    ),
    "rsna-ich-2019": Preset(
        "rsna-ich-2019", "RSNA Intracranial Hemorrhage Detection (2019)",
        {
            "slug": "rsna-intracranial-hemorrhage-detection",
            "train_csv": "stage_2_train.csv", "sample_submission": "stage_2_sample_submission.csv",
            "id_column": "ID", "target_column": "Label", "prediction_column": "Label",
            "label_format": "long", "long_separator": "_", "classes": list(RSNA_SUBTYPES), "task": "multilabel",
            "submission_format": "long",
            "image_layout": "file", "image_ext": "dcm", "train_dir": "stage_2_train", "test_dir": "stage_2_test",
            "channels": ["brain", "subdural", "soft_tissue"], "windows": [[40, 80], [80, 200], [40, 380]],
            "metric": "logloss", "class_weights": {"any": 2},
        },
        {"label_format": "long: one row per image and subtype, ID_<image>_<subtype>,Label",
         "long_separator": "between the image Id and the subtype",
         "classes": "the subtypes; `any` is 1 where some subtype is",
         "submission_format": "long: one ID_<image>_<subtype>,Label row per image and subtype",
         "image_layout": "one DICOM CT slice per image: stage_2_train/ID_<image>.dcm",
         "image_ext": "DICOM, read with pydicom: Hounsfield units through RescaleSlope/RescaleIntercept",
         "channels": "one channel per window, in this order",
         "windows": "[center, width] in HU: brain, subdural, soft tissue (or `file`: each file's own window)",
         "metric": "binary log loss over every image-subtype cell (lower is better)",
         "class_weights": "the metric's weighted mean: `any` counts twice"},
        256,
    ),
    "plant-pathology-2020": Preset(
        "plant-pathology-2020", "Plant Pathology 2020 - FGVC7",
        {
            "slug": "plant-pathology-2020-fgvc7",
            "train_csv": "train.csv", "sample_submission": "sample_submission.csv", "id_column": "image_id",
            "label_format": "wide", "classes": list(PLANT_CLASSES), "task": "multiclass",
            "submission_format": "wide",
            "image_layout": "file", "channels": ["red", "green", "blue"], "image_ext": "jpg",
            "train_dir": "images", "test_dir": "images", "metric": "macro_auc",
        },
        {"label_format": "wide one-hot: exactly one 1 per row",
         "classes": "the four columns after image_id",
         "task": "multiclass: one class per leaf (softmax); folds stratify on it",
         "submission_format": "wide: image_id + one probability column per class",
         "image_layout": "one RGB JPEG per leaf: images/Train_<i>.jpg and images/Test_<i>.jpg",
         "channels": "the file's channels, in order", "test_dir": "test images share the folder",
         "metric": "mean column-wise ROC AUC (no thresholds)"},
        384,
    ),
    "cassava-2020": Preset(
        "cassava-2020", "Cassava Leaf Disease Classification (2020)",
        {
            "slug": "cassava-leaf-disease-classification",
            "train_csv": "train.csv", "sample_submission": "sample_submission.csv",
            "id_column": "image_id", "target_column": "label", "prediction_column": "label",
            "label_format": "indices", "classes": list(CASSAVA_CLASSES), "task": "multiclass",
            "submission_format": "labels",
            "image_layout": "file", "channels": ["red", "green", "blue"], "image_ext": "none",
            "train_dir": "train_images", "test_dir": "test_images", "metric": "accuracy",
        },
        {"label_format": "one integer class per image",
         "classes": "label_num_to_disease_map.json; the label is the index",
         "task": "multiclass: one class per image (softmax); folds stratify on it",
         "submission_format": "labels: image_id,label with the most probable class",
         "image_layout": "one RGB JPEG per image: train_images/{image_id}",
         "image_ext": "none: the Id is the file name itself (1000015157.jpg)",
         "channels": "the file's channels, in order", "metric": "accuracy"},
        384,
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
