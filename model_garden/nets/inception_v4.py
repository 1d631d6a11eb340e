"""Inception v4 as TF-Slim builds it, with its auxiliary logits, in Keras.

Sources: Szegedy, Ioffe, Vanhoucke & Alemi, "Inception-v4, Inception-ResNet
and the Impact of Residual Connections on Learning", arXiv:1602.07261
(figures 3-9); layer for layer TF-Slim's ``nets/inception_v4.py``
(tensorflow/models ``research/slim``; ``tf-slim`` 1.1.0 does not carry it)
under ``inception_v4_arg_scope`` (= ``inception_utils.inception_arg_scope``:
batch norm after every convolution, decay 0.9997, epsilon 0.001, no scale;
ReLU; weight decay 4e-5 on conv and fully connected kernels). The stem
(``VALID`` 3x3s, ``Mixed_3a``, ``Mixed_4a``, ``Mixed_5a``: 299 -> 35x35x384),
4 Inception-A blocks (``Mixed_5b``-``5e``), Reduction-A (``Mixed_6a``, 17x17x1024),
7 Inception-B blocks (``Mixed_6b``-``6h``), Reduction-B (``Mixed_7a``, 8x8x1536),
3 Inception-C blocks (``Mixed_7b``-``7d``); ``Logits``: an average pool over
the whole map (``AvgPool_1a``, ``VALID``), dropout (keep 0.8),
``PreLogitsFlatten`` and a fully connected ``Logits``; ``AuxLogits`` from
``Mixed_6h``: 5x5/3 average pool, 1x1 conv 128, a conv of 768 over the
whole (5x5) map (``Conv2d_2a``), flatten and a fully connected ``Aux_logits``.

Layer names are Slim's scopes (``InceptionV4/Mixed_6b/Branch_2/Conv2d_0e_1x7``,
``InceptionV4/Logits/Logits``), for :mod:`model_garden.nets.slim_checkpoint`.
"""

import tensorflow as tf

from model_garden.nets.inception_layers import C, Layers, P, Split, softmax

SCOPE = "InceptionV4"
DEFAULT_IMAGE_SIZE = 299  # inception_v4.default_image_size
DROPOUT_KEEP_PROB = 0.8

_AVG = P("avg", "AvgPool_0a_3x3")
_MAX = P("max", "MaxPool_1a_3x3", stride=2, padding="valid")


def _v(depth, kernel, name, stride=1):
    """A ``VALID`` conv."""
    return C(depth, kernel, name, stride, "valid")


#: ``inception_v4_base`` after the three stem convs: (scope, branches).
STEM = (
    ("Mixed_3a", [[P("max", "MaxPool_0a_3x3", stride=2, padding="valid")],
                  [_v(96, 3, "Conv2d_0a_3x3", 2)]]),
    ("Mixed_4a", [[C(64, 1, "Conv2d_0a_1x1"), _v(96, 3, "Conv2d_1a_3x3")],
                  [C(64, 1, "Conv2d_0a_1x1"), C(64, (1, 7), "Conv2d_0b_1x7"),
                   C(64, (7, 1), "Conv2d_0c_7x1"), _v(96, 3, "Conv2d_1a_3x3")]]),
    ("Mixed_5a", [[_v(192, 3, "Conv2d_1a_3x3", 2)], [_MAX]]),
)
#: ``block_inception_a``, ``block_reduction_a``, ``block_inception_b``,
#: ``block_reduction_b``, ``block_inception_c``.
BLOCK_A = [[C(96, 1, "Conv2d_0a_1x1")],
           [C(64, 1, "Conv2d_0a_1x1"), C(96, 3, "Conv2d_0b_3x3")],
           [C(64, 1, "Conv2d_0a_1x1"), C(96, 3, "Conv2d_0b_3x3"), C(96, 3, "Conv2d_0c_3x3")],
           [_AVG, C(96, 1, "Conv2d_0b_1x1")]]
REDUCTION_A = [[_v(384, 3, "Conv2d_1a_3x3", 2)],
               [C(192, 1, "Conv2d_0a_1x1"), C(224, 3, "Conv2d_0b_3x3"),
                _v(256, 3, "Conv2d_1a_3x3", 2)],
               [_MAX]]
BLOCK_B = [[C(384, 1, "Conv2d_0a_1x1")],
           [C(192, 1, "Conv2d_0a_1x1"), C(224, (1, 7), "Conv2d_0b_1x7"),
            C(256, (7, 1), "Conv2d_0c_7x1")],
           [C(192, 1, "Conv2d_0a_1x1"), C(192, (7, 1), "Conv2d_0b_7x1"),
            C(224, (1, 7), "Conv2d_0c_1x7"), C(224, (7, 1), "Conv2d_0d_7x1"),
            C(256, (1, 7), "Conv2d_0e_1x7")],
           [_AVG, C(128, 1, "Conv2d_0b_1x1")]]
REDUCTION_B = [[C(192, 1, "Conv2d_0a_1x1"), _v(192, 3, "Conv2d_1a_3x3", 2)],
               [C(256, 1, "Conv2d_0a_1x1"), C(256, (1, 7), "Conv2d_0b_1x7"),
                C(320, (7, 1), "Conv2d_0c_7x1"), _v(320, 3, "Conv2d_1a_3x3", 2)],
               [_MAX]]
BLOCK_C = [[C(256, 1, "Conv2d_0a_1x1")],
           [C(384, 1, "Conv2d_0a_1x1"),
            Split((C(256, (1, 3), "Conv2d_0b_1x3"), C(256, (3, 1), "Conv2d_0c_3x1")))],
           [C(384, 1, "Conv2d_0a_1x1"), C(448, (3, 1), "Conv2d_0b_3x1"),
            C(512, (1, 3), "Conv2d_0c_1x3"),
            Split((C(256, (1, 3), "Conv2d_0d_1x3"), C(256, (3, 1), "Conv2d_0e_3x1")))],
           [_AVG, C(256, 1, "Conv2d_0b_1x1")]]
#: The blocks after the stem, in order.
MIXED = (STEM
         + tuple((f"Mixed_5{c}", BLOCK_A) for c in "bcde") + (("Mixed_6a", REDUCTION_A),)
         + tuple((f"Mixed_6{c}", BLOCK_B) for c in "bcdefgh") + (("Mixed_7a", REDUCTION_B),)
         + tuple((f"Mixed_7{c}", BLOCK_C) for c in "bcd"))


def inception_v4(num_classes: int, image_size: int = DEFAULT_IMAGE_SIZE,
                 weight_decay: float = 4e-5, dropout_keep_prob: float = DROPOUT_KEEP_PROB,
                 aux_logits: bool = True):
    """TF-Slim's ``inception_v4`` (see the module docstring).

    Args:
      num_classes: logits (1,001 for Slim's ImageNet checkpoints).
      image_size: input height = width (299; the final pool covers the whole map;
        ``aux_logits`` needs a ``Mixed_6h`` of at least 5x5: >= 107 pixels).
      weight_decay: Slim's weight decay (4e-5), Keras ``l2(w / 2)``.
      dropout_keep_prob: keep probability before the logits.
      aux_logits: Slim's ``create_aux_logits``.

    Returns:
      An uncompiled ``tf.keras.Model``: float32 images ``[N, image_size,
      image_size, 3]`` in [-1, 1] (``inception`` preprocessing), input name
      ``image`` -> float32 softmax probabilities ``[N, num_classes]`` (with
      ``aux_logits``: the list ``[probabilities, auxiliary probabilities]``,
      Slim's ``AuxLogits``); the logits are the layers ``InceptionV4/Logits/Logits``
      and ``InceptionV4/AuxLogits/Aux_logits``.
    """
    b = Layers(weight_decay)
    inputs = tf.keras.Input((image_size, image_size, 3), name="image")
    x = b.conv(inputs, 32, 3, f"{SCOPE}/Conv2d_1a_3x3", strides=2, padding="valid")
    x = b.conv(x, 32, 3, f"{SCOPE}/Conv2d_2a_3x3", padding="valid")
    x = b.conv(x, 64, 3, f"{SCOPE}/Conv2d_2b_3x3")
    mixed_6h = None
    for name, branches in MIXED:
        x = b.branches(x, f"{SCOPE}/{name}", branches)
        if name == "Mixed_6h":
            mixed_6h = x
    scope = f"{SCOPE}/Logits"
    x = tf.keras.layers.AveragePooling2D(tuple(x.shape[1:3]), 1, padding="valid",
                                         name=scope + "/AvgPool_1a")(x)
    x = tf.keras.layers.Dropout(1 - dropout_keep_prob, name=scope + "/Dropout_1b")(x)
    x = tf.keras.layers.Flatten(name=scope + "/PreLogitsFlatten")(x)
    outputs = [softmax(b.dense(x, num_classes, scope + "/Logits"), "predictions")]
    if not aux_logits:
        return tf.keras.Model(inputs, outputs[0], name="inception_v4")
    outputs.append(b.aux_head(mixed_6h, f"{SCOPE}/AuxLogits", num_classes, "AvgPool_1a_5x5",
                              "Conv2d_2a", "Aux_logits"))
    return tf.keras.Model(inputs, outputs, name="inception_v4")
