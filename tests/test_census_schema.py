"""The curated census schema against the real Adult data, with TFDV.

ExampleValidator runs ``tfdv.validate_statistics(stats, schema)``; here the
same call on statistics of real rows: the unchanged files pass, a row with an
unknown category or an out-of-domain number is flagged.
"""

import os

import pandas as pd
import pytest
import tensorflow_data_validation as tfdv
from google.protobuf import text_format
from tensorflow_metadata.proto.v0 import anomalies_pb2, schema_pb2

import model_garden.schemas
from model_garden.datasets import census_csv


@pytest.fixture(scope="module")
def census_dir(data_root) -> str:
    """The byte-exact UCI Adult files (shared/data/census)."""
    return os.path.join(data_root, "census")


@pytest.fixture(scope="module")
def schema():
    path = os.path.join(os.path.dirname(model_garden.schemas.__file__), "census.pbtxt")
    with open(path) as f:
        return text_format.Parse(f.read(), schema_pb2.Schema())


@pytest.fixture(scope="module")
def rows(census_dir):
    """Every real row of adult.data and adult.test."""
    return [
        row
        for name in ("adult.data", "adult.test")
        for row in census_csv.read_file(os.path.join(census_dir, name)).rows
    ]


def _anomalies(frame, schema, environment="TRAINING"):
    stats = tfdv.generate_statistics_from_dataframe(frame)
    return tfdv.validate_statistics(stats, schema, environment=environment).anomaly_info


def test_schema_matches_the_real_values(schema, rows):
    features = {f.name: f for f in schema.feature}
    assert list(features) == list(census_csv.COLUMNS)
    for name, feature in features.items():
        assert feature.shape.dim[0].size == 1 and len(feature.shape.dim) == 1
        assert feature.presence.min_fraction == 1.0
        values = {r[name] for r in rows}
        if name in census_csv.NUMERIC_COLUMNS:
            assert feature.type == schema_pb2.INT
            assert feature.int_domain.min <= min(values)
            assert not feature.int_domain.HasField("max") or max(values) <= feature.int_domain.max
        else:
            assert feature.type == schema_pb2.BYTES
            assert set(feature.string_domain.value) == values
    for name in ("workclass", "occupation", "native_country"):
        assert census_csv.MISSING in features[name].string_domain.value
    assert list(features["income_bracket"].string_domain.value) == list(census_csv.LABEL_CLASSES)
    assert list(features["income_bracket"].not_in_environment) == ["SERVING"]


def test_transform_module_columns_are_the_schema_and_reader_columns(schema):
    # wide_deep's predict_raw signature takes its columns from schemas.census.
    from model_garden.schemas import census

    features = {f.name: f for f in schema.feature}
    assert list(census.RAW_FEATURE_COLUMNS) + [census.RAW_LABEL_KEY] == list(features)
    assert census.RAW_FEATURE_COLUMNS == census_csv.FEATURE_COLUMNS
    numeric = [n for n, f in features.items() if f.type == schema_pb2.INT]
    assert list(census.RAW_NUMERIC_COLUMNS) == numeric == list(census_csv.NUMERIC_COLUMNS)
    label_domain = tuple(features[census.RAW_LABEL_KEY].string_domain.value)
    assert census.LABEL_CLASSES == label_domain == census_csv.LABEL_CLASSES


def test_real_rows_have_no_anomalies(schema, rows):
    assert dict(_anomalies(pd.DataFrame(rows), schema)) == {}


def test_serving_rows_without_label_have_no_anomalies(schema, rows):
    frame = pd.DataFrame(rows[:2000]).drop(columns=[census_csv.LABEL_KEY])
    assert dict(_anomalies(frame, schema, environment="SERVING")) == {}


def test_unknown_category_is_flagged(schema, rows):
    changed = [dict(r) for r in rows[:2000]]
    changed[17]["workclass"] = "Space-force"
    anomalies = _anomalies(pd.DataFrame(changed), schema)
    assert set(anomalies) == {"workclass"}
    reasons = [r.type for r in anomalies["workclass"].reason]
    assert "Space-force" in anomalies["workclass"].description
    assert reasons == [anomalies_pb2.AnomalyInfo.ENUM_TYPE_UNEXPECTED_STRING_VALUES]


def test_out_of_domain_number_is_flagged(schema, rows):
    changed = [dict(r) for r in rows[:2000]]
    changed[3]["age"] = 16  # adult.names: extracted with AAGE>16
    anomalies = _anomalies(pd.DataFrame(changed), schema)
    assert set(anomalies) == {"age"}


def test_missing_label_is_flagged_in_training(schema, rows):
    frame = pd.DataFrame(rows[:2000]).drop(columns=[census_csv.LABEL_KEY])
    assert set(_anomalies(frame, schema)) == {census_csv.LABEL_KEY}
