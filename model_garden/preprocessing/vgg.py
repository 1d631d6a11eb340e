"""TF-Slim's ``vgg`` preprocessing (``research/slim/preprocessing/vgg_preprocessing.py``).

Paired by name with the VGG and ResNet networks, as Slim's
``preprocessing_factory`` pairs them:

* training: an aspect-preserving resize whose smaller side is a random
  integer in [256, 512], a random ``output`` crop, a random left-right flip,
  then the per-channel ImageNet means subtracted (R 123.68, G 116.78,
  B 103.94; pixels stay in 0..255);
* evaluation and serving: the aspect-preserving resize to a smaller side of
  256, a central ``output`` crop, the means subtracted.

Resizing is TF1's ``resize_bilinear(align_corners=False)``, as in Slim.
Random ops are stateless: a ``seed`` makes them reproducible.
"""

import tensorflow as tf

MEANS = (123.68, 116.78, 103.94)  # vgg_preprocessing _R_MEAN, _G_MEAN, _B_MEAN
RESIZE_SIDE_MIN = 256
RESIZE_SIDE_MAX = 512


def aspect_preserving_resize(image, smallest_side):
    """``[H, W, 3]`` -> float32, the smaller side ``smallest_side`` (Slim's rounding)."""
    shape = tf.shape(image)
    height, width = tf.cast(shape[0], tf.float32), tf.cast(shape[1], tf.float32)
    smallest_side = tf.cast(smallest_side, tf.float32)
    scale = tf.where(height > width, smallest_side / width, smallest_side / height)
    new_height = tf.cast(tf.math.rint(height * scale), tf.int32)
    new_width = tf.cast(tf.math.rint(width * scale), tf.int32)
    image = tf.cast(image, tf.float32)[None]
    return tf.compat.v1.image.resize_bilinear(image, [new_height, new_width],
                                              align_corners=False)[0]


def subtract_means(image):
    """Subtracts Slim's per-channel ImageNet means from 0..255 pixels."""
    return image - tf.constant(MEANS, tf.float32)


def preprocess_image(image, output_height: int = 224, output_width: int = 224,
                     is_training: bool = False, seed=None):
    """Slim's ``vgg_preprocessing.preprocess_image`` (see the module docstring).

    Args:
      image: ``[H, W, 3]`` pixels 0..255 (uint8, int64 or float).
      output_height, output_width: the network's input size.
      is_training: the random training path, else evaluation.
      seed: int32 ``[2]`` for the stateless random ops (``None``: a fresh one).

    Returns:
      float32 ``[output_height, output_width, 3]``, mean-subtracted 0..255 pixels.
    """
    if not is_training:
        image = aspect_preserving_resize(image, RESIZE_SIDE_MIN)
        image = tf.image.resize_with_crop_or_pad(image, output_height, output_width)
        return tf.ensure_shape(subtract_means(image), [output_height, output_width, 3])
    if seed is None:
        seed = tf.random.uniform([2], maxval=2**31 - 1, dtype=tf.int32)
    seeds = tf.random.experimental.stateless_split(seed, 3)
    side = tf.random.stateless_uniform([], seeds[0], RESIZE_SIDE_MIN, RESIZE_SIDE_MAX + 1,
                                       dtype=tf.int32)
    image = aspect_preserving_resize(image, side)
    image = tf.image.stateless_random_crop(image, [output_height, output_width, 3], seeds[1])
    image = tf.image.stateless_random_flip_left_right(image, seeds[2])
    return tf.ensure_shape(subtract_means(image), [output_height, output_width, 3])
