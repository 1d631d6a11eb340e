"""A two-component TFX pipeline to kill mid-run, for tests/test_run_lock.py.

``Published`` writes its output and completes; ``HalfDone`` writes half of
its output, says so on stdout and then, with ``$KILLABLE_SLEEP`` set,
sleeps until it is killed (as a Trainer killed by ``kill -9``); without it,
it finishes. Run by TFX's own LocalDagRunner through
``model_garden.pipelines.runners.run_pipeline``, with ML Metadata in SQLite
and the cache on, as a local ``model-garden run`` does.

    python tests/killable_pipeline.py ROOT RUN_ID
"""

import os
import sys
import time

from tfx import v1 as tfx
from tfx.types import standard_artifacts

component = tfx.dsl.components.component
OutputArtifact = tfx.dsl.components.OutputArtifact
InputArtifact = tfx.dsl.components.InputArtifact


@component
def Published(examples: OutputArtifact[standard_artifacts.Examples]):  # noqa: N802
    """Writes ``data.txt`` and completes."""
    with open(os.path.join(examples.uri, "data.txt"), "w") as f:
        f.write("published")


@component
def HalfDone(examples: InputArtifact[standard_artifacts.Examples],  # noqa: N802
             model: OutputArtifact[standard_artifacts.Model]):
    """Writes ``partial.txt``, then sleeps while ``$KILLABLE_SLEEP`` is set, then ``done.txt``."""
    with open(os.path.join(model.uri, "partial.txt"), "w") as f:
        f.write(open(os.path.join(examples.uri, "data.txt")).read())
    print(f"HALF-WRITTEN {model.uri}", flush=True)
    if os.environ.get("KILLABLE_SLEEP"):
        time.sleep(600)
    with open(os.path.join(model.uri, "done.txt"), "w") as f:
        f.write("done")


def make_pipeline(root: str):
    """The pipeline ``killable`` under ``root`` (``pipeline/``, ``metadata.sqlite``)."""
    published = Published()
    half = HalfDone(examples=published.outputs["examples"])
    return tfx.dsl.Pipeline(
        pipeline_name="killable", pipeline_root=os.path.join(root, "pipeline"),
        components=[published, half], enable_cache=True,
        metadata_connection_config=tfx.orchestration.metadata.sqlite_metadata_connection_config(
            os.path.join(root, "metadata.sqlite")))


if __name__ == "__main__":
    from model_garden.pipelines import runners

    runners.run_pipeline(make_pipeline(sys.argv[1]), "local", sys.argv[2])
