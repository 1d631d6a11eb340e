"""Runners: BeamDagRunner / LocalDagRunner locally (Kubeflow: :mod:`.kubeflow`).

Local output layout under one output root (``--output-root``)::

    <root>/<recipe>/metadata.sqlite     ML Metadata (SQLite)
    <root>/<recipe>/pipeline/           pipeline root: every component's artifacts
    <root>/serving/<recipe>/<version>/  what the Pusher pushed (TF Serving layout)
    <root>/data/<dataset>/              ``model-garden convert``: its pipeline and metadata

``BeamDagRunner`` and the Kubeflow runner are not in the public ``tfx.v1``
API; they are imported from ``tfx.orchestration`` as the TFX guides do.
"""

import dataclasses
import os
from typing import List, Optional

from model_garden.pipelines.factory import PipelineOptions, create_pipeline
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


def direct_runner_args(num_workers: Optional[int] = None, mode: str = "multi_processing") -> List[str]:
    """Beam DirectRunner options: ``mode`` with ``num_workers`` (default: cores)."""
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


def run_local(recipe: Recipe, options: PipelineOptions, runner: str = "beam") -> None:
    """Runs ``recipe``'s pipeline on this machine.

    Args:
      recipe: the recipe.
      options: from :func:`local_options`.
      runner: ``"beam"`` (BeamDagRunner: components as a Beam graph) or
        ``"local"`` (LocalDagRunner: components in order, in process).

    Raises:
      ValueError: unknown runner.
      RuntimeError: (from TFX) a component failed; its outputs are not
        published, earlier artifacts and pushed models stay as they were.
    """
    run_pipeline(create_pipeline(recipe, options), runner)


def run_pipeline(pipeline, runner: str = "beam") -> None:
    """Runs a TFX pipeline with ``BeamDagRunner`` (``"beam"``) or ``LocalDagRunner`` (``"local"``).

    Raises:
      ValueError: unknown runner; RuntimeError (from TFX): a component failed.
    """
    if runner not in RUNNERS:
        raise ValueError(f"unknown runner {runner!r}; choose one of {RUNNERS}")
    if runner == "beam":
        from tfx.orchestration.beam.beam_dag_runner import BeamDagRunner

        BeamDagRunner().run(pipeline)
    else:
        from tfx import v1 as tfx

        tfx.orchestration.LocalDagRunner().run(pipeline)

