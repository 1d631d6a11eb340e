"""The AnomaliesGate (issue 13 item 5) on anomalies TFX's own ExampleValidator found in real data.

The statistics are TFDV's of the real UCI Adult rows (``adult.data`` as
``train``, ``adult.test`` as ``test``), one ``workclass`` changed to
'Space-force' (and, in one case, one ``age`` to 16, below the schema's
17); TFX's ExampleValidator executor validates them against the curated
``schemas/census.pbtxt`` and writes its ``ExampleAnomalies`` artifact as in a
pipeline run. The gate's executor reads that artifact.
"""

import logging
import os

import pytest

from model_garden.components import anomalies_gate as gate
from model_garden.datasets import census_csv
from model_garden.pipelines import factory, recipes

SCHEMAS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                       "model_garden", "schemas")
SPACE_FORCE = gate.Anomaly(
    "train", "workclass", "ENUM_TYPE_UNEXPECTED_STRING_VALUES", "Unexpected string values",
    "Examples contain values missing from the schema: Space-force (<1%).")


@pytest.fixture(scope="module")
def census_rows(data_root):
    """{split: rows} of the real adult.data (train) and adult.test (test)."""
    folder = os.path.join(data_root, "census")
    return {"train": census_csv.read_file(os.path.join(folder, "adult.data")).rows,
            "test": census_csv.read_file(os.path.join(folder, "adult.test")).rows}


def _validated(root, rows_by_split):
    """TFX's ExampleValidator executor on TFDV statistics of ``rows_by_split``: its output."""
    import pandas as pd
    import tensorflow_data_validation as tfdv
    from tfx.components.example_validator import executor as validator
    from tfx.types import artifact_utils, standard_artifacts
    from tfx.utils import io_utils

    statistics = standard_artifacts.ExampleStatistics()
    statistics.uri = os.path.join(root, "statistics")
    statistics.split_names = artifact_utils.encode_split_names(list(rows_by_split))
    for split, rows in rows_by_split.items():
        stats = tfdv.generate_statistics_from_dataframe(pd.DataFrame(rows))
        io_utils.write_bytes_file(os.path.join(statistics.uri, f"Split-{split}", "FeatureStats.pb"),
                                  stats.SerializeToString())
    schema = standard_artifacts.Schema()
    schema.uri = os.path.join(root, "schema")
    io_utils.copy_file(os.path.join(SCHEMAS, "census.pbtxt"),
                       os.path.join(schema.uri, "schema.pbtxt"))
    anomalies = standard_artifacts.ExampleAnomalies()
    anomalies.uri = os.path.join(root, "anomalies")
    validator.Executor().Do({"statistics": [statistics], "schema": [schema]},
                            {"anomalies": [anomalies]}, {"exclude_splits": "[]"})
    return anomalies


def _changed(rows, index, **values):
    rows = [dict(r) for r in rows]
    rows[index].update(values)
    return rows


@pytest.fixture(scope="module")
def space_force(tmp_path_factory, census_rows):
    """The anomalies artifact of adult.data with row 17's workclass 'Space-force'."""
    return _validated(str(tmp_path_factory.mktemp("space-force")), {
        "train": _changed(census_rows["train"], 17, workclass="Space-force"),
        "test": census_rows["test"]})


@pytest.fixture(scope="module")
def clean(tmp_path_factory, census_rows):
    """The anomalies artifact of the unchanged files."""
    return _validated(str(tmp_path_factory.mktemp("clean")), census_rows)


def _gate(artifact, on_anomalies):
    gate.Executor().Do({gate.ANOMALIES_KEY: [artifact]}, {}, {gate.ON_ANOMALIES_KEY: on_anomalies})


def test_the_unknown_category_is_read_as_tfdv_words_it(space_force):
    assert gate.read_anomalies(space_force) == [SPACE_FORCE]


def test_fail_stops_with_one_line_listing_each_anomaly(tmp_path, census_rows):
    rows = _changed(_changed(census_rows["train"], 17, workclass="Space-force"), 3, age=16)
    artifact = _validated(str(tmp_path), {"train": rows, "test": census_rows["test"]})
    with pytest.raises(gate.AnomaliesFound) as raised:
        _gate(artifact, "fail")
    message = str(raised.value)
    assert "\n" not in message
    assert message.startswith(
        "2 anomalies against the curated schema, stopped before Transform (on_anomalies=fail; "
        "fix the data or the schema, or set on_anomalies=warn to train on it anyway): "
        "train: age: INT_TYPE_SMALL_INT")
    assert message.endswith(f"; {SPACE_FORCE}")
    assert [(a.split, a.feature) for a in raised.value.anomalies] == [("train", "age"),
                                                                     ("train", "workclass")]
    assert raised.value.anomalies[0].kind.startswith("INT_TYPE_SMALL_INT")


def test_the_error_keeps_its_list_when_beam_re_raises_it(space_force):
    """BeamDagRunner re-raises ``type(e)(e.args[0] + " [while running ...]", *e.args[1:])``
    (apache_beam/runners/common.py ``_reraise_augmented``): the list must survive."""
    with pytest.raises(gate.AnomaliesFound) as raised:
        _gate(space_force, "fail")
    error = raised.value
    again = type(error)(error.args[0] + " [while running 'Run[AnomaliesGate]']", *error.args[1:])
    assert str(again) == str(error) + " [while running 'Run[AnomaliesGate]']"
    assert str(error).endswith(f"on it anyway): {SPACE_FORCE}")


def test_warn_logs_each_anomaly_and_goes_on(space_force, caplog):
    with caplog.at_level(logging.WARNING):
        _gate(space_force, "warn")
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING] == [
        f"anomaly (on_anomalies=warn, going on): {SPACE_FORCE}"]


def test_clean_data_passes_the_fail_gate(clean):
    assert gate.read_anomalies(clean) == []
    _gate(clean, "fail")


@pytest.mark.parametrize("value", ["stop", "WARN", "", None])
def test_a_policy_other_than_warn_or_fail_is_refused_before_reading(value):
    from tfx.types import standard_artifacts

    missing = standard_artifacts.ExampleAnomalies()
    missing.uri = "/nonexistent/anomalies"
    missing.split_names = '["train"]'
    with pytest.raises(ValueError, match=f"pipeline parameter on_anomalies {value!r} is not "
                                         "one of warn, fail"):
        _gate(missing, value)


def test_the_describe_lines_are_aligned(space_force):
    other = gate.Anomaly("test", "(dataset)", "DATASET_LOW_NUM_EXAMPLES", "Low num examples",
                         "The dataset has 0 examples.")
    assert gate.describe([SPACE_FORCE, other]) == [
        "train  workclass  ENUM_TYPE_UNEXPECTED_STRING_VALUES  Unexpected string values: "
        "Examples contain values missing from the schema: Space-force (<1%).",
        "test   (dataset)  DATASET_LOW_NUM_EXAMPLES            Low num examples: "
        "The dataset has 0 examples."]


# --- where the gate sits in the pipeline ------------------------------------------------------


def _pipeline(tmp_path, data_root, **options):
    return factory.create_pipeline(recipes.get_recipe("census_wide"), factory.PipelineOptions(
        input_base=os.path.join(data_root, "census"), pipeline_root=str(tmp_path / "pipeline"),
        serving_dir=str(tmp_path / "serving"), metadata_path=str(tmp_path / "m.sqlite"),
        **options))


@pytest.mark.parametrize("on_anomalies", ["warn", "fail"])
def test_transform_runs_after_the_gate_in_the_local_runners_ir(tmp_path, data_root, on_anomalies):
    """The IR BeamDagRunner and LocalDagRunner run: Transform's upstream nodes hold the gate."""
    from tfx.dsl.compiler import compiler

    pipeline = _pipeline(tmp_path, data_root, on_anomalies=on_anomalies)
    order = [c.id for c in pipeline.components]  # LocalDagRunner's order
    assert order.index("ExampleValidator") < order.index("AnomaliesGate") < order.index("Transform")
    ir = compiler.Compiler().compile(pipeline)
    nodes = {n.pipeline_node.node_info.id: n.pipeline_node for n in ir.nodes}
    assert "AnomaliesGate" in nodes["Transform"].upstream_nodes
    assert list(nodes["AnomaliesGate"].upstream_nodes) == ["ExampleValidator"]
    gate_node = nodes["AnomaliesGate"]
    assert gate_node.parameters.parameters["on_anomalies"].field_value.string_value == on_anomalies
    # The gate is an ordering edge only: Transform's inputs are unchanged.
    assert set(nodes["Transform"].inputs.inputs) == {"examples", "schema"}


def test_create_pipeline_refuses_an_unknown_policy(tmp_path, data_root):
    with pytest.raises(ValueError, match="on_anomalies 'stop' is not one of warn, fail"):
        _pipeline(tmp_path, data_root, on_anomalies="stop")


# --- the run summary, read back from ML Metadata ----------------------------------------------


def _validate_and_gate(root, statistics_uri, on_anomalies):
    """LocalDagRunner: imported statistics -> ExampleValidator (curated schema) -> the gate.

    Returns the run's ``metadata.sqlite``, and the error the run raised (or ``None``).
    """
    from tfx import v1 as tfx

    statistics = tfx.dsl.Importer(
        source_uri=statistics_uri, artifact_type=tfx.types.standard_artifacts.ExampleStatistics,
        properties={"split_names": '["train", "test"]'}).with_id("Statistics")
    schema = tfx.components.ImportSchemaGen(
        schema_file=os.path.join(SCHEMAS, "census.pbtxt")).with_id("CuratedSchema")
    validator = tfx.components.ExampleValidator(statistics=statistics.outputs["result"],
                                                schema=schema.outputs["schema"])
    gate_step = gate.AnomaliesGate(validator.outputs["anomalies"], on_anomalies).with_id(
        gate.COMPONENT_ID)
    metadata = os.path.join(root, "metadata.sqlite")
    pipeline = tfx.dsl.Pipeline(
        pipeline_name="anomalies-summary", pipeline_root=os.path.join(root, "pipeline"),
        components=[statistics, schema, validator, gate_step],
        metadata_connection_config=tfx.orchestration.metadata.sqlite_metadata_connection_config(
            metadata))
    try:
        tfx.orchestration.LocalDagRunner().run(pipeline)
    except gate.AnomaliesFound as e:
        return metadata, e
    return metadata, None


def test_the_summary_lists_each_anomaly_or_says_none(tmp_path, space_force, clean):
    from model_garden.pipelines import report

    statistics = os.path.join(os.path.dirname(space_force.uri), "statistics")
    metadata, error = _validate_and_gate(str(tmp_path / "warn"), statistics, "warn")
    assert error is None
    assert report.anomalies(metadata) == [SPACE_FORCE]
    assert report.anomalies_summary(metadata).splitlines() == [
        "anomalies against the curated schema: 1 (on_anomalies=warn: the pipeline went on)",
        "  train  workclass  ENUM_TYPE_UNEXPECTED_STRING_VALUES  Unexpected string values: "
        "Examples contain values missing from the schema: Space-force (<1%)."]

    metadata, error = _validate_and_gate(str(tmp_path / "fail"), statistics, "fail")
    assert error is not None and error.anomalies == [SPACE_FORCE]
    assert {r.node_id: r.state for r in report.component_runs(metadata)}["AnomaliesGate"] == (
        "FAILED")
    assert report.anomalies_summary(metadata).splitlines()[0] == (
        "anomalies against the curated schema: 1 (on_anomalies=fail: the pipeline stopped "
        "before Transform)")

    statistics = os.path.join(os.path.dirname(clean.uri), "statistics")
    metadata, error = _validate_and_gate(str(tmp_path / "clean"), statistics, "fail")
    assert error is None
    assert report.anomalies(metadata) == []
    assert report.anomalies_summary(metadata) == "anomalies: none"
