"""The report's evaluation plots: confusion matrix, ROC and calibration, with matplotlib.

Drawn from the TFMA plot metrics the recipes ask for
(:mod:`model_garden.pipelines.recipes`): ``MultiClassConfusionMatrixPlot``
(the classifiers), ``ConfusionMatrixPlot`` and ``CalibrationPlot`` (census,
binary). ``tfma.load_eval_result(...).plots`` gives them as the JSON form of
TFMA's ``PlotData`` proto (camelCase keys; a field that is 0 is absent):

- ``multiClassConfusionMatrixAtThresholds.matrices[].entries[]``:
  ``actualClassId``, ``predictedClassId``, ``numWeightedExamples``; at
  threshold 0 the predicted class is the arg max (class ``-1``: no
  prediction above the threshold);
- ``confusionMatrixAtThresholds.matrices[]``: ``threshold``,
  ``truePositives``, ``falsePositives``, ``trueNegatives``,
  ``falseNegatives`` (the ROC curve: false positive rate against recall,
  one point per threshold; 1,000 thresholds by default);
- ``calibrationHistogramBuckets.buckets[]``: ``lowerThresholdInclusive``,
  ``upperThresholdExclusive``, ``numWeightedExamples``,
  ``totalWeightedLabel``, ``totalWeightedRefinedPrediction`` (numbers; in
  the proto's own JSON each is ``{"value": x}``, also accepted).
"""

from typing import Dict, List, Optional, Tuple

import numpy as np

from model_garden.pipelines.html_report.page import esc, new_figure, svg_figure

MULTI_CLASS = "multiClassConfusionMatrixAtThresholds"
BINARY = "confusionMatrixAtThresholds"
CALIBRATION = "calibrationHistogramBuckets"
#: Up to this many classes the confusion matrix prints its counts in the cells.
ANNOTATE_UP_TO = 20


def _plot(plots: dict, key: str) -> Optional[dict]:
    """The plot ``key`` of a slice's plots (keys may carry an ``output/sub key/`` prefix)."""
    for name, value in plots.items():
        if name == key or name.endswith("/" + key):
            return value
    for value in plots.values():  # TFMA may nest the proto under the plot's metric name
        if isinstance(value, dict) and key in value:
            return value[key]
    return None


def multi_class_matrix(plot: dict) -> Tuple[List[int], np.ndarray]:
    """Class ids and the ``[actual, predicted]`` count matrix at the first threshold.

    The ids are every class seen as actual or predicted, sorted (``-1``,
    "no prediction", included when present). Counts are weighted example
    counts (plain counts without example weights).
    """
    matrices = plot.get("matrices") or [{}]
    entries = matrices[0].get("entries", [])
    ids = sorted({int(e.get("actualClassId", 0)) for e in entries}
                 | {int(e.get("predictedClassId", 0)) for e in entries})
    index = {c: i for i, c in enumerate(ids)}
    counts = np.zeros((len(ids), len(ids)))
    for e in entries:
        counts[index[int(e.get("actualClassId", 0))],
               index[int(e.get("predictedClassId", 0))]] += e.get("numWeightedExamples", 0.0)
    return ids, counts


def confusion_matrix_html(plot: dict) -> str:
    """The multi-class confusion matrix as a heat map (counts in the cells up to 20 classes)."""
    ids, counts = multi_class_matrix(plot)
    if not ids:
        return "<p>The confusion matrix is empty.</p>"
    size = min(9.0, 2.5 + 0.45 * len(ids))
    fig, (ax,) = new_figure(size + 1.2, size)
    image = ax.imshow(counts, cmap="Blues")
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    if len(ids) <= ANNOTATE_UP_TO:
        labels = ["none" if c == -1 else str(c) for c in ids]
        ax.set_xticks(range(len(ids)), labels)
        ax.set_yticks(range(len(ids)), labels)
        top = counts.max() or 1
        for (i, j), value in np.ndenumerate(counts):
            if value:
                ax.text(j, i, f"{value:.0f}", ha="center", va="center", fontsize=7,
                        color="white" if value > top / 2 else "black")
    ax.set_xlabel("predicted class")
    ax.set_ylabel("actual class")
    correct = sum(counts[i, i] for i, c in enumerate(ids) if c != -1)
    total = counts.sum()
    caption = (f"confusion matrix (arg max of the probabilities): {correct:.0f} of "
               f"{total:.0f} examples on the diagonal")
    return svg_figure(fig, caption, "confusion-matrix")


def roc_points(plot: dict) -> Tuple[np.ndarray, np.ndarray, List[dict]]:
    """False positive rates, true positive rates (recall) and the matrices, by threshold.

    Rates are computed from the counts (TP / (TP + FN), FP / (FP + TN)); a
    rate with an empty denominator is 0.
    """
    matrices = sorted(plot.get("matrices", []), key=lambda m: m.get("threshold", 0.0))
    tp, fp, tn, fn = (np.array([float(m.get(k, 0.0)) for m in matrices]) for k in
                      ("truePositives", "falsePositives", "trueNegatives", "falseNegatives"))
    with np.errstate(invalid="ignore", divide="ignore"):
        tpr = np.nan_to_num(tp / (tp + fn))
        fpr = np.nan_to_num(fp / (fp + tn))
    return fpr, tpr, matrices


def roc_html(plot: dict) -> str:
    """The ROC curve (with its trapezoid AUC) and the confusion matrix at threshold 0.5."""
    fpr, tpr, matrices = roc_points(plot)
    if not matrices:
        return "<p>No confusion matrices in the ConfusionMatrixPlot.</p>"
    order = np.lexsort((tpr, fpr))
    auc = float(np.trapz(tpr[order], fpr[order]))
    fig, (ax,) = new_figure(4.5, 4.2)
    ax.plot(fpr[order], tpr[order], label=f"model (AUC {auc:.3f})")
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", label="chance")
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate (recall)")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.01)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize="small")
    figure = svg_figure(fig, f"ROC curve over {len(matrices)} thresholds", "roc-curve")
    half = min(matrices, key=lambda m: abs(m.get("threshold", 0.0) - 0.5))
    cells = [[f"actual positive", f"{half.get('truePositives', 0.0):,.0f}",
              f"{half.get('falseNegatives', 0.0):,.0f}"],
             [f"actual negative", f"{half.get('falsePositives', 0.0):,.0f}",
              f"{half.get('trueNegatives', 0.0):,.0f}"]]
    from model_garden.pipelines.html_report.page import table

    return (figure + f"<p>confusion matrix at threshold {half.get('threshold', 0.0):.3g}:</p>"
            + table(["", "predicted positive", "predicted negative"], cells,
                    css_class="binary-confusion"))


def _value(bucket: dict, key: str) -> float:
    """A bucket's number: TFMA's view gives it bare, the proto's JSON as ``{"value": x}``."""
    value = bucket.get(key, 0.0)
    return float(value.get("value", 0.0) if isinstance(value, dict) else value)


def calibration_points(plot: dict, bins: int = 20) -> List[Tuple[float, float, float]]:
    """``[(mean prediction, mean label, examples)]`` per non-empty bin of predictions.

    TFMA's buckets (10,000 by default, of width 0.0001) are summed into
    ``bins`` equal bins of [0, 1] by their mean prediction, so each point
    holds enough examples to be read.
    """
    sums = np.zeros((bins, 3))  # predictions, labels, examples
    for bucket in plot.get("buckets", []):
        n = _value(bucket, "numWeightedExamples")
        if n:
            prediction = _value(bucket, "totalWeightedRefinedPrediction")
            index = min(bins - 1, max(0, int(prediction / n * bins)))
            sums[index] += (prediction, _value(bucket, "totalWeightedLabel"), n)
    return [(p / n, label / n, n) for p, label, n in sums if n]


def calibration_html(plot: dict) -> str:
    """The calibration (reliability) plot: mean label against mean prediction per bucket."""
    points = calibration_points(plot)
    if not points:
        return "<p>The calibration histogram is empty.</p>"
    prediction, label, n = (np.array(v) for v in zip(*points))
    fig, (ax, hist) = new_figure(9.0, 4.2, ncols=2)
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfectly calibrated")
    ax.scatter(prediction, label, s=10 + 90 * n / n.max(), alpha=0.7, label="bins")
    ax.set_xlabel("mean predicted probability")
    ax.set_ylabel("fraction of positives")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", fontsize="small")
    hist.bar(prediction, n, width=0.04)
    hist.set_xlabel("mean predicted probability")
    hist.set_ylabel("examples")
    hist.set_xlim(0, 1)
    fig.tight_layout()
    return svg_figure(fig, f"calibration: {len(points)} non-empty bins of width "
                      f"{1 / 20:.2g}, mean label against mean prediction, with their sizes",
                      "calibration-plot")


def plots_html(plots: List[Tuple[str, Dict]]) -> str:
    """The overall slice's plots that the Evaluator computed, each drawn; a sentence if none."""
    overall = dict(plots).get("Overall") or {}
    parts = []
    drawers = ((MULTI_CLASS, confusion_matrix_html), (BINARY, roc_html),
               (CALIBRATION, calibration_html))
    for key, draw in drawers:
        plot = _plot(overall, key)
        if plot is not None:
            parts.append(draw(plot))
    if not parts:
        return ("<p>No plots: the Evaluator's EvalConfig has no plot metric "
                f"(keys present: {esc(', '.join(overall) or 'none')}).</p>")
    return "\n".join(parts)
