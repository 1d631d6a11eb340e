"""Every TF-Slim network builds for any class count: 5 (flowers) and 1,001 (ImageNet).

Between the two, only the logits (and auxiliary logits) change: each logits
layer loses ``(1001 - 5) * (its input depth + 1)`` parameters (a 1x1
convolution or dense layer with biases), and nothing else moves. The
published counts at 1,001 classes are checked in tests/test_nets.py and
tests/test_slim_parity.py.
"""

import numpy as np
import pytest

from model_garden import nets
from model_garden.nets import released
from model_garden.trainers import initialize

pytestmark = pytest.mark.slow


def _count(model):
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


@pytest.mark.parametrize("name", sorted(n for n in nets.NETS if n in released.RELEASED))
def test_builds_for_5_and_1001_classes_with_only_the_logits_differing(name):
    import tensorflow as tf

    small, imagenet = nets.build(name, 5), nets.build(name, 1001)
    size = nets.get_net(name).default_image_size
    outputs = small(tf.zeros([1, size, size, 3]), training=False)
    outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
    assert all(o.shape == (1, 5) for o in outputs)
    scopes = released.RELEASED[name].logits_scopes
    logits = [layer for layer in small.layers
              if initialize.in_scopes(layer.name, scopes) and layer.weights
              and layer.weights[0].shape[-1] == 5]  # the aux head's convs are in its scope too
    assert len(logits) == len(outputs)
    # kernel [..., depth_in, classes] + bias [classes]
    per_class = sum(int(np.prod(layer.weights[0].shape[:-1])) + 1 for layer in logits)
    assert _count(imagenet) - _count(small) == (1001 - 5) * per_class
    # Every kernel starts from its own draw: an unseeded initializer instance shared
    # between layers gives every layer of one shape the same values (tf_keras 2.16,
    # initializers.py _warn_reuse), which MobileNet v1 had for its 3x3x512 depthwise
    # kernels Conv2d_7..11.
    seen = {}
    for weight in small.trainable_weights:
        if "kernel" in weight.name and int(np.prod(weight.shape)) > 1:
            key = (tuple(weight.shape), weight.numpy().tobytes())
            assert key not in seen, f"{weight.name} starts equal to {seen[key]}"
            seen[key] = weight.name
