"""Slim's layers under its Inception ``arg_scope``\\ s, and multi-branch blocks from tables.

Shared by :mod:`~model_garden.nets.inception_v2`, :mod:`~model_garden.nets.inception_v4`
and :mod:`~model_garden.nets.inception_resnet_v2`. Source: TF-Slim
(tensorflow/models ``research/slim``): ``slim.conv2d`` under
``inception_utils.inception_arg_scope`` (``inception_v2_arg_scope``,
``inception_v4_arg_scope``) and ``inception_resnet_v2_arg_scope``: a
convolution without biases, batch norm (decay 0.9997, epsilon 0.001, no
``gamma``), ReLU; ``variance_scaling_initializer()`` (factor 2, fan in,
truncated normal) unless the network says otherwise; L2 weight decay on the
conv and fully connected kernels (and, in Inception-ResNet-v2's scope, their
biases too). Slim's ``l2_regularizer(w)`` adds ``w * sum(v**2) / 2``, Keras'
``l2(x)`` adds ``x * sum(v**2)``, hence ``l2(w / 2)``.

Layer names are Slim's scopes: a conv ``<scope>``, its ``<scope>/BatchNorm``
and ``<scope>/Relu``, so :mod:`model_garden.nets.slim_checkpoint` maps them.
"""

import typing

import tensorflow as tf

BN_MOMENTUM = 0.9997
BN_EPSILON = 0.001


class C(typing.NamedTuple):
    """A ``slim.conv2d`` of a branch (BN, ReLU): ``depth`` filters, ``kernel`` (int or
    ``(h, w)``), scope ``name``, ``stride``, ``padding`` and, when not ``None``, a truncated
    normal initializer of that ``stddev`` (Slim's ``trunc_normal``)."""

    depth: int
    kernel: typing.Union[int, typing.Tuple[int, int]]
    name: str
    stride: int = 1
    padding: str = "same"
    stddev: typing.Optional[float] = None


class P(typing.NamedTuple):
    """A ``slim.avg_pool2d`` (``kind="avg"``) or ``max_pool2d`` (``"max"``) of a branch."""

    kind: str
    name: str
    size: int = 3
    stride: int = 1
    padding: str = "same"


class Split(typing.NamedTuple):
    """Parallel convs :class:`C` on one input, concatenated (Inception v4's ``C`` block)."""

    convs: typing.Tuple[C, ...]


class Layers:
    """Builds Slim's layers with one network's weight decay (see the module docstring).

    Args:
      weight_decay: Slim's ``weight_decay`` (4e-5 in every Inception arg scope).
      decay_biases: also decay the biases (``inception_resnet_v2_arg_scope``).
      depth: maps a table depth to the built one (Slim's ``depth_multiplier``).
    """

    def __init__(self, weight_decay: float, decay_biases: bool = False,
                 depth: typing.Callable[[int], int] = lambda d: d):
        self.regularizer = tf.keras.regularizers.l2(weight_decay / 2)
        self.bias_regularizer = self.regularizer if decay_biases else None
        self.depth = depth

    def conv(self, x, filters, kernel, name, strides=1, padding="same", stddev=None,
             bn=True, relu=True):
        """``slim.conv2d``: float32 ``[N, H, W, C]`` -> ``[N, H', W', filters]``; with ``bn``
        no biases, ``<name>/BatchNorm``; else biases (Slim's ``normalizer_fn=None``)."""
        init = (tf.keras.initializers.TruncatedNormal(stddev=stddev) if stddev else
                tf.keras.initializers.VarianceScaling(2.0, "fan_in", "truncated_normal"))
        x = tf.keras.layers.Conv2D(
            filters, kernel, strides=strides, padding=padding, use_bias=not bn,
            kernel_initializer=init, kernel_regularizer=self.regularizer,
            bias_regularizer=None if bn else self.bias_regularizer, name=name)(x)
        if bn:
            x = tf.keras.layers.BatchNormalization(momentum=BN_MOMENTUM, epsilon=BN_EPSILON,
                                                   scale=False, name=name + "/BatchNorm")(x)
        return tf.keras.layers.ReLU(name=name + "/Relu")(x) if relu else x

    def aux_head(self, x, scope, num_classes, pool_name, conv_name, logits_name):
        """The auxiliary head of Slim's Inception v4 and Inception-ResNet-v2 on the 17x17 map:
        float32 ``[N, 17, 17, D]`` -> probabilities ``[N, num_classes]`` (``aux_predictions``).

        A 5x5/3 ``VALID`` average pool (``<scope>/<pool_name>``), ``Conv2d_1b_1x1`` (128),
        a ``VALID`` conv of 768 over the whole remaining map (``<scope>/<conv_name>``),
        flatten, fully connected ``<scope>/<logits_name>``; the scopes' names differ
        between the two networks (Slim's ``inception_v4.py``, ``inception_resnet_v2.py``).
        """
        a = tf.keras.layers.AveragePooling2D(5, 3, padding="valid",
                                             name=f"{scope}/{pool_name}")(x)
        a = self.conv(a, 128, 1, scope + "/Conv2d_1b_1x1")
        a = self.conv(a, 768, tuple(a.shape[1:3]), f"{scope}/{conv_name}", padding="valid")
        a = tf.keras.layers.Flatten(name=scope + "/Flatten")(a)
        return softmax(self.dense(a, num_classes, f"{scope}/{logits_name}"), "aux_predictions")

    def dense(self, x, units, name):
        """``slim.fully_connected`` without activation (Glorot-uniform kernel, zero biases):
        float32 ``[N, D]`` -> ``[N, units]``, Slim's ``<name>/weights`` ``[D, units]``."""
        return tf.keras.layers.Dense(units, kernel_regularizer=self.regularizer,
                                     bias_regularizer=self.bias_regularizer, name=name)(x)

    def op(self, x, layer, prefix):
        """One :class:`C` or :class:`P` named ``prefix + layer.name``."""
        if isinstance(layer, P):
            pool = (tf.keras.layers.AveragePooling2D if layer.kind == "avg" else
                    tf.keras.layers.MaxPooling2D)
            return pool(layer.size, layer.stride, padding=layer.padding,
                        name=prefix + layer.name)(x)
        return self.conv(x, self.depth(layer.depth), layer.kernel, prefix + layer.name,
                         layer.stride, layer.padding, layer.stddev)

    def branches(self, x, scope, branches, concat=True):
        """Slim's ``Branch_<i>`` towers on ``x``, each a sequence of :class:`C`, :class:`P`
        or :class:`Split`; their outputs concatenated on channels as ``<scope>/concat``
        (or, with ``concat=False``, the list)."""
        outputs = []
        for i, layers in enumerate(branches):
            y, prefix = x, f"{scope}/Branch_{i}/"
            for layer in layers:
                if isinstance(layer, Split):
                    y = tf.keras.layers.Concatenate(axis=3, name=prefix + "concat")(
                        [self.op(y, c, prefix) for c in layer.convs])
                else:
                    y = self.op(y, layer, prefix)
            outputs.append(y)
        if not concat:
            return outputs
        return tf.keras.layers.Concatenate(axis=3, name=scope + "/concat")(outputs)


def softmax(logits, name):
    """float32 softmax probabilities of ``logits`` ``[N, num_classes]``, layer ``name``."""
    return tf.keras.layers.Activation("softmax", dtype="float32", name=name)(logits)
