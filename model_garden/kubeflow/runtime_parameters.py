"""Run-time overrides of a compiled Kubeflow pipeline: train/eval steps, threshold.

A Kubeflow Pipelines run can override the pipeline parameters ``train_steps``
(int), ``eval_steps`` (int) and ``threshold`` (float) that
:mod:`model_garden.kubeflow.compiler` declares. TFX 1.16 cannot put a
``RuntimeParameter`` *inside* a proto (``TrainArgs.num_steps``,
``EvalArgs.num_steps``, a TFMA threshold's ``lower_bound``): a
``RuntimeParameter`` only replaces an execution property as a whole (e.g. the
whole ``train_args`` as a JSON string). So the compiler adds typed execution
properties to the Trainer and Evaluator nodes, each bound to a root pipeline
parameter by ``KubeflowV2DagRunner`` (``componentInputParameter``), and the
executors here apply them to the protos before running TFX's own executor:

=====================  ==========================  ==================================
execution property     applied to                  executor
=====================  ==========================  ==================================
``train_steps`` (int)  ``train_args.num_steps``    :class:`TrainerExecutor`
``eval_steps`` (int)   ``eval_args.num_steps``     :class:`TrainerExecutor`
``threshold`` (float)  ``lower_bound`` of the      :class:`EvaluatorExecutor`
                       ``threshold_metric``'s
                       value thresholds (its
                       ``threshold`` and
                       ``per_slice_thresholds``)
=====================  ==========================  ==================================

A property that is absent (or ``None``) leaves the compiled value. KFP v2
delivers integers as JSON numbers; they arrive as ``int`` (schema 2.1 inputs
spec) or ``float``; both are accepted when integral.
"""

from typing import Any, Dict, List, MutableMapping

from tfx.components.trainer import executor as trainer_executor
from tfx.proto import trainer_pb2
from tfx.types import standard_component_specs as specs
from tfx.utils import proto_utils

from model_garden.components import evaluator as evaluator_executor
from model_garden.validate import check_threshold

#: Execution properties the Kubeflow compiler adds (names = pipeline parameters).
TRAIN_STEPS = "train_steps"
EVAL_STEPS = "eval_steps"
THRESHOLD = "threshold"
#: Constant execution property: the TFMA metric ``threshold`` applies to.
THRESHOLD_METRIC = "threshold_metric"


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value):
        raise ValueError(f"pipeline parameter {name} must be a whole number, not {value!r}")
    if int(value) < 1:
        raise ValueError(f"pipeline parameter {name} must be >= 1, not {value!r}")
    return int(value)


def apply_step_overrides(exec_properties: MutableMapping[str, Any]) -> Dict[str, int]:
    """Moves ``train_steps`` / ``eval_steps`` into ``train_args`` / ``eval_args``.

    Args:
      exec_properties: the Trainer's execution properties; ``train_args`` and
        ``eval_args`` are JSON strings of ``TrainArgs`` / ``EvalArgs`` (as TFX
        stores them). Modified in place: the two step properties are removed,
        the two protos rewritten.

    Returns:
      ``{"train_steps": n, "eval_steps": m}`` as now in the protos.

    Raises:
      ValueError: a step count that is not a whole number >= 1.
    """
    out = {}
    for key, args_key, proto in ((TRAIN_STEPS, specs.TRAIN_ARGS_KEY, trainer_pb2.TrainArgs()),
                                 (EVAL_STEPS, specs.EVAL_ARGS_KEY, trainer_pb2.EvalArgs())):
        value = exec_properties.pop(key, None)
        proto_utils.json_to_proto(exec_properties.get(args_key) or "{}", proto)
        if value is not None:
            proto.num_steps = _positive_int(key, value)
            exec_properties[args_key] = proto_utils.proto_to_json(proto)
        out[key] = proto.num_steps
    return out


def apply_threshold_override(exec_properties: MutableMapping[str, Any]) -> None:
    """Sets the lower bound of the blessing metric from ``threshold``.

    Every value threshold of the metric is set: ``threshold`` and each of
    ``per_slice_thresholds`` (the factory gates the overall slice that way).

    Args:
      exec_properties: the Evaluator's execution properties; ``eval_config``
        is a JSON ``tfma.EvalConfig``, ``threshold_metric`` the class name of
        the metric (``"SparseCategoricalAccuracy"``), ``threshold`` the new
        lower bound (a float, any unit the metric has). Modified in place:
        ``threshold`` and ``threshold_metric`` are removed.

    Raises:
      ValueError: ``threshold`` is not a finite number, is outside [0, 1] for
        an accuracy-like metric, or no metric of the
        ``eval_config`` named ``threshold_metric`` has a value threshold.
    """
    value = exec_properties.pop(THRESHOLD, None)
    metric = exec_properties.pop(THRESHOLD_METRIC, None)
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"pipeline parameter threshold must be a number, not {value!r}")
    check_threshold(value, metric or "", what="pipeline parameter threshold")
    import tensorflow_model_analysis as tfma

    config = tfma.EvalConfig()
    proto_utils.json_to_proto(exec_properties.get(specs.EVAL_CONFIG_KEY) or "{}", config)
    found = 0
    for spec in config.metrics_specs:
        for m in spec.metrics:
            if m.class_name != metric:
                continue
            for threshold in [m.threshold] + [t.threshold for t in m.per_slice_thresholds]:
                if threshold.HasField("value_threshold"):
                    threshold.value_threshold.lower_bound.value = float(value)
                    found += 1
    if not found:
        raise ValueError(f"eval_config has no value threshold on metric {metric!r} "
                         "to apply the threshold parameter to")
    exec_properties[specs.EVAL_CONFIG_KEY] = proto_utils.proto_to_json(config)


class _OverridesFirst:
    """Mixin: ``Do`` applies :attr:`apply` to a copy of the execution properties first."""

    apply = staticmethod(lambda exec_properties: None)

    def Do(self, input_dict: Dict[str, List], output_dict: Dict[str, List],
           exec_properties: Dict[str, Any]) -> None:
        exec_properties = dict(exec_properties)
        self.apply(exec_properties)
        super().Do(input_dict, output_dict, exec_properties)


class TrainerExecutor(_OverridesFirst, trainer_executor.GenericExecutor):
    """TFX's ``GenericExecutor`` after applying ``train_steps`` / ``eval_steps``."""

    apply = staticmethod(apply_step_overrides)


class EvaluatorExecutor(_OverridesFirst, evaluator_executor.Executor):
    """The Evaluator executor (:mod:`model_garden.components.evaluator`) after applying ``threshold``."""

    apply = staticmethod(apply_threshold_override)

