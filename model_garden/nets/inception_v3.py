"""Inception v3 as TF-Slim builds it, with its auxiliary logits, in Keras.

Sources: Szegedy et al., "Rethinking the Inception Architecture for Computer
Vision", arXiv:1512.00567; layer for layer TF-Slim's ``nets/inception_v3.py``
(tensorflow/models ``research/slim``, the same file in ``tf-slim`` 1.1.0):
the stem with ``VALID`` convolutions and pools, Mixed_5b-5d (35x35),
Mixed_6a (reduction), Mixed_6b-6e (17x17, factorised 1x7/7x1), Mixed_7a
(reduction), Mixed_7b-7c (8x8, split 1x3/3x1 branches), an 8x8 ``VALID``
average pool, dropout (keep 0.8) and 1x1 logits; auxiliary logits from
Mixed_6e (5x5/3 average pool, 1x1 conv 128, 5x5 conv 768, 1x1 logits).
``inception_v3_arg_scope``: batch norm after every convolution but the
logits (decay 0.9997, epsilon 0.001, no scale), ReLU, weight decay 4e-5.
Depths ``max(int(d * depth_multiplier), 16)``.

Layer names are Slim's scopes, Slim's quirks included (``Mixed_5c/Branch_1/
Conv2d_0b_1x1`` and ``Conv_1_0c_5x5``, ``Mixed_6a/Branch_0/Conv2d_1a_1x1``
for a 3x3, ``Mixed_7b``'s ``Conv2d_0b_3x1`` against ``Mixed_7c``'s
``Conv2d_0c_3x1``), for :mod:`model_garden.nets.slim_checkpoint`.
"""

import tensorflow as tf

SCOPE = "InceptionV3"
BN_MOMENTUM = 0.9997
BN_EPSILON = 0.001
DEFAULT_IMAGE_SIZE = 299  # inception_v3.default_image_size
MIN_DEPTH = 16
DROPOUT_KEEP_PROB = 0.8


class _Builder:
    def __init__(self, weight_decay, depth_multiplier):
        self.regularizer = tf.keras.regularizers.l2(weight_decay / 2)
        self.multiplier = depth_multiplier

    def depth(self, d):
        return max(int(d * self.multiplier), MIN_DEPTH)

    def conv(self, x, filters, kernel, name, strides=1, padding="same", stddev=None, bn=True):
        """Slim's ``conv2d`` under ``inception_v3_arg_scope`` (BN, ReLU) or a plain logits conv."""
        init = (tf.keras.initializers.TruncatedNormal(stddev=stddev) if stddev else
                tf.keras.initializers.VarianceScaling(2.0, "fan_in", "truncated_normal"))
        x = tf.keras.layers.Conv2D(filters, kernel, strides=strides, padding=padding,
                                   use_bias=not bn, kernel_initializer=init,
                                   kernel_regularizer=self.regularizer, name=name)(x)
        if not bn:
            return x
        x = tf.keras.layers.BatchNormalization(momentum=BN_MOMENTUM, epsilon=BN_EPSILON,
                                               scale=False, name=name + "/BatchNorm")(x)
        return tf.keras.layers.ReLU(name=name + "/Relu")(x)

    def branches(self, x, scope, branches):
        """``branches``: per branch a list of ``(depth, kernel, name)`` convs, ``"avg"``/``"max"``
        pools, or a ``("split", [(depth, kernel, name), ...])`` whose outputs are concatenated."""
        outputs = []
        for b, layers in enumerate(branches):
            y = x
            for layer in layers:
                prefix = f"{scope}/Branch_{b}/"
                if layer[0] == "avg":
                    y = tf.keras.layers.AveragePooling2D(3, 1, padding="same",
                                                         name=prefix + layer[1])(y)
                elif layer[0] == "max":
                    y = tf.keras.layers.MaxPooling2D(3, 2, padding="valid",
                                                     name=prefix + layer[1])(y)
                elif layer[0] == "split":
                    y = tf.keras.layers.Concatenate(axis=3, name=prefix + "concat")(
                        [self.conv(y, self.depth(d), k, prefix + n) for d, k, n in layer[1]])
                else:
                    d, k, n, *rest = layer
                    strides, padding = (2, "valid") if rest else (1, "same")
                    y = self.conv(y, self.depth(d), k, prefix + n, strides, padding)
            outputs.append(y)
        return tf.keras.layers.Concatenate(axis=3, name=scope + "/concat")(outputs)


def _block_35(scope, pool_depth, quirk=False):
    branch_1 = ([(48, 1, "Conv2d_0b_1x1"), (64, 5, "Conv_1_0c_5x5")] if quirk else
                [(48, 1, "Conv2d_0a_1x1"), (64, 5, "Conv2d_0b_5x5")])
    return scope, [[(64, 1, "Conv2d_0a_1x1")], branch_1,
                   [(64, 1, "Conv2d_0a_1x1"), (96, 3, "Conv2d_0b_3x3"), (96, 3, "Conv2d_0c_3x3")],
                   [("avg", "AvgPool_0a_3x3"), (pool_depth, 1, "Conv2d_0b_1x1")]]


def _block_17(scope, d):
    return scope, [[(192, 1, "Conv2d_0a_1x1")],
                   [(d, 1, "Conv2d_0a_1x1"), (d, (1, 7), "Conv2d_0b_1x7"),
                    (192, (7, 1), "Conv2d_0c_7x1")],
                   [(d, 1, "Conv2d_0a_1x1"), (d, (7, 1), "Conv2d_0b_7x1"),
                    (d, (1, 7), "Conv2d_0c_1x7"), (d, (7, 1), "Conv2d_0d_7x1"),
                    (192, (1, 7), "Conv2d_0e_1x7")],
                   [("avg", "AvgPool_0a_3x3"), (192, 1, "Conv2d_0b_1x1")]]


def _block_8(scope, second_3x1):
    return scope, [[(320, 1, "Conv2d_0a_1x1")],
                   [(384, 1, "Conv2d_0a_1x1"),
                    ("split", [(384, (1, 3), "Conv2d_0b_1x3"), (384, (3, 1), second_3x1)])],
                   [(448, 1, "Conv2d_0a_1x1"), (384, 3, "Conv2d_0b_3x3"),
                    ("split", [(384, (1, 3), "Conv2d_0c_1x3"), (384, (3, 1), "Conv2d_0d_3x1")])],
                   [("avg", "AvgPool_0a_3x3"), (192, 1, "Conv2d_0b_1x1")]]


#: Slim's ``inception_v3_base`` from Mixed_5b on (a 4th tuple element: stride 2, VALID).
MIXED = (
    _block_35("Mixed_5b", 32), _block_35("Mixed_5c", 64, quirk=True), _block_35("Mixed_5d", 64),
    ("Mixed_6a", [[(384, 3, "Conv2d_1a_1x1", "reduce")],
                  [(64, 1, "Conv2d_0a_1x1"), (96, 3, "Conv2d_0b_3x3"),
                   (96, 3, "Conv2d_1a_1x1", "reduce")],
                  [("max", "MaxPool_1a_3x3")]]),
    _block_17("Mixed_6b", 128), _block_17("Mixed_6c", 160), _block_17("Mixed_6d", 160),
    _block_17("Mixed_6e", 192),
    ("Mixed_7a", [[(192, 1, "Conv2d_0a_1x1"), (320, 3, "Conv2d_1a_3x3", "reduce")],
                  [(192, 1, "Conv2d_0a_1x1"), (192, (1, 7), "Conv2d_0b_1x7"),
                   (192, (7, 1), "Conv2d_0c_7x1"), (192, 3, "Conv2d_1a_3x3", "reduce")],
                  [("max", "MaxPool_1a_3x3")]]),
    _block_8("Mixed_7b", "Conv2d_0b_3x1"), _block_8("Mixed_7c", "Conv2d_0c_3x1"),
)


def inception_v3(num_classes: int, image_size: int = DEFAULT_IMAGE_SIZE,
                 weight_decay: float = 4e-5, depth_multiplier: float = 1.0,
                 dropout_keep_prob: float = DROPOUT_KEEP_PROB, aux_logits: bool = True):
    """TF-Slim's ``inception_v3`` (see the module docstring).

    Args:
      num_classes: logits (1,001 for Slim's ImageNet checkpoints).
      image_size: input height = width (299).
      weight_decay: Slim's weight decay (4e-5), Keras ``l2(w / 2)``.
      depth_multiplier: Slim's ``depth_multiplier``.
      dropout_keep_prob: keep probability before the logits.
      aux_logits: Slim's ``create_aux_logits``.

    Returns:
      An uncompiled ``tf.keras.Model``: float32 images ``[N, image_size,
      image_size, 3]`` in [-1, 1] (``inception`` preprocessing), input name
      ``image`` -> float32 softmax probabilities ``[N, num_classes]`` (with
      ``aux_logits``: the list ``[probabilities, auxiliary probabilities]``,
      Slim's ``AuxLogits``); the logits are the layers
      ``InceptionV3/Logits/SpatialSqueeze`` and ``InceptionV3/AuxLogits/SpatialSqueeze``.
    """
    b = _Builder(weight_decay, depth_multiplier)
    inputs = tf.keras.Input((image_size, image_size, 3), name="image")
    x = b.conv(inputs, b.depth(32), 3, f"{SCOPE}/Conv2d_1a_3x3", strides=2, padding="valid")
    x = b.conv(x, b.depth(32), 3, f"{SCOPE}/Conv2d_2a_3x3", padding="valid")
    x = b.conv(x, b.depth(64), 3, f"{SCOPE}/Conv2d_2b_3x3")
    x = tf.keras.layers.MaxPooling2D(3, 2, padding="valid", name=f"{SCOPE}/MaxPool_3a_3x3")(x)
    x = b.conv(x, b.depth(80), 1, f"{SCOPE}/Conv2d_3b_1x1", padding="valid")
    x = b.conv(x, b.depth(192), 3, f"{SCOPE}/Conv2d_4a_3x3", padding="valid")
    x = tf.keras.layers.MaxPooling2D(3, 2, padding="valid", name=f"{SCOPE}/MaxPool_5a_3x3")(x)
    mixed_6e = None
    for name, branches in MIXED:
        x = b.branches(x, f"{SCOPE}/{name}", branches)
        if name == "Mixed_6e":
            mixed_6e = x
    outputs = []
    pool = min(8, x.shape[1]), min(8, x.shape[2])
    x = tf.keras.layers.AveragePooling2D(pool, 1, padding="valid",
                                         name=f"{SCOPE}/Logits/AvgPool_1a_{pool[0]}x{pool[1]}")(x)
    x = tf.keras.layers.Dropout(1 - dropout_keep_prob, name=f"{SCOPE}/Logits/Dropout_1b")(x)
    x = b.conv(x, num_classes, 1, f"{SCOPE}/Logits/Conv2d_1c_1x1", bn=False)
    logits = tf.keras.layers.Reshape((num_classes,), name=f"{SCOPE}/Logits/SpatialSqueeze")(x)
    outputs.append(tf.keras.layers.Activation("softmax", dtype="float32", name="predictions")(logits))
    if aux_logits:
        scope = f"{SCOPE}/AuxLogits"
        a = tf.keras.layers.AveragePooling2D(5, 3, padding="valid", name=scope + "/AvgPool_1a_5x5")(
            mixed_6e)
        a = b.conv(a, b.depth(128), 1, scope + "/Conv2d_1b_1x1")
        kernel = min(5, a.shape[1]), min(5, a.shape[2])
        a = b.conv(a, b.depth(768), kernel, f"{scope}/Conv2d_2a_{kernel[0]}x{kernel[1]}",
                   padding="valid", stddev=0.01)
        a = b.conv(a, num_classes, 1, scope + "/Conv2d_2b_1x1", stddev=0.001, bn=False)
        a = tf.keras.layers.Reshape((num_classes,), name=scope + "/SpatialSqueeze")(a)
        outputs.append(tf.keras.layers.Activation("softmax", dtype="float32",
                                                  name="aux_predictions")(a))
    return tf.keras.Model(inputs, outputs if aux_logits else outputs[0], name="inception_v3")
