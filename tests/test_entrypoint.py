"""model_garden.kubeflow.entrypoint, fed executor inputs shaped as the open-source KFP v2 driver writes them.

The container arguments come from a small pipeline of real components
(ImportSchemaGen, StatisticsGen, Pusher, LatestBlessedModel) compiled by
TFX's KubeflowV2DagRunner and rewritten by ``adapt_for_open_source_backend``,
as ``model-garden compile`` does; only ``{{$}}`` is replaced by an
ExecutorInput built here like the OSS driver's: input artifacts as ML
Metadata gives them back (``system.*`` titles, no type, an empty instance
schema, properties in ``metadata``, the MLMD id as ``name``), output
artifacts typed ``system.*`` or not at all. Every run is the real
entrypoint in a subprocess (``python -m model_garden.kubeflow.entrypoint``)
running the real TFX executor; the checks read the ``executor_output.json``
it writes.
"""

import json
import os
import subprocess
import sys

import pytest

from model_garden.kubeflow import compiler, entrypoint

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCHEMAS = os.path.join(REPO, "model_garden", "schemas")
EXAMPLES_SCHEMA = "title: tfx.Examples\ntype: object\n"


@pytest.fixture(scope="module")
def spec(tmp_path_factory):
    """The PipelineSpec (dict) of ImportSchemaGen -> StatisticsGen, Pusher, LatestBlessedModel."""
    from tfx import v1 as tfx
    from tfx.components.schema_gen.import_schema_gen.component import ImportSchemaGen

    from model_garden.components.latest_blessed_model import LatestBlessedModel

    root = tmp_path_factory.mktemp("compiled")
    schema_gen = ImportSchemaGen(schema_file=os.path.join(SCHEMAS, "census.pbtxt"))
    examples = tfx.dsl.Importer(source_uri="gs://b/examples",
                                artifact_type=tfx.types.standard_artifacts.Examples
                                ).with_id("examples")
    model = tfx.dsl.Importer(source_uri="gs://b/model",
                             artifact_type=tfx.types.standard_artifacts.Model).with_id("model")
    blessing = tfx.dsl.Importer(source_uri="gs://b/blessing",
                                artifact_type=tfx.types.standard_artifacts.ModelBlessing
                                ).with_id("blessing")
    statistics_gen = tfx.components.StatisticsGen(examples=examples.outputs["result"],
                                                  schema=schema_gen.outputs["schema"])
    pusher = tfx.components.Pusher(
        model=model.outputs["result"], model_blessing=blessing.outputs["result"],
        push_destination=tfx.proto.PushDestination(
            filesystem=tfx.proto.PushDestination.Filesystem(base_directory="gs://b/serving")))
    pipeline = tfx.dsl.Pipeline(
        pipeline_name="entrypoint-test", pipeline_root=str(root),
        components=[schema_gen, examples, model, blessing, statistics_gen, pusher,
                    LatestBlessedModel(push_destination="gs://b/serving", pushed_version="")],
        beam_pipeline_args=["--direct_running_mode=in_memory", "--direct_num_workers=1"])
    runner = tfx.orchestration.experimental.KubeflowV2DagRunner(
        config=tfx.orchestration.experimental.KubeflowV2DagRunnerConfig(
            default_image="test-image", use_pipeline_spec_2_1=True))
    compiled = runner.run(pipeline, write_out=False)["pipelineSpec"]
    compiler.adapt_for_open_source_backend(compiled)
    return compiled


def _container(spec, component_id):
    return spec["deploymentSpec"]["executors"][compiler.executor_label(component_id)]["container"]


def _parameters(spec, component_id, **overrides):
    """The task's constant parameters as ``parameterValues``, as the driver passes them."""
    parameters = spec["root"]["dag"]["tasks"][component_id]["inputs"]["parameters"]
    values = {k: v["runtimeValue"]["constant"] for k, v in parameters.items()
              if "runtimeValue" in v}
    values.update(overrides)
    return values


def _artifact(uri, type_=None, metadata=None, name=None):
    """A RuntimeArtifact (JSON) as the OSS driver writes it; ``type_`` None: no type."""
    artifact = {"uri": str(uri), "metadata": metadata or {}}
    if name:
        artifact["name"] = name
    if type_ is not None:
        artifact["type"] = type_
    return {"artifacts": [artifact]}


def _run(spec, component_id, executor_input, *, drop_outputs_spec=False, timeout=600):
    """The compiled command of ``component_id`` with ``{{$}}`` = ``executor_input``, in a subprocess."""
    container = _container(spec, component_id)
    assert container["command"] == list(compiler.ENTRYPOINT)
    args = [json.dumps(executor_input) if a == "{{$}}" else a for a in container["args"]]
    if drop_outputs_spec:
        at = args.index(entrypoint.OUTPUTS_SPEC_FLAG)
        del args[at:at + 2]
    env = dict(os.environ, PYTHONPATH=REPO, TF_USE_LEGACY_KERAS="1", TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run([sys.executable, "-m", "model_garden.kubeflow.entrypoint", *args],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)


def _ok(result):
    assert result.returncode == 0, result.stderr[-6000:]
    assert "pure virtual method called" not in result.stderr
    return result


def _output(path):
    with open(path) as f:
        return json.load(f)


def _no_partial_files(folder):
    return not [n for n in os.listdir(folder) if ".partial-" in n]


# --- the compiler's argument ----------------------------------------------------------------


def test_the_compiler_passes_each_components_outputs_spec_before_the_beam_args(spec):
    assert compiler.OUTPUTS_SPEC_FLAG == entrypoint.OUTPUTS_SPEC_FLAG
    for component_id in ("ImportSchemaGen", "StatisticsGen", "Pusher", "LatestBlessedModel"):
        args = _container(spec, component_id)["args"]
        at = args.index(entrypoint.OUTPUTS_SPEC_FLAG)
        assert args[at - 2] == "--json_serialized_inputs_spec_args", component_id
        outputs = spec["components"][compiler.component_key(component_id)]["outputDefinitions"]
        assert json.loads(args[at + 1]) == outputs, component_id
    args = _container(spec, "StatisticsGen")["args"]
    assert args[-2:] == ["--direct_running_mode=in_memory", "--direct_num_workers=1"]


# --- ImportSchemaGen: a system.* output type; the ExecutorOutput written whole ---------------


def test_import_schema_gen_with_a_system_artifact_output(spec, tmp_path):
    out = tmp_path / "outputs" / "executor_output.json"
    executor_input = {
        "inputs": {"parameterValues": _parameters(spec, "ImportSchemaGen")},
        "outputs": {"artifacts": {"schema": _artifact(
            tmp_path / "schema", {"schemaTitle": "system.Artifact"})},
            "outputFile": str(out)}}
    result = _ok(_run(spec, "ImportSchemaGen", executor_input))

    (schema,) = _output(out)["artifacts"]["schema"]["artifacts"]
    assert schema["uri"] == str(tmp_path / "schema")
    with open(os.path.join(SCHEMAS, "census.pbtxt")) as f:
        assert (tmp_path / "schema" / "schema.pbtxt").read_text() == f.read()
    assert "type system.Artifact from the KFP backend replaced by tfx.Schema" in result.stderr
    assert _no_partial_files(out.parent)


def test_a_system_output_type_without_an_outputs_spec_fails_clearly(spec, tmp_path):
    out = tmp_path / "outputs" / "executor_output.json"
    executor_input = {
        "inputs": {"parameterValues": _parameters(spec, "ImportSchemaGen")},
        "outputs": {"artifacts": {"schema": _artifact(
            tmp_path / "schema", {"schemaTitle": "system.Artifact"})},
            "outputFile": str(out)}}
    result = _run(spec, "ImportSchemaGen", executor_input, drop_outputs_spec=True)
    assert result.returncode == 1
    assert "ValueError: output artifact 'schema'" in result.stderr
    assert "Traceback" in result.stderr
    assert not out.exists()


def test_the_executor_output_replaces_the_drivers_file_by_a_rename(spec, tmp_path):
    """A driver's ``executor_output.json`` (exec_properties updates) is read, then replaced whole.

    The old file stays intact under a hard link: TFX's in-place write would
    have truncated and rewritten that very file, the launcher could read it
    half-written.
    """
    out = tmp_path / "outputs" / "executor_output.json"
    out.parent.mkdir()
    mnist_schema = os.path.join(SCHEMAS, "mnist.pbtxt")
    driver_output = json.dumps({"parameterValues": {"schema_file": mnist_schema}})
    out.write_text(driver_output)
    os.link(out, tmp_path / "outputs" / "before.json")
    executor_input = {
        "inputs": {"parameterValues": _parameters(spec, "ImportSchemaGen")},
        "outputs": {"artifacts": {"schema": _artifact(
            tmp_path / "schema", {"schemaTitle": "system.Artifact"})},
            "outputFile": str(out)}}
    _ok(_run(spec, "ImportSchemaGen", executor_input))

    with open(mnist_schema) as f:
        assert (tmp_path / "schema" / "schema.pbtxt").read_text() == f.read()
    assert (tmp_path / "outputs" / "before.json").read_text() == driver_output
    assert not os.path.samefile(out, tmp_path / "outputs" / "before.json")
    assert _output(out)["artifacts"]["schema"]["artifacts"][0]["uri"] == str(tmp_path / "schema")
    assert _no_partial_files(out.parent)


# --- StatisticsGen on real census Examples typed system.Dataset ------------------------------


def _write_census_examples(data_root, uri, splits):
    """60 real census rows as gzipped tf.Examples, ExampleGen's layout (``Split-<name>/``)."""
    import tensorflow as tf

    from model_garden.components import census_example_gen
    from model_garden.datasets import census_csv

    with open(os.path.join(data_root, "census", "adult.data")) as f:
        rows = [census_csv.parse_line(line) for line in f if line.strip()][:60]
    assert all(rows)
    chunks = {"train": rows[:40], "eval": rows[40:]}
    for split in splits:
        folder = os.path.join(uri, f"Split-{split}")
        os.makedirs(folder)
        with tf.io.TFRecordWriter(os.path.join(folder, "data_tfrecord-00000-of-00001.gz"),
                                  options="GZIP") as writer:
            for row in chunks[split]:
                writer.write(census_example_gen.row_to_example(row).SerializeToString())
    return {s: len(chunks[s]) for s in splits}


def test_statistics_gen_on_examples_typed_system_dataset(spec, tmp_path, data_root):
    counts = _write_census_examples(data_root, str(tmp_path / "examples"), ("train", "eval"))
    (tmp_path / "schema").mkdir()
    with open(os.path.join(SCHEMAS, "census.pbtxt")) as f:
        (tmp_path / "schema" / "schema.pbtxt").write_text(f.read())
    out = tmp_path / "outputs" / "executor_output.json"
    executor_input = {
        "inputs": {
            "parameterValues": _parameters(spec, "StatisticsGen"),
            "artifacts": {
                # As MLMD gives them back: a system.* title, properties as metadata.
                "examples": _artifact(tmp_path / "examples", {"schemaTitle": "system.Dataset"},
                                      {"split_names": '["train", "eval"]', "span": 0.0,
                                       "version": 0.0, "file_format": "tfrecords_gzip"},
                                      name="11"),
                # An empty instance schema.
                "schema": _artifact(tmp_path / "schema", {"instanceSchema": ""}, name="12"),
            }},
        "outputs": {"artifacts": {"statistics": _artifact(tmp_path / "statistics")},
                    "outputFile": str(out)}}
    _ok(_run(spec, "StatisticsGen", executor_input))

    (statistics,) = _output(out)["artifacts"]["statistics"]["artifacts"]
    assert statistics["uri"] == str(tmp_path / "statistics")
    assert json.loads(statistics["metadata"]["split_names"]) == ["train", "eval"]
    from tensorflow_metadata.proto.v0 import statistics_pb2

    for split, count in counts.items():
        stats = statistics_pb2.DatasetFeatureStatisticsList()
        with open(tmp_path / "statistics" / f"Split-{split}" / "FeatureStats.pb", "rb") as f:
            stats.ParseFromString(f.read())
        assert stats.datasets[0].num_examples == count
        assert {f.path.step[0] for f in stats.datasets[0].features} >= {"age", "education"}


# --- Pusher: a Model with directory markers, untyped / system.* artifacts ---------------------


def _saved_model(folder):
    """A real (tiny) SavedModel: TF writes an empty ``assets/`` beside ``variables/``."""
    import tensorflow as tf

    class Double(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.float32)])
        def __call__(self, x):
            return 2.0 * x

    tf.saved_model.save(Double(), folder)
    assert os.path.isdir(os.path.join(folder, "assets"))


def _as_marker(path):
    """What kubeflow/pipelines#13476's launcher leaves: a 0-byte file for a ``dir/`` blob."""
    os.rmdir(path)
    open(path, "wb").close()


def _pusher_input(spec, tmp_path, model_uri):
    blessing = tmp_path / "blessing"
    blessing.mkdir()
    (blessing / "BLESSED").write_text("")
    destination = json.dumps({"filesystem": {"base_directory": str(tmp_path / "serving")}})
    return {
        "inputs": {
            "parameterValues": _parameters(spec, "Pusher", push_destination=destination),
            "artifacts": {
                "model": _artifact(model_uri, None, {}, name="21"),  # no type at all
                "model_blessing": _artifact(blessing, {"schemaTitle": "system.Artifact"},
                                            {"blessed": 1.0}, name="22"),
            }},
        "outputs": {"artifacts": {"pushed_model": _artifact(
            tmp_path / "pushed", {"schemaTitle": "system.Model"})},
            "outputFile": str(tmp_path / "outputs" / "executor_output.json")}}


def test_pusher_pushes_a_model_whose_empty_folders_came_as_markers(spec, tmp_path):
    model = tmp_path / "model"
    _saved_model(str(model / "Format-Serving"))
    _as_marker(str(model / "Format-Serving" / "assets"))
    result = _ok(_run(spec, "Pusher", _pusher_input(spec, tmp_path, model)))

    assert os.path.isdir(model / "Format-Serving" / "assets")
    assert "zero-byte directory marker" in result.stderr
    (pushed,) = _output(tmp_path / "outputs" / "executor_output.json"
                        )["artifacts"]["pushed_model"]["artifacts"]
    assert pushed["uri"] == str(tmp_path / "pushed")
    assert pushed["metadata"]["pushed"] == 1
    version_dir = pushed["metadata"]["pushed_destination"]
    assert os.path.dirname(version_dir) == str(tmp_path / "serving")
    assert os.path.isfile(os.path.join(version_dir, "saved_model.pb"))
    assert os.path.isdir(os.path.join(version_dir, "assets"))
    assert os.path.isdir(tmp_path / "pushed" / "assets")


def test_a_zero_byte_format_serving_file_becomes_the_folder_tfx_reads(spec, tmp_path):
    """An empty Model (no baseline pushed yet) whose ``Format-Serving/`` came as a marker."""
    model = tmp_path / "model"
    model.mkdir()
    open(model / "Format-Serving", "wb").close()
    result = _ok(_run(spec, "Pusher", _pusher_input(spec, tmp_path, model)))

    assert os.path.isdir(model / "Format-Serving")
    assert "Format-Serving: a zero-byte directory marker" in result.stderr
    (pushed,) = _output(tmp_path / "outputs" / "executor_output.json"
                        )["artifacts"]["pushed_model"]["artifacts"]
    assert os.path.isdir(pushed["metadata"]["pushed_destination"])


# --- failures ---------------------------------------------------------------------------------


def test_an_executor_that_raises_exits_non_zero_without_an_output_file(spec, tmp_path):
    """LatestBlessedModel raises when the newest pushed version is not the run's."""
    (tmp_path / "serving").mkdir()
    out = tmp_path / "outputs" / "executor_output.json"
    executor_input = {
        "inputs": {"parameterValues": _parameters(
            spec, "LatestBlessedModel", push_destination=str(tmp_path / "serving"),
            pushed_version="7")},
        "outputs": {"artifacts": {"model": _artifact(tmp_path / "model",
                                                     {"schemaTitle": "system.Model"})},
                    "outputFile": str(out)}}
    result = _run(spec, "LatestBlessedModel", executor_input)
    assert result.returncode == 1, result.stderr[-4000:]
    assert "Traceback" in result.stderr
    assert "RuntimeError" in result.stderr and "not 7 as when this run started" in result.stderr
    assert not out.exists()
    assert not out.parent.exists() or _no_partial_files(out.parent)


def test_bad_arguments_exit_non_zero():
    env = dict(os.environ, PYTHONPATH=REPO)
    result = subprocess.run([sys.executable, "-m", "model_garden.kubeflow.entrypoint",
                             "--executor_class_path", "x.Y"],
                            cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 2
    assert "json_serialized_invocation_args" in result.stderr


# --- the fixes, in process --------------------------------------------------------------------


def _executor_input(**artifacts):
    from google.protobuf import json_format
    from kfp.pipeline_spec import pipeline_spec_pb2

    return json_format.ParseDict({"inputs": {"artifacts": artifacts}},
                                 pipeline_spec_pb2.ExecutorInput())


def test_markers_are_replaced_only_where_tfx_expects_a_folder(tmp_path):
    model, text = tmp_path / "model", tmp_path / "text"
    model.mkdir()
    (model / "Format-Serving").write_bytes(b"")
    (model / "empty.txt").write_bytes(b"")  # an empty file, not a marker
    (model / "Split-train").write_bytes(b"x")  # not empty: never touched
    empty_model = tmp_path / "empty_model"
    empty_model.write_bytes(b"")  # the artifact's own folder came as a marker
    text.write_bytes(b"")  # an empty String value artifact is a file
    executor_input = _executor_input(
        model=_artifact(model, {"instanceSchema": "title: tfx.Model\n"}),
        empty=_artifact(empty_model, {"instanceSchema": "title: tfx.Model\n"}),
        text=_artifact(text, {"instanceSchema": "title: tfx.String\n"}),
        remote=_artifact("gs://no-such-bucket/x", {"instanceSchema": "title: tfx.Model\n"}))
    fixed = entrypoint.fix_input_directory_markers(executor_input.inputs.artifacts)
    assert sorted(fixed) == sorted([str(model / "Format-Serving"), str(empty_model)])
    assert os.path.isdir(model / "Format-Serving") and os.path.isdir(empty_model)
    assert os.path.isfile(model / "empty.txt") and os.path.isfile(model / "Split-train")
    assert os.path.isfile(text)


def test_types_come_from_the_spec_only_when_the_backends_name_no_tfx_class():
    from google.protobuf import json_format
    from kfp.pipeline_spec import pipeline_spec_pb2

    inputs = _executor_input(
        a=_artifact("/a", {"schemaTitle": "system.Dataset"}),
        b=_artifact("/b"),
        c=_artifact("/c", {"instanceSchema": ""}),
        d=_artifact("/d", {"instanceSchema": "title: tfx.Examples\n"}),
        e=_artifact("/e", {"schemaTitle": "model_garden.custom.Type"})).inputs.artifacts
    spec = json_format.ParseDict(
        {"artifacts": {k: {"artifactType": {"instanceSchema": EXAMPLES_SCHEMA}}
                       for k in "abcde"}}, pipeline_spec_pb2.ComponentInputsSpec())
    assert sorted(entrypoint.fix_artifact_types(inputs, spec.artifacts, "input")) == ["a", "b", "c"]
    assert {k: entrypoint.schema_title(v.artifacts[0].type) for k, v in inputs.items()} == {
        "a": "tfx.Examples", "b": "tfx.Examples", "c": "tfx.Examples", "d": "tfx.Examples",
        "e": "model_garden.custom.Type"}
    with pytest.raises(ValueError, match="input artifact 'x'"):
        entrypoint.fix_artifact_types(
            _executor_input(x=_artifact("/x", {"schemaTitle": "system.Artifact"})).inputs.artifacts,
            spec.artifacts, "input")


def test_the_backends_own_outputs_are_not_passed_to_tfx():
    from google.protobuf import json_format
    from kfp.pipeline_spec import pipeline_spec_pb2

    executor_input = json_format.ParseDict({"outputs": {"artifacts": {
        "schema": _artifact("/s", {"schemaTitle": "system.Artifact"}),
        "executor-logs": _artifact("/l", {"schemaTitle": "system.Artifact"})}}},
        pipeline_spec_pb2.ExecutorInput())
    spec = json_format.ParseDict(
        {"artifacts": {"schema": {"artifactType": {"instanceSchema": "title: tfx.Schema\n"}}}},
        pipeline_spec_pb2.ComponentOutputsSpec())
    outputs = executor_input.outputs.artifacts
    assert entrypoint.drop_undeclared_outputs(outputs, spec.artifacts) == ["executor-logs"]
    assert entrypoint.fix_artifact_types(outputs, spec.artifacts, "output") == ["schema"]
    assert list(outputs) == ["schema"]

