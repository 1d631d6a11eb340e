"""Inception v2 (BN-Inception) as TF-Slim builds it, in Keras.

Sources: Ioffe & Szegedy, "Batch Normalization: Accelerating Deep Network
Training by Reducing Internal Covariate Shift", arXiv:1502.03167 (figure 5);
layer for layer TF-Slim's ``nets/inception_v2.py`` (tensorflow/models
``research/slim``, the same file in ``tf-slim`` 1.1.0) under
``inception_v2_arg_scope``: ``SAME`` padding throughout; ``Conv2d_1a_7x7`` a
separable 7x7/2 convolution (depthwise multiplier ``min(depth(64) // 3, 8)`` = 8,
truncated normal 1.0), which the arg scope does not reach: biases and ReLU,
no batch norm, no weight decay (so is Slim's released checkpoint,
tensorflow/models#4843); every other convolution with batch norm (decay
0.9997, epsilon 0.001, no scale) and ReLU, weight decay 4e-5; ten Mixed
blocks (``Mixed_4a``, ``Mixed_5a`` the stride-2 reductions; ``Mixed_5c``'s
pool branch a max pool, the others average pools); a 7x7 ``VALID`` average
pool, dropout (keep 0.8) and 1x1 logits with biases. No auxiliary logits.
Depths ``max(int(d * depth_multiplier), 16)``.

Layer names are Slim's scopes (``InceptionV2/Mixed_4a/Branch_1/Conv2d_1a_3x3``,
``InceptionV2/Conv2d_1a_7x7`` with ``depthwise_weights``/``pointwise_weights``/
``biases``), for :mod:`model_garden.nets.slim_checkpoint`.
"""

import tensorflow as tf

from model_garden.nets.inception_layers import C, Layers, P, softmax

SCOPE = "InceptionV2"
DEFAULT_IMAGE_SIZE = 224  # inception_v2.default_image_size
MIN_DEPTH = 16
DROPOUT_KEEP_PROB = 0.8


def _inception(b0, b1, b2, b3, pool="avg"):
    """A 4-branch block; Slim initialises the 1x1s that feed a 3x3 with stddev 0.09 and
    the pool projection with 0.1."""
    return [[C(b0, 1, "Conv2d_0a_1x1")],
            [C(b1[0], 1, "Conv2d_0a_1x1", stddev=0.09), C(b1[1], 3, "Conv2d_0b_3x3")],
            [C(b2[0], 1, "Conv2d_0a_1x1", stddev=0.09), C(b2[1], 3, "Conv2d_0b_3x3"),
             C(b2[1], 3, "Conv2d_0c_3x3")],
            [P(pool, "AvgPool_0a_3x3" if pool == "avg" else "MaxPool_0a_3x3"),
             C(b3, 1, "Conv2d_0b_1x1", stddev=0.1)]]


def _reduction(b0, b1):
    return [[C(b0[0], 1, "Conv2d_0a_1x1", stddev=0.09), C(b0[1], 3, "Conv2d_1a_3x3", 2)],
            [C(b1[0], 1, "Conv2d_0a_1x1", stddev=0.09), C(b1[1], 3, "Conv2d_0b_3x3"),
             C(b1[1], 3, "Conv2d_1a_3x3", 2)],
            [P("max", "MaxPool_1a_3x3", stride=2)]]


#: Slim's ``inception_v2_base`` from Mixed_3b on (28x28, 14x14 after Mixed_4a, 7x7 after 5a).
MIXED = (
    ("Mixed_3b", _inception(64, (64, 64), (64, 96), 32)),
    ("Mixed_3c", _inception(64, (64, 96), (64, 96), 64)),
    ("Mixed_4a", _reduction((128, 160), (64, 96))),
    ("Mixed_4b", _inception(224, (64, 96), (96, 128), 128)),
    ("Mixed_4c", _inception(192, (96, 128), (96, 128), 128)),
    ("Mixed_4d", _inception(160, (128, 160), (128, 160), 96)),
    ("Mixed_4e", _inception(96, (128, 192), (160, 192), 96)),
    ("Mixed_5a", _reduction((128, 192), (192, 256))),
    ("Mixed_5b", _inception(352, (192, 320), (160, 224), 128)),
    ("Mixed_5c", _inception(352, (192, 320), (192, 224), 128, pool="max")),
)


def inception_v2(num_classes: int, image_size: int = DEFAULT_IMAGE_SIZE,
                 weight_decay: float = 4e-5, depth_multiplier: float = 1.0,
                 dropout_keep_prob: float = DROPOUT_KEEP_PROB):
    """TF-Slim's ``inception_v2`` (see the module docstring).

    Args:
      num_classes: logits (1,001 for Slim's ImageNet checkpoints).
      image_size: input height = width (224; the final pool is 7x7 or the whole
        map when smaller, as Slim's ``_reduced_kernel_size_for_small_input``).
      weight_decay: Slim's weight decay (4e-5), Keras ``l2(w / 2)``.
      depth_multiplier: Slim's ``depth_multiplier`` (> 0).
      dropout_keep_prob: keep probability before the logits.

    Returns:
      An uncompiled ``tf.keras.Model``: float32 images ``[N, image_size,
      image_size, 3]`` in [-1, 1] (``inception`` preprocessing), input name
      ``image`` -> float32 softmax probabilities ``[N, num_classes]``; the
      layer ``InceptionV2/Logits/SpatialSqueeze`` holds the logits.

    Raises:
      ValueError: ``depth_multiplier`` not > 0.
    """
    if not depth_multiplier > 0:
        raise ValueError(f"depth_multiplier must be > 0, not {depth_multiplier!r}")

    def depth(d):
        return max(int(d * depth_multiplier), MIN_DEPTH)

    b = Layers(weight_decay, depth=depth)
    inputs = tf.keras.Input((image_size, image_size, 3), name="image")
    x = tf.keras.layers.SeparableConv2D(
        depth(64), 7, strides=2, padding="same", depth_multiplier=min(depth(64) // 3, 8),
        depthwise_initializer=tf.keras.initializers.TruncatedNormal(stddev=1.0),
        pointwise_initializer=tf.keras.initializers.TruncatedNormal(stddev=1.0),
        name=f"{SCOPE}/Conv2d_1a_7x7")(inputs)
    x = tf.keras.layers.ReLU(name=f"{SCOPE}/Conv2d_1a_7x7/Relu")(x)
    x = tf.keras.layers.MaxPooling2D(3, 2, padding="same", name=f"{SCOPE}/MaxPool_2a_3x3")(x)
    x = b.conv(x, depth(64), 1, f"{SCOPE}/Conv2d_2b_1x1", stddev=0.1)
    x = b.conv(x, depth(192), 3, f"{SCOPE}/Conv2d_2c_3x3")
    x = tf.keras.layers.MaxPooling2D(3, 2, padding="same", name=f"{SCOPE}/MaxPool_3a_3x3")(x)
    for name, branches in MIXED:
        x = b.branches(x, f"{SCOPE}/{name}", branches)
    pool = min(7, x.shape[1]), min(7, x.shape[2])
    x = tf.keras.layers.AveragePooling2D(pool, 1, padding="valid",
                                         name=f"{SCOPE}/Logits/AvgPool_1a_{pool[0]}x{pool[1]}")(x)
    x = tf.keras.layers.Dropout(1 - dropout_keep_prob, name=f"{SCOPE}/Logits/Dropout_1b")(x)
    x = b.conv(x, num_classes, 1, f"{SCOPE}/Logits/Conv2d_1c_1x1", bn=False, relu=False)
    logits = tf.keras.layers.Reshape((num_classes,), name=f"{SCOPE}/Logits/SpatialSqueeze")(x)
    return tf.keras.Model(inputs, softmax(logits, "predictions"), name="inception_v2")
