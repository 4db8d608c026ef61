"""TTA on the batched path (kit.train.batch_tta): the views made from one uint8 batch equal kit.train.tta's
views (and numpy's) exactly, and the probabilities equal today's view-by-view TTA within float tolerance."""
from __future__ import annotations

import functools

import numpy as np
import pytest
import timm
import torch

from kit.data.loader import to_model_input
from kit.train.batch_tta import batch_tta_probabilities, view_batch
from kit.train.tta import apply_view, tta_probabilities, views

pytestmark = pytest.mark.usefixtures("one_thread")


def numpy_view(image: np.ndarray, turns: int, flip: bool) -> np.ndarray:
    return np.rot90(image[..., ::-1] if flip else image, turns, axes=(-2, -1))


@pytest.mark.parametrize("mode", ["d4", "flip", "none"])
def test_batched_views_equal_the_per_view_ones_exactly(mode):
    images = torch.from_numpy(np.random.default_rng(0).integers(0, 256, (3, 4, 7, 7), dtype=np.uint8))
    stacked = view_batch(images, mode)
    assert stacked.shape == (len(views(mode)) * 3, 4, 7, 7) and stacked.dtype == torch.uint8
    for v, (turns, flip) in enumerate(views(mode)):
        chunk = stacked[v * 3:(v + 1) * 3]
        assert torch.equal(chunk, apply_view(images, turns, flip))
        assert np.array_equal(chunk.numpy(), numpy_view(images.numpy(), turns, flip))


@pytest.mark.parametrize("mode", ["d4", "flip"])
def test_batched_predictions_equal_todays_view_by_view_ones(mode):
    torch.manual_seed(0)
    model = timm.create_model("test_resnet", num_classes=5, in_chans=4, pretrained=False).eval()
    images = torch.from_numpy(np.random.default_rng(1).integers(0, 256, (6, 4, 32, 32), dtype=np.uint8))
    mean, std = [0.1, 0.2, 0.3, 0.4], [0.2, 0.2, 0.25, 0.3]
    normalise = functools.partial(to_model_input, device=torch.device("cpu"), mean=mean, std=std)
    today = tta_probabilities(model, normalise(images), mode)
    for max_batch in (None, 5):
        batched = batch_tta_probabilities(model, images, mode, normalise, max_batch)
        assert batched.shape == today.shape
        assert torch.allclose(batched, today, atol=1e-5), (batched - today).abs().max()
    other = batch_tta_probabilities(model, images.flip(-2).contiguous(), "none", normalise)
    assert not torch.allclose(other, today, atol=1e-3)  # the comparison can fail
