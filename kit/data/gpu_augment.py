"""Augmentation of whole uint8 batches on the training device, with independent random parameters per sample.

`BatchAugmenter.from_entries(settings.augment)` maps kit's albumentations pipeline (as data) onto batch
operations; entries it cannot express return a reason instead, and that run augments in the workers as before.
An augmenter turns a uint8 N x H x W x C batch (as the workers slice it from the cache; or N x C x H x W) into the
model's input: N x C x H x W, normalised, in the autocast dtype, channels_last if asked.

    HorizontalFlip, VerticalFlip, Transpose, RandomRotate90, D4/SquareSymmetry   exact, on uint8
    Affine (translate_percent, scale, rotate, shear; bilinear, zero border)      kornia's warp_affine
    RandomBrightnessContrast (brightness_by_max)                                 x * alpha + beta * 255, clipped

Every parameter is drawn on the CPU from one `torch.Generator` (`generator_state` / `set_generator_state` for
checkpoints), so a seed gives the same draws on every device. kornia's own augmentation modules draw from torch's
global generator, which the model's dropout and the loader share; drawing here keeps the augmentation stream
one object that --resume can save and restore. The parameter distributions follow albumentations 2.x.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

DIHEDRAL = ("HorizontalFlip", "VerticalFlip", "Transpose", "RandomRotate90", "D4", "SquareSymmetry")


# ---------------------------------------------------------------- the operations, on tensors on any device


def _where(mask: torch.Tensor, device: torch.device) -> torch.Tensor | None:
    index = mask.nonzero().flatten()  # mask is on the CPU: no wait for the device
    return index.to(device, non_blocking=True) if len(index) else None


def flip_some(images: torch.Tensor, mask: torch.Tensor, dim: int) -> torch.Tensor:
    """Flip the samples of N x C x H x W `images` where `mask` (N bools, CPU) along `dim` (-1: left-right)."""
    index = _where(mask, images.device)
    if index is not None:
        images[index] = images[index].flip(dim)
    return images


def rotate_some(images: torch.Tensor, turns: torch.Tensor) -> torch.Tensor:
    """Rotate sample i by turns[i] quarter turns (as np.rot90 on H x W: from the H axis towards the W axis)."""
    for k in (1, 2, 3):
        index = _where(turns == k, images.device)
        if index is not None:
            images[index] = torch.rot90(images[index], k, dims=(-2, -1))
    return images


def transpose_some(images: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    index = _where(mask, images.device)
    if index is not None:
        images[index] = images[index].transpose(-2, -1)
    return images


def affine_matrices(translate: torch.Tensor, scale: torch.Tensor, rotate: torch.Tensor, shear: torch.Tensor,
                    height: int, width: int) -> torch.Tensor:
    """N x 2 x 3 pixel-coordinate matrices (cv2.warpAffine's convention: pixel centres at integers), composed
    as albumentations' Affine does: about the centre, scale, then rotate (degrees, counter-clockwise on screen),
    shear (degrees), then translate (pixels). translate/scale/shear: N x 2 (x, y); rotate: N."""
    n = len(rotate)
    cx, cy = width / 2 - 0.5, height / 2 - 0.5

    def eye() -> torch.Tensor:
        return torch.eye(3, dtype=torch.float64).repeat(n, 1, 1)

    shift, back, sc, rot, sh, tr = eye(), eye(), eye(), eye(), eye(), eye()
    shift[:, 0, 2], shift[:, 1, 2] = -cx, -cy
    back[:, 0, 2], back[:, 1, 2] = cx, cy
    sc[:, 0, 0], sc[:, 1, 1] = scale[:, 0], scale[:, 1]
    radians = torch.deg2rad(rotate.double() % 360)
    rot[:, 0, 0], rot[:, 0, 1] = torch.cos(radians), torch.sin(radians)
    rot[:, 1, 0], rot[:, 1, 1] = -torch.sin(radians), torch.cos(radians)
    sh[:, 0, 1], sh[:, 1, 0] = torch.tan(torch.deg2rad(shear[:, 0].double())), torch.tan(torch.deg2rad(shear[:, 1].double()))
    tr[:, 0, 2], tr[:, 1, 2] = translate[:, 0], translate[:, 1]
    return (back @ tr @ sh @ rot @ sc @ shift)[:, :2].float()


def warp_some(images: torch.Tensor, mask: torch.Tensor, matrices: torch.Tensor) -> torch.Tensor:
    """Warp the float samples where `mask` with their 2 x 3 matrices (dst(p) = src(M^-1 p), as cv2.warpAffine
    with INTER_LINEAR and a zero constant border). kornia's warp_affine with align_corners=True uses cv2's
    pixel-centre convention."""
    from kornia.geometry.transform import warp_affine

    index = _where(mask, images.device)
    if index is not None:
        m = matrices[mask].to(images.device, non_blocking=True)
        images[index] = warp_affine(images[index], m, images.shape[-2:], mode="bilinear", padding_mode="zeros",
                                    align_corners=True)
    return images


def brightness_contrast(images: torch.Tensor, alpha: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
    """albumentations' RandomBrightnessContrast on 0..255 floats: x * alpha + beta * 255, clipped to 0..255
    (alpha, beta: one per sample; 1 and 0 leave a sample as it is)."""
    shape = (-1,) + (1,) * (images.dim() - 1)
    alpha = alpha.to(images.device, images.dtype, non_blocking=True).view(shape)
    beta = (beta * 255).to(images.device, images.dtype, non_blocking=True).view(shape)
    return images.mul_(alpha).add_(beta).clamp_(0, 255)


# ---------------------------------------------------------------- the pipeline: albumentations entries -> ops


@dataclass(frozen=True)
class Op:
    """One batch operation: its kind and (already validated) parameters."""

    kind: str  # hflip, vflip, transpose, rot90, d4, affine, brightness_contrast
    p: float
    params: tuple = ()


def _range(value) -> tuple[float, float]:
    return (float(value[0]), float(value[1])) if isinstance(value, (tuple, list)) else (-float(value), float(value))


def _op_of(transform) -> Op | str:
    """The batch Op for one built albumentations transform, or why there is none."""
    import cv2

    name = type(transform).__name__
    p = float(getattr(transform, "p", 1.0))
    simple = {"HorizontalFlip": "hflip", "VerticalFlip": "vflip", "Transpose": "transpose", "RandomRotate90": "rot90",
              "D4": "d4", "SquareSymmetry": "d4"}
    if name in simple:
        return Op(simple[name], p)
    if name == "Affine":
        checks = {"interpolation": cv2.INTER_LINEAR, "border_mode": cv2.BORDER_CONSTANT, "fit_output": False,
                  "balanced_scale": False}
        for key, wanted in checks.items():
            if getattr(transform, key, wanted) != wanted:
                return f"Affine with {key}={getattr(transform, key)!r}"
        fill = getattr(transform, "fill", 0)
        if any(v != 0 for v in (fill if isinstance(fill, (tuple, list)) else (fill,))):
            return "Affine with a non-zero fill"
        if transform.translate_percent is None:
            if getattr(transform, "translate_px", 0) not in (0, None, {"x": (0, 0), "y": (0, 0)}):
                return "Affine with translate_px"
            translate = {"x": (0.0, 0.0), "y": (0.0, 0.0)}
        else:
            translate = transform.translate_percent
        params = (tuple(map(float, translate["x"])), tuple(map(float, translate["y"])),
                  tuple(map(float, transform.scale["x"])), tuple(map(float, transform.scale["y"])),
                  tuple(map(float, transform.rotate)), tuple(map(float, transform.shear["x"])),
                  tuple(map(float, transform.shear["y"])), bool(transform.keep_ratio))
        return Op("affine", p, params)
    if name == "RandomBrightnessContrast":
        if not transform.brightness_by_max or getattr(transform, "ensure_safe_range", False):
            return "RandomBrightnessContrast with brightness_by_max=False or ensure_safe_range"
        return Op("brightness_contrast", p, (_range(transform.brightness_limit), _range(transform.contrast_limit)))
    return f"{name} has no batch version"


def batch_ops(entries: Sequence[dict] | None) -> tuple[list[Op] | None, str]:
    """(the batch ops for kit's `train.augment` entries, ''), or (None, why not: the first entry that has no
    batch version). Order is kept; nested pipelines (OneOf, ...) are not expressed."""
    from kit.data.augment import build_transform

    ops: list[Op] = []
    for index, entry in enumerate(entries or []):
        transform = build_transform([entry], source=f"train.augment[{index}]").transforms[0]
        try:
            op = _op_of(transform)
        except (AttributeError, KeyError, TypeError):  # an albumentations older than 2.0 names its fields otherwise
            op = f"{type(transform).__name__}: parameters not understood in this albumentations version"
        if isinstance(op, str):
            return None, f"train.augment[{index}]: {op}"
        ops.append(op)
    return ops, ""


# ---------------------------------------------------------------- the augmenter


class BatchAugmenter:
    """`ops` applied to whole batches, each sample drawing its own parameters from one generator."""

    def __init__(self, ops: Sequence[Op], mean: Sequence[float], std: Sequence[float], seed: int = 0,
                 dtype: torch.dtype | None = None, channels_last: bool = False):
        self.ops = list(ops)
        self.mean, self.std = [float(v) for v in mean], [float(v) for v in std]
        self.dtype = dtype or torch.float32
        self.channels_last = channels_last
        self.generator = torch.Generator()
        self.generator.manual_seed(seed)
        self._stats: dict = {}

    # the one random stream: reseeded each epoch (kit.train.loop.seed_epoch), saved in last.pt
    def set_random_seed(self, seed: int) -> None:
        self.generator.manual_seed(int(seed))

    def generator_state(self) -> torch.Tensor:
        return self.generator.get_state()

    def set_generator_state(self, state: torch.Tensor) -> None:
        self.generator.set_state(state)

    def _uniform(self, n: int, low: float, high: float) -> torch.Tensor:
        return torch.rand(n, generator=self.generator, dtype=torch.float64) * (high - low) + low

    def _chosen(self, n: int, p: float) -> torch.Tensor:
        return torch.rand(n, generator=self.generator) < p

    def _statistics(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        if device not in self._stats:  # made once per device, not per batch (a copy to the GPU would wait)
            mean = torch.tensor(self.mean, device=device).view(1, -1, 1, 1) * 255
            std = torch.tensor(self.std, device=device).view(1, -1, 1, 1) * 255
            self._stats[device] = (mean, std)
        return self._stats[device]

    @torch.no_grad()
    def __call__(self, images: torch.Tensor, channels_first: bool = False) -> torch.Tensor:
        """uint8 N x H x W x C (or N x C x H x W with channels_first) on any device -> the model's input."""
        if not channels_first:
            images = images.permute(0, 3, 1, 2)  # NHWC memory is channels_last NCHW: no copy
        images = images.contiguous(memory_format=torch.channels_last) if self.channels_last else images.contiguous()
        n, _, height, width = images.shape
        floats = None
        for op in self.ops:
            chosen = self._chosen(n, op.p)
            target = images if floats is None else floats
            if op.kind == "hflip":
                flip_some(target, chosen, -1)
            elif op.kind == "vflip":
                flip_some(target, chosen, -2)
            elif op.kind == "transpose":
                transpose_some(target, chosen)
            elif op.kind in ("rot90", "d4"):
                turns = torch.randint(0, 4, (n,), generator=self.generator)
                if op.kind == "d4":  # the 8 elements: a transpose or not, then 0-3 quarter turns
                    transpose_some(target, chosen & (torch.rand(n, generator=self.generator) < 0.5))
                rotate_some(target, torch.where(chosen, turns, 0))
            else:
                if floats is None:
                    floats = images.float()
                if op.kind == "affine":
                    floats = warp_some(floats, chosen, self._matrices(op, n, height, width))
                else:
                    (b_low, b_high), (c_low, c_high) = op.params
                    beta = torch.where(chosen, self._uniform(n, b_low, b_high), 0.0)
                    alpha = torch.where(chosen, 1 + self._uniform(n, c_low, c_high), 1.0)
                    floats = brightness_contrast(floats, alpha.float(), beta.float())
        floats = images.float() if floats is None else floats
        mean, std = self._statistics(floats.device)
        out = floats.sub_(mean).div_(std).to(self.dtype)
        return out.contiguous(memory_format=torch.channels_last) if self.channels_last else out

    def _matrices(self, op: Op, n: int, height: int, width: int) -> torch.Tensor:
        tx, ty, sx, sy, rotate, shx, shy, keep_ratio = op.params
        translate = torch.stack([torch.trunc(self._uniform(n, *tx) * width),
                                 torch.trunc(self._uniform(n, *ty) * height)], 1)  # whole pixels, as albumentations
        scale_x = self._uniform(n, *sx)
        scale = torch.stack([scale_x, scale_x if keep_ratio else self._uniform(n, *sy)], 1)
        angle = self._uniform(n, *rotate)
        shear = -torch.stack([self._uniform(n, *shx), self._uniform(n, *shy)], 1)
        return affine_matrices(translate, scale, angle, shear, height, width)


def describe(ops: Sequence[Op]) -> str:
    return ", ".join(op.kind for op in ops) or "no augmentation"


__all__ = ["BatchAugmenter", "Op", "affine_matrices", "batch_ops", "brightness_contrast", "describe", "flip_some",
           "rotate_some", "transpose_some", "warp_some"]
