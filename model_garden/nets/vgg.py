"""TF-Slim's VGG 16 and 19 in Keras (the fully connected layers as convolutions).

Sources: Simonyan & Zisserman, "Very Deep Convolutional Networks for
Large-Scale Image Recognition", arXiv:1409.1556 (configurations D and E);
layer for layer TF-Slim's ``nets/vgg.py`` (tensorflow/models
``research/slim``, the same file in ``tf-slim`` 1.1.0): 3x3 ``SAME``
convolutions with biases and ReLU in five groups (``vgg_16``: 2, 2, 3, 3, 3;
``vgg_19``: 2, 2, 4, 4, 4), each followed by a 2x2/2 ``VALID`` max pool;
``fc6`` a 7x7 ``VALID`` convolution with 4,096 filters, dropout (keep 0.5),
``fc7`` 1x1 with 4,096, dropout, ``fc8`` 1x1 logits without activation; no
batch norm. Slim's ``vgg_arg_scope``: weight decay 5e-4, zero biases
(Keras ``l2(w / 2)``, as Slim's ``l2_regularizer(w)`` halves), Glorot
(Xavier) uniform kernels, Slim's ``conv2d`` default.

Layer names are Slim's scopes (``vgg_16/conv3/conv3_2``, ``vgg_16/fc6``,
``vgg_16/fc8``), for :mod:`model_garden.nets.slim_checkpoint`.
"""

import tensorflow as tf

DEFAULT_IMAGE_SIZE = 224  # vgg_16.default_image_size
#: depth -> convolutions in each of the five groups.
GROUPS = {16: (2, 2, 3, 3, 3), 19: (2, 2, 4, 4, 4)}
FILTERS = (64, 128, 256, 512, 512)
DROPOUT_KEEP_PROB = 0.5


def _conv(x, filters, kernel_size, name, weight_decay, padding="same", relu=True):
    return tf.keras.layers.Conv2D(
        filters, kernel_size, padding=padding, activation="relu" if relu else None,
        kernel_initializer="glorot_uniform",
        kernel_regularizer=tf.keras.regularizers.l2(weight_decay / 2), name=name)(x)


def vgg(num_classes: int, image_size: int = DEFAULT_IMAGE_SIZE, depth: int = 16,
        weight_decay: float = 5e-4, dropout_keep_prob: float = DROPOUT_KEEP_PROB):
    """TF-Slim's ``vgg_{depth}`` (see the module docstring).

    Args:
      num_classes: logits (Slim's released VGG checkpoints have 1,000: no
        background class).
      image_size: input height = width in pixels (224: a 7x7 map before ``fc6``).
      depth: 16 or 19.
      weight_decay: Slim's ``vgg_arg_scope`` weight decay.
      dropout_keep_prob: Slim's keep probability of ``dropout6``/``dropout7``.

    Returns:
      An uncompiled ``tf.keras.Model``: float32 images ``[N, image_size,
      image_size, 3]`` (``vgg`` preprocessing), input name ``image`` -> float32
      softmax probabilities ``[N, num_classes]``; the layer
      ``vgg_<depth>/fc8/squeezed`` holds the logits.

    Raises:
      ValueError: another depth.
    """
    if depth not in GROUPS:
        raise ValueError(f"no vgg_{depth}: depth one of {sorted(GROUPS)}")
    scope = f"vgg_{depth}"
    inputs = tf.keras.Input((image_size, image_size, 3), name="image")
    x = inputs
    for g, (count, filters) in enumerate(zip(GROUPS[depth], FILTERS), 1):
        for i in range(1, count + 1):
            x = _conv(x, filters, 3, f"{scope}/conv{g}/conv{g}_{i}", weight_decay)
        x = tf.keras.layers.MaxPooling2D(2, 2, padding="valid", name=f"{scope}/pool{g}")(x)
    x = _conv(x, 4096, 7, f"{scope}/fc6", weight_decay, padding="valid")
    x = tf.keras.layers.Dropout(1 - dropout_keep_prob, name=f"{scope}/dropout6")(x)
    x = _conv(x, 4096, 1, f"{scope}/fc7", weight_decay)
    x = tf.keras.layers.Dropout(1 - dropout_keep_prob, name=f"{scope}/dropout7")(x)
    x = _conv(x, num_classes, 1, f"{scope}/fc8", weight_decay, relu=False)
    logits = tf.keras.layers.Reshape((num_classes,), name=f"{scope}/fc8/squeezed")(x)
    outputs = tf.keras.layers.Activation("softmax", dtype="float32", name="predictions")(logits)
    return tf.keras.Model(inputs, outputs, name=scope)
