"""The competition spec: everything competition-specific lives here, with HPA as the default.

Every other module reads class and channel counts from a `CompetitionSpec`, never from a constant.

Classes may be left to the data folder: `classes: labels.csv` (a CSV of index and name, as iMet's) or, with
`label_format: names` and no `classes`, the sorted names found in the train CSV. Such a spec is *pending*
until `kit.data.reading.resolve_classes` reads them; `CompetitionData` does that on construction.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

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
    label_format: str = "indices"  # cells of the target column: class `indices` or class `names`
    label_separator: str = " "
    image_layout: str = "channels"  # `channels`: {dir}/{Id}_{channel}.{ext}; `file`: {dir}/{Id}.{ext}
    metric: str = "macro_f1"  # <average>_f<beta>, see kit.score.metrics
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
        return data


HPA = CompetitionSpec()


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
    lists = ("classes", "channels", "class_frequencies", "test_dir")
    for key, value in values.items():
        if key == "label_separator":
            if not isinstance(value, str) or value == "":
                raise KitError(f"{source}: competition.label_separator must be a non-empty string, got {value!r}")
        elif key not in lists and (not isinstance(value, str) or not value.strip()):
            raise KitError(f"{source}: competition.{key} must be a non-empty string, got {value!r}")
    for key, choices in (("label_format", ("indices", "names")), ("image_layout", ("channels", "file"))):
        if key in values and values[key] not in choices:
            raise KitError(f"{source}: competition.{key} must be {' or '.join(choices)}, got {values[key]!r}")
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
    elif "classes" not in values and values.get("label_format") == "names":
        values["classes_file"], values["classes"] = "", ()  # the names found in the train CSV
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
    return spec


def check_names(names, separator: str, where: str) -> None:
    """Class names written into label cells must not contain the separator (nor be empty)."""
    for name in names:
        if not name.strip() or (separator.strip() and separator in name) or (not separator.strip() and
                                                                             any(ch.isspace() for ch in name)):
            raise KitError(f"{where}: class name {name!r} is empty or holds the label separator {separator!r}")
