"""TF-Slim's ImageNet ResNets, v1 and v2 (50, 101, 152, 200 layers), in Keras.

Sources: He et al., "Deep Residual Learning for Image Recognition",
arXiv:1512.03385 (v1), and "Identity Mappings in Deep Residual Networks",
arXiv:1603.05027 (v2, pre-activation); layer for layer TF-Slim's
``nets/resnet_v1.py``, ``resnet_v2.py`` and ``resnet_utils.py``
(tensorflow/models ``research/slim``, the same files in ``tf-slim`` 1.1.0):

* bottleneck units (1x1, 3x3, 1x1 x4), the stride in the 3x3 and on the
  *last* unit of blocks 1-3 (Slim's ``resnet_v1_block``), 4 blocks of
  (3, 4, 6, 3) / (3, 4, 23, 3) / (3, 8, 36, 3) / (3, 24, 36, 3) units;
* ``conv2d_same``: a strided convolution pads explicitly (``(k-1)//2``
  before, the rest after) and convolves ``VALID``; stride 1 is ``SAME``;
* ``resnet_arg_scope``: batch norm with scale (decay 0.997, epsilon 1e-5),
  ReLU, no conv biases under batch norm, ``SAME`` max pools;
* v1: conv1 7x7/2 with BN-ReLU, pool1 3x3/2, projection shortcuts (1x1 conv
  + BN) where the depth changes, else a 1x1 max pool subsampling;
  ``relu(shortcut + residual)``;
* v2: conv1 with bias and no BN, ``preact`` BN-ReLU in every unit, the
  projection shortcut from the pre-activation (bias, no BN), conv3 with
  bias, ``postnorm`` BN-ReLU after the last block;
* global average pool, a 1x1 convolution with biases as the logits.

Layer names are Slim's scopes (``resnet_v1_50/block1/unit_1/bottleneck_v1/
conv2``, its ``/BatchNorm``, ``.../shortcut``, ``resnet_v2_50/postnorm``,
``resnet_v1_50/logits``), for :mod:`model_garden.nets.slim_checkpoint`.
Weight decay: Slim's ``l2_regularizer(w)`` is Keras' ``l2(w / 2)``.
"""

import tensorflow as tf

BN_MOMENTUM = 0.997  # resnet_arg_scope batch_norm_decay
BN_EPSILON = 1e-5
DEFAULT_IMAGE_SIZE = 224  # resnet_v1.default_image_size, resnet_v2.default_image_size
#: depth -> units in blocks 1-4 (resnet_v1_50 ... resnet_v2_200).
UNITS = {50: (3, 4, 6, 3), 101: (3, 4, 23, 3), 152: (3, 8, 36, 3), 200: (3, 24, 36, 3)}
BASE_DEPTHS = (64, 128, 256, 512)
BLOCK_STRIDES = (2, 2, 2, 1)


def _conv(x, filters, kernel_size, name, weight_decay, strides=1, use_bias=False):
    """Slim's ``conv2d_same`` (no activation, no BN)."""
    if strides > 1:
        pad = kernel_size - 1
        x = tf.keras.layers.ZeroPadding2D(((pad // 2, pad - pad // 2),) * 2, name=name + "/pad")(x)
    return tf.keras.layers.Conv2D(
        filters, kernel_size, strides=strides, padding="same" if strides == 1 else "valid",
        use_bias=use_bias,
        kernel_initializer=tf.keras.initializers.VarianceScaling(2.0, "fan_in", "truncated_normal"),
        kernel_regularizer=tf.keras.regularizers.l2(weight_decay / 2), name=name)(x)


def _bn(x, name, relu):
    x = tf.keras.layers.BatchNormalization(momentum=BN_MOMENTUM, epsilon=BN_EPSILON, name=name)(x)
    return tf.keras.layers.ReLU(name=name + "/Relu")(x) if relu else x


def _conv_bn(x, filters, kernel_size, name, weight_decay, strides=1, relu=True):
    return _bn(_conv(x, filters, kernel_size, name, weight_decay, strides), name + "/BatchNorm", relu)


def _subsample(x, strides, name):
    if strides == 1:
        return x
    return tf.keras.layers.MaxPooling2D(1, strides, padding="same", name=name)(x)


def _unit_v1(x, depth, bottleneck, strides, scope, weight_decay):
    if x.shape[-1] == depth:
        shortcut = _subsample(x, strides, scope + "/shortcut")
    else:
        shortcut = _conv_bn(x, depth, 1, scope + "/shortcut", weight_decay, strides, relu=False)
    residual = _conv_bn(x, bottleneck, 1, scope + "/conv1", weight_decay)
    residual = _conv_bn(residual, bottleneck, 3, scope + "/conv2", weight_decay, strides)
    residual = _conv_bn(residual, depth, 1, scope + "/conv3", weight_decay, relu=False)
    x = tf.keras.layers.Add(name=scope + "/add")([shortcut, residual])
    return tf.keras.layers.ReLU(name=scope + "/Relu")(x)


def _unit_v2(x, depth, bottleneck, strides, scope, weight_decay):
    preact = _bn(x, scope + "/preact", relu=True)
    if x.shape[-1] == depth:
        shortcut = _subsample(x, strides, scope + "/shortcut")
    else:
        shortcut = _conv(preact, depth, 1, scope + "/shortcut", weight_decay, strides,
                         use_bias=True)
    residual = _conv_bn(preact, bottleneck, 1, scope + "/conv1", weight_decay)
    residual = _conv_bn(residual, bottleneck, 3, scope + "/conv2", weight_decay, strides)
    residual = _conv(residual, depth, 1, scope + "/conv3", weight_decay, use_bias=True)
    return tf.keras.layers.Add(name=scope + "/add")([shortcut, residual])


def resnet(num_classes: int, image_size: int = DEFAULT_IMAGE_SIZE, version: int = 1,
           depth: int = 50, weight_decay: float = 1e-4):
    """TF-Slim's ``resnet_v{version}_{depth}`` (see the module docstring).

    Args:
      num_classes: logits (1,001 for Slim's ImageNet checkpoints).
      image_size: input height = width in pixels (224).
      version: 1 or 2.
      depth: 50, 101, 152 or 200.
      weight_decay: Slim's ``resnet_arg_scope`` weight decay (1e-4).

    Returns:
      An uncompiled ``tf.keras.Model``: float32 images ``[N, image_size,
      image_size, 3]`` (``vgg`` preprocessing: mean-subtracted pixels), input
      name ``image`` -> float32 softmax probabilities ``[N, num_classes]``; the
      layer ``<scope>/SpatialSqueeze`` holds the logits.

    Raises:
      ValueError: another version or depth.
    """
    if version not in (1, 2) or depth not in UNITS:
        raise ValueError(f"no resnet_v{version}_{depth}: version 1 or 2, depth one of {sorted(UNITS)}")
    scope = f"resnet_v{version}_{depth}"
    inputs = tf.keras.Input((image_size, image_size, 3), name="image")
    if version == 1:
        x = _conv_bn(inputs, 64, 7, scope + "/conv1", weight_decay, strides=2)
    else:
        x = _conv(inputs, 64, 7, scope + "/conv1", weight_decay, strides=2, use_bias=True)
    x = tf.keras.layers.MaxPooling2D(3, 2, padding="same", name=scope + "/pool1")(x)
    unit = _unit_v1 if version == 1 else _unit_v2
    for b, (units, base, stride) in enumerate(zip(UNITS[depth], BASE_DEPTHS, BLOCK_STRIDES), 1):
        for u in range(1, units + 1):
            x = unit(x, base * 4, base, stride if u == units else 1,
                     f"{scope}/block{b}/unit_{u}/bottleneck_v{version}", weight_decay)
    if version == 2:
        x = _bn(x, scope + "/postnorm", relu=True)
    x = tf.keras.layers.GlobalAveragePooling2D(keepdims=True, name=scope + "/pool5")(x)
    x = tf.keras.layers.Conv2D(
        num_classes, 1, use_bias=True,
        kernel_initializer=tf.keras.initializers.VarianceScaling(2.0, "fan_in", "truncated_normal"),
        kernel_regularizer=tf.keras.regularizers.l2(weight_decay / 2), name=scope + "/logits")(x)
    logits = tf.keras.layers.Reshape((num_classes,), name=scope + "/SpatialSqueeze")(x)
    outputs = tf.keras.layers.Activation("softmax", dtype="float32", name="predictions")(logits)
    return tf.keras.Model(inputs, outputs, name=scope)
