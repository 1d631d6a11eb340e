"""CIFAR-10 Transform: a light ``preprocessing_fn`` and the schema location.

Meant to run with ``Transform(materialize=False)``: Transform only writes
the transform graph (no analyzers here, so analysis is a pass over the
data), never a decoded copy of the dataset (50,000 x 3,072 pixels as int64
would be ~1.2 GB against ~150 MB of PNG). The Trainer reads the RAW
ExampleGen examples and applies the graph in ``tf.data``
(``tft.TFTransformOutput.transform_features_layer``); serving applies the
same graph, so training and serving decode images identically.

Input: the TF-Slim features of the CIFAR-10 ExampleGen (``cifar10.pbtxt``).
Output:

* ``image``: int64 ``[batch, 32, 32, 3]``, the decoded uint8 RGB pixels
  (0..255). tf.Transform outputs may only be int64, float32 or string
  (``tensorflow_transform/schema_inference.py``), so the uint8 pixels are
  widened to int64, which keeps them exact; the model casts and
  standardizes them (per-image standardization, official/resnet
  ``cifar10_main.py``).
* ``image/class/label``: int64 ``[batch]``, 0..9.
"""

import os

IMAGE_KEY = "image"
LABEL_KEY = "image/class/label"
RAW_IMAGE_KEY = "image/encoded"
HEIGHT = WIDTH = 32
CHANNELS = 3

SCHEMA_FILE = os.path.join(os.path.dirname(__file__), "cifar10.pbtxt")


def decode_image(encoded):
    """One PNG/JPEG string scalar -> uint8 ``[32, 32, 3]`` (RGB).

    Grayscale or RGBA files are converted to 3 channels; an image of
    another size fails with ``InvalidArgumentError``.
    """
    import tensorflow as tf

    image = tf.io.decode_image(encoded, channels=CHANNELS, expand_animations=False)
    return tf.ensure_shape(image, [HEIGHT, WIDTH, CHANNELS])


def decode_images(encoded):
    """PNG/JPEG strings ``[batch]`` or ``[batch, 1]`` -> uint8 ``[batch, 32, 32, 3]``."""
    import tensorflow as tf

    return tf.map_fn(
        decode_image,
        tf.reshape(encoded, [-1]),
        fn_output_signature=tf.TensorSpec([HEIGHT, WIDTH, CHANNELS], tf.uint8),
    )


def preprocessing_fn(inputs):
    """Transform's ``preprocessing_fn`` for CIFAR-10.

    Args:
      inputs: dict of raw batched tensors: ``image/encoded`` string
        ``[batch, 1]`` and ``image/class/label`` int64 ``[batch, 1]``
        (the other TF-Slim keys are not used).

    Returns:
      ``{"image": int64 [batch, 32, 32, 3] in 0..255,
      "image/class/label": int64 [batch]}``.
    """
    import tensorflow as tf

    return {
        IMAGE_KEY: tf.cast(decode_images(inputs[RAW_IMAGE_KEY]), tf.int64),
        LABEL_KEY: tf.reshape(inputs[LABEL_KEY], [-1]),
    }
