"""The Evaluator's executor: TFX's, with an empty baseline treated as no baseline.

The baseline comes from :class:`model_garden.components.latest_blessed_model.LatestBlessedModel`,
which always outputs a Model artifact, empty before the first push. TFX's
Evaluator would try to load an empty baseline; this executor removes it from
the inputs first, and TFX then drops the change thresholds (``has_baseline``
in ``tfx/components/evaluator/executor.py``): the first model is judged by its
value thresholds alone, as with TFX's own resolver finding nothing.
"""

import logging
from typing import Any, Dict, List

from tfx.components.evaluator import executor as evaluator_executor
from tfx.types import standard_component_specs as specs

from model_garden.components.latest_blessed_model import has_model


def drop_empty_baseline(input_dict: Dict[str, List]) -> Dict[str, List]:
    """``input_dict`` without ``baseline_model`` when it holds no SavedModel (a copy)."""
    input_dict = dict(input_dict)
    baselines = [a for a in input_dict.get(specs.BASELINE_MODEL_KEY) or [] if has_model(a)]
    if baselines:
        input_dict[specs.BASELINE_MODEL_KEY] = baselines
    elif specs.BASELINE_MODEL_KEY in input_dict:
        logging.info("no baseline model (nothing pushed yet): value thresholds only")
        del input_dict[specs.BASELINE_MODEL_KEY]
    return input_dict


class Executor(evaluator_executor.Executor):
    """TFX's Evaluator executor after :func:`drop_empty_baseline`."""

    def Do(self, input_dict: Dict[str, List], output_dict: Dict[str, List],
           exec_properties: Dict[str, Any]) -> None:
        super().Do(drop_empty_baseline(input_dict), output_dict, exec_properties)
