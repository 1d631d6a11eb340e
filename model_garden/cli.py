"""``model-garden``: list, run and compile the recipes.

    model-garden list
    model-garden run mnist --split hash:80/20
    model-garden convert flowers --split hash:90/10
    model-garden compile mnist --image IMAGE --pipeline-root gs://... -o mnist.yaml

Errors: a bad option value is a usage error (exit 2) before anything runs;
an ordinary user error (a missing data folder, an output root that is a file
or not writable, a failed download) is one ``Error: ...`` line naming the
path and what to do (exit 1); ``model-garden -v ...`` also prints the
traceback.
"""

import contextlib
import logging
import os
import sys
import traceback
from typing import Dict, Optional, Tuple

import click

from model_garden import validate
from model_garden.datasets import DATASETS, SplitSpec, get_dataset
from model_garden.datasets.download import DownloadError
from model_garden.option_groups import option_group
from model_garden.pipelines import recipes as recipes_lib
from model_garden.trainers.strategies import STRATEGIES

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")  # TFX 1.16 needs tf-keras
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _trainer_overrides(recipe: recipes_lib.Recipe, pairs: Tuple[str, ...], strategy=None) -> Dict:
    """``("batch_size=64", ...)`` -> ``{"batch_size": 64}``, typed by the recipe's Trainer config.

    ``strategy`` (``--strategy``), when given, becomes the ``strategy`` entry.
    Checked before anything runs: a pair that is not KEY=VALUE, an unknown key
    or a bad value is one error that lists the valid keys.
    """
    from model_garden.trainers.configs import ConfigError

    out = {"strategy": strategy} if strategy else {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{pair!r} is not KEY=VALUE; valid keys for "
                                     f"{recipe.name}: {', '.join(recipe.config.keys())}",
                                     param_hint="--set")
        out[key.strip()] = value
    try:
        config = recipe.config.override(out)
        config.check_runnable()
    except ConfigError as e:
        message = str(e)
        if "valid keys" not in message:
            message += f" (valid keys: {', '.join(recipe.config.keys())})"
        raise click.BadParameter(f"{recipe.name}: {message}", param_hint="--set") from None
    return {key: getattr(config, key) for key in out}


def _recipe(name: str) -> recipes_lib.Recipe:
    try:
        return recipes_lib.get_recipe(name)
    except KeyError as e:
        raise click.BadParameter(str(e.args[0]), param_hint="RECIPE") from None


def _check_threshold(recipe: recipes_lib.Recipe, threshold):
    """``--threshold`` checked against ``recipe``'s blessing metric (``None`` passes).

    Raises:
      click.BadParameter: not finite, or outside [0, 1] for an accuracy-like metric.
    """
    if threshold is None:
        return None
    try:
        return validate.check_threshold(threshold, recipe.eval.threshold_metric)
    except ValueError as e:
        raise click.BadParameter(f"{recipe.name}: {_unprefixed(e, '--threshold')}",
                                 param_hint="'--threshold'") from None


def _unprefixed(error: ValueError, option: str) -> str:
    """A :mod:`model_garden.validate` message without its leading option name
    (click's "Invalid value for '--x':" names it already)."""
    return str(error).removeprefix(option + " ")


def _change_tolerance(_ctx, _param, value: float) -> float:
    if value is None or (value == value and 0.0 <= value < float("inf")):
        return value
    raise click.BadParameter(f"{value!r}: give the allowed drop of the blessing metric, a "
                             "finite number >= 0 (0: no drop)")


def _storage_path(ctx, param, value):
    """A click callback: :func:`model_garden.validate.check_storage_path` on the option."""
    try:
        return validate.check_storage_path(value, param.opts[0])
    except ValueError as e:
        raise click.BadParameter(_unprefixed(e, param.opts[0]), ctx=ctx, param=param) from None


def _image(ctx, param, value):
    """A click callback: ``--image`` must be a container image reference."""
    try:
        return validate.check_image_reference(value, param.opts[0])
    except ValueError as e:
        raise click.BadParameter(_unprefixed(e, param.opts[0]), ctx=ctx, param=param) from None


def _local_folder(ctx, param, value):
    """A click callback: a local folder option (``--output-root``) that a URL cannot be."""
    if value is not None and (not value.strip() or "://" in value):
        what = "is empty" if not value.strip() else "is a URL"
        raise click.BadParameter(f"{value!r} {what}: {param.opts[0]} is a folder on this "
                                 "machine (its ML Metadata is SQLite); for cloud storage "
                                 "use `model-garden compile --pipeline-root gs://...`",
                                 ctx=ctx, param=param)
    return value


def _split(_ctx, _param, value: str) -> SplitSpec:
    try:
        return SplitSpec.parse(value)
    except ValueError as e:
        raise click.BadParameter(str(e)) from None


#: Options every command that builds a pipeline shares.
_pipeline_flags = option_group(
    click.option("--split", default="official", callback=_split, show_default=True,
                 help="'official' train/test files, or 'hash[:TRAIN/TEST]' over the files present."),
    click.option("--train-steps", type=click.IntRange(min=1),
                 help="Trainer steps, >= 1 (default: the recipe's)."),
    click.option("--eval-steps", type=click.IntRange(min=1),
                 help="Trainer eval steps, >= 1 (default: the recipe's)."),
    click.option("--threshold", type=float,
                 help="Lower bound of the blessing metric, in [0, 1] for an accuracy "
                      "(default: the recipe's)."),
    click.option("--change-tolerance", type=float, default=0.0, show_default=True,
                 callback=_change_tolerance,
                 help="Allowed drop (>= 0) of the blessing metric against the latest "
                      "blessed model."),
    click.option("--strategy", type=click.Choice(STRATEGIES),
                 help="tf.distribute strategy of the Trainer (default: the recipe's, 'auto': "
                      "Mirrored over the visible GPUs, else one device)."),
    click.option("--set", "sets", multiple=True, metavar="KEY=VALUE",
                 help="Override a field of the recipe's typed Trainer config (its custom_config), "
                      "e.g. batch_size=64 (repeatable; an unknown key lists the valid ones)."),
    click.option("--spans", type=click.IntRange(min=1), metavar="K",
                 help="The data arrives as <input base>/span-N/ folders: train on the "
                      "last K spans (1: the latest only). Default: the folder as is."),
    click.option("--warm-start", is_flag=True,
                 help="Start training from the latest blessed model's weights (the "
                      "Trainer's base_model), when one was pushed."),
)


def _on_anomalies_option(default: str, why: str):
    """``--on-anomalies warn|fail``: what schema anomalies do (``run``: warn, ``compile``: fail)."""
    return click.option(
        "--on-anomalies", type=click.Choice(validate.ON_ANOMALIES), default=default,
        show_default=True,
        help="Anomalies of the data against the curated schema (ExampleValidator): 'warn' "
             "lists them and trains on, 'fail' stops the pipeline before Transform with "
             f"the list. {why}")


_VERBOSE = "model_garden.verbose"


def _one_line(error: BaseException) -> str:
    """An ``OSError`` or ``DownloadError`` as one line that names its path."""
    if isinstance(error, OSError) and error.filename and error.strerror:
        what = {PermissionError: "check its permissions or choose another folder",
                FileNotFoundError: "check the path",
                NotADirectoryError: "a file stands where a folder should be: move it",
                FileExistsError: "a file stands where a folder should be: move it",
                IsADirectoryError: "give a file, not a folder"}.get(type(error), "")
        text = f"{error.filename}: {error.strerror}" + (f"; {what}" if what else "")
    else:
        text = str(error) or type(error).__name__
    return " ".join(text.split())


class _Cli(click.Group):
    """The ``model-garden`` group: user errors as one line, tracebacks only with ``-v``.

    ``OSError`` (a missing, unreadable or unwritable path, a refused
    connection) and :class:`~model_garden.datasets.download.DownloadError`
    that a command lets out become one ``Error:`` line (exit 1). With ``-v``
    they propagate with their traceback, and a ``click.ClickException``
    raised ``from`` an error prints that error's traceback first.
    """

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except click.ClickException as e:
            cause = e.__cause__
            if ctx.meta.get(_VERBOSE) and cause is not None:
                traceback.print_exception(type(cause), cause, cause.__traceback__, file=sys.stderr)
            raise
        except (OSError, DownloadError) as e:
            if ctx.meta.get(_VERBOSE):
                raise
            raise click.ClickException(_one_line(e)) from e


@click.group(cls=_Cli, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", is_flag=True,
              help="On an error, print its traceback too (default: one Error: line); run and "
                   "convert also stream their log to the terminal.")
@click.pass_context
def cli(ctx, verbose):
    """Classic TensorFlow models as TFX pipelines, locally or on Kubeflow."""
    ctx.meta[_VERBOSE] = verbose


def _check_output_root(output_root: str) -> None:
    """Refuses an ``--output-root`` that cannot be written, before anything is.

    The path itself, or its nearest existing ancestor when it does not exist
    yet, must be a folder this user can write to.

    Raises:
      click.ClickException: naming the path: a file where the folder (or a
        folder above it) should be, or a folder that is not writable.
    """
    path = os.path.abspath(output_root)
    probe = path
    while not os.path.lexists(probe) and os.path.dirname(probe) != probe:
        probe = os.path.dirname(probe)
    if not os.path.isdir(probe):
        where = "" if probe == path else f" ({probe} above it)"
        raise click.ClickException(
            f"--output-root {output_root}: is a file{where}, not a folder; choose another "
            "--output-root or move the file")
    if not os.access(probe, os.W_OK | os.X_OK):
        where = "" if probe == path else f" ({probe}, where it would be made)"
        raise click.ClickException(
            f"--output-root {output_root}: not writable by this user{where}; choose a folder "
            "you can write to with --output-root")


def _resolve_data_dir(dataset_name: str, data_dir: Optional[str]) -> str:
    """:func:`model_garden.datasets.resolve_data_dir`, its user errors as one ``Error:`` line.

    Raises:
      click.ClickException: no such ``--data-dir``, ``$MODEL_GARDEN_DATA``
        without the dataset's folder, or a failed download (each message
        says what to do).
    """
    from model_garden.datasets import resolve_data_dir

    try:
        return resolve_data_dir(dataset_name, data_dir)
    except (OSError, DownloadError) as e:
        raise click.ClickException(_one_line(e)) from e


@cli.command("list")
def list_recipes():
    """Print every recipe (name, dataset, model), then every dataset.

    The dataset table: name, classes, official train/test sizes, homepage.
    """
    width = max(len(n) for n in recipes_lib.RECIPES)
    for name, recipe in sorted(recipes_lib.RECIPES.items()):
        click.echo(f"{name:<{width}}  {recipe.dataset:<8}  {recipe.description}")
    rows = [("dataset", "classes", "train", "test", "homepage")] + [
        (d.name, str(d.num_classes), f"{d.split_sizes['train']:,}",
         f"{d.split_sizes['test']:,}", d.homepage)
        for _, d in sorted(DATASETS.items())
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    click.echo()
    for name, classes, train, test, homepage in rows:
        click.echo(f"{name:<{widths[0]}}  {classes:>{widths[1]}}  {train:>{widths[2]}}  "
                   f"{test:>{widths[3]}}  {homepage}")


#: The data folder option of ``run`` and ``convert``.
_data_dir_option = click.option(
    "--data-dir", type=click.Path(file_okay=False),
    help="Folder of the dataset's raw files. Default: $MODEL_GARDEN_DATA/<dataset>, "
         "else downloaded (sha256-checked) into ~/.cache/model-garden.")

def _verbose(ctx, _param, value):
    if value:
        ctx.meta[_VERBOSE] = True


#: How ``run`` and ``convert`` run the pipeline on this machine.
_local_runner_flags = option_group(
    click.option("-v", "--verbose", is_flag=True, expose_value=False, callback=_verbose,
                 help="Stream the run's log (TF, Beam, absl, the components) to the terminal "
                      "too; it is written to <output root>/.../logs/<run id>.log either way."),
    click.option("--runner", type=click.Choice(["beam", "local"]), default="beam",
                 show_default=True, help="BeamDagRunner or LocalDagRunner."),
    click.option("--direct-num-workers", type=click.IntRange(min=0), default=0,
                 help="Beam DirectRunner workers (0: one per core)."),
    click.option("--direct-running-mode", default="auto", show_default=True,
                 type=click.Choice(["auto", "in_memory", "multi_threading", "multi_processing"]),
                 help="Beam DirectRunner mode of the Beam components. auto: in_memory (one "
                      "process) for input folders under 1 GiB, else multi_processing (a "
                      "worker process per core, each a 12-20 s start)."),
    click.option("--no-cache", is_flag=True, help="Run every component again."),
    click.option("--no-wait", is_flag=True,
                 help="If another run uses this output root's recipe (or dataset) folder, "
                      "stop with an error instead of waiting for it to finish."),
)


@contextlib.contextmanager
def _exclusive(options, run_id: str, no_wait: bool, err):
    """``runners.exclusive_run`` with its messages on ``err``: waiting, busy, recovered leftovers."""
    from model_garden.pipelines import recovery, runners
    from model_garden.pipelines.run_lock import RunLockBusy

    def waiting(holder) -> None:
        err.write(f"waiting for {holder.describe()} on the same output folder to finish "
                  "(--no-wait: stop instead)\n")
        err.flush()

    try:
        with runners.exclusive_run(options, run_id, wait=not no_wait,
                                   on_wait=waiting) as abandoned:
            if abandoned:
                err.write(recovery.describe(abandoned) + "\n")
            yield
    except RunLockBusy as e:
        raise _Refused(str(e)) from None


class _Refused(click.ClickException):
    """The run did not start (another holds the lock): its log is not kept either."""


#: Set by :func:`main`: the process is the console command, which exits after it.
_CONSOLE = {"main": False}


@contextlib.contextmanager
def _logged(log_path: str, run_id: str):
    """A run's output off the terminal: ``run <id>`` and ``log: <path>``, then quiet.

    Everything TF, Beam, absl and the components write goes to ``log_path``
    (:mod:`model_garden.pipelines.run_log`); ``-v`` streams it too.

    Yields:
      the :class:`~model_garden.pipelines.run_log.Terminal` for the command's lines.
    """
    from model_garden.pipelines import run_log

    verbose = bool(click.get_current_context().meta.get(_VERBOSE))
    click.echo(f"run {run_id}")
    click.echo(f"log: {log_path}")
    try:
        with run_log.captured(log_path, stream=verbose,
                              keep_after_exit=_CONSOLE["main"]) as term:
            yield term
    except _Refused:
        run_log.discard(log_path)  # --no-wait writes nothing
        raise


def _run_with_progress(term, pipeline, runner: str, run_id: str, metadata_path: str, what: str,
                       unchanged: str) -> None:
    """Runs ``pipeline`` under the live progress display; a failure as one ``Error:`` line.

    Raises:
      click.ClickException: a component failed: ``<what> failed at <component>
        (run <id>): <cause>``, then the log's path and ``unchanged``; or the
        input spans could not be resolved (nothing ran).
    """
    from model_garden.components.input_spans import InputSpansError
    from model_garden.pipelines import progress, runners

    components = [c.id for c in pipeline.components]
    failure = None
    with progress.Progress(metadata_path, run_id, components, term.out,
                           live=term.is_live and not term.verbose):
        try:
            runners.run_pipeline(pipeline, runner, run_id)
        except InputSpansError as e:  # nothing ran
            raise click.ClickException(str(e)) from None
        except Exception as e:  # noqa: BLE001 - a component failed: said below, traceback logged
            logging.getLogger(__name__).exception("run %s failed", run_id)
            failure = e
    if failure is not None:
        failed = [r.node_id for r in progress.failed_components(metadata_path, run_id)]
        where = f" at {', '.join(failed)}" if failed else ""
        raise click.ClickException(
            f"{what} failed{where} (run {run_id}): {runners.failure_cause(failure)}\n"
            f"full log: {term.log_path}; {unchanged}") from failure


def _shards(_ctx, _param, value):
    """``N`` (both splits) or ``TRAIN/TEST`` -> ``(train, test)``; ``None`` -> the defaults."""
    if value is None:
        return 0, 0
    parts = value.split("/")
    if len(parts) in (1, 2) and all(p.isdigit() and int(p) > 0 for p in parts):
        return int(parts[0]), int(parts[-1])
    raise click.BadParameter(f"{value!r}: use N or TRAIN/TEST with whole numbers >= 1, "
                             "e.g. 5 or 1024/128")


def _image_data_flags(f):
    """``--shards``, ``--skip-bad-images``, ``--labels-offset``: the image ExampleGen's options."""
    for option in reversed([
        click.option("--shards", callback=_shards, metavar="N|TRAIN/TEST",
                     help="TFRecord shards per split (image datasets; default TF-Slim's: "
                          "flowers 5, ImageNet 1024/128)."),
        click.option("--skip-bad-images", is_flag=True,
                     help="Image datasets: leave undecodable files out (counted, listed in "
                          "skipped_images.txt) instead of failing."),
        click.option("--labels-offset", type=click.IntRange(0, 1), default=0,
                     show_default=True,
                     help="ImageNet: 0 keeps TF-Slim's background label 0 (1,001 labels), 1 "
                          "the 1,000-label form (with --set num_classes=1000)."),
    ]):
        f = option(f)
    return f


def _image_options(dataset, shards, skip_bad_images, labels_offset) -> Dict:
    """The given image ExampleGen options (``UsageError`` for a dataset without them)."""
    image_options = {"train_shards": shards[0], "test_shards": shards[1],
                     "skip_bad_images": skip_bad_images, "labels_offset": labels_offset}
    given = {k: v for k, v in image_options.items() if v}
    if given and "image_example_gen" not in dataset.example_gen:
        raise click.UsageError(f"--shards, --skip-bad-images and --labels-offset are for the image "
                               f"datasets (flowers, imagenet), not {dataset.name}")
    return given


@cli.command()
@click.argument("recipe_name", metavar="RECIPE")
@_data_dir_option
@click.option("--output-root", default="model-garden-output", show_default=True,
              callback=_local_folder,
              help="Root of pipeline artifacts, ML Metadata and pushed models.")
@_local_runner_flags
@_pipeline_flags
@_image_data_flags
@_on_anomalies_option("warn", "The run summary lists them either way.")
def run(recipe_name, data_dir, output_root, runner, direct_num_workers, direct_running_mode,
        no_cache, no_wait, split, train_steps, eval_steps, threshold, change_tolerance, strategy,
        sets, spans, warm_start, shards, skip_bad_images, labels_offset, on_anomalies):
    """Run RECIPE's pipeline on this machine."""
    from model_garden.pipelines import runners

    recipe = _recipe(recipe_name)
    threshold = _check_threshold(recipe, threshold)
    overrides = _trainer_overrides(recipe, sets, strategy)
    image_options = _image_options(get_dataset(recipe.dataset), shards, skip_bad_images,
                                   labels_offset)
    _check_output_root(output_root)
    input_base = _resolve_data_dir(recipe.dataset, data_dir)
    options = runners.local_options(
        recipe, output_root, input_base,
        split=split, train_steps=train_steps, eval_steps=eval_steps, threshold=threshold,
        change_tolerance=change_tolerance, hyperparameters=overrides,
        beam_pipeline_args=runners.direct_runner_args(direct_num_workers or None,
                                                      direct_running_mode, input_base),
        enable_cache=not no_cache, spans=spans, warm_start=warm_start,
        example_gen_options=image_options, on_anomalies=on_anomalies,
    )
    from model_garden.pipelines import factory, outcome, report

    run_id = runners.new_run_id()
    log_path = os.path.join(os.path.dirname(options.metadata_path), "logs", f"{run_id}.log")
    with _logged(log_path, run_id) as term:
        from model_garden.components.input_spans import InputSpansError

        try:
            pipeline = factory.create_pipeline(recipe, options)
        except InputSpansError as e:  # no span folder matches: nothing ran
            raise click.ClickException(str(e)) from None
        with _exclusive(options, run_id, no_wait, term.err):
            before = _versions(options.serving_dir)
            try:
                _run_with_progress(term, pipeline, runner, run_id, options.metadata_path,
                                   f"the {recipe.name} pipeline",
                                   f"nothing of the failed component was published and "
                                   f"{options.serving_dir} is unchanged")
            except click.ClickException as e:
                if isinstance(e.__cause__, Exception):  # a component failed: report what ran
                    e.message += f"\nreport: {_write_report(options, run_id)}"
                raise
            after = _versions(options.serving_dir)
        runs = report.component_runs(options.metadata_path, run_id)
        lines = [report.anomalies_summary(options.metadata_path, run_id),
                 outcome.evaluation_summary(options.metadata_path, run_id),
                 outcome.push_summary(runs, options.serving_dir, before, after),
                 f"report: {_write_report(options, run_id)}"]
    term.out.write("\n".join(lines) + "\n")


def _write_report(options, run_id: str) -> str:
    """Writes the run's HTML report; its path, or why it could not be written."""
    from model_garden.pipelines import html_report

    try:
        return html_report.write_report(options.metadata_path, options.serving_dir, run_id)
    except Exception as e:  # noqa: BLE001 - the run's outcome stands without its page
        logging.getLogger(__name__).exception("the report of run %s", run_id)
        return f"not written ({type(e).__name__}: {e}); see the log"


def _versions(serving_dir: str):
    """The version folders (``1765101234``) in a push destination."""
    if not os.path.isdir(serving_dir):
        return []
    return sorted((v for v in os.listdir(serving_dir) if v.isdigit()), key=int)


@cli.command()
@click.argument("recipe_name", metavar="RECIPE")
@click.option("--run", "run_id", metavar="ID",
              help="The pipeline run id (`model-garden run` prints it); default the latest run.")
@click.option("--output-root", default="model-garden-output", show_default=True,
              callback=_local_folder, help="The --output-root the runs used.")
def report(recipe_name, run_id, output_root):
    """Write the HTML report of one run of RECIPE and print its path.

    One self-contained page (no network needed to open it): components,
    data statistics and anomalies, training curves, TFMA metrics and plots,
    what was pushed. Written to <output-root>/<recipe>/reports/<run id>.html.
    """
    from model_garden.pipelines import html_report, report as report_lib, runners

    recipe = _recipe(recipe_name)
    layout = runners.LocalLayout(os.path.abspath(output_root), recipe.name)
    if not os.path.isfile(layout.metadata_path):
        raise click.ClickException(
            f"no runs of {recipe.name} under --output-root {output_root} "
            f"({layout.metadata_path} does not exist); run `model-garden run {recipe.name} "
            f"--output-root {output_root}` first")
    runs = report_lib.pipeline_runs(layout.metadata_path)
    if not runs:
        raise click.ClickException(f"no pipeline run of {recipe.name} recorded in "
                                   f"{layout.metadata_path}")
    if run_id is not None and run_id not in runs:
        raise click.BadParameter(
            f"no run {run_id!r} of {recipe.name} in {layout.metadata_path}; the latest: "
            f"{', '.join(runs[-3:])}", param_hint="--run")
    path = html_report.write_report(
        layout.metadata_path, layout.serving_dir, run_id,
        os.path.join(os.path.dirname(layout.metadata_path), "reports"))
    click.echo(path)


@cli.command()
@click.argument("dataset_name", metavar="DATASET")
@_data_dir_option
@click.option("--output-root", default="model-garden-output", show_default=True,
              callback=_local_folder, help="Root of the artifacts: <root>/data/<dataset>/.")
@click.option("--split", default="official", callback=_split, show_default=True,
              help="'official' train/test folders, or 'hash[:TRAIN/TEST]' over the files present "
                   "(the flowers and the ImageNet sample have no official split).")
@_image_data_flags
@_local_runner_flags
def convert(dataset_name, data_dir, output_root, split, shards, skip_bad_images, labels_offset,
            runner, direct_num_workers, direct_running_mode, no_cache, no_wait):
    """Convert DATASET into sharded TFRecords and validate them.

    Runs ExampleGen -> StatisticsGen -> ExampleValidator against the curated
    schema, and prints where the examples are and how many were written.
    """
    from model_garden.pipelines import factory, report, runners

    try:
        dataset = get_dataset(dataset_name)
    except KeyError as e:
        raise click.BadParameter(str(e.args[0]), param_hint="DATASET") from None
    given = _image_options(dataset, shards, skip_bad_images, labels_offset)
    _check_output_root(output_root)
    input_base = _resolve_data_dir(dataset.name, data_dir)
    options = runners.local_data_options(
        dataset.name, output_root, input_base, split=split, example_gen_options=given,
        beam_pipeline_args=runners.direct_runner_args(direct_num_workers or None,
                                                      direct_running_mode, input_base),
        enable_cache=not no_cache)
    run_id = runners.new_run_id()
    log_path = os.path.join(os.path.dirname(options.metadata_path), "logs", f"{run_id}.log")
    with _logged(log_path, run_id) as term:
        with _exclusive(options, run_id, no_wait, term.err):
            try:
                pipeline = factory.create_data_pipeline(dataset.name, options)
            except (OSError, ValueError) as e:  # a missing folder, a bad layout: nothing ran
                raise click.ClickException(_one_line(e) if isinstance(e, OSError) else str(e)) \
                    from e
            _run_with_progress(term, pipeline, runner, run_id, options.metadata_path,
                               f"converting {dataset.name}",
                               "nothing of the failed component was published")
        summary = report.examples_summary(options.metadata_path, run_id)
    term.out.write(summary + "\n")


@cli.command("compile")
@click.argument("recipe_name", metavar="RECIPE")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False),
              help="Pipeline package to write (.yaml): the PipelineSpec, plus the Kubernetes "
                   "platform spec with --gpu/--tpu.")
@click.option("--image", default="gcr.io/my-project/model-garden:latest", show_default=True,
              callback=_image,
              help="Pipeline container image (see Dockerfile): [HOST[:PORT]/]PATH[:TAG][@DIGEST].")
@click.option("--pipeline-root", default="gs://my-bucket/model-garden", show_default=True,
              callback=_storage_path,
              help="Artifact root on the cluster's storage (the default root of runs; "
                   "`model-garden submit --pipeline-root` overrides it per run).")
@click.option("--input-base", callback=_storage_path,
              help="Raw data folder as the cluster sees it "
                   "(default: <pipeline-root>/data/<dataset>).")
@click.option("--serving-dir", callback=_storage_path,
              help="Push destination (default: <pipeline-root>/serving/<recipe>).")
@click.option("--gpu", metavar="TYPE:COUNT",
              help="Trainer on COUNT GPUs of GKE type TYPE (the cloud.google.com/gke-accelerator "
                   "label), e.g. nvidia-tesla-t4:1. With --workers: GPUs per replica.")
@click.option("--tpu", metavar="TYPE:TOPOLOGY",
              help="Trainer on a single-host TPU slice, e.g. tpu-v5-lite-podslice:2x2 "
                   "(strategy tpu).")
@click.option("--workers", type=int, default=1, show_default=True,
              help="Training replicas; N > 1 trains in a Kubeflow TFJob (1 Chief + N-1 Workers, "
                   "strategy multi_worker).")
@click.option("--tfjob-namespace", default=None,
              help="Namespace of the TFJob (default: the Trainer step's).")
@click.option("--beam-runner", type=click.Choice(["direct", "dataflow", "flink", "spark"]),
              default="direct", show_default=True,
              help="Where ExampleGen, StatisticsGen, Transform and Evaluator run their Beam "
                   "pipelines: in the step's pod (direct) or on Dataflow, Flink or Spark.")
@click.option("--direct-num-workers", type=click.IntRange(min=0), default=0, show_default=True,
              help="direct: Beam worker processes per pod (0: one per core).")
@click.option("--beam-project", help="dataflow: GCP project of the Dataflow jobs.")
@click.option("--beam-region", help="dataflow: region of the Dataflow jobs, e.g. us-central1.")
@click.option("--beam-temp-location", callback=_storage_path,
              help="dataflow: gs:// temp folder (default: <pipeline-root>/tmp/dataflow).")
@click.option("--flink-master", metavar="HOST:PORT", help="flink: the Flink JobManager.")
@click.option("--spark-master", metavar="spark://HOST:PORT", help="spark: the Spark master.")
@click.option("--beam-arg", "beam_extra", multiple=True, metavar="--NAME=VALUE",
              help="Another Beam option for the Beam components (repeatable; a later one wins), "
                   "e.g. --beam-arg=--max_num_workers=8.")
@_pipeline_flags
@_on_anomalies_option("fail", "Default fail: the package `schedule` runs retrains unattended; "
                              "a run overrides it (--param on_anomalies=warn).")
def compile_cmd(recipe_name, output, image, pipeline_root, input_base, serving_dir, gpu, tpu,
                workers, tfjob_namespace, beam_runner, direct_num_workers, beam_project,
                beam_region, beam_temp_location, flink_master, spark_master, beam_extra, split,
                train_steps, eval_steps, threshold, change_tolerance, strategy, sets, spans,
                warm_start, on_anomalies):
    """Compile RECIPE for Kubeflow Pipelines v2 (KubeflowV2DagRunner).

    The package's pipeline parameters train_steps, eval_steps, threshold and
    on_anomalies default to the compiled values; a run overrides them
    (`model-garden submit ... --param train_steps=2000 --param on_anomalies=warn`).
    """
    from model_garden.kubeflow import compiler as kubeflow
    from model_garden.pipelines.factory import PipelineOptions

    recipe = _recipe(recipe_name)
    threshold = _check_threshold(recipe, threshold)
    overrides = _trainer_overrides(recipe, sets, strategy)
    if gpu and tpu:
        raise click.UsageError("--gpu and --tpu exclude each other: the Trainer runs on one "
                               "node pool")
    root = pipeline_root.rstrip("/")
    try:
        accelerator = (kubeflow.parse_gpu(gpu) if gpu else
                       kubeflow.parse_tpu(tpu) if tpu else None)
        beam_args = kubeflow.beam_runner_args(
            beam_runner, image=image, pipeline_root=root, project=beam_project,
            region=beam_region, temp_location=beam_temp_location, flink_master=flink_master,
            spark_master=spark_master, direct_num_workers=direct_num_workers, extra=beam_extra)
        options = PipelineOptions(
            input_base=input_base or f"{root}/data/{get_dataset(recipe.dataset).name}",
            pipeline_root=root,
            serving_dir=serving_dir or f"{root}/serving/{recipe.name}",
            split=split, train_steps=train_steps, eval_steps=eval_steps, threshold=threshold,
            change_tolerance=change_tolerance, hyperparameters=overrides,
            schemas_dir=f"{kubeflow.IMAGE_PACKAGE_ROOT}/model_garden/schemas",
            spans=spans, warm_start=warm_start, on_anomalies=on_anomalies,
        )
        kubeflow.compile_kubeflow(recipe, options, image, output, accelerator=accelerator,
                                  beam_args=beam_args, workers=workers,
                                  tfjob_namespace=tfjob_namespace)
    except ValueError as e:
        raise click.UsageError(str(e)) from None
    click.echo(f"wrote {output}")


def _add_kfp_commands():
    from model_garden.kubeflow import commands as kfp_commands

    for command in kfp_commands.COMMANDS:
        cli.add_command(command)


_add_kfp_commands()


def main():
    """Console entry point."""
    _CONSOLE["main"] = True
    cli()


if __name__ == "__main__":
    main()
