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


def get_encoded_preprocessing(name: str) -> Callable:
    """``preprocess_encoded(encoded, output_height, output_width, is_training=False, seed=None)``.

    As :func:`get_preprocessing`, for one encoded image (string scalar, JPEG
    or PNG): the module's own ``preprocess_encoded`` where it has one (the
    ``inception`` training crop decodes only its window of a JPEG), else
    ``tf.io.decode_image(channels=3)`` then ``preprocess_image``. Same output
    as decoding first, for the same ``seed``.

    Raises:
      KeyError: naming the known preprocessing.
    """
    preprocess = get_preprocessing(name)
    module = importlib.import_module(PREPROCESSING[name])
    if hasattr(module, "preprocess_encoded"):
        return module.preprocess_encoded

    def decode_then_preprocess(encoded, output_height=224, output_width=224,
                               is_training=False, seed=None):
        import tensorflow as tf

        image = tf.io.decode_image(encoded, channels=3, expand_animations=False)
        return preprocess(image, output_height, output_width, is_training=is_training, seed=seed)

    return decode_then_preprocess
