"""Test-time augmentation: 8 distinct D4 views, averaging leaves an invariant model's predictions unchanged."""
from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from torch import nn

from kit.train.device import Runtime
from kit.train.predict import predict_batches
from kit.train.tta import VIEWS, apply_view, tta_probabilities, views


def test_d4_has_8_distinct_views_and_flip_4():
    image = torch.arange(2 * 3 * 5 * 5, dtype=torch.float32).view(2, 3, 5, 5)  # no symmetry at all
    for mode, count in (("d4", 8), ("flip", 4), ("none", 1)):
        outputs = [apply_view(image, turns, flip) for turns, flip in views(mode)]
        assert len(outputs) == count
        for a, b in itertools.combinations(outputs, 2):
            assert not torch.equal(a, b)
    assert torch.equal(apply_view(image, 0, False), image)
    # flip's views are the horizontal and vertical flips and both
    flips = [apply_view(image, turns, flip) for turns, flip in VIEWS["flip"]]
    assert torch.equal(flips[1], image.flip(-1)) and torch.equal(flips[2], image.flip(-2))
    assert torch.equal(flips[3], image.flip(-1).flip(-2))
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
    expected = torch.stack([torch.sigmoid(model(apply_view(x, t, f))) for t, f in views("d4")]).mean(0)
    assert torch.allclose(tta_probabilities(model, x, "d4"), expected, atol=1e-6)
