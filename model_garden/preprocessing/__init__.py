"""Named image preprocessing, paired with networks by name.

As TF-Slim's ``preprocessing/preprocessing_factory.py``: a name maps to a
module whose ``preprocess_image(image, output_height, output_width,
is_training=False, seed=None)`` turns one decoded image into the network's
input. :data:`model_garden.nets.NETS` names each network's preprocessing.
Adding one is a :data:`PREPROCESSING` entry plus its module (``inception``
and ``vgg`` come with the TF-Slim zoo). Imports no TensorFlow.
"""

import importlib
from typing import Callable, Dict

#: name -> module holding ``preprocess_image``.
PREPROCESSING: Dict[str, str] = {
    "cifar": "model_garden.preprocessing.cifar",
    "inception": "model_garden.preprocessing.inception",
    "vgg": "model_garden.preprocessing.vgg",
}


def get_preprocessing(name: str) -> Callable:
    """``preprocess_image(image, output_height, output_width, is_training=False, seed=None)``.

    The function takes one image ``[H, W, 3]`` of any real or integer dtype
    (uint8/int64 pixels 0..255) and returns float32
    ``[output_height, output_width, 3]``; ``is_training`` adds the random
    augmentation, ``seed`` (int32 ``[2]``) makes it reproducible.

    Raises:
      KeyError: naming the known preprocessing.
    """
    try:
        module = PREPROCESSING[name]
    except KeyError:
        raise KeyError(f"unknown preprocessing {name!r}; known: {sorted(PREPROCESSING)}") from None
    return importlib.import_module(module).preprocess_image
