"""Inception-ResNet-v2 as TF-Slim builds it, with its auxiliary logits, in Keras.

Sources: Szegedy, Ioffe, Vanhoucke & Alemi, "Inception-v4, Inception-ResNet
and the Impact of Residual Connections on Learning", arXiv:1602.07261
(figures 3, 7, 16-18); layer for layer TF-Slim's ``nets/inception_resnet_v2.py``
(tensorflow/models ``research/slim``; ``tf-slim`` 1.1.0 does not carry it)
under ``inception_resnet_v2_arg_scope``: batch norm after every convolution
but the residual projections (decay 0.9997, epsilon 0.001, no scale), ReLU,
weight decay 4e-5 on conv and fully connected kernels *and* biases. The stem
(``VALID``: 299 -> 35x35x192), ``Mixed_5b`` (35x35x320), 10 ``block35``
(scale 0.17) in ``Repeat/block35_<i>``, ``Mixed_6a`` (17x17x1088), 20
``block17`` (scale 0.10) in ``Repeat_1/block17_<i>``, ``Mixed_7a``
(8x8x2080), 9 ``block8`` (scale 0.20) in ``Repeat_2/block8_<i>`` and one
more ``Block8`` (scale 1, no activation), ``Conv2d_7b_1x1`` (1536). A
residual block: towers ``Branch_<i>`` concatenated, a 1x1 ``Conv2d_1x1``
with biases (no batch norm, no activation) back to the input depth,
``net + scale * up``, ReLU. ``Logits``: an average pool over the whole map
(``AvgPool_1a_8x8``), flatten, dropout (keep 0.8), fully connected ``Logits``;
``AuxLogits`` from the last ``block17``: 5x5/3 average pool (Slim's scope
says ``Conv2d_1a_3x3``), 1x1 conv 128, a conv of 768 over the whole (5x5)
map (``Conv2d_2a_5x5``), flatten, fully connected ``Logits``.

Layer names are Slim's scopes (``InceptionResnetV2/Repeat_1/block17_20/Branch_1/
Conv2d_0c_7x1``, ``InceptionResnetV2/Block8/Conv2d_1x1``), for
:mod:`model_garden.nets.slim_checkpoint`.
"""

import tensorflow as tf

from model_garden.nets.inception_layers import C, Layers, P, softmax

SCOPE = "InceptionResnetV2"
DEFAULT_IMAGE_SIZE = 299  # inception_resnet_v2.default_image_size
DROPOUT_KEEP_PROB = 0.8

_MAX = P("max", "MaxPool_1a_3x3", stride=2, padding="valid")


def _v(depth, kernel, name, stride=2):
    """A ``VALID`` conv (stride 2 unless told)."""
    return C(depth, kernel, name, stride, "valid")


#: ``inception_resnet_v2_base``'s stem after ``MaxPool_5a_3x3`` and its reductions.
MIXED_5B = [[C(96, 1, "Conv2d_1x1")],
            [C(48, 1, "Conv2d_0a_1x1"), C(64, 5, "Conv2d_0b_5x5")],
            [C(64, 1, "Conv2d_0a_1x1"), C(96, 3, "Conv2d_0b_3x3"), C(96, 3, "Conv2d_0c_3x3")],
            [P("avg", "AvgPool_0a_3x3"), C(64, 1, "Conv2d_0b_1x1")]]
MIXED_6A = [[_v(384, 3, "Conv2d_1a_3x3")],
            [C(256, 1, "Conv2d_0a_1x1"), C(256, 3, "Conv2d_0b_3x3"), _v(384, 3, "Conv2d_1a_3x3")],
            [_MAX]]
MIXED_7A = [[C(256, 1, "Conv2d_0a_1x1"), _v(384, 3, "Conv2d_1a_3x3")],
            [C(256, 1, "Conv2d_0a_1x1"), _v(288, 3, "Conv2d_1a_3x3")],
            [C(256, 1, "Conv2d_0a_1x1"), C(288, 3, "Conv2d_0b_3x3"), _v(320, 3, "Conv2d_1a_3x3")],
            [_MAX]]
#: The towers of ``block35``, ``block17``, ``block8``.
BLOCK35 = [[C(32, 1, "Conv2d_1x1")],
           [C(32, 1, "Conv2d_0a_1x1"), C(32, 3, "Conv2d_0b_3x3")],
           [C(32, 1, "Conv2d_0a_1x1"), C(48, 3, "Conv2d_0b_3x3"), C(64, 3, "Conv2d_0c_3x3")]]
BLOCK17 = [[C(192, 1, "Conv2d_1x1")],
           [C(128, 1, "Conv2d_0a_1x1"), C(160, (1, 7), "Conv2d_0b_1x7"),
            C(192, (7, 1), "Conv2d_0c_7x1")]]
BLOCK8 = [[C(192, 1, "Conv2d_1x1")],
          [C(192, 1, "Conv2d_0a_1x1"), C(224, (1, 3), "Conv2d_0b_1x3"),
           C(256, (3, 1), "Conv2d_0c_3x1")]]
#: ``slim.repeat`` scopes: (scope, block name, towers, repetitions, scale).
REPEATS = (("Repeat", "block35", BLOCK35, 10, 0.17),
           ("Repeat_1", "block17", BLOCK17, 20, 0.10),
           ("Repeat_2", "block8", BLOCK8, 9, 0.20))


def residual_block(b: Layers, x, scope, towers, scale=1.0, activation=True):
    """Slim's ``block35``/``block17``/``block8``: float32 ``[N, H, W, D]`` -> the same shape,
    ``x + scale * Conv2d_1x1(concat(towers))``, then ReLU (unless not ``activation``)."""
    mixed = b.branches(x, scope, towers)
    up = b.conv(mixed, x.shape[-1], 1, scope + "/Conv2d_1x1", bn=False, relu=False)
    if scale != 1.0:
        up = tf.keras.layers.Rescaling(scale, name=scope + "/mul")(up)
    x = tf.keras.layers.Add(name=scope + "/add")([x, up])
    return tf.keras.layers.ReLU(name=scope + "/Relu")(x) if activation else x


def inception_resnet_v2(num_classes: int, image_size: int = DEFAULT_IMAGE_SIZE,
                        weight_decay: float = 4e-5,
                        dropout_keep_prob: float = DROPOUT_KEEP_PROB, aux_logits: bool = True):
    """TF-Slim's ``inception_resnet_v2`` (see the module docstring).

    Args:
      num_classes: logits (1,001 for Slim's ImageNet checkpoints).
      image_size: input height = width (299; the final pool covers the whole map;
        ``aux_logits`` needs the 17x17 map at least 5x5: >= 107 pixels).
      weight_decay: Slim's weight decay (4e-5, kernels and biases), Keras ``l2(w / 2)``.
      dropout_keep_prob: keep probability before the logits.
      aux_logits: Slim's ``create_aux_logits``.

    Returns:
      An uncompiled ``tf.keras.Model``: float32 images ``[N, image_size,
      image_size, 3]`` in [-1, 1] (``inception`` preprocessing), input name
      ``image`` -> float32 softmax probabilities ``[N, num_classes]`` (with
      ``aux_logits``: the list ``[probabilities, auxiliary probabilities]``,
      Slim's ``AuxLogits``); the logits are the layers
      ``InceptionResnetV2/Logits/Logits`` and ``InceptionResnetV2/AuxLogits/Logits``.
    """
    b = Layers(weight_decay, decay_biases=True)
    inputs = tf.keras.Input((image_size, image_size, 3), name="image")
    x = b.conv(inputs, 32, 3, f"{SCOPE}/Conv2d_1a_3x3", strides=2, padding="valid")
    x = b.conv(x, 32, 3, f"{SCOPE}/Conv2d_2a_3x3", padding="valid")
    x = b.conv(x, 64, 3, f"{SCOPE}/Conv2d_2b_3x3")
    x = tf.keras.layers.MaxPooling2D(3, 2, padding="valid", name=f"{SCOPE}/MaxPool_3a_3x3")(x)
    x = b.conv(x, 80, 1, f"{SCOPE}/Conv2d_3b_1x1", padding="valid")
    x = b.conv(x, 192, 3, f"{SCOPE}/Conv2d_4a_3x3", padding="valid")
    x = tf.keras.layers.MaxPooling2D(3, 2, padding="valid", name=f"{SCOPE}/MaxPool_5a_3x3")(x)
    x = b.branches(x, f"{SCOPE}/Mixed_5b", MIXED_5B)
    pre_aux = None
    for (repeat, block, towers, n, scale), after in zip(
            REPEATS, (("Mixed_6a", MIXED_6A), ("Mixed_7a", MIXED_7A), None)):
        for i in range(1, n + 1):
            x = residual_block(b, x, f"{SCOPE}/{repeat}/{block}_{i}", towers, scale)
        if block == "block17":
            pre_aux = x  # Slim's end point PreAuxLogits
        if after:
            x = b.branches(x, f"{SCOPE}/{after[0]}", after[1])
    x = residual_block(b, x, f"{SCOPE}/Block8", BLOCK8, activation=False)
    x = b.conv(x, 1536, 1, f"{SCOPE}/Conv2d_7b_1x1")
    scope = f"{SCOPE}/Logits"
    x = tf.keras.layers.AveragePooling2D(tuple(x.shape[1:3]), 1, padding="valid",
                                         name=scope + "/AvgPool_1a_8x8")(x)
    x = tf.keras.layers.Flatten(name=scope + "/Flatten")(x)
    x = tf.keras.layers.Dropout(1 - dropout_keep_prob, name=scope + "/Dropout")(x)
    outputs = [softmax(b.dense(x, num_classes, scope + "/Logits"), "predictions")]
    if not aux_logits:
        return tf.keras.Model(inputs, outputs[0], name="inception_resnet_v2")
    # Slim names the pool Conv2d_1a_3x3.
    outputs.append(b.aux_head(pre_aux, f"{SCOPE}/AuxLogits", num_classes, "Conv2d_1a_3x3",
                              "Conv2d_2a_5x5", "Logits"))
    return tf.keras.Model(inputs, outputs, name="inception_resnet_v2")
