"""TF-Slim's MobileNet v1 (depth multipliers 1.0/0.75/0.5/0.25, any resolution) in Keras.

Sources: Howard et al., "MobileNets: Efficient Convolutional Neural Networks
for Mobile Vision Applications", arXiv:1704.04861; layer for layer TF-Slim's
``nets/mobilenet_v1.py`` (tensorflow/models ``research/slim``; ``tf-slim``
1.1.0 does not carry it): ``Conv2d_0`` 3x3/2 with 32 filters, then 13
depthwise-separable layers (``Conv2d_<i>_depthwise`` 3x3, ``Conv2d_<i>_pointwise``
1x1; ``_CONV_DEFS``), every one with batch norm (decay 0.9997, epsilon 0.001,
centre and scale) and ReLU6, ``SAME`` padding; depths
``max(int(d * depth_multiplier), 8)``; ``Logits/AvgPool_1a`` (7x7, or the
whole map when smaller, ``VALID``), dropout (keep 0.999), ``Logits/
Conv2d_1c_1x1`` with biases. ``mobilenet_v1_arg_scope``: weight decay 4e-5
on the regular convolutions only (not the depthwise ones), truncated normal
kernels (stddev 0.09).

Layer names are Slim's scopes (``MobilenetV1/Conv2d_3_depthwise``, its
``/BatchNorm``), for :mod:`model_garden.nets.slim_checkpoint` (depthwise
kernels map to ``depthwise_weights``).
"""

import tensorflow as tf

SCOPE = "MobilenetV1"
BN_MOMENTUM = 0.9997
BN_EPSILON = 0.001
DEFAULT_IMAGE_SIZE = 224  # mobilenet_v1.default_image_size
MIN_DEPTH = 8
DROPOUT_KEEP_PROB = 0.999
#: ``_CONV_DEFS``: (stride, depth) of Conv2d_0 and the 13 separable layers.
CONV_DEFS = ((2, 32), (1, 64), (2, 128), (1, 128), (2, 256), (1, 256), (2, 512),
             (1, 512), (1, 512), (1, 512), (1, 512), (1, 512), (2, 1024), (1, 1024))


def _bn_relu6(x, name):
    x = tf.keras.layers.BatchNormalization(momentum=BN_MOMENTUM, epsilon=BN_EPSILON,
                                           name=name + "/BatchNorm")(x)
    return tf.keras.layers.ReLU(6.0, name=name + "/Relu6")(x)


def mobilenet_v1(num_classes: int, image_size: int = DEFAULT_IMAGE_SIZE,
                 depth_multiplier: float = 1.0, weight_decay: float = 4e-5,
                 dropout_keep_prob: float = DROPOUT_KEEP_PROB):
    """TF-Slim's ``mobilenet_v1`` (see the module docstring).

    Args:
      num_classes: logits (1,001 for Slim's ImageNet checkpoints).
      image_size: input height = width (Slim's released resolutions: 224, 192,
        160, 128).
      depth_multiplier: 1.0, 0.75, 0.5 or 0.25 for Slim's released models (any > 0).
      weight_decay: Slim's weight decay (4e-5), Keras ``l2(w / 2)``.
      dropout_keep_prob: keep probability before the logits.

    Returns:
      An uncompiled ``tf.keras.Model``: float32 images ``[N, image_size,
      image_size, 3]`` in [-1, 1] (``inception`` preprocessing), input name
      ``image`` -> float32 softmax probabilities ``[N, num_classes]``; the
      layer ``MobilenetV1/Logits/SpatialSqueeze`` holds the logits.

    Raises:
      ValueError: ``depth_multiplier`` not > 0.
    """
    if not depth_multiplier > 0:
        raise ValueError(f"depth_multiplier must be > 0, not {depth_multiplier!r}")

    def depth(d):
        return max(int(d * depth_multiplier), MIN_DEPTH)

    regularizer = tf.keras.regularizers.l2(weight_decay / 2)

    def init():
        # A new initializer per layer: one unseeded instance gives every layer of a
        # shape the same values (tf_keras warns "will return identical values").
        return tf.keras.initializers.TruncatedNormal(stddev=0.09)

    inputs = tf.keras.Input((image_size, image_size, 3), name="image")
    stride, filters = CONV_DEFS[0]
    x = tf.keras.layers.Conv2D(depth(filters), 3, strides=stride, padding="same", use_bias=False,
                               kernel_initializer=init(), kernel_regularizer=regularizer,
                               name=f"{SCOPE}/Conv2d_0")(inputs)
    x = _bn_relu6(x, f"{SCOPE}/Conv2d_0")
    for i, (stride, filters) in enumerate(CONV_DEFS[1:], 1):
        name = f"{SCOPE}/Conv2d_{i}_depthwise"
        x = tf.keras.layers.DepthwiseConv2D(3, strides=stride, padding="same", use_bias=False,
                                            depthwise_initializer=init(), name=name)(x)
        x = _bn_relu6(x, name)
        name = f"{SCOPE}/Conv2d_{i}_pointwise"
        x = tf.keras.layers.Conv2D(depth(filters), 1, use_bias=False, kernel_initializer=init(),
                                   kernel_regularizer=regularizer, name=name)(x)
        x = _bn_relu6(x, name)
    pool = min(7, x.shape[1]), min(7, x.shape[2])  # _reduced_kernel_size_for_small_input
    x = tf.keras.layers.AveragePooling2D(pool, 1, padding="valid",
                                         name=f"{SCOPE}/Logits/AvgPool_1a")(x)
    x = tf.keras.layers.Dropout(1 - dropout_keep_prob, name=f"{SCOPE}/Logits/Dropout_1b")(x)
    x = tf.keras.layers.Conv2D(num_classes, 1, use_bias=True, kernel_initializer=init(),
                               kernel_regularizer=regularizer,
                               name=f"{SCOPE}/Logits/Conv2d_1c_1x1")(x)
    logits = tf.keras.layers.Reshape((num_classes,), name=f"{SCOPE}/Logits/SpatialSqueeze")(x)
    outputs = tf.keras.layers.Activation("softmax", dtype="float32", name="predictions")(logits)
    return tf.keras.Model(inputs, outputs, name="mobilenet_v1")
