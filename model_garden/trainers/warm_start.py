"""Warm start: a new model starts from the latest blessed model's weights.

``--warm-start`` gives the Trainer ``base_model`` =
:class:`model_garden.components.latest_blessed_model.LatestBlessedModel`'s
output; TFX hands its serving folder to the ``run_fn`` as
``fn_args.base_model`` (``tfx/components/trainer/fn_args_utils.py``). The
weights come from that SavedModel's object-based checkpoint
(``variables/variables``, what Keras ``model.save(save_format="tf")``
writes), matched object by object to the freshly built model.
"""

import logging
import os
from typing import Optional


class WarmStartError(ValueError):
    """The base model's weights do not fit the model being trained."""


def checkpoint_prefix(base_model: Optional[str]) -> Optional[str]:
    """The variables checkpoint of the SavedModel at ``base_model``, or ``None``.

    ``None`` when there is no base model or it holds no SavedModel (nothing
    was pushed yet: the baseline step's output is empty).
    """
    from tfx.dsl.io import fileio

    if not base_model or not fileio.exists(os.path.join(base_model, "saved_model.pb")):
        return None
    return os.path.join(base_model, "variables", "variables")


def warm_start(model, base_model: Optional[str]) -> bool:
    """Loads ``base_model``'s weights into ``model`` (built, not yet trained).

    Args:
      model: a built Keras model of the same architecture.
      base_model: ``fn_args.base_model``: a SavedModel folder, or ``None``.

    Returns:
      True if weights were loaded, False if there was no base model.

    Raises:
      WarmStartError: a variable of ``model`` has no match, or one of another
        shape, in the base model (another architecture, or other
        hyperparameters such as the depth).
    """
    prefix = checkpoint_prefix(base_model)
    if prefix is None:
        logging.info("warm start: no base model yet, training from scratch")
        return False
    try:
        status = model.load_weights(prefix)
        status.expect_partial()  # the SavedModel also holds the Transform layer, the optimizer
        status.assert_existing_objects_matched()
    except (AssertionError, ValueError) as e:  # ValueError: a variable of another shape
        raise WarmStartError(f"{base_model}: its weights do not fit the model {model.name!r} "
                             f"(another architecture?): {e}") from None
    logging.info("warm start: weights of %s", base_model)
    return True
