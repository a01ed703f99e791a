"""Checks that a dataset's arrays fit together, made once as the dataset is built.

`RawDataset` runs `check_dataset` on itself, so every loader (a user's own one too)
fails here, with one line naming the problem, and not in the first training step
after the workdir has been written: images (N, H, W, C) of numbers without NaN or
infinity, the same H, W, C in every split, as many integer labels as images, each in
[0, num_classes), and no split empty (a dataset's own validation split included).
"""

import numbers

import numpy as np

from udc.errors import BadDatasetError


def check_dataset(raw) -> None:
    """BadDatasetError naming the first problem of `raw` (a RawDataset) and where to fix it."""
    problem = _first_problem(raw)
    if problem is None:
        return
    if raw.source:
        raise BadDatasetError(f"dataset '{raw.name}' in {raw.source}: {problem}; "
                              "re-download the dataset or replace its files there with a matching set")
    raise BadDatasetError(f"dataset '{raw.name}': {problem}; fix the loader that builds it")


def _first_problem(raw):
    classes = raw.num_classes
    if not isinstance(classes, numbers.Integral) or isinstance(classes, bool) or classes < 1:
        return f"num_classes must be a positive integer, got {classes!r}"
    if (raw.x_val is None) != (raw.y_val is None):
        return "a validation split needs both its images (x_val) and its labels (y_val)"
    splits = [("training", raw.x_train, raw.y_train), ("test", raw.x_test, raw.y_test)]
    if raw.x_val is not None:
        splits.append(("validation", raw.x_val, raw.y_val))
    for split, images, labels in splits:
        problem = _split_problem(split, images, labels, int(classes))
        if problem is not None:
            return problem
    for split, images, _ in splits[1:]:
        if raw.x_train.shape[1:] != images.shape[1:]:
            return (f"the training images are {'x'.join(map(str, raw.x_train.shape[1:]))} (HxWxC) "
                    f"but the {split} images {'x'.join(map(str, images.shape[1:]))}")
    return None


def _split_problem(split: str, images, labels, classes: int):
    if not isinstance(images, np.ndarray) or images.ndim != 4:
        return f"the {split} images have shape {np.shape(images)}, expected (N, H, W, C)"
    if not isinstance(labels, np.ndarray) or labels.ndim != 1:
        return f"the {split} labels have shape {np.shape(labels)}, expected (N,)"
    if len(images) != len(labels):
        return f"{len(images)} {split} images but {len(labels)} {split} labels"
    if not len(images):
        return f"the {split} split is empty"
    if images.dtype.kind not in "uif":
        return f"the {split} images are of type {images.dtype}, expected numbers (uint8)"
    if images.dtype.kind == "f" and not np.isfinite(images).all():
        return f"the {split} images hold NaN or infinite values"
    if labels.dtype.kind not in "iu":
        return f"the {split} labels are of type {labels.dtype}, expected integers"
    outside = labels[(labels < 0) | (labels >= classes)]
    if outside.size:
        return (f"{outside.size} of {len(labels)} {split} labels are outside 0..{classes - 1} "
                f"(num_classes {classes}), e.g. {outside[0]}")
    return None
