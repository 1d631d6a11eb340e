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


def test_encoded_training_decodes_only_the_crop_and_equals_decoding_first(data_root):
    """``preprocess_encoded`` (decode_and_crop_jpeg of the sampled window) gives what decoding
    the whole photo and then ``preprocess_image`` gives, seed for seed: real JPEGs of every
    flower class, a PNG made from one (decoded whole), and a grayscale JPEG (channels=3)."""
    import glob
    import io
    import os

    import tensorflow as tf
    from PIL import Image

    paths = sorted(glob.glob(os.path.join(data_root, "flowers", "flower_photos", "*", "*.jpg")))
    encoded = [open(p, "rb").read() for p in paths[::80]]
    png, gray = io.BytesIO(), io.BytesIO()
    Image.open(io.BytesIO(encoded[0])).save(png, "PNG")
    Image.open(io.BytesIO(encoded[1])).convert("L").save(gray, "JPEG", quality=90)
    encoded += [png.getvalue(), gray.getvalue()]
    fast = preprocessing.get_encoded_preprocessing("inception")
    assert fast is inception.preprocess_encoded
    for i, data in enumerate(encoded):
        for seed in ([1, 2], [7, 9]):
            seed = tf.constant(seed, tf.int32)
            decoded = tf.io.decode_image(data, channels=3, expand_animations=False)
            expected = inception.preprocess_image(decoded, 224, 224, is_training=True, seed=seed)
            got = fast(tf.constant(data), 224, 224, is_training=True, seed=seed)
            np.testing.assert_allclose(got.numpy(), expected.numpy(), atol=1e-6,
                                       err_msg=f"image {i}")
        np.testing.assert_array_equal(  # evaluation decodes the whole photo
            fast(tf.constant(data), 224, 224).numpy(),
            inception.preprocess_image(decoded, 224, 224).numpy())


def test_a_preprocessing_without_its_own_encoded_path_decodes_first(flower_photo, data_root):
    import glob
    import os

    import tensorflow as tf

    [path] = sorted(glob.glob(os.path.join(data_root, "flowers", "flower_photos", "roses",
                                           "*.jpg")))[:1]
    data = tf.io.read_file(path)
    seed = tf.constant([3, 4], tf.int32)
    vgg = preprocessing.get_preprocessing("vgg")
    np.testing.assert_array_equal(
        preprocessing.get_encoded_preprocessing("vgg")(data, 224, 224, is_training=True,
                                                       seed=seed).numpy(),
        vgg(tf.io.decode_jpeg(data, channels=3), 224, 224, is_training=True, seed=seed).numpy())
