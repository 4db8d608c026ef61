"""The batch augmentation (kit.data.gpu_augment) on CPU tensors, against numpy, cv2.warpAffine and the formula."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from kit.data.gpu_augment import (
    BatchAugmenter,
    Op,
    affine_matrices,
    batch_ops,
    brightness_contrast,
    flip_some,
    rotate_some,
    transpose_some,
    warp_some,
)
from kit.settings import DEFAULT_AUGMENT


@pytest.fixture
def batch():
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (6, 3, 17, 17), dtype=np.uint8)  # odd side: centre conventions show


def test_flips_rotations_and_transposes_are_numpy_exactly(batch):
    mask = torch.tensor([True, False, True, True, False, True])
    turns = torch.tensor([0, 1, 2, 3, 1, 0])
    flipped_lr = flip_some(torch.from_numpy(batch.copy()), mask, -1).numpy()
    flipped_ud = flip_some(torch.from_numpy(batch.copy()), mask, -2).numpy()
    transposed = transpose_some(torch.from_numpy(batch.copy()), mask).numpy()
    rotated = rotate_some(torch.from_numpy(batch.copy()), turns).numpy()
    for i, image in enumerate(batch):
        hwc = image.transpose(1, 2, 0)
        m = bool(mask[i])
        assert np.array_equal(flipped_lr[i].transpose(1, 2, 0), np.fliplr(hwc) if m else hwc)
        assert np.array_equal(flipped_ud[i].transpose(1, 2, 0), np.flipud(hwc) if m else hwc)
        assert np.array_equal(transposed[i].transpose(1, 2, 0), hwc.transpose(1, 0, 2) if m else hwc)
        assert np.array_equal(rotated[i].transpose(1, 2, 0), np.rot90(hwc, int(turns[i])))  # albumentations' way


def test_the_affine_warp_matches_cv2_warp_affine_on_the_same_matrices(batch):
    n, _, h, w = batch.shape
    translate = torch.tensor([[1.0, -2.0], [0, 0], [3, 1], [-1, 0], [0, 2], [2, 2]])
    scale = torch.tensor([[0.9, 1.1], [1, 1], [1.05, 1.05], [0.95, 1.0], [1.1, 0.9], [1, 1]])
    rotate = torch.tensor([10.0, 0, -25, 30, 5, 90])
    shear = torch.tensor([[0.0, 0.0], [0, 0], [5, 0], [0, -3], [0, 0], [0, 0]])
    matrices = affine_matrices(translate, scale, rotate, shear, h, w)
    mask = torch.ones(n, dtype=torch.bool)
    warped = warp_some(torch.from_numpy(batch).float(), mask, matrices).numpy()
    for i in range(n):
        reference = cv2.warpAffine(batch[i].transpose(1, 2, 0), matrices[i].double().numpy(), (w, h),
                                   flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        difference = np.abs(warped[i].transpose(1, 2, 0) - reference.astype(np.float32))
        # cv2 interpolates with 1/32-pixel fixed-point weights and rounds to uint8
        assert difference.mean() < 1.0 and np.quantile(difference, 0.99) < 6, (i, difference.max())
    identity = warp_some(torch.from_numpy(batch).float(), torch.tensor([False, True, False, False, False, False]),
                         matrices)
    assert np.allclose(identity.numpy()[1], batch[1], atol=1e-3)  # translate 0, scale 1, rotate 0: unchanged
    assert np.array_equal(identity.numpy()[0], batch[0])  # not chosen: untouched


def test_the_albumentations_matrix_is_the_one_built(batch):
    from albumentations.augmentations.geometric.functional import center, create_affine_transformation_matrix

    matrix = affine_matrices(torch.tensor([[2.0, -1.0]]), torch.tensor([[0.9, 1.1]]), torch.tensor([20.0]),
                             torch.tensor([[3.0, -2.0]]), 17, 17)[0].double().numpy()
    reference = create_affine_transformation_matrix({"x": 2, "y": -1}, {"x": 3.0, "y": -2.0}, {"x": 0.9, "y": 1.1},
                                                    20.0, center((17, 17)))
    assert np.allclose(matrix, reference[:2], atol=1e-5)


def test_brightness_and_contrast_follow_the_formula(batch):
    alpha = torch.tensor([1.0, 1.1, 0.9, 1.0, 1.2, 0.8])
    beta = torch.tensor([0.0, 0.05, -0.1, 0.1, 0.0, 0.2])
    out = brightness_contrast(torch.from_numpy(batch).float(), alpha, beta).numpy()
    expected = np.clip(batch.astype(np.float64) * alpha.numpy()[:, None, None, None]
                       + 255 * beta.numpy()[:, None, None, None], 0, 255)
    assert np.allclose(out, expected, atol=1e-3)


def augmenter(seed=0, ops=None):
    ops = ops if ops is not None else batch_ops(DEFAULT_AUGMENT)[0]
    return BatchAugmenter(ops, mean=[0.5, 0.5, 0.5], std=[0.25, 0.25, 0.25], seed=seed)


def test_parameters_differ_within_a_batch_and_repeat_under_the_same_seed():
    image = np.random.default_rng(1).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    images = torch.from_numpy(np.stack([image] * 16))  # N x H x W x C, the same image 16 times
    first = augmenter(seed=5)(images.clone())
    assert len({tuple(sample.flatten()[:64].tolist()) for sample in first}) > 8  # each sample its own draw
    assert torch.equal(augmenter(seed=5)(images.clone()), first)
    assert not torch.equal(augmenter(seed=6)(images.clone()), first)
    again = augmenter(seed=0)
    again.set_random_seed(5)
    state = again.generator_state()
    assert torch.equal(again(images.clone()), first)
    again.set_generator_state(state)
    assert torch.equal(again(images.clone()), first)


def test_without_ops_it_normalises_into_the_dtype_and_layout():
    images = torch.from_numpy(np.random.default_rng(2).integers(0, 256, (2, 8, 8, 4), dtype=np.uint8))
    aug = BatchAugmenter([], mean=[0.1, 0.2, 0.3, 0.4], std=[0.5, 0.5, 0.5, 0.5], dtype=torch.bfloat16,
                         channels_last=True)
    out = aug(images)
    expected = (images.permute(0, 3, 1, 2).double() / 255 - torch.tensor([0.1, 0.2, 0.3, 0.4]).view(1, -1, 1, 1).double()) / 0.5
    assert out.dtype == torch.bfloat16 and out.is_contiguous(memory_format=torch.channels_last)
    assert out.shape == (2, 4, 8, 8) and torch.allclose(out.double(), expected, atol=2e-2)


def test_pipelines_the_batch_path_cannot_express_say_which_entry():
    assert [op.kind for op in batch_ops(DEFAULT_AUGMENT)[0]] == ["hflip", "vflip", "rot90", "affine",
                                                                 "brightness_contrast"]
    ops, why = batch_ops([{"name": "HorizontalFlip"}, {"name": "GaussNoise"}])
    assert ops is None and why == "train.augment[1]: GaussNoise has no batch version"
    ops, why = batch_ops([{"name": "Affine", "border_mode": 4}])
    assert ops is None and "border_mode" in why
    assert batch_ops([{"name": "D4", "p": 1}])[0] == [Op("d4", 1.0)]


def test_d4_reaches_all_eight_elements():
    image = np.arange(48, dtype=np.uint8).reshape(4, 4, 3)
    out = augmenter(seed=3, ops=[Op("d4", 1.0)])(torch.from_numpy(np.stack([image] * 64)))
    seen = {tuple(sample.flatten().tolist()) for sample in out}
    assert len(seen) == 8
