"""CIFAR preprocessing of tensorflow/models ``official/resnet/cifar10_main.py``.

``preprocess_image``: for training, zero-pad 4 pixels on each side (32 ->
40), take a random 32x32 crop, flip left-right with probability 1/2; then,
for training and evaluation alike, per-image standardization
(``tf.image.per_image_standardization``: mean 0, standard deviation 1, at
least ``1/sqrt(H*W*C)``).
"""

import tensorflow as tf

PAD = 4  # pad 32 -> 40, then crop 32 (official: HEIGHT + 8)


def augment(image, label, seed=None, height: int = 32, width: int = 32):
    """The random part (training only): pad, random crop, random left-right flip.

    Args:
      image: ``[height, width, 3]`` pixels, any dtype (int64 from Transform).
      label: passed through unchanged.
      seed: optional int32 ``[2]`` seed for the stateless random ops
        (reproducible); ``None`` draws a fresh one each call.
      height, width: the output size (the input's).

    Returns:
      ``(image, label)``, the image with the same shape and dtype.
    """
    if seed is None:
        seed = tf.random.uniform([2], maxval=2**31 - 1, dtype=tf.int32)
    seeds = tf.random.experimental.stateless_split(seed, 2)
    shape = (height, width, 3)
    padded = tf.image.resize_with_crop_or_pad(image, height + 2 * PAD, width + 2 * PAD)
    cropped = tf.image.stateless_random_crop(padded, shape, seed=seeds[0])
    flipped = tf.image.stateless_random_flip_left_right(cropped, seed=seeds[1])
    return tf.ensure_shape(flipped, shape), label


def standardize(images):
    """Per-image standardization, float32; ``[H, W, 3]`` or ``[N, H, W, 3]``, any dtype."""
    return tf.image.per_image_standardization(tf.cast(images, tf.float32))


def preprocess_image(image, output_height: int = 32, output_width: int = 32,
                     is_training: bool = False, seed=None):
    """One image ``[32, 32, 3]`` (pixels 0..255, any dtype) -> float32 ``[32, 32, 3]``.

    Evaluation and serving: :func:`standardize` (central crop or pad to the
    output size first). Training: :func:`augment`, then :func:`standardize`.
    """
    if is_training:
        image, _ = augment(image, 0, seed, output_height, output_width)
    else:
        image = tf.image.resize_with_crop_or_pad(image, output_height, output_width)
    return standardize(image)
