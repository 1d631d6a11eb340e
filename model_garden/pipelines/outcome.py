"""What a run decided, in words: the Evaluator's verdict and the Pusher's push.

``model-garden run`` ends with these lines, read back from the run's ML
Metadata and the Evaluator's TFMA output, e.g.::

    evaluation: sparse_categorical_accuracy 0.9815 >= 0.98, baseline 0.9807: blessed
    pushed: model-garden-output/serving/mnist/1765101234 (version 1765101234)
"""

import os
from typing import Dict, List, Optional, Sequence, Tuple

from model_garden.pipelines import report

# TFX's Evaluator names the two models so when it has a baseline
# (tfma.CANDIDATE_KEY / tfma.BASELINE_KEY); alone, the candidate has no name.
CANDIDATE, BASELINE = "candidate", "baseline"


def evaluation_uri(metadata_path: str, run: Optional[str] = None) -> Optional[str]:
    """The ``ModelEvaluation`` folder of the run's Evaluator (``None``: it did not finish)."""
    found = report.output_artifacts(metadata_path, "Evaluator", "ModelEvaluation", run)
    return found[0].uri if found else None


def _overall_values(metrics_for_slices) -> Dict[Tuple[str, str, bool], float]:
    """``{(name, model name, is_diff): value}`` of the overall slice's scalar metrics."""
    values = {}
    for metrics in metrics_for_slices:
        if metrics.slice_key.single_slice_keys:
            continue
        for kv in metrics.metric_keys_and_values:
            if kv.value.HasField("double_value"):
                values[(kv.key.name, kv.key.model_name, kv.key.is_diff)] = kv.value.double_value.value
    return values


def _overall_value_thresholds(eval_config) -> List[Tuple[str, str, object]]:
    """``[(metric name, model name, GenericValueThreshold)]`` gating the overall slice.

    From TFMA's own reading of the EvalConfig the Evaluator stored with its
    output (``tfma.metrics.metric_thresholds_from_metrics_specs``), so the
    names are the metric keys TFMA wrote (``sparse_categorical_accuracy``).
    """
    import tensorflow_model_analysis as tfma

    found = []
    thresholds = tfma.metrics.metric_thresholds_from_metrics_specs(eval_config.metrics_specs,
                                                                  eval_config)
    for key, entries in thresholds.items():
        for slice_spec, threshold in entries:
            overall = slice_spec is None or (not slice_spec.feature_keys
                                             and not slice_spec.feature_values)
            if overall and not key.is_diff and isinstance(threshold,
                                                          tfma.GenericValueThreshold):
                found.append((key.name, key.model_name, threshold))
    return found


def _against(value: float, threshold) -> str:
    """``>= 0.98`` when ``value`` meets the lower bound, ``< 0.98`` when not (upper: ``<=``/``>``)."""
    parts = []
    if threshold.HasField("lower_bound"):
        bound = threshold.lower_bound.value
        parts.append(f"{'>=' if value >= bound else '<'} {bound:g}")
    if threshold.HasField("upper_bound"):
        bound = threshold.upper_bound.value
        parts.append(f"{'<=' if value <= bound else '>'} {bound:g}")
    return " and ".join(parts)


def evaluation_summary(metadata_path: str, run: Optional[str] = None) -> str:
    """The Evaluator's verdict on its gated metrics, in one line.

    For each metric with a value threshold on the overall slice (the recipe's
    ``threshold_metric``): the candidate's value against the bound, then the
    baseline's value (the latest blessed model; absent before the first
    push), then ``blessed`` or ``not blessed`` (TFMA's ``validation_ok``),
    e.g. ``evaluation: sparse_categorical_accuracy 0.9815 >= 0.98, baseline
    0.9807: blessed`` or ``... 0.9790 >= 0.98, baseline 0.9807 (worse than
    the baseline): not blessed``.

    Returns:
      the line; ``evaluation: not run (...)`` when the run stopped before
      the Evaluator finished.

    Raises:
      ValueError: the store holds no pipeline run.
    """
    import tensorflow_model_analysis as tfma

    uri = evaluation_uri(metadata_path, run)
    if uri is None:
        return "evaluation: not run (the pipeline stopped before the Evaluator finished)"
    validation = tfma.load_validation_result(uri)
    values = _overall_values(tfma.load_metrics(uri))
    has_baseline = any(model == BASELINE for _, model, _ in values)
    config = tfma.load_eval_result(uri, model_name=CANDIDATE if has_baseline else None).config
    worse = {f.metric_key.name for per_slice in validation.metric_validations_per_slice
             if not per_slice.slice_key.single_slice_keys
             for f in per_slice.failures if f.metric_key.is_diff}
    parts = []
    for name, model, threshold in _overall_value_thresholds(config):
        if model == BASELINE:
            continue
        value = values.get((name, model, False))
        text = name if value is None else f"{name} {value:.4f} {_against(value, threshold)}"
        baseline = values.get((name, BASELINE, False))
        if baseline is not None:
            text += f", baseline {baseline:.4f}"
        if name in worse:
            text += " (worse than the baseline)"
        parts.append(text)
    verdict = "blessed" if validation.validation_ok else "not blessed"
    if not parts:
        return f"evaluation: {verdict}"
    return f"evaluation: {'; '.join(parts)}: {verdict}"


def push_summary(runs: Sequence[report.ComponentRun], serving_dir: str, before: Sequence[str],
                 after: Sequence[str]) -> str:
    """What the Pusher did, in one line.

    Args:
      runs: this run's components (:func:`report.component_runs`).
      serving_dir: the push destination.
      before, after: the version folders in ``serving_dir`` before and after
        the run.

    Returns:
      ``pushed: <path> (version N)``, or why nothing was pushed: the whole
      run came from the cache, the blessed model is the one already served,
      the model was not blessed, or the run stopped before the Pusher.
    """
    pushed = sorted(set(after) - set(before), key=int)
    served = f"serving {', '.join(sorted(before, key=int)) or 'nothing'} in {serving_dir}"
    states = {r.node_id: r for r in runs}
    if pushed:
        return f"pushed: {os.path.join(serving_dir, pushed[-1])} (version {pushed[-1]})"
    pusher, evaluator = states.get("Pusher"), states.get("Evaluator")
    if pusher is None:
        return f"not pushed: the run stopped before the Pusher; {served}"
    if pusher.state == "CACHED":
        return f"nothing new to push: the whole run came from the cache; {served}"
    if evaluator is not None and evaluator.blessed:
        return f"nothing new to push: the blessed model is the one already served; {served}"
    return f"not pushed: the model was not blessed; {served}"
