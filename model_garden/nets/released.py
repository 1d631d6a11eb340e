"""TF-Slim's released ImageNet checkpoints, by network: what fine-tuning starts from.

From the "Pre-trained Models" table of tensorflow/models ``research/slim/README.md``
and ``research/slim/nets/mobilenet_v1.md``: the archive under
``http://download.tensorflow.org/models/``, the ``.ckpt`` inside it, the
classes of its logits (1,001 with background; the ResNet v1 and VGG
checkpoints have 1,000: convert ImageNet with ``--labels-offset 1`` to use
their logits) and the published top-1 accuracy (%) on ImageNet
validation. Also the scopes of each network's logits (and auxiliary logits),
which Slim's README excludes and trains when fine-tuning on another dataset.

These machines have no internet: nothing here downloads; the README says
how a user with internet fetches an archive and passes
``--set checkpoint_path=.../<ckpt>``. Imports no TensorFlow.
"""

import dataclasses
from typing import Optional, Tuple

BASE_URL = "http://download.tensorflow.org/models/"


@dataclasses.dataclass(frozen=True)
class Released:
    """One released checkpoint.

    Attributes:
      archive: file under :data:`BASE_URL` (``None``: Slim lists none).
      ckpt: the checkpoint prefix inside the archive.
      num_classes: outputs of its logits (1001 or 1000).
      top1: published ImageNet top-1 accuracy in percent.
      logits_scopes: the Slim scopes of the logits and auxiliary logits.
    """

    archive: Optional[str]
    ckpt: str
    num_classes: int
    top1: float
    logits_scopes: Tuple[str, ...]

    @property
    def url(self) -> Optional[str]:
        """The archive's URL, or ``None``."""
        return BASE_URL + self.archive if self.archive else None


def _mobilenet(multiplier: str, top1: float) -> Released:
    name = f"mobilenet_v1_{multiplier}_224"
    return Released(f"mobilenet_v1_2018_08_02/{name}.tgz", f"{name}.ckpt", 1001, top1,
                    ("MobilenetV1/Logits",))


#: network name -> :class:`Released` (Slim README "Pre-trained Models";
#: mobilenet_v1.md for the MobileNets at 224 px; resnet_v2_200: "TBA" there).
RELEASED = {
    "inception_v1": Released("inception_v1_2016_08_28.tar.gz", "inception_v1.ckpt", 1001, 69.8,
                             ("InceptionV1/Logits",)),
    "inception_v2": Released("inception_v2_2016_08_28.tar.gz", "inception_v2.ckpt", 1001, 73.9,
                             ("InceptionV2/Logits",)),
    "inception_v3": Released("inception_v3_2016_08_28.tar.gz", "inception_v3.ckpt", 1001, 78.0,
                             ("InceptionV3/Logits", "InceptionV3/AuxLogits")),
    "inception_v4": Released("inception_v4_2016_09_09.tar.gz", "inception_v4.ckpt", 1001, 80.2,
                             ("InceptionV4/Logits", "InceptionV4/AuxLogits")),
    "inception_resnet_v2": Released("inception_resnet_v2_2016_08_30.tar.gz",
                                    "inception_resnet_v2_2016_08_30.ckpt", 1001, 80.4,
                                    ("InceptionResnetV2/Logits", "InceptionResnetV2/AuxLogits")),
    "resnet_v1_50": Released("resnet_v1_50_2016_08_28.tar.gz", "resnet_v1_50.ckpt", 1000, 75.2,
                             ("resnet_v1_50/logits",)),
    "resnet_v1_101": Released("resnet_v1_101_2016_08_28.tar.gz", "resnet_v1_101.ckpt", 1000,
                              76.4, ("resnet_v1_101/logits",)),
    "resnet_v1_152": Released("resnet_v1_152_2016_08_28.tar.gz", "resnet_v1_152.ckpt", 1000,
                              76.8, ("resnet_v1_152/logits",)),
    "resnet_v2_50": Released("resnet_v2_50_2017_04_14.tar.gz", "resnet_v2_50.ckpt", 1001, 75.6,
                             ("resnet_v2_50/logits",)),
    "resnet_v2_101": Released("resnet_v2_101_2017_04_14.tar.gz", "resnet_v2_101.ckpt", 1001,
                              77.0, ("resnet_v2_101/logits",)),
    "resnet_v2_152": Released("resnet_v2_152_2017_04_14.tar.gz", "resnet_v2_152.ckpt", 1001,
                              77.8, ("resnet_v2_152/logits",)),
    "resnet_v2_200": Released(None, "", 1001, 79.9, ("resnet_v2_200/logits",)),
    "vgg_16": Released("vgg_16_2016_08_28.tar.gz", "vgg_16.ckpt", 1000, 71.5, ("vgg_16/fc8",)),
    "vgg_19": Released("vgg_19_2016_08_28.tar.gz", "vgg_19.ckpt", 1000, 71.1, ("vgg_19/fc8",)),
    "mobilenet_v1": _mobilenet("1.0", 70.9),
    "mobilenet_v1_075": _mobilenet("0.75", 68.4),
    "mobilenet_v1_050": _mobilenet("0.5", 63.3),
    "mobilenet_v1_025": _mobilenet("0.25", 49.8),
}


def hint(net: str) -> str:
    """Where ``net``'s released checkpoint is, in words (for error messages)."""
    entry = RELEASED.get(net)
    if entry is None or entry.url is None:
        return f"TF-Slim released no checkpoint for {net}"
    return f"TF-Slim's {entry.ckpt} from {entry.url}"
