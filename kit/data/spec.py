"""The competition spec: everything competition-specific lives here, with HPA as the default.

Every other module reads class and channel counts from a `CompetitionSpec`, never from a constant.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from kit.errors import KitError

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
    # Optional per-class train frequencies (same order as `classes`); used by `kit synth` for the long tail.
    class_frequencies: tuple[float, ...] | None = field(default=None, compare=False)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

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
        data = dataclasses.asdict(self)
        data["classes"] = list(self.classes)
        data["channels"] = list(self.channels)
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
    known = {f.name for f in dataclasses.fields(CompetitionSpec)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise KitError(f"{source}: unknown competition key(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    values = dict(data)
    for key, value in values.items():
        if key not in ("classes", "channels", "class_frequencies") and (not isinstance(value, str) or not value.strip()):
            raise KitError(f"{source}: competition.{key} must be a non-empty string, got {value!r}")
    for key in ("classes", "channels", "class_frequencies"):
        if key in values and values[key] is not None:
            if not isinstance(values[key], (list, tuple)) or not values[key]:
                raise KitError(f"{source}: competition.{key} must be a non-empty list")
            values[key] = tuple(values[key])
    if "classes" in values:
        values["classes"] = tuple(str(name) for name in values["classes"])
        if len(set(values["classes"])) != len(values["classes"]):
            raise KitError(f"{source}: competition.classes has duplicate names")
    if "channels" in values:
        values["channels"] = tuple(str(name) for name in values["channels"])
    spec = CompetitionSpec(**values)
    if spec.class_frequencies is not None and len(spec.class_frequencies) != spec.num_classes:
        raise KitError(
            f"{source}: competition.class_frequencies has {len(spec.class_frequencies)} values "
            f"for {spec.num_classes} classes"
        )
    spec = dataclasses.replace(spec, image_ext=spec.image_ext.lstrip("."))
    return spec
