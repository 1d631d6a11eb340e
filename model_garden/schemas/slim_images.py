"""Transform for TF-Slim's image datasets (flowers, ImageNet): encoded images pass through.

Photos of every size cannot be decoded into one dense Transform batch, and
a decoded copy of ImageNet would be ~40x its JPEGs, so this
``preprocessing_fn`` only normalizes shapes (meant for
``Transform(materialize=False)``, no analyzers). The Trainer decodes each
image in ``tf.data`` and applies the network's preprocessing
(:mod:`model_garden.trainers.image_classifier`); the serving signatures run
this same graph, then the same decoding and eval preprocessing.

Input: the TF-Slim features of ``flowers.pbtxt`` / ``imagenet.pbtxt``.
Output:

* ``image/encoded``: string ``[batch]``, the JPEG/PNG bytes as written;
* ``image/class/label``: int64 ``[batch]`` (Slim's labels, offset applied
  by the ExampleGen).
"""

from model_garden.schemas.cifar10 import LABEL_KEY, RAW_IMAGE_KEY


def preprocessing_fn(inputs):
    """Transform's ``preprocessing_fn``: ``{image/encoded: [batch], image/class/label: [batch]}``.

    Args:
      inputs: raw batched tensors, ``image/encoded`` string ``[batch, 1]`` and
        ``image/class/label`` int64 ``[batch, 1]`` (other keys unused).
    """
    import tensorflow as tf

    return {
        RAW_IMAGE_KEY: tf.reshape(inputs[RAW_IMAGE_KEY], [-1]),
        LABEL_KEY: tf.reshape(inputs[LABEL_KEY], [-1]),
    }
