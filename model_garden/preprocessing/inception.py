"""TF-Slim's ``inception`` preprocessing (``research/slim/preprocessing/inception_preprocessing.py``).

Paired by name with the Inception, Inception-ResNet and MobileNet networks,
as Slim's ``preprocessing_factory`` pairs them. Slim's defaults
(``fast_mode=True``, no bounding boxes given: the whole image is the box):

* training: a random crop by ``sample_distorted_bounding_box`` (at least 10%
  of the object covered, aspect ratio 3/4..4/3, 5-100% of the area, 100
  attempts), resized bilinearly to the output size, a random left-right flip,
  colour distortion (one of Slim's two fast orderings, chosen at random:
  brightness +-32/255 then saturation 0.5-1.5, or the reverse; clipped to
  [0, 1]), then scaled to [-1, 1];
* evaluation and serving: a central crop of 87.5% of each side, a bilinear
  resize to the output size, scaled to [-1, 1].

Training reads only the pixels it keeps: :func:`preprocess_encoded` takes
the encoded image, samples the box from the JPEG header's size and decodes
just that window (``tf.io.decode_and_crop_jpeg``, as the official ImageNet
input pipelines do), which gives the same pixels as decoding the whole
photo and slicing it, for a fraction of the decoding work.

Resizing uses TF1's ``resize_bilinear(align_corners=False)`` (TF 2's
``tf.image.resize`` samples at half-pixel centres and gives other values),
which is what Slim's released checkpoints were trained and evaluated with.
Random ops are stateless: a ``seed`` makes them reproducible.
"""

import tensorflow as tf

CENTRAL_FRACTION = 0.875
MIN_OBJECT_COVERED = 0.1
ASPECT_RATIO_RANGE = (0.75, 1.33)
AREA_RANGE = (0.05, 1.0)
MAX_ATTEMPTS = 100
MAX_DELTA_BRIGHTNESS = 32.0 / 255.0
SATURATION_RANGE = (0.5, 1.5)


def to_unit_float(image):
    """Pixels 0..255 of any integer dtype (or floats in [0, 1]) -> float32 in [0, 1]."""
    if image.dtype.is_floating:
        return tf.cast(image, tf.float32)
    return tf.cast(image, tf.float32) / 255.0


def _resize(image, height, width):
    return tf.compat.v1.image.resize_bilinear(image[None], [height, width],
                                              align_corners=False)[0]


def _scale(image):
    return (image - 0.5) * 2.0


def distort_color(image, ordering, seed):
    """Slim's ``distort_color`` in fast mode: ``ordering`` 0 or 1 (int32 scalar)."""
    seeds = tf.random.experimental.stateless_split(seed, 2)

    def brightness(x):
        return tf.image.stateless_random_brightness(x, MAX_DELTA_BRIGHTNESS, seeds[0])

    def saturation(x):
        return tf.image.stateless_random_saturation(x, *SATURATION_RANGE, seeds[1])

    image = tf.cond(tf.equal(ordering, 0), lambda: saturation(brightness(image)),
                    lambda: brightness(saturation(image)))
    return tf.clip_by_value(image, 0.0, 1.0)


def _distorted_box(shape, seed):
    """``(begin, size)`` of Slim's random crop of an image of ``shape`` ``[H, W, C]``."""
    box = tf.constant([0.0, 0.0, 1.0, 1.0], tf.float32, [1, 1, 4])  # no boxes: the whole image
    begin, size, _ = tf.image.stateless_sample_distorted_bounding_box(
        shape, bounding_boxes=box, seed=seed,
        min_object_covered=MIN_OBJECT_COVERED, aspect_ratio_range=ASPECT_RATIO_RANGE,
        area_range=AREA_RANGE, max_attempts=MAX_ATTEMPTS, use_image_if_no_bounding_boxes=True)
    return begin, size


def preprocess_for_train(image, height: int, width: int, seed):
    """One image -> float32 ``[height, width, 3]`` in [-1, 1], randomly distorted."""
    seeds = tf.random.experimental.stateless_split(seed, 4)
    begin, size = _distorted_box(tf.shape(image), seeds[0])
    return _distort_crop(tf.slice(image, begin, size), height, width, seeds)


def _distort_crop(image, height, width, seeds):
    """The training path after the crop: resize, flip, colour, scale."""
    image = _resize(to_unit_float(image), height, width)
    image = tf.image.stateless_random_flip_left_right(image, seeds[1])
    ordering = tf.random.stateless_uniform([], seeds[2], 0, 2, dtype=tf.int32)
    image = distort_color(image, ordering, seeds[3])
    return tf.ensure_shape(_scale(image), [height, width, 3])


def preprocess_for_eval(image, height: int, width: int):
    """One image -> float32 ``[height, width, 3]`` in [-1, 1]: central crop, resize, scale."""
    image = tf.image.central_crop(to_unit_float(image), CENTRAL_FRACTION)
    return tf.ensure_shape(_scale(_resize(image, height, width)), [height, width, 3])


def preprocess_encoded(encoded, output_height: int = 224, output_width: int = 224,
                       is_training: bool = False, seed=None):
    """:func:`preprocess_image` of an encoded image, decoding only the crop of a JPEG.

    Args:
      encoded: string scalar, JPEG or PNG bytes (``image/encoded``).
      output_height, output_width, is_training, seed: as :func:`preprocess_image`.

    Returns:
      float32 ``[output_height, output_width, 3]`` in [-1, 1], equal to
      ``preprocess_image(tf.io.decode_image(encoded, channels=3), ...)`` with
      the same ``seed``.
    """
    if not is_training:
        return preprocess_for_eval(tf.io.decode_image(encoded, channels=3,
                                                      expand_animations=False),
                                   output_height, output_width)
    if seed is None:
        seed = tf.random.uniform([2], maxval=2**31 - 1, dtype=tf.int32)
    seeds = tf.random.experimental.stateless_split(seed, 4)

    def jpeg_crop():
        shape = tf.io.extract_jpeg_shape(encoded)
        begin, size = _distorted_box(tf.concat([shape[:2], [3]], 0), seeds[0])
        return tf.io.decode_and_crop_jpeg(encoded, tf.stack([begin[0], begin[1], size[0],
                                                             size[1]]), channels=3)

    def other_crop():
        image = tf.io.decode_image(encoded, channels=3, expand_animations=False)
        begin, size = _distorted_box(tf.shape(image), seeds[0])
        return tf.slice(image, begin, size)

    crop = tf.cond(tf.io.is_jpeg(encoded), jpeg_crop, other_crop)
    return _distort_crop(crop, output_height, output_width, seeds)


def preprocess_image(image, output_height: int = 224, output_width: int = 224,
                     is_training: bool = False, seed=None):
    """Slim's ``inception_preprocessing.preprocess_image`` (see the module docstring).

    Args:
      image: ``[H, W, 3]`` pixels 0..255 (uint8 or int64), or floats in [0, 1].
      output_height, output_width: the network's input size.
      is_training: the random training distortions, else the evaluation path.
      seed: int32 ``[2]`` for the stateless random ops (``None``: a fresh one).

    Returns:
      float32 ``[output_height, output_width, 3]`` in [-1, 1].
    """
    if not is_training:
        return preprocess_for_eval(image, output_height, output_width)
    if seed is None:
        seed = tf.random.uniform([2], maxval=2**31 - 1, dtype=tf.int32)
    return preprocess_for_train(image, output_height, output_width, seed)
