"""TF-Slim's ``vgg`` preprocessing on a real flower photo."""

import numpy as np
import pytest

from model_garden import preprocessing
from model_garden.preprocessing import vgg


@pytest.fixture(scope="module")
def photo(flower_photo):
    return flower_photo("roses")


def test_evaluation_resizes_the_short_side_to_256_crops_the_centre_and_subtracts_the_means(photo):
    import tensorflow as tf

    out = preprocessing.get_preprocessing("vgg")(photo, 224, 224).numpy()
    assert out.shape == (224, 224, 3) and out.dtype == np.float32
    h, w = photo.shape[:2]
    scale = 256 / min(h, w)
    resized = tf.compat.v1.image.resize_bilinear(
        tf.cast(photo, tf.float32)[None], [round(h * scale), round(w * scale)])[0].numpy()
    assert min(resized.shape[:2]) == 256
    top, left = (resized.shape[0] - 224) // 2, (resized.shape[1] - 224) // 2
    expected = resized[top:top + 224, left:left + 224] - np.array(vgg.MEANS, np.float32)
    np.testing.assert_allclose(out, expected, atol=1e-4)
    assert -130 < out.min() < 0 < out.max() < 160  # 0..255 pixels minus the means


def test_training_crops_a_random_scale_reproducibly(photo):
    import tensorflow as tf

    a, b, c = (vgg.preprocess_image(photo, 224, 224, is_training=True,
                                    seed=tf.constant(s, tf.int32)).numpy()
               for s in ([5, 6], [5, 6], [7, 8]))
    assert a.shape == (224, 224, 3)
    np.testing.assert_array_equal(a, b)
    assert np.abs(a - c).mean() > 1.0
    side = vgg.aspect_preserving_resize(photo, 512)
    assert min(side.shape[:2]) == 512
