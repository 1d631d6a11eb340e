"""The run report: one self-contained HTML page about one local pipeline run.

``model-garden report RECIPE`` (and ``model-garden run`` at the end of a
run) writes ``<root>/<recipe>/reports/<run id>.html`` with :func:`write_report`:

- header: recipe, run id, date, each component's state and time
  (:func:`model_garden.pipelines.report.component_runs`);
- data: the StatisticsGen's statistics per split and the ExampleValidator's
  anomalies against the curated schema (:mod:`.data_stats`; why not TFDV's
  Facets view is said there);
- training: loss and metrics per epoch, train and validation, from the
  Trainer's TensorBoard logs (:mod:`.curves`);
- evaluation: TFMA metrics overall (candidate, baseline, change, threshold,
  blessed) and per slice (:mod:`.evaluation`), the confusion matrix, or for
  census ROC and calibration plots (:mod:`.eval_plots`);
- push: the version pushed and its path, or why nothing was.

The page opens offline and makes no request: inline CSS, figures as inline
SVG (matplotlib), no script (:mod:`.page`). A section whose artifacts are
missing (the run failed before that component) says so; one that cannot be
read shows the error instead, and the rest of the page is still written.
"""

import datetime
import os
import tempfile
import traceback
from typing import Callable, List, Optional

from model_garden.pipelines.html_report.page import document, esc, number, table, verdict

__all__ = ["write_report", "build_report", "report_path"]


def report_path(out_dir: str, run_id: str) -> str:
    """Where :func:`write_report` writes the report of ``run_id``: ``<out_dir>/<run_id>.html``."""
    return os.path.join(out_dir, f"{run_id}.html")


def _section(title: str, anchor: str, render: Callable[[], str]) -> str:
    """``<section>`` with a heading; ``render``'s error (if any) shown in its place."""
    try:
        body = render()
    except Exception as e:  # one unreadable artifact must not cost the whole report
        body = (f'<p class="bad">Could not read this part: {esc(type(e).__name__)}: '
                f'{esc(e)}</p><details><summary>traceback</summary><pre>'
                f"{esc(traceback.format_exc())}</pre></details>")
    return f'<section id="{esc(anchor)}"><h2>{esc(title)}</h2>\n{body}\n</section>'


def _run_started(metadata_path: str, run_id: str) -> Optional[datetime.datetime]:
    from model_garden.pipelines import report

    context = report.open_store(metadata_path).get_context_by_type_and_name("pipeline_run", run_id)
    if context is None:
        return None
    return datetime.datetime.fromtimestamp(context.create_time_since_epoch / 1000.0)


def _runs_recorded(count: int) -> str:
    """``1 run recorded`` / ``3 runs recorded``."""
    return f"{count} run{'' if count == 1 else 's'} recorded"


def _header(recipe: str, metadata_path: str, run_id: str, runs) -> str:
    from model_garden.pipelines import report

    started = _run_started(metadata_path, run_id)
    rows = [[esc(r.node_id), esc(r.state), esc(f"{r.seconds:.1f}"), verdict(r.blessed)]
            for r in runs]
    total = sum(r.seconds for r in runs)
    failed = [r.node_id for r in runs if r.state not in ("COMPLETE", "CACHED")]
    status = (verdict(False, no=f"not complete: {', '.join(failed)}") if failed
              else verdict(True, yes="every component complete or cached"))
    return (f"<p>started {esc(started.strftime('%Y-%m-%d %H:%M:%S') if started else '?')}; "
            f"{status}; {esc(f'{total:.1f}')} s of component time; "
            f"ML Metadata <code>{esc(metadata_path)}</code>; "
            f"{_runs_recorded(len(report.pipeline_runs(metadata_path)))}.</p>"
            + table(["component", "state", "seconds", "outcome"], rows, raw_columns=range(4),
                    css_class="components"))


def _data(metadata_path: str, run_id: str) -> str:
    from model_garden.pipelines import report
    from model_garden.pipelines.html_report import data_stats

    parts = ["<h3>anomalies</h3>", data_stats.anomalies_html(report.anomalies(metadata_path,
                                                                              run_id))]
    stats = report.output_artifacts(metadata_path, "StatisticsGen", "ExampleStatistics", run_id)
    parts.append("<h3>statistics</h3>")
    parts += [data_stats.statistics_html(a) for a in stats] or [
        "<p>No statistics: the StatisticsGen did not complete in this run.</p>"]
    parts += [data_stats.schema_html(a) for a in
              report.output_artifacts(metadata_path, "CuratedSchema", "Schema", run_id)]
    return "\n".join(parts)


def _training(metadata_path: str, run_id: str) -> str:
    from model_garden.pipelines import report
    from model_garden.pipelines.html_report import curves

    runs = report.output_artifacts(metadata_path, "Trainer", "ModelRun", run_id)
    if not runs:
        return "<p>No training: the Trainer did not complete in this run.</p>"
    return "\n".join(curves.curves_html(curves.read_curves(a.uri))
                     + f'<p class="note">from <code>{esc(a.uri)}</code></p>' for a in runs)


def _evaluation(metadata_path: str, run_id: str) -> str:
    from model_garden.pipelines import report
    from model_garden.pipelines.html_report import eval_plots, evaluation

    results = report.output_artifacts(metadata_path, "Evaluator", "ModelEvaluation", run_id)
    if not results:
        return "<p>No evaluation: the Evaluator did not complete in this run.</p>"
    blessings = report.output_artifacts(metadata_path, "Evaluator", "ModelBlessing", run_id)
    blessed = (bool(blessings[0].get_int_custom_property("blessed")) if blessings else None)
    loaded = evaluation.load_evaluation(results[0].uri)
    return (evaluation.metrics_html(loaded, blessed) + "<h3>plots (overall slice)</h3>"
            + eval_plots.plots_html(loaded.plots))


def _push(metadata_path: str, serving_dir: str, run_id: str, runs) -> str:
    from model_garden.pipelines import report

    pushed = report.output_artifacts(metadata_path, "Pusher", "PushedModel", run_id)
    versions = sorted((v for v in (os.listdir(serving_dir) if os.path.isdir(serving_dir) else [])
                       if v.isdigit()), key=int)
    served = (f"<p>Versions in <code>{esc(serving_dir)}</code> now: "
              f"{esc(', '.join(versions) or 'none')}.</p>")
    if not pushed:
        evaluator = [r for r in runs if r.node_id == "Evaluator"]
        why = ("the run did not reach the Pusher" if not evaluator or evaluator[0].state
               not in ("COMPLETE", "CACHED") else "the Pusher did not complete")
        return f"<p>Nothing pushed: {esc(why)}.</p>" + served
    artifact = pushed[0]
    cached = any(r.node_id == "Pusher" and r.state == "CACHED" for r in runs)
    if artifact.get_int_custom_property("pushed"):
        version = artifact.get_string_custom_property("pushed_version")
        path = os.path.join(serving_dir, version) if version else artifact.get_string_custom_property(
            "pushed_destination")
        text = (f'<p>{verdict(True, yes="Pushed")} version <code id="pushed-version">'
                f"{esc(version)}</code> to <code>{esc(path)}</code>"
                + (" (by an earlier run: this run's Pusher came from the cache)" if cached else "")
                + ".</p>")
    else:
        reason = artifact.get_string_custom_property("not_pushed_reason")
        same = artifact.get_string_custom_property("same_as_version")
        blessed = any(r.node_id == "Evaluator" and r.blessed for r in runs)
        if reason:
            why = reason + (f" (version {same})" if same else "")
        elif not blessed:
            why = "the Evaluator did not bless the model"
        else:
            why = "the Pusher did not push"
        text = f'<p>{verdict(False, no="Not pushed")}: {esc(why)}.</p>'
    return text + served


def build_report(metadata_path: str, serving_dir: str, run_id: Optional[str] = None,
                 recipe: Optional[str] = None) -> str:
    """The report page of one run, as a string (see the module docstring for its sections).

    Args:
      metadata_path: the recipe's ``metadata.sqlite``
        (:class:`model_garden.pipelines.runners.LocalLayout`).
      serving_dir: the recipe's push destination (``<root>/serving/<recipe>``).
      run_id: a pipeline run id (:func:`model_garden.pipelines.report.pipeline_runs`);
        default the latest.
      recipe: the title (default ``serving_dir``'s last folder, the recipe name).

    Returns:
      the HTML document (UTF-8 text, roughly 100 KB to 1 MB with its inline SVG figures).

    Raises:
      ValueError: no pipeline run recorded in ``metadata_path``, or no run ``run_id``.
    """
    from model_garden.pipelines import report

    names = report.pipeline_runs(metadata_path)
    if not names:
        raise ValueError(f"{metadata_path}: no pipeline run recorded")
    run_id = run_id or names[-1]
    if run_id not in names:
        raise ValueError(f"{metadata_path}: no run {run_id!r}; runs: {', '.join(names[-5:])}"
                         + (" (the latest 5)" if len(names) > 5 else ""))
    recipe = recipe or os.path.basename(os.path.normpath(serving_dir))
    runs = report.component_runs(metadata_path, run_id)
    sections: List[str] = [
        f"<h1>{esc(recipe)}: run <code>{esc(run_id)}</code></h1>",
        _section("Components", "run", lambda: _header(recipe, metadata_path, run_id, runs)),
        _section("Data", "data", lambda: _data(metadata_path, run_id)),
        _section("Training", "training", lambda: _training(metadata_path, run_id)),
        _section("Evaluation", "evaluation", lambda: _evaluation(metadata_path, run_id)),
        _section("Push", "push", lambda: _push(metadata_path, serving_dir, run_id, runs)),
    ]
    return document(f"{recipe} run {run_id}", sections)


def write_report(metadata_path: str, serving_dir: str, run_id: Optional[str] = None,
                 out_dir: Optional[str] = None) -> str:
    """Writes the report page of one run and returns its path.

    The page (:func:`build_report`) is written to a temporary file in
    ``out_dir`` and renamed into place, so ``<out_dir>/<run id>.html`` is
    never half-written; an earlier report of the same run is replaced.

    Args:
      metadata_path: the recipe's ``metadata.sqlite``.
      serving_dir: the recipe's push destination (``<root>/serving/<recipe>``).
      run_id: the pipeline run id; default the latest run.
      out_dir: the reports folder, made if missing; default ``reports/``
        beside ``metadata_path`` (``<root>/<recipe>/reports``).

    Returns:
      the report's path, ``<out_dir>/<run id>.html``.

    Raises:
      ValueError: no pipeline run recorded, or no run ``run_id``.
      OSError: ``out_dir`` cannot be made or written.
    """
    from model_garden.pipelines import report

    run_id = run_id or (report.pipeline_runs(metadata_path) or [None])[-1]
    page = build_report(metadata_path, serving_dir, run_id)
    out_dir = out_dir or os.path.join(os.path.dirname(os.path.abspath(metadata_path)), "reports")
    os.makedirs(out_dir, exist_ok=True)
    path = report_path(out_dir, run_id)
    fd, tmp = tempfile.mkstemp(prefix=f".{run_id}.", suffix=".html.tmp", dir=out_dir)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(page)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return path
