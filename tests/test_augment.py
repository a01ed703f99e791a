"""Augmentation: shifts move the image content by at most `shift` pixels, flips mirror it, same seed same batch."""

import numpy as np

from udc.compat import tf
from udc.training.augment import Augmentation


def _batch():
    x = np.zeros((64, 8, 8, 1), np.float32)
    x[:, 3, 4, 0] = 1.0  # one bright pixel at row 3, column 4
    return tf.constant(x)


def test_shift_moves_each_image_by_at_most_the_shift():
    out = Augmentation(shift=2)(_batch(), tf.random.Generator.from_seed(0)).numpy()
    assert out.shape == (64, 8, 8, 1)
    positions = [np.argwhere(image[..., 0] == 1.0) for image in out]
    assert all(len(p) == 1 for p in positions)  # nothing lost: the pixel stays inside
    rows, cols = np.array([p[0] for p in positions]).T
    assert set(rows) <= {1, 2, 3, 4, 5} and set(cols) <= {2, 3, 4, 5, 6}
    assert len(set(zip(rows, cols))) > 10  # and the shifts differ between images


def test_flip_mirrors_about_half_and_the_seed_decides():
    flip = Augmentation(horizontal_flip=True)
    out = flip(_batch(), tf.random.Generator.from_seed(0)).numpy()
    mirrored = out[:, 3, 8 - 1 - 4, 0] == 1.0
    assert 16 < mirrored.sum() < 48 and np.all(mirrored | (out[:, 3, 4, 0] == 1.0))
    again = flip(_batch(), tf.random.Generator.from_seed(0)).numpy()
    np.testing.assert_array_equal(out, again)


def test_no_augmentation_is_the_identity():
    x = _batch()
    assert Augmentation()(x, tf.random.Generator.from_seed(0)) is x
