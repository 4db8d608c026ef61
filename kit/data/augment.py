"""Augmentation pipelines as data: a list of `{name: <albumentations transform>, <param>: value}` entries.

`build_transform([{name: HorizontalFlip, p: 0.5}, {name: OneOf, transforms: [...]}], crop=448)` gives an
`albumentations.Compose`; images stay H x W x C uint8 through it (any number of channels).
"""
from __future__ import annotations

import warnings
from typing import Any

from kit.errors import KitError


def _build(entry: dict[str, Any], source: str):
    import albumentations as A

    params = dict(entry)
    name = params.pop("name", None)
    transform_class = getattr(A, str(name), None)
    if not isinstance(transform_class, type):
        raise KitError(f"{source}: unknown albumentations transform {name!r}")
    if "transforms" in params:  # OneOf, SomeOf, Sequential...: nested pipelines are data too
        params["transforms"] = [_build(child, f"{source} > {name}") for child in params["transforms"]]
    for key, value in params.items():
        if isinstance(value, list) and key != "transforms":
            params[key] = tuple(value)  # YAML has no tuples; albumentations' schemas want them
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            transform = transform_class(**params)
        except (TypeError, ValueError) as err:
            first = str(err).splitlines()
            raise KitError(f"{source}: {name}: {' '.join(line.strip() for line in first[:3])}") from None
    # albumentations only warns about parameters it does not know; a typo would then silently do nothing.
    for warning in caught:
        if "not valid for transform" in str(warning.message):
            unknown = str(warning.message).split("'")[1] if "'" in str(warning.message) else str(warning.message)
            raise KitError(f"{source}: {name}: unknown parameter(s) {unknown}")
    return transform


def build_transform(entries: list[dict] | None, crop: int | None = None, seed: int | None = None,
                    source: str = "augment"):
    """An albumentations Compose of `entries` (after a random `crop` x `crop` crop if given), or None if empty."""
    import albumentations as A

    transforms = [A.RandomCrop(crop, crop)] if crop else []
    for index, entry in enumerate(entries or []):
        if not isinstance(entry, dict):
            raise KitError(f"{source}[{index}]: expected a mapping with a 'name', got {entry!r}")
        transforms.append(_build(entry, f"{source}[{index}]"))
    if not transforms:
        return None
    return A.Compose(transforms, seed=seed)
