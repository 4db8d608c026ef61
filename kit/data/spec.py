"""The competition spec: everything competition-specific lives here, with HPA as the default.

Every other module reads class and channel counts from a `CompetitionSpec`, never from a constant.

Classes may be left to the data folder: `classes: labels.csv` (a CSV of index and name, as iMet's) or, with
`label_format: names` and no `classes`, the sorted names found in the train CSV. Such a spec is *pending*
until `kit.data.reading.resolve_classes` reads them; `CompetitionData` does that on construction.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from numbers import Real
from pathlib import Path

import numpy as np

from kit.errors import KitError
from kit.score.metrics import Metric, parse_metric

HPA_CLASSES = (
    "Nucleoplasm", "Nuclear membrane", "Nucleoli", "Nucleoli fibrillar center",
    "Nuclear speckles", "Nuclear bodies", "Endoplasmic reticulum", "Golgi apparatus",
    "Peroxisomes", "Endosomes", "Lysosomes", "Intermediate filaments", "Actin filaments",
    "Focal adhesion sites", "Microtubules", "Microtubule ends", "Cytokinetic bridge",
    "Mitotic spindle", "Microtubule organizing center", "Centrosome", "Lipid droplets",
    "Plasma membrane", "Cell junctions", "Mitochondria", "Aggresome", "Cytosol",
    "Cytoplasmic bodies", "Rods & rings",
)

# Training-set counts of each HPA class (31,072 images): the long tail that `kit synth` imitates.
HPA_CLASS_COUNTS = (
    12885, 1254, 3621, 1561, 1858, 2513, 1008, 2822, 53, 45, 28, 1093, 688, 537,
    1066, 21, 530, 210, 902, 1482, 172, 3777, 802, 2965, 322, 8228, 328, 11,
)
HPA_TRAIN_SIZE = 31072


@dataclass(frozen=True)
class CompetitionSpec:
    """What a multi-label image competition is: its classes, its channels and its file layout."""

    slug: str = "human-protein-atlas-image-classification"
    classes: tuple[str, ...] = HPA_CLASSES
    channels: tuple[str, ...] = ("red", "green", "blue", "yellow")
    image_ext: str = "png"
    train_csv: str = "train.csv"
    sample_submission: str = "sample_submission.csv"
    train_dir: str = "train"
    test_dir: str = "test"
    id_column: str = "Id"
    target_column: str = "Target"
    prediction_column: str = "Predicted"
    # How the train CSV holds labels (one codec each, see kit.data.labels): class `indices` or class `names` in
    # the target column, `wide` (one 0/1 column per class) or `long` (one row per image and class).
    label_format: str = "indices"
    label_separator: str = " "
    long_separator: str = "_"  # `long`: the id cell is <image id><long_separator><class>
    submission_format: str = "labels"  # `labels` (class lists), `wide` or `long` probabilities
    task: str = "multilabel"  # `multilabel` (a sigmoid per class) or `multiclass` (exactly one class per image)
    group_column: str | None = None  # a train CSV column whose groups `kit folds` keeps inside one fold
    image_layout: str = "channels"  # `channels`: {dir}/{Id}_{channel}.{ext}; `file`: {dir}/{Id}.{ext}
    # DICOM (`image_ext: dcm`): ((center, width), ...) in Hounsfield units, one 8-bit channel each, in `channels`
    # order; "file" for each file's own WindowCenter/WindowWidth; None for -1024..3071 scaled.
    windows: tuple[tuple[float, float], ...] | str | None = None
    # ((class name, weight), ...): a weighted metric (RSNA's `any` x2); unnamed classes weigh 1.
    class_weights: tuple[tuple[str, float], ...] | None = None
    metric: str = "macro_f1"  # see kit.score.metrics.parse_metric
    # Optional per-class train frequencies (same order as `classes`); used by `kit synth` for the long tail.
    class_frequencies: tuple[float, ...] | None = field(default=None, compare=False)
    # Where pending classes come from: a CSV in the data folder, or "" for the train CSV's names (not a YAML key:
    # `classes: labels.csv` sets it). None once the classes are known.
    classes_file: str | None = None

    @property
    def pending(self) -> bool:
        """Whether the classes are still to be read from the data folder."""
        return self.classes_file is not None

    @property
    def num_classes(self) -> int:
        if self.pending:
            where = self.classes_file or f"the names of {self.train_csv}"
            raise KitError(f"the competition's classes are not known yet: they come from {where} in the data "
                           "folder (competition.classes in kit.yaml)")
        return len(self.classes)

    @property
    def scorer(self) -> Metric:
        """The competition's metric as a `kit.score.metrics.Metric`."""
        return parse_metric(self.metric)

    @property
    def test_dirs(self) -> tuple[str, ...]:
        """The test folders, in lookup order (`test_dir` may be one folder or a list)."""
        return (self.test_dir,) if isinstance(self.test_dir, str) else tuple(self.test_dir)

    @property
    def num_channels(self) -> int:
        return len(self.channels)

    @property
    def multiclass(self) -> bool:
        return self.task == "multiclass"

    @property
    def image_suffix(self) -> str:
        """What follows the Id in an image's file name: `.png`, or nothing for `image_ext: none`."""
        return "" if self.image_ext == NO_EXTENSION else f".{self.image_ext}"

    def class_weight_array(self) -> np.ndarray:
        """The weight of each class, in class order (1.0 where `class_weights` names none)."""
        weights = np.ones(self.num_classes, dtype=np.float64)
        index = {name: i for i, name in enumerate(self.classes)}
        for name, weight in self.class_weights or ():
            if name not in index:
                raise KitError(f"competition.class_weights: {name!r} is not one of the {self.num_classes} classes")
            weights[index[name]] = weight
        return weights

    def frequencies(self) -> tuple[float, ...]:
        """Expected share of samples holding each class: the spec's own, else HPA's long tail, cycled."""
        if self.class_frequencies is not None:
            return tuple(self.class_frequencies)
        hpa = [count / HPA_TRAIN_SIZE for count in HPA_CLASS_COUNTS]
        return tuple(hpa[i % len(hpa)] for i in range(self.num_classes))

    def to_dict(self) -> dict:
        """The spec as the `competition:` mapping of a kit.yaml (with the classes resolved, if they are)."""
        data = dataclasses.asdict(self)
        data["classes"] = self.classes_file if self.classes_file else list(self.classes)
        data.pop("classes_file")
        if self.classes_file == "":
            data.pop("classes")
        data["channels"] = list(self.channels)
        data["test_dir"] = self.test_dir if isinstance(self.test_dir, str) else list(self.test_dir)
        if self.class_frequencies is None:
            data.pop("class_frequencies")
        else:
            data["class_frequencies"] = list(self.class_frequencies)
        for key in ("group_column", "windows", "class_weights"):
            if data[key] is None:
                data.pop(key)
        if isinstance(self.windows, tuple):
            data["windows"] = [list(window) for window in self.windows]
        if self.class_weights is not None:
            data["class_weights"] = dict(self.class_weights)
        return data


HPA = CompetitionSpec()

NO_EXTENSION = "none"  # `image_ext: none`: the Id is the whole file name (Cassava's `1000015157.jpg`)
DICOM_EXTENSION = "dcm"
CHOICES = {
    "label_format": ("indices", "names", "wide", "long"),
    "submission_format": ("labels", "wide", "long"),
    "task": ("multilabel", "multiclass"),
    "image_layout": ("channels", "file"),
}


def spec_from_dict(data: dict | None, source: str | Path = "kit.yaml") -> CompetitionSpec:
    """Build a spec from the `competition:` part of a config; unknown keys and bad values are errors."""
    if not data:
        return HPA
    if not isinstance(data, dict):
        raise KitError(f"{source}: 'competition' must be a mapping of keys to values")
    known = {f.name for f in dataclasses.fields(CompetitionSpec)} - {"classes_file"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise KitError(f"{source}: unknown competition key(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    values = dict(data)
    lists = ("classes", "channels", "class_frequencies", "test_dir", "windows", "class_weights")
    for key, value in values.items():
        if key in ("label_separator", "long_separator"):
            if not isinstance(value, str) or value == "":
                raise KitError(f"{source}: competition.{key} must be a non-empty string, got {value!r}")
        elif key not in lists and (not isinstance(value, str) or not value.strip()):
            raise KitError(f"{source}: competition.{key} must be a non-empty string, got {value!r}")
    for key, choices in CHOICES.items():
        if key in values and values[key] not in choices:
            raise KitError(f"{source}: competition.{key} must be {' or '.join(choices)}, got {values[key]!r}")
    if "windows" in values:
        values["windows"] = _windows(values["windows"], source)
    if "class_weights" in values:
        values["class_weights"] = _class_weights(values["class_weights"], source)
    values["metric"] = parse_metric(values.get("metric"), key=f"{source}: competition.metric").name
    if isinstance(values.get("test_dir"), (list, tuple)):
        if not values["test_dir"] or not all(isinstance(d, str) and d.strip() for d in values["test_dir"]):
            raise KitError(f"{source}: competition.test_dir must be a folder or a non-empty list of folders")
        values["test_dir"] = values["test_dir"][0] if len(values["test_dir"]) == 1 else tuple(values["test_dir"])
    elif "test_dir" in values and (not isinstance(values["test_dir"], str) or not values["test_dir"].strip()):
        raise KitError(f"{source}: competition.test_dir must be a folder or a non-empty list of folders")
    if isinstance(values.get("classes"), str):
        if not values["classes"].strip():
            raise KitError(f"{source}: competition.classes must be a list of names or the name of a CSV file")
        values["classes_file"], values["classes"] = values["classes"].strip(), ()
    elif "classes" not in values and values.get("label_format") in ("names", "wide"):
        values["classes_file"], values["classes"] = "", ()  # the names (or wide columns) found in the train CSV
    elif "classes" not in values and values.get("label_format") == "long":
        raise KitError(f"{source}: competition.classes must be listed for label_format: long (the class is the "
                       "longest suffix of an Id that names one)")
    if values.get("classes_file") is not None:
        values.pop("classes")
    for key in ("classes", "channels", "class_frequencies"):
        if key in values and values[key] is not None:
            if not isinstance(values[key], (list, tuple)) or not values[key]:
                raise KitError(f"{source}: competition.{key} must be a non-empty list")
            values[key] = tuple(values[key])
    if "classes" in values:
        values["classes"] = tuple(str(name) for name in values["classes"])
        if len(set(values["classes"])) != len(values["classes"]):
            raise KitError(f"{source}: competition.classes has duplicate names")
        if values.get("label_format") == "names":
            check_names(values["classes"], values.get("label_separator", " "), f"{source}: competition.classes")
    if "channels" in values:
        values["channels"] = tuple(str(name) for name in values["channels"])
    if values.get("classes_file") is not None:
        values["classes"] = ()
    spec = CompetitionSpec(**values)
    if spec.class_frequencies is not None and not spec.pending and len(spec.class_frequencies) != spec.num_classes:
        raise KitError(
            f"{source}: competition.class_frequencies has {len(spec.class_frequencies)} values "
            f"for {spec.num_classes} classes"
        )
    spec = dataclasses.replace(spec, image_ext=spec.image_ext.lstrip("."))
    check_layout(spec, source)
    if not spec.pending:
        check_classes(spec, source)
    return spec


def _windows(value, source) -> tuple[tuple[float, float], ...] | str:
    if value == "file":
        return value
    where = f"{source}: competition.windows"
    if not isinstance(value, (list, tuple)) or not value:
        raise KitError(f"{where} must be 'file' or a list of [center, width] pairs, got {value!r}")
    windows = []
    for window in value:
        if (not isinstance(window, (list, tuple)) or len(window) != 2
                or not all(isinstance(v, Real) and not isinstance(v, bool) and np.isfinite(v) for v in window)):
            raise KitError(f"{where}: {window!r} is not a [center, width] pair of numbers")
        if window[1] <= 0:
            raise KitError(f"{where}: {list(window)!r} has width {window[1]}; a width must be positive")
        windows.append((float(window[0]), float(window[1])))
    return tuple(windows)


def _class_weights(value, source) -> tuple[tuple[str, float], ...]:
    where = f"{source}: competition.class_weights"
    if not isinstance(value, dict) or not value:
        raise KitError(f"{where} must be a mapping of class name to weight, e.g. {{any: 2}}, got {value!r}")
    weights = []
    for name, weight in value.items():
        if isinstance(weight, bool) or not isinstance(weight, Real) or not np.isfinite(weight) or weight <= 0:
            raise KitError(f"{where}: the weight of {name!r} must be a positive number, got {weight!r}")
        weights.append((str(name), float(weight)))
    return tuple(weights)


def check_layout(spec: CompetitionSpec, source) -> None:
    """The keys that only make sense together (DICOM windows, `image_ext: none`, long files) agree."""
    where = f"{source}: competition"
    dicom = spec.image_ext.lower() == DICOM_EXTENSION
    if spec.image_ext == NO_EXTENSION and spec.image_layout != "file":
        raise KitError(f"{where}.image_ext: none (the Id is the file name) needs image_layout: file")
    if dicom and spec.image_layout != "file":
        raise KitError(f"{where}.image_ext: dcm needs image_layout: file (one DICOM file per image)")
    if spec.windows is not None and not dicom:
        raise KitError(f"{where}.windows applies to DICOM images only (image_ext: dcm), not {spec.image_ext}")
    if dicom:
        wanted = len(spec.windows) if isinstance(spec.windows, tuple) else 1
        if len(spec.channels) != wanted:
            what = (f"{wanted} windows" if isinstance(spec.windows, tuple)
                    else "one window (the file's own)" if spec.windows == "file" else "one channel (HU -1024..3071)")
            raise KitError(f"{where}.channels lists {len(spec.channels)} channel(s) but the DICOM images give {what}: "
                           "one channel name per window")
    if "gray" in spec.channels and len(spec.channels) > 1 and not dicom:
        raise KitError(f"{where}.channels: gray stands alone (one grayscale channel), got {list(spec.channels)}")
    if spec.group_column is not None and spec.group_column == spec.id_column:
        raise KitError(f"{where}.group_column must not be the id column {spec.id_column!r}")


def check_classes(spec: CompetitionSpec, source) -> None:
    """Checks that need the classes: class_weights name classes, long ids can be split."""
    names = set(spec.classes)
    for name, _weight in spec.class_weights or ():
        if name not in names:
            raise KitError(f"{source}: competition.class_weights: {name!r} is not one of the classes "
                           f"({', '.join(spec.classes[:8])}{', ...' if len(spec.classes) > 8 else ''})")
    if spec.task == "multiclass" and len(spec.classes) < 2:
        raise KitError(f"{source}: competition.task: multiclass needs at least two classes")


def check_names(names, separator: str, where: str) -> None:
    """Class names written into label cells must not contain the separator (nor be empty)."""
    for name in names:
        if not name.strip() or (separator.strip() and separator in name) or (not separator.strip() and
                                                                             any(ch.isspace() for ch in name)):
            raise KitError(f"{where}: class name {name!r} is empty or holds the label separator {separator!r}")
