"""Values that cannot work are one click error before anything runs, and nothing is written.

Issue 13 item 2: ``--train-steps 0`` used to become the recipe's default
(``options.x or recipe.x``), ``--threshold 1.5`` ran the whole pipeline,
``compile --image ''`` put the stock image on every step and
``--pipeline-root 'gs://my bucket/x'`` was written as is.
"""

import os

import pytest
from click.testing import CliRunner

from model_garden import cli, validate


def _refused(args, *fragments):
    """Invokes the CLI; asserts a usage error (exit 2) whose text holds ``fragments``."""
    result = CliRunner().invoke(cli.cli, args)
    assert result.exit_code == 2, result.output
    assert result.output.count("Error: ") == 1, result.output
    for fragment in fragments:
        assert fragment in result.output, result.output
    assert "Traceback" not in result.output
    return result.output


@pytest.mark.parametrize("option", ["--train-steps", "--eval-steps"])
@pytest.mark.parametrize("value", ["0", "-3"])
def test_steps_below_one_are_refused_by_run_and_compile(tmp_path, option, value):
    root = tmp_path / "out"
    _refused(["run", "mnist", "--output-root", str(root), option, value],
             option, f"{value} is not in the range x>=1")
    assert not root.exists()
    package = tmp_path / "mnist.yaml"
    _refused(["compile", "mnist", "-o", str(package), option, value], option)
    assert not package.exists()


@pytest.mark.parametrize("recipe,value", [("mnist", "1.5"), ("census_wide", "-0.1"), ("mnist", "nan"),
                                          ("cifar10_resnet20", "inf")])
def test_a_threshold_that_cannot_gate_an_accuracy_is_refused(tmp_path, recipe, value):
    root = tmp_path / "out"
    out = _refused(["run", recipe, "--output-root", str(root), "--threshold", value],
                   "--threshold", recipe)
    assert ("outside [0, 1]" in out) or ("not a finite number" in out)
    assert not root.exists()
    package = tmp_path / "p.yaml"
    _refused(["compile", recipe, "-o", str(package), "--threshold", value], "--threshold")
    assert not package.exists()


@pytest.mark.parametrize("command", ["run", "compile"])
def test_negative_beam_workers_are_refused(tmp_path, command):
    args = ["--output-root", str(tmp_path / "out")] if command == "run" else [
        "-o", str(tmp_path / "p.yaml")]
    _refused([command, "mnist", *args, "--direct-num-workers", "-1"], "--direct-num-workers",
             "x>=0")
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("value", ["-0.01", "nan"])
def test_a_negative_change_tolerance_is_refused(tmp_path, value):
    _refused(["run", "mnist", "--output-root", str(tmp_path / "out"),
              "--change-tolerance", value], "--change-tolerance", ">= 0")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("image,why", [
    ("", "is empty"),
    ("   ", "is empty"),
    ("model garden:dev", "whitespace"),
    ("Model-Garden:dev", "must be lowercase"),
    ("gcr.io/My-Project/model-garden", "must be lowercase"),
    ("MyOrg/model-garden", "neither a registry host"),
    ("model-garden:", "reference grammar"),
    ("model-garden@sha256:abc", "reference grammar"),
])
def test_compile_refuses_an_image_that_is_not_a_reference(tmp_path, image, why):
    package = tmp_path / "mnist.yaml"
    _refused(["compile", "mnist", "-o", str(package), "--image", image], "--image", why)
    assert not package.exists()


@pytest.mark.parametrize("option,value,why", [
    ("--pipeline-root", "gs://my bucket/x", "holds whitespace"),
    ("--pipeline-root", "gs:///model-garden", "names no bucket"),
    ("--pipeline-root", "gs:/my-bucket/x", "two slashes"),
    ("--pipeline-root", "gs://My_Bucket/x", "not a valid GCS bucket name"),
    ("--pipeline-root", "", "is empty"),
    ("--serving-dir", "gs://my-bucket/serving/mnist model", "holds whitespace"),
    ("--input-base", "gs://", "names no bucket"),
    ("--input-base", "s3://data\tset/mnist", "holds whitespace"),
    ("--beam-temp-location", "gs://my bucket/tmp", "holds whitespace"),
])
def test_compile_refuses_a_storage_url_that_cannot_work(tmp_path, option, value, why):
    package = tmp_path / "mnist.yaml"
    _refused(["compile", "mnist", "-o", str(package), option, value], option, why)
    assert not package.exists()


@pytest.mark.parametrize("command", ["submit", "schedule"])
def test_submit_and_schedule_refuse_a_bad_pipeline_root(tmp_path, command):
    package = tmp_path / "p.yaml"
    package.write_text("{}")
    _refused([command, str(package), "--pipeline-root", "gs://my bucket/x"],
             "--pipeline-root", "holds whitespace")


@pytest.mark.parametrize("command", ["run", "convert"])
def test_a_url_output_root_is_refused_not_made_a_local_folder(tmp_path, command, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _refused([command, "mnist", "--output-root", "gs://my-bucket/out"], "--output-root",
             "is a URL")
    assert os.listdir(tmp_path) == []  # no ./gs:/my-bucket/out


@pytest.mark.parametrize("image", [
    "gcr.io/my-project/model-garden:latest", "model-garden:dev", "localhost/model-garden:kfp-local",
    "localhost:5000/team/model-garden@sha256:" + "0" * 64, "ubuntu", "[::1]:5000/x:y",
    "registry.example.com/a__b/c---d.e:T_ag-1.0", "us-docker.pkg.dev/p/r/model-garden:v1",
])
def test_image_references_of_the_grammar_pass(image):
    assert validate.check_image_reference(image) == image


@pytest.mark.parametrize("path", ["gs://my-bucket/x", "gs://b/r", "/tmp/a folder/x", "rel/dir",
                                  "s3://bucket/x", "hdfs://namenode:8020/x", None])
def test_storage_paths_that_work_pass(path):
    assert validate.check_storage_path(path, "--pipeline-root") == path


def test_threshold_bounds_only_for_fraction_metrics():
    assert validate.check_threshold(1, "AUC") == 1.0
    assert validate.check_threshold(0.0, "SparseTopKCategoricalAccuracy") == 0.0
    assert validate.check_threshold(3.5, "MeanSquaredError") == 3.5
    with pytest.raises(ValueError, match="outside"):
        validate.check_threshold(1.01, "BinaryAccuracy")
    with pytest.raises(ValueError, match="finite"):
        validate.check_threshold(float("inf"), "MeanSquaredError")



@pytest.mark.parametrize("value", ["stop", "WARN", "", "ignore"])
def test_on_anomalies_must_be_warn_or_fail(tmp_path, value):
    """Issue 13 item 5: ``--on-anomalies`` of run and compile, refused before anything runs."""
    root = tmp_path / "out"
    _refused(["run", "census_wide", "--output-root", str(root), "--on-anomalies", value],
             "--on-anomalies", f"{value!r} is not one of 'warn', 'fail'")
    assert not root.exists()
    package = tmp_path / "p.yaml"
    _refused(["compile", "census_wide", "-o", str(package), "--on-anomalies", value],
             "--on-anomalies", "is not one of 'warn', 'fail'")
    assert not package.exists()


@pytest.mark.parametrize("flags, expected", [((), "warn"), (("--on-anomalies", "fail"), "fail"),
                                             (("--on-anomalies", "warn"), "warn")])
def test_run_gates_with_warn_unless_told_to_fail(tmp_path, monkeypatch, data_root, flags,
                                                 expected):
    """The option reaches the pipeline's options: interactive runs default to warn."""
    from model_garden.components.input_spans import InputSpansError
    from model_garden.pipelines import factory

    seen = []

    def create_pipeline(recipe, options):
        seen.append(options.on_anomalies)
        raise InputSpansError("stopped by the test before anything ran")

    monkeypatch.setattr(factory, "create_pipeline", create_pipeline)
    result = CliRunner().invoke(cli.cli, ["run", "census_wide", "--output-root",
                                          str(tmp_path / "out"), "--data-dir",
                                          os.path.join(data_root, "census"), *flags])
    assert "stopped by the test" in result.output and result.exit_code == 1, result.output
    assert seen == [expected]


def test_on_anomalies_policies():
    assert validate.ON_ANOMALIES == ("warn", "fail")
    assert validate.check_on_anomalies("fail") == "fail"
    with pytest.raises(ValueError, match=r"pipeline parameter on_anomalies 1 is not one of warn, "
                                         "fail: 'warn' lists schema anomalies and goes on, "
                                         "'fail' stops before Transform"):
        validate.check_on_anomalies(1, "pipeline parameter on_anomalies")
