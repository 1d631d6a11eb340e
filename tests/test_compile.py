"""`model-garden compile`: the Kubeflow Pipelines v2 package of each recipe."""

import yaml
import pytest
from click.testing import CliRunner
from google.protobuf import json_format

from model_garden import cli

IMAGE = "europe-docker.pkg.dev/acme/ml/model-garden:1.2.3"


@pytest.fixture(scope="module")
def mnist_yaml(tmp_path_factory):
    out = tmp_path_factory.mktemp("compile") / "mnist.yaml"
    result = CliRunner().invoke(
        cli.cli,
        ["compile", "mnist", "--image", IMAGE, "--pipeline-root", "gs://bucket/mg", "-o", str(out)],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    return out


def test_yaml_parses_into_kfp_pipeline_spec(mnist_yaml):
    from kfp import components
    from kfp.pipeline_spec import pipeline_spec_pb2

    spec = json_format.ParseDict(
        yaml.safe_load(mnist_yaml.read_text()), pipeline_spec_pb2.PipelineSpec()
    )
    assert spec.pipeline_info.name == "model-garden-mnist"
    tasks = set(spec.root.dag.tasks)
    # No resolver tasks: the two run-time resolution steps and the baseline step.
    assert tasks == {
        "InputSpans", "LatestPushedVersion", "LatestBlessedModel",
        "ExampleGen", "StatisticsGen", "CuratedSchema", "InferredSchema", "ExampleValidator",
        "AnomaliesGate", "Transform", "Trainer", "Evaluator", "Pusher",
    }
    # kfp's own loader accepts the package as a pipeline component.
    loaded = components.load_component_from_file(str(mnist_yaml))
    assert loaded.name == "model-garden-mnist"


def test_every_component_runs_in_the_given_image(mnist_yaml):
    spec = yaml.safe_load(mnist_yaml.read_text())
    executors = spec["deploymentSpec"]["executors"]
    containers = {k: v["container"] for k, v in executors.items() if "container" in v}
    assert {"exec-ExampleGen", "exec-Trainer", "exec-Pusher"} <= set(containers)
    assert {c["image"] for c in containers.values()} == {IMAGE}
    # Dotted paths into the installed package, not module files.
    text = mnist_yaml.read_text()
    assert "model_garden.trainers.mnist.run_fn" in text
    assert "model_garden.schemas.mnist.preprocessing_fn" in text
    assert "/opt/model-garden/model_garden/schemas/mnist.pbtxt" in text
    assert "gs://bucket/mg/serving/mnist" in text


def test_cifar10_compiles_against_a_bucket_it_cannot_read(tmp_path):
    """The cluster's gs:// data is not inspected at compile time."""
    out = tmp_path / "cifar.yaml"
    result = CliRunner().invoke(
        cli.cli,
        ["compile", "cifar10_resnet20", "--image", IMAGE, "--pipeline-root", "gs://bucket/mg",
         "-o", str(out)],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    text = out.read_text()
    assert "gs://bucket/mg/data/cifar10" in text
    assert "cifar-10-batches-py/data_batch_*" in text
