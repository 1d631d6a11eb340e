"""TF-Slim's ``inception`` preprocessing on real flower photos."""

import numpy as np
import pytest

from model_garden import preprocessing
from model_garden.preprocessing import inception


@pytest.fixture(scope="module")
def photo(flower_photo):
    return flower_photo("tulips")


def test_evaluation_is_a_central_crop_resized_and_scaled(photo):
    import tensorflow as tf

    out = preprocessing.get_preprocessing("inception")(photo, 224, 224).numpy()
    assert out.shape == (224, 224, 3) and out.dtype == np.float32
    assert -1.0 <= out.min() < -0.5 and 0.5 < out.max() <= 1.0
    # the central 87.5% of each side, TF1-style bilinear resize (Slim's released models)
    h, w = photo.shape[:2]
    top, left = int((h - h * 0.875) / 2), int((w - w * 0.875) / 2)
    crop = tf.cast(photo[top:h - top, left:w - left], tf.float32) / 255.0
    expected = tf.compat.v1.image.resize_bilinear(crop[None], [224, 224])[0]
    np.testing.assert_allclose(out, (expected.numpy() - 0.5) * 2, atol=1e-5)
    # the same pixels as int64 (what Transform gives) preprocess identically
    np.testing.assert_array_equal(inception.preprocess_image(tf.cast(photo, tf.int64)).numpy(), out)


def test_training_is_random_reproducible_and_in_range(photo):
    import tensorflow as tf

    a, b, c = (inception.preprocess_image(photo, 224, 224, is_training=True,
                                          seed=tf.constant(s, tf.int32)).numpy()
               for s in ([1, 2], [1, 2], [3, 4]))
    assert a.shape == (224, 224, 3)
    np.testing.assert_array_equal(a, b)  # the seed makes it reproducible
    assert np.abs(a - c).mean() > 0.01  # another seed, another crop/flip/colour
    evaluation = inception.preprocess_image(photo, 224, 224).numpy()
    assert np.abs(a - evaluation).mean() > 0.01
    for out in (a, c):
        assert -1.0 <= out.min() and out.max() <= 1.0  # colour distortion is clipped
    crops = [inception.preprocess_image(photo, 224, 224, is_training=True,
                                        seed=tf.constant([s, 0], tf.int32)).numpy()
             for s in range(8)]
    assert len({round(float(x.mean()), 4) for x in crops}) == 8
