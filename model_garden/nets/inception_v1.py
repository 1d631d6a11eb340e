"""Inception v1 (GoogLeNet) as TF-Slim builds it, in Keras.

Sources: Szegedy et al., "Going deeper with convolutions", arXiv:1409.4842;
the architecture, layer for layer, is TF-Slim's ``nets/inception_v1.py``
(tensorflow/models ``research/slim``, the same file in the ``tf-slim`` 1.1.0
package): batch norm after every convolution but the logits (decay 0.9997,
epsilon 0.001, no scale: ``inception_v1_arg_scope``), ReLU, ``SAME`` padding
inside the base, a 7x7 ``VALID`` average pool, dropout (keep 0.8) and a 1x1
convolution with biases as the logits. No auxiliary logits: Slim's
``inception_v1`` has none.

Layer names are Slim's variable scopes (``InceptionV1/Mixed_3b/Branch_1/
Conv2d_0b_3x3``, its ``/BatchNorm``, ``InceptionV1/Logits/Conv2d_0c_1x1``),
Slim's quirks included (``Mixed_5b/Branch_2/Conv2d_0a_3x3``), so a Slim
checkpoint maps onto the Keras weights by name
(:mod:`model_garden.nets.slim_checkpoint`).

Weight decay: Slim's ``l2_regularizer(w)`` adds ``w * sum(v**2) / 2``;
Keras' ``l2(x)`` adds ``x * sum(v**2)``, so each kernel gets ``l2(w / 2)``.
"""

import tensorflow as tf

SCOPE = "InceptionV1"
BN_MOMENTUM = 0.9997  # inception_v1_arg_scope batch_norm 'decay'
BN_EPSILON = 0.001
DEFAULT_IMAGE_SIZE = 224  # inception_v1.default_image_size
DROPOUT_KEEP_PROB = 0.8

#: ``(name, branch_0, (branch_1 1x1, 3x3), (branch_2 1x1, 3x3), branch_3 pool proj)``,
#: Slim's ``inception_v1_base`` (GoogLeNet paper table 1).
MIXED = (
    ("Mixed_3b", 64, (96, 128), (16, 32), 32),
    ("Mixed_3c", 128, (128, 192), (32, 96), 64),
    ("Mixed_4b", 192, (96, 208), (16, 48), 64),
    ("Mixed_4c", 160, (112, 224), (24, 64), 64),
    ("Mixed_4d", 128, (128, 256), (24, 64), 64),
    ("Mixed_4e", 112, (144, 288), (32, 64), 64),
    ("Mixed_4f", 256, (160, 320), (32, 128), 128),
    ("Mixed_5b", 256, (160, 320), (32, 128), 128),
    ("Mixed_5c", 384, (192, 384), (48, 128), 128),
)
#: Max pools before these blocks: ``(name, size)``, stride 2.
POOL_BEFORE = {"Mixed_4b": ("MaxPool_4a_3x3", 3), "Mixed_5b": ("MaxPool_5a_2x2", 2)}


def conv_bn(x, filters, kernel_size, name, weight_decay, strides=1):
    """Slim's ``conv2d`` in ``inception_v1_base``: conv (no bias; truncated normal 0.01, the
    base's own ``arg_scope``), BN (no scale), ReLU."""
    x = tf.keras.layers.Conv2D(
        filters, kernel_size, strides=strides, padding="same", use_bias=False,
        kernel_initializer=tf.keras.initializers.TruncatedNormal(stddev=0.01),
        kernel_regularizer=tf.keras.regularizers.l2(weight_decay / 2), name=name)(x)
    x = tf.keras.layers.BatchNormalization(momentum=BN_MOMENTUM, epsilon=BN_EPSILON, scale=False,
                                           name=name + "/BatchNorm")(x)
    return tf.keras.layers.ReLU(name=name + "/Relu")(x)


def _mixed(x, spec, weight_decay):
    name, b0, (b1a, b1b), (b2a, b2b), b3 = spec
    scope = f"{SCOPE}/{name}"
    branch_0 = conv_bn(x, b0, 1, f"{scope}/Branch_0/Conv2d_0a_1x1", weight_decay)
    branch_1 = conv_bn(x, b1a, 1, f"{scope}/Branch_1/Conv2d_0a_1x1", weight_decay)
    branch_1 = conv_bn(branch_1, b1b, 3, f"{scope}/Branch_1/Conv2d_0b_3x3", weight_decay)
    branch_2 = conv_bn(x, b2a, 1, f"{scope}/Branch_2/Conv2d_0a_1x1", weight_decay)
    # Slim names this one Conv2d_0a_3x3 in Mixed_5b only.
    second = "Conv2d_0a_3x3" if name == "Mixed_5b" else "Conv2d_0b_3x3"
    branch_2 = conv_bn(branch_2, b2b, 3, f"{scope}/Branch_2/{second}", weight_decay)
    branch_3 = tf.keras.layers.MaxPooling2D(3, 1, padding="same",
                                            name=f"{scope}/Branch_3/MaxPool_0a_3x3")(x)
    branch_3 = conv_bn(branch_3, b3, 1, f"{scope}/Branch_3/Conv2d_0b_1x1", weight_decay)
    return tf.keras.layers.Concatenate(axis=3, name=f"{scope}/concat")(
        [branch_0, branch_1, branch_2, branch_3])


def inception_v1(num_classes: int, image_size: int = DEFAULT_IMAGE_SIZE,
                 weight_decay: float = 4e-5, dropout_keep_prob: float = DROPOUT_KEEP_PROB):
    """TF-Slim's Inception v1 (see the module docstring).

    Args:
      num_classes: logits (1,001 for Slim's ImageNet checkpoints).
      image_size: input height = width in pixels (224; other sizes need a
        7x7 final map, i.e. 224, or give a larger one to the VALID pool).
      weight_decay: Slim's ``weight_decay`` (4e-5).
      dropout_keep_prob: Slim's keep probability before the logits.

    Returns:
      An uncompiled ``tf.keras.Model``: float32 images ``[N, image_size,
      image_size, 3]`` scaled to [-1, 1] (``inception`` preprocessing), input
      name ``image`` -> float32 softmax probabilities ``[N, num_classes]``; the
      layer ``InceptionV1/Logits/SpatialSqueeze`` holds the logits.
    """
    inputs = tf.keras.Input((image_size, image_size, 3), name="image")
    x = conv_bn(inputs, 64, 7, f"{SCOPE}/Conv2d_1a_7x7", weight_decay, strides=2)
    x = tf.keras.layers.MaxPooling2D(3, 2, padding="same", name=f"{SCOPE}/MaxPool_2a_3x3")(x)
    x = conv_bn(x, 64, 1, f"{SCOPE}/Conv2d_2b_1x1", weight_decay)
    x = conv_bn(x, 192, 3, f"{SCOPE}/Conv2d_2c_3x3", weight_decay)
    x = tf.keras.layers.MaxPooling2D(3, 2, padding="same", name=f"{SCOPE}/MaxPool_3a_3x3")(x)
    for spec in MIXED:
        if spec[0] in POOL_BEFORE:
            pool, size = POOL_BEFORE[spec[0]]
            x = tf.keras.layers.MaxPooling2D(size, 2, padding="same", name=f"{SCOPE}/{pool}")(x)
        x = _mixed(x, spec, weight_decay)
    # Slim's scope says MaxPool, the op is an average pool.
    x = tf.keras.layers.AveragePooling2D(7, 1, padding="valid",
                                         name=f"{SCOPE}/Logits/MaxPool_0a_7x7")(x)
    x = tf.keras.layers.Dropout(1 - dropout_keep_prob, name=f"{SCOPE}/Logits/Dropout_0b")(x)
    x = tf.keras.layers.Conv2D(
        num_classes, 1, use_bias=True,
        # inception_v1_arg_scope's variance_scaling_initializer (factor 2, fan in)
        kernel_initializer=tf.keras.initializers.VarianceScaling(2.0, "fan_in", "truncated_normal"),
        kernel_regularizer=tf.keras.regularizers.l2(weight_decay / 2),
        name=f"{SCOPE}/Logits/Conv2d_0c_1x1")(x)
    logits = tf.keras.layers.Reshape((num_classes,), name=f"{SCOPE}/Logits/SpatialSqueeze")(x)
    outputs = tf.keras.layers.Activation("softmax", dtype="float32", name="predictions")(logits)
    return tf.keras.Model(inputs, outputs, name="inception_v1")
