"""MNIST Transform: the ``preprocessing_fn`` and the schema file's location.

Input: the TF-Slim features written by the MNIST ExampleGen (see
``mnist.pbtxt``). Output: ``image`` float32 ``[batch, 28, 28, 1]`` in [0, 1]
(pixel / 255, as ``official/mnist/dataset.py`` scales) and ``label`` int64
``[batch]``.
"""

import os

IMAGE_KEY = "image"
LABEL_KEY = "label"
RAW_IMAGE_KEY = "image/encoded"
RAW_LABEL_KEY = "image/class/label"
HEIGHT = WIDTH = 28

SCHEMA_FILE = os.path.join(os.path.dirname(__file__), "mnist.pbtxt")


def decode_images(encoded):
    """Decodes PNG bytes ``[batch]`` or ``[batch, 1]`` to float32 ``[batch, 28, 28, 1]``."""
    import tensorflow as tf

    encoded = tf.reshape(encoded, [-1])
    images = tf.map_fn(
        lambda png: tf.io.decode_png(png, channels=1),
        encoded,
        fn_output_signature=tf.TensorSpec([None, None, 1], tf.uint8),
    )
    images = tf.ensure_shape(images, [None, HEIGHT, WIDTH, 1])
    return tf.cast(images, tf.float32) / 255.0


def preprocessing_fn(inputs):
    """Transform's ``preprocessing_fn`` for MNIST.

    Args:
      inputs: dict of raw batched tensors; ``image/encoded`` string
        ``[batch, 1]`` (PNG) and ``image/class/label`` int64 ``[batch, 1]``.

    Returns:
      ``{"image": float32 [batch, 28, 28, 1] in [0, 1], "label": int64 [batch]}``.
    """
    import tensorflow as tf

    return {
        IMAGE_KEY: decode_images(inputs[RAW_IMAGE_KEY]),
        LABEL_KEY: tf.reshape(inputs[RAW_LABEL_KEY], [-1]),
    }
