"""The report's evaluation section: TFMA metrics overall and per slice, the blessing.

Read back from the Evaluator's ``ModelEvaluation`` folder with TFMA's own
loaders: ``tfma.load_eval_result`` (per model: TFX names them ``candidate``
and ``baseline`` when there is a baseline, else the one model is ``""``) and
``tfma.load_validation_result``. The thresholds are the ``EvalConfig``'s
(saved beside the metrics), expanded per metric key by TFMA's
``metric_thresholds_from_metrics_specs``. With a baseline, TFMA adds a
``<metric>_diff`` (candidate - baseline) to the candidate's metrics.
"""

import dataclasses
from typing import Dict, List, Optional, Tuple

from model_garden.pipelines.html_report.page import esc, number, table, verdict

#: ``{metric name: value}`` of one slice (one output, no sub key).
Metrics = Dict[str, float]


@dataclasses.dataclass
class Evaluation:
    """What the Evaluator of a run wrote, loaded.

    Attributes:
      uri: the ``ModelEvaluation`` folder.
      candidate: ``[(slice name, metrics)]``, overall slice first; slice
        names are TFMA's ``stringify_slice_key`` (``"Overall"``,
        ``"gender:Female"``).
      baseline: the same for the baseline model (``[]``: no baseline).
      plots: ``[(slice name, {plot key: TFMA's JSON-like dict})]`` of the
        candidate, e.g. key ``"multiClassConfusionMatrixAtThresholds"``.
      thresholds: ``[(metric name, "lower bound 0.5", is_change)]`` of the
        candidate on the overall slice.
      validation_ok: TFMA's verdict (all thresholds met), ``None`` if unknown.
      failures: TFMA's messages for each threshold not met.
    """

    uri: str
    candidate: List[Tuple[str, Metrics]]
    baseline: List[Tuple[str, Metrics]]
    plots: List[Tuple[str, dict]]
    thresholds: List[Tuple[str, str, bool]]
    validation_ok: Optional[bool]
    failures: List[str]


def _flatten(slicing: list) -> List[Tuple[str, dict]]:
    """TFMA's ``[(slice key, {output: {sub key: {name: value}}})]`` -> ``[(slice, {name: value})]``.

    Values are the ``doubleValue`` of scalar metrics; for plots (no
    ``doubleValue``) the dict itself. Outputs and sub keys other than the
    empty one are named ``output/sub key/name``.
    """
    from tensorflow_model_analysis.slicer import slicer_lib

    out = []
    for slice_key, by_output in slicing:
        values = {}
        for output, by_sub_key in (by_output or {}).items():
            for sub_key, by_name in by_sub_key.items():
                for name, value in by_name.items():
                    full = "/".join(p for p in (output, sub_key, name) if p)
                    if isinstance(value, dict) and "doubleValue" in value:
                        values[full] = float(value["doubleValue"])  # "NaN" -> nan
                    else:
                        values[full] = value
        name = slicer_lib.stringify_slice_key(slice_key) if slice_key else "Overall"
        out.append((name, values))
    out.sort(key=lambda item: (item[0] != "Overall", item[0]))
    return out


def _threshold_text(threshold) -> Tuple[str, bool]:
    """A ``GenericValueThreshold`` / ``GenericChangeThreshold`` in words, and whether it is a change."""
    if threshold.DESCRIPTOR.name == "GenericChangeThreshold":
        parts = []
        if threshold.HasField("absolute"):
            parts.append(f"change vs baseline &ge; {esc(number(threshold.absolute.value))}")
        if threshold.HasField("relative"):
            parts.append(f"relative change vs baseline &ge; {esc(number(threshold.relative.value))}")
        enum = threshold.DESCRIPTOR.fields_by_name["direction"].enum_type
        direction = enum.values_by_number[threshold.direction].name
        return f"{' and '.join(parts)} ({direction.lower().replace('_', ' ')})", True
    parts = []
    if threshold.HasField("lower_bound"):
        parts.append(f"&ge; {esc(number(threshold.lower_bound.value))}")
    if threshold.HasField("upper_bound"):
        parts.append(f"&le; {esc(number(threshold.upper_bound.value))}")
    return " and ".join(parts), False


def _thresholds(eval_config) -> List[Tuple[str, str, bool]]:
    """The candidate's thresholds on the overall slice: ``[(metric, text (HTML), is_change)]``."""
    from tensorflow_model_analysis.metrics import metric_specs

    out = []
    by_key = metric_specs.metric_thresholds_from_metrics_specs(eval_config.metrics_specs,
                                                               eval_config)
    for key, slices_and_thresholds in by_key.items():
        if key.model_name not in ("", "candidate"):
            continue
        for slice_spec, threshold in slices_and_thresholds:
            if slice_spec is not None and (slice_spec.feature_keys or slice_spec.feature_values
                                           or slice_spec.slice_keys_sql):
                continue  # a per-slice threshold on a slice other than the overall one
            text, is_change = _threshold_text(threshold)
            out.append((key.name, text, is_change))
    return sorted(set(out))


def load_evaluation(uri: str) -> Evaluation:
    """The metrics, plots, thresholds and validation the Evaluator wrote to ``uri``.

    Raises:
      OSError (from TFMA): ``uri`` lacks the ``eval_config.json`` or metrics files.
    """
    import tensorflow_model_analysis as tfma
    from tensorflow_model_analysis.writers import eval_config_writer

    eval_config, _, _, model_locations = eval_config_writer.load_eval_run(uri)
    names = list(model_locations)
    candidate_name = "candidate" if "candidate" in names else names[0] if names else ""
    candidate = tfma.load_eval_result(uri, model_name=candidate_name or None)
    baseline = (tfma.load_eval_result(uri, model_name="baseline") if "baseline" in names
                else None)
    try:
        validation = tfma.load_validation_result(uri)
        ok = validation.validation_ok
        failures = [f"{esc(f.metric_key.name)}: {esc(f.message)}"
                    for per_slice in validation.metric_validations_per_slice
                    for f in per_slice.failures]
    except (OSError, IndexError, ValueError):
        ok, failures = None, []
    return Evaluation(
        uri=uri,
        candidate=[(s, {k: v for k, v in m.items() if not isinstance(v, dict)})
                   for s, m in _flatten(candidate.slicing_metrics)],
        baseline=[(s, {k: v for k, v in m.items() if not isinstance(v, dict)})
                  for s, m in _flatten(baseline.slicing_metrics)] if baseline else [],
        plots=[(s, {k: v for k, v in m.items() if isinstance(v, dict)})
               for s, m in _flatten(candidate.plots or [])],
        thresholds=_thresholds(eval_config),
        validation_ok=ok,
        failures=failures,
    )


def metrics_html(evaluation: Evaluation, blessed: Optional[bool]) -> str:
    """The overall table (candidate, baseline, change, threshold) and the per-slice table.

    ``blessed`` is the Evaluator's ``ModelBlessing`` (``None``: unknown).
    The metric values are printed with 6 significant digits; the overall
    table's cells carry ``data-metric`` / ``data-value`` attributes with the
    full value (``repr``) for machines.
    """
    overall = dict(evaluation.candidate[0][1]) if evaluation.candidate else {}
    base = dict(evaluation.baseline[0][1]) if evaluation.baseline else {}
    names = [n for n in overall if not n.endswith("_diff")]
    thresholds: Dict[str, List[str]] = {}
    for name, text, _ in evaluation.thresholds:
        thresholds.setdefault(name, []).append(text)
    rows = []
    for name in names:
        value = overall[name]
        cell = (f'<span data-metric="{esc(name)}" data-value="{esc(repr(value))}">'
                f"{esc(number(value, 6))}</span>")
        diff = overall.get(f"{name}_diff")
        rows.append([esc(name), cell,
                     esc(number(base[name], 6)) if name in base else "-",
                     esc(number(diff, 6)) if diff is not None else "-",
                     "; ".join(thresholds.get(name, [])) or "-"])
    parts = [
        f"<p>Blessed: {verdict(blessed)}; TFMA validation: "
        f"{verdict(evaluation.validation_ok, 'all thresholds met', 'failed')}"
        + ("" if evaluation.baseline else
           " (no baseline: nothing pushed before, value thresholds only)") + ".</p>",
        table(["metric", "candidate", "baseline", "change", "threshold"], rows,
              raw_columns=range(5), css_class="metrics-overall"),
    ]
    if evaluation.failures:
        parts.append("<ul>" + "".join(f'<li class="bad">{f}</li>'
                                      for f in evaluation.failures) + "</ul>")
    if len(evaluation.candidate) > 1:
        columns = names
        slice_rows = [[name] + [number(m.get(c), 6) for c in columns]
                      for name, m in evaluation.candidate]
        parts.append("<h3>per slice</h3>" + table(["slice"] + columns, slice_rows,
                                                  css_class="metrics-slices"))
    parts.append(f'<p class="note">from <code>{esc(evaluation.uri)}</code></p>')
    return "\n".join(parts)
