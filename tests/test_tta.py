"""Test-time augmentation: 8 distinct D4 views, averaging leaves an invariant model's predictions unchanged."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from kit.train.device import Runtime
from kit.train.predict import predict_batches
from kit.train.tta import apply_view, tta_probabilities, views


def numpy_views(image: np.ndarray, mode: str) -> list[np.ndarray]:
    """The views by plain numpy on the last two axes: d4 = the 4 rotations of the image and of its mirror,
    flip = identity, left-right, up-down and both."""
    if mode == "none":
        return [image]
    if mode == "flip":
        return [image, image[..., ::-1], image[..., ::-1, :], image[..., ::-1, ::-1]]
    return [np.rot90(base, k, axes=(-2, -1)) for base in (image, image[..., ::-1]) for k in range(4)]


def as_set(arrays) -> set[bytes]:
    return {np.ascontiguousarray(a).tobytes() for a in arrays}


def test_views_are_the_symmetries_of_the_square():
    image = torch.arange(2 * 3 * 5 * 5, dtype=torch.float32).view(2, 3, 5, 5)  # no symmetry at all
    for mode, count in (("d4", 8), ("flip", 4), ("none", 1)):
        outputs = [apply_view(image, turns, flip).numpy() for turns, flip in views(mode)]
        assert len(outputs) == count and len(as_set(outputs)) == count
        assert as_set(outputs) == as_set(numpy_views(image.numpy(), mode))
    with pytest.raises(ValueError):
        views("d8")


class Invariant(nn.Module):
    """Global average pooling then linear: unchanged by any flip or rotation of the image."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.fc = nn.Linear(3, 5)

    def forward(self, x):
        return self.fc(x.mean(dim=(2, 3)))


class Positional(Invariant):
    """Reads the top-left quarter only: flips and rotations change its output."""

    def forward(self, x):
        return self.fc(x[..., : x.shape[-2] // 2, : x.shape[-1] // 2].mean(dim=(2, 3)))


def loader(images):
    return [(images[i : i + 3], torch.empty(0)) for i in range(0, len(images), 3)]


def test_invariant_model_gives_the_same_predictions_under_d4():
    images = torch.randint(0, 256, (7, 3, 8, 8), dtype=torch.uint8)
    runtime = Runtime(torch.device("cpu"))
    plain, _ = predict_batches(Invariant(), loader(images), runtime, [0.5] * 3, [0.25] * 3, "none")
    d4, _ = predict_batches(Invariant(), loader(images), runtime, [0.5] * 3, [0.25] * 3, "d4")
    assert plain.shape == (7, 5)
    np.testing.assert_allclose(d4, plain, rtol=1e-5, atol=1e-6)
    # ... while a model that looks at one corner is changed by it: the views are really applied
    plain, _ = predict_batches(Positional(), loader(images), runtime, [0.5] * 3, [0.25] * 3, "none")
    d4, _ = predict_batches(Positional(), loader(images), runtime, [0.5] * 3, [0.25] * 3, "d4")
    assert np.abs(d4 - plain).max() > 1e-3


def test_tta_probabilities_is_the_mean_of_the_view_sigmoids():
    model = Positional().eval()
    x = torch.randn(2, 3, 6, 6)
    for mode in ("none", "flip", "d4"):
        with torch.no_grad():
            expected = np.mean([torch.sigmoid(model(torch.from_numpy(v.copy()))).numpy()
                                for v in numpy_views(x.numpy(), mode)], axis=0)
        np.testing.assert_allclose(tta_probabilities(model, x, mode).numpy(), expected, atol=1e-6)
