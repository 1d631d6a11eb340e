"""ResNet for CIFAR-10 (v1 and pre-activation v2), Keras.

Sources:

* v1: He, Zhang, Ren, Sun, "Deep Residual Learning for Image Recognition",
  arXiv:1512.03385, section 4.2: 6n+2 weighted layers (a 3x3 conv, three
  stages of n two-conv basic blocks with 16, 32, 64 filters on 32x32, 16x16,
  8x8 maps, global average pooling, a 10-way fully connected layer);
  ResNet-20/32/44/56/110 have n = 3/5/7/9/18 and 0.27/0.46/0.66/0.85/1.7M
  parameters.
* v2: He, Zhang, Ren, Sun, "Identity Mappings in Deep Residual Networks",
  arXiv:1603.05027: pre-activation blocks (BN-ReLU-conv), a final BN-ReLU.
* tensorflow/models ``official/resnet/resnet_model.py``: batch-norm decay
  0.997 and epsilon 1e-5, fixed padding for strided convolutions,
  ``VarianceScaling`` kernels, no conv biases.

Shortcuts: ``"identity"`` (default) is the paper's option A for CIFAR
(identity; where the shape changes, stride-2 subsampling and zero-padded
channels), which gives the paper's parameter counts; ``"projection"`` is
official/resnet's (a 1x1 convolution, plus BN in v1, on the first block of
every stage), 3,040 (v1) or 2,816 (v2) parameters more.

Weight decay: official/resnet adds ``weight_decay * sum(tf.nn.l2_loss(v))``
= ``weight_decay / 2 * sum(v**2)``; Keras' ``l2(x)`` adds ``x * sum(v**2)``,
so each layer gets ``l2(weight_decay / 2)``.

Layer names follow TF-Slim's ``nets/resnet_v1.py`` / ``resnet_v2.py`` scopes
(``resnet_v1_20/conv1``, ``.../conv1/BatchNorm``,
``.../block1/unit_1/basic_v1/conv2``, ``.../shortcut``, v2's ``preact`` and
``postnorm``, ``.../logits``), with ``basic_v1``/``basic_v2`` for the two-conv
blocks Slim's ImageNet ResNets do not have.

The input is the preprocessed image (:mod:`model_garden.preprocessing.cifar`:
per-image standardized float32).
"""

import tensorflow as tf

BN_MOMENTUM = 0.997  # official/resnet _BATCH_NORM_DECAY
BN_EPSILON = 1e-5  # official/resnet _BATCH_NORM_EPSILON


def _conv(filters, kernel_size, strides, weight_decay, name):
    """Conv without bias; official ``conv2d_fixed_padding`` for strides > 1."""
    conv = tf.keras.layers.Conv2D(
        filters, kernel_size, strides=strides,
        padding="same" if strides == 1 else "valid", use_bias=False,
        kernel_initializer=tf.keras.initializers.VarianceScaling(),  # official
        kernel_regularizer=tf.keras.regularizers.l2(weight_decay / 2),
        name=name,
    )
    if strides == 1:
        return conv
    pad = (kernel_size - 1) // 2, (kernel_size - 1) - (kernel_size - 1) // 2

    def padded(x):
        x = tf.keras.layers.ZeroPadding2D((pad, pad), name=name + "/pad")(x)
        return conv(x)

    return padded


def _bn(name):
    return tf.keras.layers.BatchNormalization(momentum=BN_MOMENTUM, epsilon=BN_EPSILON, name=name)


class ZeroPadShortcut(tf.keras.layers.Layer):
    """Option A shortcut (He et al. 2015, sec. 3.3): no parameters.

    ``[N, H, W, C]`` -> ``[N, ceil(H/s), ceil(W/s), filters]``: every
    ``strides``-th pixel, channels ``C..filters-1`` zero.
    """

    def __init__(self, filters: int, strides: int, **kwargs):
        super().__init__(**kwargs)
        self.filters = filters
        self.strides = strides

    def call(self, x):
        x = x[:, :: self.strides, :: self.strides, :]
        return tf.pad(x, [[0, 0], [0, 0], [0, 0], [0, self.filters - x.shape[-1]]])

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "strides": self.strides}


def _identity_shortcut(x, filters, strides, name):
    """Option A: ``x`` itself, or :class:`ZeroPadShortcut` where the shape changes."""
    if strides == 1 and x.shape[-1] == filters:
        return x
    return ZeroPadShortcut(filters, strides, name=name)(x)


def _relu(name):
    return tf.keras.layers.ReLU(name=name)


def _block_v1(x, filters, strides, shortcut, wd, scope):
    """Basic block v1: conv-BN-ReLU-conv-BN, + shortcut, ReLU."""
    if shortcut == "projection" and strides is not None:
        sc = _bn(scope + "/shortcut/BatchNorm")(_conv(filters, 1, strides, wd, scope + "/shortcut")(x))
    else:
        sc = _identity_shortcut(x, filters, strides or 1, scope + "/shortcut")
    y = _conv(filters, 3, strides or 1, wd, scope + "/conv1")(x)
    y = _relu(scope + "/conv1/Relu")(_bn(scope + "/conv1/BatchNorm")(y))
    y = _bn(scope + "/conv2/BatchNorm")(_conv(filters, 3, 1, wd, scope + "/conv2")(y))
    y = tf.keras.layers.Add(name=scope + "/add")([y, sc])
    return _relu(scope + "/Relu")(y)


def _block_v2(x, filters, strides, shortcut, wd, scope):
    """Pre-activation block: BN-ReLU-conv-BN-ReLU-conv, + shortcut."""
    pre = _relu(scope + "/preact/Relu")(_bn(scope + "/preact")(x))
    if shortcut == "projection" and strides is not None:
        sc = _conv(filters, 1, strides, wd, scope + "/shortcut")(pre)
    else:
        sc = _identity_shortcut(x, filters, strides or 1, scope + "/shortcut")
    y = _conv(filters, 3, strides or 1, wd, scope + "/conv1")(pre)
    y = _relu(scope + "/conv1/Relu")(_bn(scope + "/conv1/BatchNorm")(y))
    y = _conv(filters, 3, 1, wd, scope + "/conv2")(y)
    return tf.keras.layers.Add(name=scope + "/add")([y, sc])


def resnet_cifar(
    depth: int = 20,
    version: int = 1,
    num_classes: int = 10,
    image_size: int = 32,
    weight_decay: float = 2e-4,
    shortcut: str = "identity",
) -> tf.keras.Model:
    """The CIFAR ResNet with ``depth`` = 6n+2 layers (the builder of ``resnet_v*_*_cifar``).

    Args:
      depth: 20, 32, 44, 56, 110 (any 6n+2 with n >= 1).
      version: 1 (He et al. 2015) or 2 (pre-activation, He et al. 2016).
      num_classes: outputs of the final dense layer.
      image_size: input height and width (32 for CIFAR).
      weight_decay: official/resnet's ``weight_decay`` (see module docstring).
      shortcut: ``"identity"`` (paper option A) or ``"projection"``
        (official/resnet).

    Returns:
      An uncompiled ``tf.keras.Model`` named ``resnet<depth>_v<version>``:
      input ``image`` float32 ``[N, image_size, image_size, 3]`` (preprocessed);
      output float32 softmax probabilities ``[N, num_classes]`` (float32 also
      under a mixed-precision policy).

    Raises:
      ValueError: a depth not 6n+2, a version not 1 or 2, or an unknown
        shortcut.
    """
    if depth < 8 or (depth - 2) % 6:
        raise ValueError(f"ResNet depth must be 6n+2 (20, 32, 44, 56, 110), got {depth}")
    if version not in (1, 2):
        raise ValueError(f"ResNet version must be 1 or 2, got {version}")
    if shortcut not in ("identity", "projection"):
        raise ValueError(f"shortcut must be 'identity' or 'projection', got {shortcut!r}")
    n = (depth - 2) // 6
    block = _block_v1 if version == 1 else _block_v2
    wd = weight_decay
    scope = f"resnet_v{version}_{depth}"

    inputs = tf.keras.Input((image_size, image_size, 3), name="image")
    x = _conv(16, 3, 1, wd, scope + "/conv1")(inputs)
    if version == 1:  # v2: the first block's pre-activation does this
        x = _relu(scope + "/conv1/Relu")(_bn(scope + "/conv1/BatchNorm")(x))
    for stage, (filters, stride) in enumerate(((16, 1), (32, 2), (64, 2)), start=1):
        for i in range(n):
            # strides=None marks blocks without a projection (all but the first).
            strides = stride if i == 0 else None
            unit = f"{scope}/block{stage}/unit_{i + 1}/basic_v{version}"
            x = block(x, filters, strides, shortcut, wd, unit)
    if version == 2:
        x = _relu(scope + "/postnorm/Relu")(_bn(scope + "/postnorm")(x))
    x = tf.keras.layers.GlobalAveragePooling2D(name=scope + "/pool5")(x)
    x = tf.keras.layers.Dense(
        num_classes,
        kernel_regularizer=tf.keras.regularizers.l2(wd / 2),
        bias_regularizer=tf.keras.regularizers.l2(wd / 2),
        name=scope + "/logits",
    )(x)
    outputs = tf.keras.layers.Activation("softmax", dtype="float32", name="predictions")(x)
    return tf.keras.Model(inputs, outputs, name=f"resnet{depth}_v{version}")
