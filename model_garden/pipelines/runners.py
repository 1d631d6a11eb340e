"""Runners: BeamDagRunner / LocalDagRunner locally (Kubeflow: :mod:`.kubeflow`).

Local output layout under one output root (``--output-root``)::

    <root>/<recipe>/metadata.sqlite     ML Metadata (SQLite)
    <root>/<recipe>/pipeline/           pipeline root: every component's artifacts
    <root>/serving/<recipe>/<version>/  what the Pusher pushed (TF Serving layout)
    <root>/data/<dataset>/              ``model-garden convert``: its pipeline and metadata

``BeamDagRunner`` and the Kubeflow runner are not in the public ``tfx.v1``
API; they are imported from ``tfx.orchestration`` as the TFX guides do.
"""

import contextlib
import dataclasses
import datetime
import os
import re
from typing import Callable, Iterator, List, Optional

from model_garden.pipelines.factory import PipelineOptions
from model_garden.pipelines.recipes import Recipe

RUNNERS = ("beam", "local")
# Where the Dockerfile installs the package's source inside the pipeline image.
IMAGE_PACKAGE_ROOT = "/opt/model-garden"


@dataclasses.dataclass(frozen=True)
class LocalLayout:
    """Paths of one recipe's local run under ``output_root``."""

    output_root: str
    recipe: str

    @property
    def pipeline_root(self) -> str:
        return os.path.join(self.output_root, self.recipe, "pipeline")

    @property
    def metadata_path(self) -> str:
        return os.path.join(self.output_root, self.recipe, "metadata.sqlite")

    @property
    def serving_dir(self) -> str:
        return os.path.join(self.output_root, "serving", self.recipe)


#: ``--direct-running-mode auto`` runs Beam in-process (``in_memory``) for inputs
#: below this many bytes and with one worker process per core
#: (``multi_processing``) above. Measured on 2 cores (README, Benchmarks): each
#: multi_processing component pays 12-20 s to start workers that import TF, so
#: the MNIST demo (10k digits, 1.6 MB) runs 4-5x faster per Beam component
#: in-process, and the image ExampleGen gains from workers only above about
#: 30,000 photos (~7 GB of JPEGs). 1 GiB sits between the two, on the
#: in-process side of the photo crossover (a larger input runs for minutes,
#: where the workers' start-up is small).
AUTO_IN_MEMORY_BYTES = 1 << 30
RUNNING_MODES = ("auto", "in_memory", "multi_threading", "multi_processing")


def input_bytes(input_base: str, limit: Optional[int] = None) -> int:
    """Total size in bytes of the files under ``input_base`` (links followed).

    Stops counting once ``limit`` is exceeded (a 1.28M-file ImageNet folder
    need not be walked to the end to be called large).
    """
    total = 0
    stack = [input_base]
    while stack:
        try:
            entries = list(os.scandir(stack.pop()))
        except OSError:
            continue
        for entry in entries:
            try:
                if entry.is_dir():
                    stack.append(entry.path)
                elif entry.is_file():
                    total += entry.stat().st_size
            except OSError:
                continue
            if limit is not None and total > limit:
                return total
    return total


def running_mode(mode: str, input_base: str) -> str:
    """The Beam DirectRunner mode for ``mode``: ``auto`` chosen by :func:`input_bytes`.

    Raises:
      ValueError: ``mode`` is not one of :data:`RUNNING_MODES`.
    """
    if mode not in RUNNING_MODES:
        raise ValueError(f"unknown direct running mode {mode!r}; choose one of {RUNNING_MODES}")
    if mode != "auto":
        return mode
    small = input_bytes(input_base, AUTO_IN_MEMORY_BYTES) <= AUTO_IN_MEMORY_BYTES
    return "in_memory" if small else "multi_processing"


def direct_runner_args(num_workers: Optional[int] = None, mode: str = "multi_processing",
                       input_base: Optional[str] = None) -> List[str]:
    """Beam DirectRunner options: ``mode`` with ``num_workers`` (default: cores).

    ``mode="auto"`` needs ``input_base`` (see :func:`running_mode`).
    """
    if mode == "auto":
        mode = running_mode(mode, input_base or "")
    workers = num_workers or os.cpu_count() or 1
    return [f"--direct_running_mode={mode}", f"--direct_num_workers={workers}"]


def local_options(recipe: Recipe, output_root: str, input_base: str, **overrides) -> PipelineOptions:
    """``PipelineOptions`` for a local run with the :class:`LocalLayout` paths."""
    layout = LocalLayout(os.path.abspath(output_root), recipe.name)
    os.makedirs(os.path.dirname(layout.metadata_path), exist_ok=True)
    return PipelineOptions(
        input_base=input_base,
        pipeline_root=layout.pipeline_root,
        serving_dir=layout.serving_dir,
        metadata_path=layout.metadata_path,
        **overrides,
    )


def local_data_options(dataset_name: str, output_root: str, input_base: str,
                       **overrides) -> PipelineOptions:
    """``PipelineOptions`` of ``model-garden convert``: ``<root>/data/<dataset>/{pipeline,metadata.sqlite}``."""
    layout = LocalLayout(os.path.abspath(output_root), os.path.join("data", dataset_name))
    os.makedirs(os.path.dirname(layout.metadata_path), exist_ok=True)
    return PipelineOptions(input_base=input_base, pipeline_root=layout.pipeline_root,
                           serving_dir="", metadata_path=layout.metadata_path, **overrides)


def new_run_id() -> str:
    """A pipeline run id in BeamDagRunner's own format, ``20261207-051200.123456``."""
    return datetime.datetime.now().strftime("%Y%m%d-%H%M%S.%f")


@contextlib.contextmanager
def exclusive_run(options: PipelineOptions, run_id: str, wait: bool = True,
                  on_wait: Optional[Callable] = None) -> Iterator[list]:
    """The run lock of the folder holding ``options.metadata_path``, then crash recovery.

    Inside, no other run uses this recipe's metadata, pipeline root or push
    destination (:mod:`.run_lock`), and what an interrupted earlier run
    left is marked abandoned and removed (:mod:`.recovery`). When the body
    raises (a component failed), executions of this run left unfinished
    beside the failed one are abandoned the same way before the lock goes.

    Yields:
      the :class:`~model_garden.pipelines.recovery.Abandoned` executions
      found (usually none).

    Raises:
      RunLockBusy: another run holds the lock and ``wait`` is false.
    """
    from model_garden.pipelines import recovery, run_lock

    with run_lock.exclusive(os.path.dirname(options.metadata_path), run_id, wait, on_wait):
        found = recovery.abandon_unfinished(options.metadata_path, options.pipeline_root,
                                            options.serving_dir, run_id)
        try:
            yield found
        except BaseException:
            # A failed component stops BeamDagRunner's whole graph: components that
            # were running beside it (ExampleGen beside the baseline steps) stay RUNNING
            # in ML Metadata with half-written outputs. The run is over: clean up now.
            recovery.abandon_unfinished(options.metadata_path, options.pipeline_root,
                                        options.serving_dir, run_id)
            raise


def run_pipeline(pipeline, runner: str = "beam", run_id: Optional[str] = None) -> str:
    """Runs a TFX pipeline with ``BeamDagRunner`` (``"beam"``) or ``LocalDagRunner`` (``"local"``).

    The pipeline is compiled to its IR here and its run id set
    (``runtime_parameter_utils.substitute_runtime_parameter``, as the runners'
    own ``run_with_ir`` does with a clock-made id, which then finds nothing
    left to set), so the caller knows which ML Metadata ``pipeline_run``
    context is this run's. Our components declare no pip dependencies, so
    compiling with ``Compiler().compile`` is what ``TfxRunner.run`` does.

    Returns:
      the run id (``run_id``, default :func:`new_run_id`).

    Raises:
      ValueError: unknown runner; RuntimeError (from TFX): a component failed.
    """
    if runner not in RUNNERS:
        raise ValueError(f"unknown runner {runner!r}; choose one of {RUNNERS}")
    from tfx.dsl.compiler import compiler, constants
    from tfx.orchestration.portable import runtime_parameter_utils

    run_id = run_id or new_run_id()
    ir = compiler.Compiler().compile(pipeline)
    runtime_parameter_utils.substitute_runtime_parameter(
        ir, {constants.PIPELINE_RUN_ID_PARAMETER_NAME: run_id})
    if runner == "beam":
        from tfx.orchestration.beam.beam_dag_runner import BeamDagRunner

        BeamDagRunner().run_with_ir(ir)
    else:
        from model_garden.pipelines.tfx_api import LocalDagRunner

        LocalDagRunner().run_with_ir(ir)
    return run_id



# Beam's DirectRunner re-raises a DoFn's exception as the same type with
# " [while running 'Run[Trainer]']" appended (apache_beam/runners/common.py,
# DoFnRunner._reraise_augmented); BeamDagRunner runs each component in one.
_BEAM_STEP = re.compile(r"\s*\[while running '[^']*'\]\s*$")


def failure_cause(error: BaseException) -> str:
    """``Type: message`` of the exception a component raised, without Beam's step suffix."""
    message = _BEAM_STEP.sub("", str(error)).strip()
    return f"{type(error).__name__}: {message}" if message else type(error).__name__
