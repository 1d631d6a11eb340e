"""TF-Slim checkpoints <-> Keras weights, by variable name.

The networks of :mod:`model_garden.nets` name their layers with TF-Slim's
variable scopes, so each Keras weight has one Slim variable name
(``slim.conv2d``/``fully_connected``: ``<scope>/weights``, ``<scope>/biases``;
``slim.separable_conv2d``: ``<scope>/depthwise_weights``, ``<scope>/pointwise_weights``;
``slim.batch_norm``: ``<scope>/BatchNorm/{beta,gamma,moving_mean,moving_variance}``):

==========================  ===========================================
Keras layer / weight        Slim variable
==========================  ===========================================
``Conv2D``/``Dense`` kernel ``<layer name>/weights``
``Conv2D``/``Dense`` bias   ``<layer name>/biases``
``DepthwiseConv2D`` kernel  ``<layer name>/depthwise_weights``
``SeparableConv2D`` kernels ``<layer name>/depthwise_weights``, ``/pointwise_weights``
``BatchNormalization``      ``<layer name>/beta``, ``/gamma``, ``/moving_mean``, ``/moving_variance``
==========================  ===========================================

(the BN layers are named ``<conv scope>/BatchNorm``). Shapes agree as they
are: Slim's conv kernels are ``[h, w, in, out]``, as Keras'.
"""

from typing import Dict, List, Sequence


class SlimCheckpointError(ValueError):
    """A checkpoint does not fit the network; names the checkpoint and the variables."""


_BN = {"beta": "beta", "gamma": "gamma", "moving_mean": "moving_mean",
       "moving_variance": "moving_variance"}
_KERNEL = {"kernel": "weights", "bias": "biases", "depthwise_kernel": "depthwise_weights",
           "pointwise_kernel": "pointwise_weights"}


def slim_names(model) -> Dict[str, object]:
    """``{Slim variable name: Keras weight variable}`` of every weight of ``model``.

    Raises:
      SlimCheckpointError: a weight of a kind this mapping does not know.
    """
    out: Dict[str, object] = {}
    for layer in model.layers:
        for weight in layer.weights:
            short = weight.name.split("/")[-1].split(":")[0]
            table = _BN if type(layer).__name__ == "BatchNormalization" else _KERNEL
            if short not in table:
                raise SlimCheckpointError(f"{layer.name}: weight {weight.name} has no Slim name")
            out[f"{layer.name}/{table[short]}"] = weight
    return out


def _excluded(name: str, scopes: Sequence[str]) -> bool:
    return any(name == s or name.startswith(s.rstrip("/") + "/") for s in scopes)


def load_slim_checkpoint(model, checkpoint: str, exclude_scopes: Sequence[str] = ()) -> List[str]:
    """Assigns a TF-Slim checkpoint's variables to ``model``'s weights, by name.

    Args:
      model: a network of :mod:`model_garden.nets` (Slim-scoped layer names).
      checkpoint: a ``.ckpt`` prefix (or a folder with a ``checkpoint`` file).
      exclude_scopes: Slim's ``checkpoint_exclude_scopes``: weights under
        these scopes keep their initial values (e.g. the logits of another
        class count).

    Returns:
      The Slim names restored, sorted.

    Raises:
      SlimCheckpointError: a weight (not excluded) missing from the checkpoint,
        or of another shape; names the checkpoint and every such variable.
    """
    import tensorflow as tf

    reader = tf.train.load_checkpoint(checkpoint)
    shapes = reader.get_variable_to_shape_map()
    missing, wrong, restored = [], [], []
    targets = {n: w for n, w in slim_names(model).items() if not _excluded(n, exclude_scopes)}
    for name, weight in targets.items():
        if name not in shapes:
            missing.append(name)
        elif list(shapes[name]) != list(weight.shape):
            wrong.append(f"{name} {shapes[name]} != {list(weight.shape)}")
    if missing or wrong:
        raise SlimCheckpointError(
            f"{checkpoint} does not fit {model.name}: "
            + (f"missing {missing[:5]}{' ...' if len(missing) > 5 else ''} ({len(missing)}); "
               if missing else "")
            + (f"other shapes {wrong[:5]}" if wrong else "")
            + " (checkpoint_exclude_scopes leaves layers out)")
    for name, weight in targets.items():
        weight.assign(reader.get_tensor(name))
        restored.append(name)
    return sorted(restored)
