"""The report's training curves: the Trainer's TensorBoard logs, plotted per metric.

Keras' ``TensorBoard`` callback (:mod:`model_garden.trainers.steps`) writes
``<model_run>/train/events.out.tfevents.*`` and
``<model_run>/validation/...`` with one scalar per Keras epoch and metric,
tagged ``epoch_<metric>`` (``epoch_loss``, ``epoch_accuracy``,
``epoch_learning_rate``). They are read here as the TFRecord files of
``tf.compat.v1.Event`` protos they are; a scalar is a TF2 summary tensor
(``Summary.Value.tensor``) or, from older writers, a ``simple_value``.
"""

import collections
import os
from typing import Dict, List, Tuple

from model_garden.pipelines.html_report.page import esc, new_figure, svg_figure

#: ``{metric: {run: [(epoch, value), ...]}}``, e.g. ``{"loss": {"train": [(0, 1.1), ...]}}``.
Curves = Dict[str, Dict[str, List[Tuple[int, float]]]]


def _event_files(log_dir: str) -> List[Tuple[str, str]]:
    """``[(run, path)]``: every event file under ``log_dir``; run = its subfolder ("train")."""
    found = []
    for folder, _, files in os.walk(log_dir):
        for name in sorted(files):
            if ".tfevents." in name:
                run = os.path.relpath(folder, log_dir)
                found.append(("." if run == "." else run, os.path.join(folder, name)))
    return sorted(found)


def read_curves(log_dir: str) -> Curves:
    """The per-epoch scalars (tags ``epoch_*``) of the TensorBoard logs under ``log_dir``.

    Args:
      log_dir: the Trainer's ``model_run`` artifact folder.

    Returns:
      :data:`Curves`, the ``epoch_`` prefix dropped, each series sorted by
      epoch (Keras' step of an epoch summary is the epoch index, from 0); a
      resumed training's later value for an epoch wins. ``{}`` when there
      are no event files (the Trainer wrote none, or ran elsewhere).

    Raises:
      tf.errors.DataLossError: a truncated event file (TensorFlow's error).
    """
    import tensorflow as tf

    series: Dict[str, Dict[str, Dict[int, float]]] = collections.defaultdict(
        lambda: collections.defaultdict(dict))
    for run, path in _event_files(log_dir):
        for record in tf.data.TFRecordDataset(path):
            event = tf.compat.v1.Event.FromString(record.numpy())
            for value in event.summary.value:
                if not value.tag.startswith("epoch_"):
                    continue
                if value.HasField("tensor"):
                    number = float(tf.make_ndarray(value.tensor))
                else:
                    number = float(value.simple_value)
                series[value.tag[len("epoch_"):]][run][int(event.step)] = number
    return {metric: {run: sorted(points.items()) for run, points in runs.items()}
            for metric, runs in sorted(series.items())}


def curves_html(curves: Curves) -> str:
    """One figure, one panel per metric (loss first, 3 a row), train and validation lines per epoch.

    Epochs are numbered from 1 on the x axis. Returns a sentence instead
    when ``curves`` is empty.
    """
    if not curves:
        return "<p>No TensorBoard epoch summaries in the Trainer's logs.</p>"
    metrics = sorted(curves, key=lambda m: (m != "loss", m == "learning_rate", m))
    ncols = min(3, len(metrics))
    nrows = -(-len(metrics) // ncols)
    fig, axes = new_figure(width=4.2 * ncols, height=3.2 * nrows, ncols=ncols, nrows=nrows)
    for ax in axes[len(metrics):]:
        ax.set_visible(False)
    for ax, metric in zip(axes, metrics):
        for run, points in sorted(curves[metric].items()):
            epochs = [step + 1 for step, _ in points]
            ax.plot(epochs, [v for _, v in points], marker="o", markersize=3, label=run)
        ax.set_title(metric)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    fig.tight_layout()
    rows = []
    for metric in metrics:
        for run, points in sorted(curves[metric].items()):
            rows.append(f"{metric} ({run}): last {points[-1][1]:.4g} at epoch {points[-1][0] + 1}")
    return (svg_figure(fig, "per-epoch TensorBoard scalars of the Trainer", "training-curves")
            + "<ul>" + "".join(f"<li>{esc(r)}</li>" for r in rows) + "</ul>")
