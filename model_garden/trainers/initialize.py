"""Initial weights and frozen layers: Slim's ``checkpoint_path``, ``checkpoint_exclude_scopes``
and ``trainable_scopes`` (``research/slim/train_image_classifier.py``
``_get_init_fn`` and ``_get_variables_to_train``).

``checkpoint_path`` may be

* a TF-Slim ``.ckpt`` (a name-based TF1 checkpoint: ``InceptionV3/Conv2d_1a_3x3/weights``),
  e.g. one of Slim's released ones (:mod:`model_garden.nets.released`);
* a SavedModel folder pushed by this project (``<serving dir>/<version>``), or
* a Keras HDF5 weights file (``.h5``, what ``model.save_weights("x.h5")`` writes).

All three are read by variable name: every Keras weight of the network has
one Slim name (:func:`model_garden.nets.slim_checkpoint.slim_names`), so a
scope excludes the same layers in each. The Trainer applies them only when a
run starts without checkpoints of its own; a restarted run resumes from its
own epoch checkpoint, never from the initial weights again (as Slim's
``Supervisor`` skips ``init_fn`` when the train dir has a checkpoint).

``trainable_scopes``: only layers under these scopes train. Deliberately
unlike Slim, the batch norm layers outside them are frozen whole, moving
mean and variance included, and run in inference mode (Keras'
``layer.trainable = False``, the Keras transfer-learning guide): Slim keeps
updating those statistics from the new dataset's batches while their scale
and offset stay fixed. Frozen layers then keep the checkpoint's values bit
for bit, and 3,000 flower photos do not overwrite statistics estimated on
1.2 million ImageNet images.
"""

import logging
import os
from typing import Dict, List, Sequence

import numpy as np
import tensorflow as tf

from model_garden.nets import slim_checkpoint
from model_garden.nets.slim_checkpoint import SlimCheckpointError

_SHORT = {**slim_checkpoint._KERNEL, **slim_checkpoint._BN}  # Keras weight -> Slim suffix


def in_scopes(name: str, scopes: Sequence[str]) -> bool:
    """Whether Slim name ``name`` is ``scope`` or under it, for one of ``scopes``."""
    return any(name == s.rstrip("/") or name.startswith(s.rstrip("/") + "/")
               for s in scopes if s.strip())


def _slim_name(keras_name: str) -> str:
    """``"<layer>/<weight>:0"`` (a Keras weight's name) -> its Slim name."""
    layer, _, short = keras_name.split(":")[0].rpartition("/")
    return f"{layer}/{_SHORT.get(short, short)}"


def read_weights(path: str) -> Dict[str, np.ndarray]:
    """``{Slim name: value}`` of every variable of the checkpoint at ``path``.

    Raises:
      SlimCheckpointError: ``path`` does not exist or is none of the three
        kinds (names ``path``).
    """
    gfile = tf.io.gfile
    if gfile.isdir(path) and gfile.exists(os.path.join(path, "saved_model.pb")):
        loaded = tf.saved_model.load(path)
        variables = getattr(loaded, "variables", None)
        if not variables:
            raise SlimCheckpointError(f"{path}: a SavedModel without Keras variables")
        return {_slim_name(v.name): v.numpy() for v in variables}
    if path.endswith(".h5"):
        if not gfile.exists(path):
            raise SlimCheckpointError(f"{path}: no such Keras weights file")
        return _read_h5(path)
    try:
        reader = tf.train.load_checkpoint(path)
    except (ValueError, tf.errors.OpError) as e:
        raise SlimCheckpointError(
            f"{path}: not a TF-Slim checkpoint, a SavedModel folder or a Keras .h5 weights "
            f"file ({str(e).splitlines()[0]})") from None
    names = reader.get_variable_to_shape_map()
    if "_CHECKPOINTABLE_OBJECT_GRAPH" in names:
        raise SlimCheckpointError(
            f"{path}: an object-based TF2 checkpoint; give a TF-Slim .ckpt, a pushed SavedModel "
            "folder or a Keras .h5 weights file (model.save_weights('weights.h5'))")
    return {name: reader.get_tensor(name) for name in names}


def _read_h5(path: str) -> Dict[str, np.ndarray]:
    import h5py

    out = {}
    with tf.io.gfile.GFile(path, "rb") as f, h5py.File(f, "r") as h5:
        root = h5["model_weights"] if "model_weights" in h5 else h5
        for layer in root.attrs.get("layer_names", []):
            layer = layer.decode() if isinstance(layer, bytes) else layer
            group = root[layer]
            for weight in group.attrs.get("weight_names", []):
                weight = weight.decode() if isinstance(weight, bytes) else weight
                out[_slim_name(weight)] = np.asarray(group[weight])
    if not out:
        raise SlimCheckpointError(f"{path}: no Keras layer weights in this HDF5 file")
    return out


def initialize_from(model, path: str, exclude_scopes: Sequence[str] = ()) -> List[str]:
    """Assigns the checkpoint at ``path`` to ``model``'s weights by Slim name.

    Args:
      model: a network of :mod:`model_garden.nets` (built, untrained).
      path: see the module docstring.
      exclude_scopes: ``checkpoint_exclude_scopes``: these keep their initial values.

    Returns:
      The Slim names restored, sorted.

    Raises:
      SlimCheckpointError: unreadable ``path``; a weight (not excluded)
        missing from it or of another shape (all such weights are named, and
        the message points at ``checkpoint_exclude_scopes``).
    """
    values = read_weights(path)
    targets = {n: w for n, w in slim_checkpoint.slim_names(model).items()
               if not in_scopes(n, exclude_scopes)}
    missing = sorted(n for n in targets if n not in values)
    wrong = sorted(f"{n} {list(values[n].shape)} != {list(w.shape)}"
                   for n, w in targets.items()
                   if n in values and tuple(values[n].shape) != tuple(w.shape))
    if missing or wrong:
        raise SlimCheckpointError(
            f"{path} does not fit {model.name}: "
            + (f"missing {missing[:5]}{' ...' if len(missing) > 5 else ''} ({len(missing)}); "
               if missing else "")
            + (f"other shapes {wrong[:5]}; " if wrong else "")
            + "checkpoint_exclude_scopes leaves layers out (e.g. the logits of another class "
            "count)")
    for name, weight in targets.items():
        weight.assign(values[name].astype(weight.dtype.as_numpy_dtype))
    logging.info("initialized %d weights of %s from %s (excluded: %s)", len(targets),
                 model.name, path, list(exclude_scopes) or "none")
    return sorted(targets)


def freeze_outside(model, trainable_scopes: Sequence[str]) -> List[str]:
    """Makes only the layers under ``trainable_scopes`` trainable (before compiling).

    A layer counts as inside when its name (its Slim scope) is one of the
    scopes or under one. Layers outside get ``trainable = False``; batch
    norm layers outside then also run in inference mode (module docstring).

    Returns:
      The names of the layers left trainable (those with weights), sorted.

    Raises:
      ValueError: no layer with weights is under any scope (names the scopes
        and a few layer names).
    """
    scopes = [s for s in trainable_scopes if s.strip()]
    if not scopes:
        return sorted(layer.name for layer in model.layers if layer.weights)
    kept = []
    for layer in model.layers:
        inside = in_scopes(layer.name, scopes)
        layer.trainable = inside
        if inside and layer.weights:
            kept.append(layer.name)
    if not kept:
        names = [layer.name for layer in model.layers if layer.weights][-3:]
        raise ValueError(f"trainable_scopes {scopes}: no layer of {model.name} is under them "
                         f"(its last layers: {names})")
    return sorted(kept)
