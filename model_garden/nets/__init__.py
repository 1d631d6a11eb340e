"""The network registry: one name -> one builder, its image size and its preprocessing.

In the spirit of TF-Slim's ``nets/nets_factory.py`` (``networks_map``,
``get_network_fn``, ``network_fn.default_image_size``) and
``preprocessing/preprocessing_factory.py`` (preprocessing paired with the
network by name). Depth variants are thin entries over one builder
(``kwargs``). Adding a network is one :func:`register` call below plus its
builder module.

Builders live in their own modules and are named here by dotted path, so this
module imports no TensorFlow (the recipe registry and the CLI validate names
without it). Every builder is called as ``builder(num_classes=..., image_size=...,
weight_decay=..., **kwargs)`` and returns an uncompiled ``tf.keras.Model`` taking preprocessed
float32 images ``[N, image_size, image_size, 3]`` (input name ``image``) and
returning float32 softmax probabilities ``[N, num_classes]``. Layer names follow
TF-Slim's variable scopes (``resnet_v1_20/block1/unit_1/...``), so Slim
checkpoints can later be mapped by name.
"""

import dataclasses
import importlib
from typing import Any, Mapping

from model_garden.registry import Registry


@dataclasses.dataclass(frozen=True)
class NetSpec:
    """One registered network.

    Attributes:
      name: registry key, e.g. ``"resnet_v1_20_cifar"``.
      builder: dotted path of the builder function.
      default_image_size: input height = width in pixels (Slim's
        ``default_image_size``).
      preprocessing: name in :data:`model_garden.preprocessing.PREPROCESSING`.
      kwargs: fixed builder arguments of this variant (e.g. ``depth``).
      source: the paper or upstream file of the architecture.
    """

    name: str
    builder: str
    default_image_size: int
    preprocessing: str
    kwargs: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    source: str = ""


#: name -> :class:`NetSpec`.
NETS: Registry[NetSpec] = Registry("network")
#: Adds a :class:`NetSpec` (``ValueError`` on a second one of the same name).
register = NETS.register
#: The registered network ``name`` (``KeyError`` naming the known ones).
get_net = NETS.lookup


def build(name: str, num_classes: int, **overrides):
    """Builds network ``name`` (``tf.keras.Model``, see the module docstring).

    Args:
      name: a key of :data:`NETS`.
      num_classes: outputs of the final layer.
      **overrides: further builder arguments (e.g. ``weight_decay``, or
        ``image_size`` for another resolution than the default).

    Raises:
      KeyError: unknown name; whatever the builder raises for bad arguments.
    """
    spec = get_net(name)
    module, _, attr = spec.builder.rpartition(".")
    builder = getattr(importlib.import_module(module), attr)
    return builder(num_classes=num_classes,
                   **{"image_size": spec.default_image_size, **spec.kwargs, **overrides})


# --- CIFAR ResNets: He et al. 2015 (v1) and 2016 (v2), tensorflow/models official/resnet --
for _version in (1, 2):
    for _depth in (20, 32, 44, 56, 110):
        register(NetSpec(
            name=f"resnet_v{_version}_{_depth}_cifar",
            builder="model_garden.nets.resnet_cifar.resnet_cifar",
            default_image_size=32,
            preprocessing="cifar",
            kwargs={"depth": _depth, "version": _version},
            source=("arXiv:1512.03385 sec. 4.2" if _version == 1 else "arXiv:1603.05027")
            + "; tensorflow/models official/resnet/resnet_model.py",
        ))


# --- TF-Slim's ImageNet networks (research/slim/nets, its pre-trained table) ------------
register(NetSpec(
    name="inception_v1", builder="model_garden.nets.inception_v1.inception_v1",
    default_image_size=224, preprocessing="inception",
    source="arXiv:1409.4842; TF-Slim nets/inception_v1.py"))
# Slim's preprocessing_factory pairs every ResNet with vgg preprocessing (its
# README: the released v2 checkpoints were trained with inception at 299).
for _version, _depths in ((1, (50, 101, 152)), (2, (50, 101, 152, 200))):
    for _depth in _depths:
        register(NetSpec(
            name=f"resnet_v{_version}_{_depth}", builder="model_garden.nets.resnet_slim.resnet",
            default_image_size=224, preprocessing="vgg",
            kwargs={"version": _version, "depth": _depth},
            source=("arXiv:1512.03385" if _version == 1 else "arXiv:1603.05027")
            + f"; TF-Slim nets/resnet_v{_version}.py"))
for _depth in (16, 19):
    register(NetSpec(
        name=f"vgg_{_depth}", builder="model_garden.nets.vgg.vgg", default_image_size=224,
        preprocessing="vgg", kwargs={"depth": _depth},
        source="arXiv:1409.1556; TF-Slim nets/vgg.py"))
# MobileNet v1: Slim's nets_factory names; the resolution (224/192/160/128 for
# the released checkpoints) is the image size (--set image_size=...).
for _name, _multiplier in (("mobilenet_v1", 1.0), ("mobilenet_v1_075", 0.75),
                           ("mobilenet_v1_050", 0.5), ("mobilenet_v1_025", 0.25)):
    register(NetSpec(
        name=_name, builder="model_garden.nets.mobilenet_v1.mobilenet_v1",
        default_image_size=224, preprocessing="inception",
        kwargs={"depth_multiplier": _multiplier},
        source="arXiv:1704.04861; TF-Slim nets/mobilenet_v1.py"))
register(NetSpec(
    name="inception_v3", builder="model_garden.nets.inception_v3.inception_v3",
    default_image_size=299, preprocessing="inception",
    source="arXiv:1512.00567; TF-Slim nets/inception_v3.py"))
register(NetSpec(
    name="inception_v2", builder="model_garden.nets.inception_v2.inception_v2",
    default_image_size=224, preprocessing="inception",
    source="arXiv:1502.03167; TF-Slim nets/inception_v2.py"))
register(NetSpec(
    name="inception_v4", builder="model_garden.nets.inception_v4.inception_v4",
    default_image_size=299, preprocessing="inception",
    source="arXiv:1602.07261; TF-Slim nets/inception_v4.py"))
register(NetSpec(
    name="inception_resnet_v2",
    builder="model_garden.nets.inception_resnet_v2.inception_resnet_v2",
    default_image_size=299, preprocessing="inception",
    source="arXiv:1602.07261; TF-Slim nets/inception_resnet_v2.py"))
