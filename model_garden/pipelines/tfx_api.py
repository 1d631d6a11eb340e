"""The ``tfx.v1`` names the local pipelines use, from the modules ``tfx.v1`` re-exports.

Each name here *is* the ``tfx.v1`` object (``tests/test_tfx_api.py`` checks
identity against ``tfx.v1``), so the pipelines use the public API's classes
and protos. Only the import path differs: ``from tfx import v1`` also imports
``tfx.v1.extensions.google_cloud_ai_platform``, which imports
``google.cloud.aiplatform`` and its generated protos, a cost every ``run``
paid before any component started, cached or not (measured in the README's
local-run benchmark). TFX's own examples import the same way
(``tfx/examples/mnist/mnist_pipeline_native_keras.py``: ``from tfx.components
import Trainer``). The Kubeflow compiler keeps ``tfx.v1``: compiling is not
on the local run's path.
"""

# pylint: disable=unused-import
from tfx.components import (  # noqa: F401
    Evaluator,
    ExampleValidator,
    Pusher,
    SchemaGen,
    StatisticsGen,
    Trainer,
    Transform,
)
from tfx.components.schema_gen.import_schema_gen.component import ImportSchemaGen  # noqa: F401
from tfx.orchestration.local.local_dag_runner import LocalDagRunner  # noqa: F401
from tfx.orchestration.metadata import sqlite_metadata_connection_config  # noqa: F401
from tfx.orchestration.pipeline import Pipeline  # noqa: F401
from tfx.proto.pusher_pb2 import PushDestination  # noqa: F401
from tfx.proto.trainer_pb2 import EvalArgs, TrainArgs  # noqa: F401

#: name here -> its dotted name under ``tfx.v1`` (what the test compares).
V1_NAMES = {
    "Evaluator": "components.Evaluator",
    "ExampleValidator": "components.ExampleValidator",
    "Pusher": "components.Pusher",
    "SchemaGen": "components.SchemaGen",
    "StatisticsGen": "components.StatisticsGen",
    "Trainer": "components.Trainer",
    "Transform": "components.Transform",
    "ImportSchemaGen": "components.ImportSchemaGen",
    "LocalDagRunner": "orchestration.LocalDagRunner",
    "sqlite_metadata_connection_config": "orchestration.metadata.sqlite_metadata_connection_config",
    "Pipeline": "dsl.Pipeline",
    "PushDestination": "proto.PushDestination",
    "EvalArgs": "proto.EvalArgs",
    "TrainArgs": "proto.TrainArgs",
}
