"""The settings of one training run: defaults, then the config's `train:` section, then command-line options.

One table (`FIELDS`, the `train` section) names every knob with its default, type and help; the `kit train`
options are generated from it, and the fully resolved settings are saved beside each run as `config.yaml`.
Adding a knob is one `Field(...)` line here (and the code that uses it).

>>> settings = resolve_settings({"epochs": 3, "models": ["resnet34", {"name": "resnet50", "lr": 3e-4}]},
...                             {"batch_size": 16})
>>> [(s.model, s.epochs, s.lr, s.batch_size) for s in settings]
[('resnet34', 3, 0.001, 16), ('resnet50', 3, 0.0003, 16)]
>>> settings[1].fold_run.oof.as_posix()
'runs/resnet50/fold0/oof.csv'
"""
from __future__ import annotations

import copy
import re
from dataclasses import dataclass

from kit.errors import KitError
from kit.layout import FOLDS_FILE, RUNS_ROOT, FoldRun, fold_run
from kit.settings.fields import Field, Registry, Table

DEFAULT_AUGMENT = [
    {"name": "HorizontalFlip", "p": 0.5},
    {"name": "VerticalFlip", "p": 0.5},
    {"name": "RandomRotate90", "p": 0.5},
    {"name": "Affine", "translate_percent": [-0.0625, 0.0625], "scale": [0.9, 1.1], "rotate": [-30, 30], "p": 0.5},
    {"name": "RandomBrightnessContrast", "brightness_limit": 0.1, "contrast_limit": 0.1, "p": 0.5},
]
LOSSES = ("bce", "focal", "soft_f1")
TTA_VIEWS = Registry("kit.train.tta", "VIEWS")


def parse_loss(value, source: str = "loss") -> dict[str, float]:
    """'bce', 'bce+0.5*soft_f1' or {bce: 1, soft_f1: 0.5} -> {name: weight}."""
    if isinstance(value, dict):
        terms = {str(k): v for k, v in value.items()}
    elif isinstance(value, str):
        terms = {}
        for part in value.replace(" ", "").split("+"):
            weight, _, name = part.rpartition("*")
            terms[name] = weight or 1.0
    else:
        raise KitError(f"{source}: expected a loss name, a sum such as 'bce+0.5*soft_f1', or a mapping")
    result = {}
    for name, weight in terms.items():
        if name not in LOSSES:
            raise KitError(f"{source}: unknown loss {name!r}; known: {', '.join(LOSSES)}")
        try:
            result[name] = float(weight)
        except (TypeError, ValueError):
            raise KitError(f"{source}: weight of {name} is not a number: {weight!r}") from None
    if not result or all(w == 0 for w in result.values()):
        raise KitError(f"{source}: no loss term with a non-zero weight")
    return result


def parse_augment(value, where: str) -> list[dict]:
    """An albumentations pipeline as data: [{name: Transform, param: value}], 'default' or 'none'."""
    if value in ("none", [], False):
        return []
    if value == "default":
        return copy.deepcopy(DEFAULT_AUGMENT)
    if not isinstance(value, list) or not all(isinstance(item, dict) and "name" in item for item in value):
        raise KitError(f"{where}: expected a list of {{name: Transform, param: value}} entries, or 'none'")
    return copy.deepcopy(value)


def parse_channel_values(value, where: str) -> list[float]:
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, (int, float)) for v in value):
        raise KitError(f"{where}: expected a list of numbers, one per channel")
    return [float(v) for v in value]


FIELDS = (
    Field("model", "resnet34", str, "timm model name, or smp:<encoder> for a segmentation-models-pytorch encoder."),
    Field("fold", 0, int, "Fold of folds.csv to validate on.", minimum=0),
    Field("name", None, str, "Run folder name under --runs (default: the model name).", nullable=True),
    Field("runs", str(RUNS_ROOT), str, "Folder that holds the runs: <runs>/<name>/fold<k>/."),
    Field("folds", FOLDS_FILE.as_posix(), str, "The folds file written by `kit folds`."),
    Field("seed", 42, int, "Random seed; the same seed gives the same run on CPU.", minimum=0, maximum=2**32 - 1),
    Field("size", 512, int, "Image side (px) that images are resized to for training and prediction.", minimum=1),
    Field("crop", None, int, "Train on random crops of this side from the --size image (prediction sees the whole "
          "image).", nullable=True, minimum=1),
    Field("epochs", 20, int, "Number of epochs.", minimum=1),
    Field("batch_size", 32, int, "Images per batch (per process under torchrun).", minimum=1),
    Field("accumulate", 1, int, "Batches per optimizer step (gradient accumulation).", minimum=1),
    Field("lr", 1e-3, float, "Peak learning rate of the head (and of the backbone unless --backbone-lr).", minimum=0),
    Field("backbone_lr", None, float, "Peak learning rate of the backbone (default: --lr; --lr/10 with "
          "--freeze-epochs, so the pretrained layers move less than the new head).", nullable=True, minimum=0),
    Field("weight_decay", 1e-2, float, "AdamW weight decay (not applied to biases and norm layers).", minimum=0),
    Field("schedule", "onecycle", str, "Learning-rate schedule, stepped every optimizer step.",
          ("onecycle", "cosine", "constant")),
    Field("warmup", 0.1, float, "Share of the steps spent warming up (one-cycle: rising to the peak); not with "
          "--schedule constant.", minimum=0, maximum=1),
    Field("freeze_epochs", 0, int, "Train only the head for this many epochs, then every layer.", minimum=0),
    Field("loss", "bce", str, "Loss: bce, focal, soft_f1, or a weighted sum such as 'bce+0.5*soft_f1'.",
          parse=parse_loss),
    Field("focal_gamma", 2.0, float, "Focusing parameter of the focal loss.", minimum=0),
    Field("pos_weight", "none", str, "Per-class positive weights: auto = (negatives/positives), clipped.",
          ("none", "auto")),
    Field("pos_weight_max", 10.0, float, "Upper clip of the automatic positive weights.", minimum=1),
    Field("sampler", "none", str, "balanced: oversample images holding rare classes.", ("none", "balanced")),
    Field("sampler_power", 0.5, float, "Balanced sampler: an image's weight is (1/frequency of its rarest class)^p.",
          minimum=0),
    Field("augment", DEFAULT_AUGMENT, None, "Augmentation: the default pipeline (flips, 90-degree rotations, affine, "
          "brightness/contrast) or none; set a list in the config's train.augment ([{name: Transform, param: "
          "value}]). [default: default]", ("default", "none"), parse=parse_augment),
    Field("augment_on", "auto", str, "Where --augment runs: batch = the CPU only reads uint8 images (and crops) and "
          "the training device augments whole batches, each sample with its own parameters; workers = albumentations "
          "in the DataLoader workers; auto = batch on CUDA when the pipeline has a batch version, else workers.",
          ("auto", "batch", "workers")),
    Field("cache_device", "auto", str, "Where the training images are held: gpu = loaded onto the GPU once, batches "
          "gathered there (needs the batch path); cpu = read by the workers each epoch; auto = gpu on CUDA with the "
          "batch path when they take under 40% of the free GPU memory.", ("auto", "gpu", "cpu")),
    Field("tta", "d4", str, "Test-time augmentation of the predictions: none (1 view), flip (4), d4 (8).",
          TTA_VIEWS),
    Field("ema", 0.0, float, "Decay of an exponential moving average of the weights (0: off), used to validate "
          "and predict (not with --swa, which would replace it).", minimum=0, maximum=1),
    Field("swa", 0, int, "Stochastic weight averaging: validate and predict with the mean of the last N epochs' "
          "weights (BatchNorm statistics recomputed on the training images); the best epoch is picked among "
          "those N. 0: off; not with --ema.", minimum=0),
    Field("mixup", 0.0, float, "mixup alpha: blend pairs of training images and their labels (0: off; 0.2-0.4 "
          "typical).", minimum=0),
    Field("cutmix", 0.0, float, "cutmix alpha: paste a box of one training image into another, labels weighted "
          "by area (0: off; 1.0 typical).", minimum=0),
    Field("mix_prob", 1.0, float, "Share of training batches that mixup/cutmix change.", minimum=0, maximum=1),
    Field("mix_switch_prob", 0.5, float, "With both mixup and cutmix on: share of the mixed batches that use cutmix.",
          minimum=0, maximum=1),
    Field("label_smoothing", 0.0, float, "Training targets become eps / 1-eps instead of 0 / 1 (0: off).",
          minimum=0, maximum=0.5),
    Field("drop_path", 0.0, float, "Stochastic depth: timm's drop_path_rate (the deepest block's drop "
          "probability), for backbones with residual blocks.", minimum=0, maximum=1),
    Field("drop_rate", 0.0, float, "timm's drop_rate: the backbone's own dropout (in most CNNs on the last "
          "feature map); the head's is --dropout.", minimum=0, maximum=1),
    Field("clip_grad", 0.0, float, "Clip the gradient norm to this value (0: off).", minimum=0),
    Field("amp", "auto", str, "Mixed precision: auto = bf16 on GPUs that compute it natively (CUDA compute capability 8.0+: "
          "A100, L4, H100), else fp16 with a loss scaler (T4, P100, V100); off on CPU.",
          ("auto", "bf16", "fp16", "off")),
    Field("device", "auto", str, "auto (cuda, then mps, then cpu), or a torch device such as cuda:1."),
    Field("sync_bn", False, bool, "Under torchrun on GPUs: BatchNorm statistics over every process's batch "
          "(SyncBatchNorm)."),
    Field("workers", None, int, "DataLoader worker processes, or reader threads on the batch path from a cache "
          "(default: the cores available less one for the main process, at least 1: 1 on a Kaggle notebook's 2 "
          "cores).", nullable=True, minimum=0),
    Field("patience", 0, int, "Stop after this many epochs without a better --monitor value (0: never).", minimum=0),
    Field("monitor", "val_metric_tuned", str, "What decides the best checkpoint: the competition's metric at tuned "
          "thresholds, at 0.5, or the validation loss; or last: the last epoch, nothing picked on the rows that "
          "become oof.csv, so its OOF score carries no selection optimism (see BENCHMARKS.md).",
          ("val_metric_tuned", "val_metric", "val_loss", "last")),
    Field("pretrained", "auto", str, "Weights: a file (timm/torch/safetensors), none (random), or auto (timm's "
          "local cache if it holds them, else random; never the network). A file applies to every --model; give "
          "per-model files in the config's models: entries."),
    Field("init", None, str, "Start each fold from the same fold's best.pt of an earlier kit run, e.g. runs/resnet34 "
          "(backbone and head: a second stage at another size, crop, loss or schedule). The run must come from the "
          "same folds and competition spec.", nullable=True),
    Field("pool", "catavgmax", str, "Head pooling (timm names): catavgmax = average and max concatenated.",
          ("catavgmax", "avgmax", "avg", "max")),
    Field("dropout", 0.25, float, "Dropout before the head's linear layer.", minimum=0, maximum=1),
    Field("prior_bias", True, bool, "Start the head's biases at the log-odds of each class's frequency."),
    Field("mean", None, None, "Per-channel normalisation mean (0..1); default: measured on training images.",
          nullable=True, parse=parse_channel_values, cli=False),
    Field("std", None, None, "Per-channel normalisation std (0..1); default: measured on training images.",
          nullable=True, parse=parse_channel_values, cli=False),
    Field("progress", True, bool, "Show a progress bar per epoch."),
    Field("track", "none", str, "Experiment tracking besides TensorBoard's (always written to <run>/tb/): mlflow "
          "logs each fold as an MLflow run under one per model ($MLFLOW_TRACKING_URI, else sqlite:///mlruns.db).",
          ("none", "mlflow")),
    Field("time_limit", None, str, "Stop cleanly before this much time has passed (8h30m, 45m, 90s), keeping room "
          "for the final prediction: last.pt is saved and kit train exits with code 75; run the same command with "
          "--resume to continue. A limit too short for the prediction is refused before training.", nullable=True,
          parse=lambda value, where: _duration(value, where)),
    Field("checkpoint_every", None, str, "Also save last.pt in the middle of epochs this often (10m, 1h30m), so a "
          "killed run loses at most that much; --resume continues from it exactly.", nullable=True,
          parse=lambda value, where: _duration(value, where)),
)
FIELD = {f.name: f for f in FIELDS}


def _duration(value, where: str) -> str:
    from kit.train.budget import check_duration  # no torch: kit.train.budget imports it only where it runs

    return check_duration(value, where)


@dataclass
class Settings:
    """The resolved settings of one run (one model on one fold); attribute access to every FIELDS name."""

    values: dict

    def __getattr__(self, name: str):
        try:
            return self.__dict__["values"][name]
        except KeyError:
            raise AttributeError(name) from None

    def replace(self, **changes) -> Settings:
        return Settings(normalise({**self.values, **changes}))

    def to_dict(self) -> dict:
        return copy.deepcopy(self.values)

    @property
    def run_name(self) -> str:
        return self.name or re.sub(r"[^A-Za-z0-9._-]+", "-", self.model)

    @property
    def fold_run(self) -> FoldRun:
        """This run's folder and files: <runs>/<name>/fold<k>/ (see kit.layout)."""
        return fold_run(self.runs, self.run_name, self.fold)

    @property
    def head_lr(self) -> float:
        return self.lr

    @property
    def body_lr(self) -> float:
        if self.backbone_lr is not None:
            return self.backbone_lr
        return self.lr / 10 if self.freeze_epochs else self.lr


def _check(result: dict, source: str) -> None:
    """What a field's own range cannot say: bounds that involve another field, and open upper bounds."""
    if result["crop"] is not None and not result["crop"] <= result["size"]:
        raise KitError(f"{source}: crop must be between 1 and size ({result['size']}), got {result['crop']}")
    if not result["ema"] < 1:
        raise KitError(f"{source}: ema must be in [0, 1), got {result['ema']}")
    if result["ema"] and result["swa"]:
        raise KitError(f"{source}: ema and swa both average the weights, and only swa's average would validate and "
                       "predict; choose one")
    for name in ("drop_path", "drop_rate"):
        if not result[name] < 1:
            raise KitError(f"{source}: {name} must be in [0, 1), got {result[name]}")
    if not result["label_smoothing"] < 0.5:
        raise KitError(f"{source}: label_smoothing must be in [0, 0.5), got {result['label_smoothing']}")
    if not result["swa"] <= result["epochs"]:
        raise KitError(f"{source}: swa (epochs averaged) must be in 0..epochs ({result['epochs']}), "
                       f"got {result['swa']}")
    if result["monitor"] == "last" and result["patience"]:
        raise KitError(f"{source}: patience stops on a --monitor value that stops improving; --monitor last "
                       "has none (give --patience 0, or another --monitor)")
    if result["epochs"] <= result["freeze_epochs"]:
        raise KitError(f"{source}: freeze_epochs must be in 0..epochs-1 ({result['epochs'] - 1}), "
                       f"got {result['freeze_epochs']}")


# The `train:` section. Its messages read `kit.yaml: train: epochs: ...`.
TRAIN = Table("train", FIELDS, check=_check, separator=": ", noun="train setting(s)")


def normalise(values: dict, source: str = "settings", check: bool = True) -> dict:
    """Defaults plus `values`, each coerced to its field's type; unknown names and bad values are errors."""
    return TRAIN.normalise(values, source, check)


def model_entries(section: dict, source: str) -> list[dict]:
    """The config's `models:` list (names, or {name: ..., setting: value} for per-model settings) or `model:`."""
    entries = section.get("models")
    if entries is None:
        return [{"model": section["model"]}] if section.get("model") else []
    if not isinstance(entries, list):
        raise KitError(f"{source}: train.models must be a list of model names or {{name: ...}} mappings")
    result = []
    for entry in entries:
        if isinstance(entry, str):
            result.append({"model": entry})
        elif isinstance(entry, dict) and "name" in entry:
            result.append({"model": entry["name"], **{k: v for k, v in entry.items() if k != "name"}})
        else:
            raise KitError(f"{source}: train.models entry {entry!r} needs a name")
    return result


def resolve_settings(section: dict | None = None, options: dict | None = None, models: list[str] | None = None,
                     source: str = "kit.yaml") -> list[Settings]:
    """One Settings per model: defaults, then the config's `train:` section (and that model's own entry in
    `models:`), then `options` (command-line values; None means not given). `models` (from --model) replaces
    the config's list; a name given there still picks up its per-model entry from the config."""
    section = dict(section or {})
    entries = model_entries(section, source)
    base = {k: v for k, v in section.items() if k not in ("models", "model")}
    options = {k: v for k, v in (options or {}).items() if v is not None}
    if models:
        by_name = {e["model"]: e for e in entries}
        entries = [by_name.get(name, {"model": name}) for name in models]
    if not entries:
        entries = [{}]
    from kit.data.augment import build_transform

    runs = []
    for entry in entries:
        merged = {**base, **entry}
        normalise(merged, f"{source}: train", check=False)  # errors in the config name the config file
        settings = Settings(normalise({**merged, **options}, "options" if options else f"{source}: train"))
        check_warmup(settings, {**merged, **options}, "options" if "warmup" in options else f"{source}: train")
        build_transform(settings.augment, settings.crop, source=f"{source}: train.augment")  # a typo fails now
        runs.append(settings)
    return runs


def check_warmup(settings: Settings, given: dict, source: str) -> None:
    """A warm-up given for the constant schedule, which has none, is refused rather than ignored."""
    if settings.schedule == "constant" and given.get("warmup") not in (None, 0, 0.0):
        raise KitError(f"{source}: warmup {settings.warmup:g} applies to the onecycle and cosine schedules; "
                       "schedule constant has no warm-up (remove warmup, or pick another schedule)")


def run_config(settings: Settings, data) -> dict:
    """What `config.yaml` holds: a config file that reproduces this run (`kit train --config config.yaml`).
    `data` is the run's CompetitionData; its paths are written absolute."""
    config = {"competition": data.spec.to_dict(), "data": str(data.root.resolve())}
    if data.external:
        config["external"] = [{"labels": str(labels.resolve()), "images": str(source.image_dir.resolve()),
                               "ext": source.image_ext} for source, labels in zip(data.external, data.external_labels)]
    return {**config, "train": settings.to_dict()}


def train_value(section: dict, name: str, source: str = "kit.yaml"):
    """One setting of a config's `train:` section (its default where absent), without resolving the others:
    how `kit folds` and `kit blend` find the folds file and the runs root that `kit train` uses."""
    field = FIELD[name]
    return field.coerce(section[name], TRAIN.where(f"{source}: train", name)) if name in section \
        else field.default_value()
