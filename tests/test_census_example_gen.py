"""The census ExampleGen executor's Do() on the real Adult files.

Run as TFX's own executor tests do (csv_example_gen/executor_test.py): an
Examples artifact, exec_properties as the component serializes them, Do().
"""

import collections
import os

import pytest
import tensorflow as tf
from tfx.types import artifact_utils, standard_artifacts

from model_garden.components import census_example_gen
from model_garden.datasets import SplitSpec, census_csv


@pytest.fixture(scope="module")
def census_dir(data_root) -> str:
    """The byte-exact UCI Adult files (shared/data/census)."""
    return os.path.join(data_root, "census")


def _run(input_base, split, out_dir, on_bad_rows="raise"):
    """Builds the component and runs its executor's Do(); returns the artifact."""
    component = census_example_gen.make_example_gen(input_base, split, on_bad_rows)
    exec_properties = {
        k: component.exec_properties[k]
        for k in ("input_base", "input_config", "output_config", "custom_config")
    }
    examples = standard_artifacts.Examples()
    examples.uri = str(out_dir)
    census_example_gen.Executor().Do({}, {"examples": [examples]}, exec_properties)
    return examples


def _read_split(examples, split):
    pattern = os.path.join(artifact_utils.get_split_uri([examples], split), "*.gz")
    files = tf.io.gfile.glob(pattern)
    assert files, pattern
    return [
        tf.train.Example.FromString(r.numpy())
        for r in tf.data.TFRecordDataset(files, compression_type="GZIP")
    ]


def _value(example, key):
    feature = example.features.feature[key]
    kind = feature.WhichOneof("kind")
    values = getattr(feature, kind).value
    assert len(values) == 1, (key, values)
    return kind, values[0]


def test_component_wiring(census_dir):
    component = census_example_gen.make_example_gen(census_dir, SplitSpec())
    assert component.id == "ExampleGen"
    assert component.executor_spec.executor_class is census_example_gen.Executor
    assert '"pattern": "adult.data"' in component.exec_properties["input_config"]
    hashed = census_example_gen.make_example_gen(census_dir, SplitSpec.parse("hash:3/1"))
    assert '"hash_buckets": 3' in hashed.exec_properties["output_config"]
    # The hash pattern takes both data files and leaves adult.names out.
    matched = tf.io.gfile.glob(os.path.join(census_dir, census_example_gen.HASH_PATTERN))
    assert sorted(os.path.basename(p) for p in matched) == ["adult.data", "adult.test"]


def test_official_split_full_files(census_dir, tmp_path):
    examples = _run(census_dir, SplitSpec(), tmp_path)
    assert artifact_utils.decode_split_names(examples.split_names) == ["train", "test"]
    for split, name in (("train", "adult.data"), ("test", "adult.test")):
        expected = census_csv.read_file(os.path.join(census_dir, name)).rows
        got = _read_split(examples, split)
        assert len(got) == len(expected)
        for key in census_csv.COLUMNS:
            kind = "int64_list" if key in census_csv.NUMERIC_COLUMNS else "bytes_list"
            assert _value(got[0], key)[0] == kind
        labels = collections.Counter(_value(e, "income_bracket")[1] for e in got)
        assert labels == collections.Counter(
            r["income_bracket"].encode() for r in expected
        )
        # Same rows as the parser (as a multiset: Beam need not keep order).
        as_tuples = collections.Counter(
            tuple(_value(e, k)[1] for k in census_csv.COLUMNS) for e in got
        )
        assert as_tuples == collections.Counter(
            tuple(
                r[k] if k in census_csv.NUMERIC_COLUMNS else r[k].encode()
                for k in census_csv.COLUMNS
            )
            for r in expected
        )


def test_hash_split_full_files(census_dir, tmp_path):
    examples = _run(census_dir, SplitSpec.parse("hash:4/1"), tmp_path)
    assert artifact_utils.decode_split_names(examples.split_names) == ["train", "test"]
    train, test = _read_split(examples, "train"), _read_split(examples, "test")
    total = sum(
        len(census_csv.read_file(os.path.join(census_dir, n)).rows)
        for n in ("adult.data", "adult.test")
    )
    assert len(train) + len(test) == total
    assert abs(len(train) / total - 0.8) < 0.01
    labels = {_value(e, "income_bracket")[1] for e in train + test}
    assert labels == {c.encode() for c in census_csv.LABEL_CLASSES}


def _broken_input(census_dir, folder, bad_lines):
    """adult.data / adult.test heads (real lines) with ``bad_lines`` of
    adult.data's head losing their 4th field."""
    folder.mkdir()
    for name in ("adult.data", "adult.test"):
        with open(os.path.join(census_dir, name)) as f:
            lines = [next(f) for _ in range(300)]
        if name == "adult.data":
            for number in bad_lines:
                fields = lines[number - 1].rstrip("\n").split(", ")
                del fields[3]
                lines[number - 1] = ", ".join(fields) + "\n"
        (folder / name).write_text("".join(lines))
    return str(folder)


def test_bad_row_fails_naming_file_and_line(census_dir, tmp_path):
    input_base = _broken_input(census_dir, tmp_path / "in", [42])
    with pytest.raises(Exception) as info:
        _run(input_base, SplitSpec(), tmp_path / "out")
    message = str(info.value)
    assert f"{os.path.join(input_base, 'adult.data')}:42: expected 15 fields, found 14" in message


def test_bad_rows_dropped_with_custom_config(census_dir, tmp_path, caplog):
    input_base = _broken_input(census_dir, tmp_path / "in", [42, 250])
    with caplog.at_level("WARNING"):
        examples = _run(input_base, SplitSpec(), tmp_path / "out", on_bad_rows="drop")
    assert len(_read_split(examples, "train")) == 300 - 2
    assert len(_read_split(examples, "test")) == 300 - 1  # the "|1x3" comment line
    assert "adult.data: dropped 2 bad rows (lines 42, 250)" in caplog.text


def test_on_bad_rows_from_custom_config():
    config = census_example_gen.make_custom_config("drop")
    assert census_example_gen.on_bad_rows_of({"custom_config": config}) == "drop"
    assert census_example_gen.on_bad_rows_of({}) == "raise"
    with pytest.raises(ValueError):
        census_example_gen.make_custom_config("ignore")
