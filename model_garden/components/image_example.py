"""tf.Example records in the TF-Slim image format.

TF-Slim's dataset converters (``research/slim/datasets/dataset_utils.py``,
``image_to_tfexample``) write one ``tf.train.Example`` per image with these
feature keys, which every image ExampleGen of this package writes too:

==========================  =======  ==========================================
key                         type     value
==========================  =======  ==========================================
``image/encoded``           bytes    the encoded image (PNG or JPEG bytes)
``image/format``            bytes    ``b"png"`` or ``b"jpeg"``
``image/class/label``       int64    class index, 0-based
``image/height``            int64    pixels
``image/width``             int64    pixels
``image/class/text``        bytes    the class name (flowers: ``daisy``; ImageNet:
                                     the synset's names), when known
``image/class/synset``      bytes    ImageNet only: the synset, ``n01440764``
==========================  =======  ==========================================

The last two are what ``build_imagenet_data.py`` (``_convert_to_example``)
adds for ImageNet; the flowers and ImageNet ExampleGens write them.
"""

from typing import Optional

import numpy as np

IMAGE_ENCODED_KEY = "image/encoded"
IMAGE_FORMAT_KEY = "image/format"
LABEL_KEY = "image/class/label"
HEIGHT_KEY = "image/height"
WIDTH_KEY = "image/width"
CLASS_TEXT_KEY = "image/class/text"
SYNSET_KEY = "image/class/synset"


def _bytes_feature(value: bytes):
    import tensorflow as tf

    return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))


def _int64_feature(value: int):
    import tensorflow as tf

    return tf.train.Feature(int64_list=tf.train.Int64List(value=[int(value)]))


def image_to_tfexample(
    encoded: bytes, image_format: str, height: int, width: int, label: Optional[int],
    class_text: Optional[str] = None, synset: Optional[str] = None,
):
    """Builds one TF-Slim-format ``tf.train.Example``.

    Args:
      encoded: the encoded image bytes (PNG or JPEG).
      image_format: ``"png"`` or ``"jpeg"``.
      height: image height in pixels.
      width: image width in pixels.
      label: 0-based class index; ``None`` for a serving request (no label).
      class_text: ``image/class/text``, written when given.
      synset: ``image/class/synset``, written when given.

    Returns:
      A ``tf.train.Example`` with the keys of this module's docstring (the
      label and the two optional ones only when given).
    """
    import tensorflow as tf

    feature = {
        IMAGE_ENCODED_KEY: _bytes_feature(encoded),
        IMAGE_FORMAT_KEY: _bytes_feature(image_format.encode()),
        HEIGHT_KEY: _int64_feature(height),
        WIDTH_KEY: _int64_feature(width),
    }
    if label is not None:
        feature[LABEL_KEY] = _int64_feature(label)
    if class_text is not None:
        feature[CLASS_TEXT_KEY] = _bytes_feature(class_text.encode())
    if synset is not None:
        feature[SYNSET_KEY] = _bytes_feature(synset.encode())
    return tf.train.Example(features=tf.train.Features(feature=feature))


def encode_png(pixels: np.ndarray) -> bytes:
    """PNG-encodes one image.

    Args:
      pixels: uint8 array ``[height, width]`` (grayscale) or
        ``[height, width, channels]`` with 1, 3 or 4 channels.

    Returns:
      The PNG file bytes (lossless; decoding gives ``pixels`` back).

    Raises:
      ValueError: if ``pixels`` is not uint8 or has another rank.
    """
    import tensorflow as tf

    if pixels.dtype != np.uint8:
        raise ValueError(f"encode_png needs uint8 pixels, got {pixels.dtype}")
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    if pixels.ndim != 3:
        raise ValueError(f"encode_png needs [H, W] or [H, W, C], got {pixels.shape}")
    return tf.io.encode_png(pixels).numpy()


def png_example(pixels: np.ndarray, label: int):
    """A TF-Slim-format example holding ``pixels`` as PNG.

    Args:
      pixels: uint8 ``[height, width]`` or ``[height, width, channels]``.
      label: 0-based class index.

    Returns:
      A ``tf.train.Example`` with ``image/format`` = ``png``.
    """
    return image_to_tfexample(
        encode_png(pixels), "png", pixels.shape[0], pixels.shape[1], label
    )
