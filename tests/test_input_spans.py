"""Spans: which input a run reads, its fingerprint, and ExampleGen over a window of spans.

The span folders hold plain idx files cut from the real MNIST ``t10k`` files
(``shared/data/mnist``), as in ``test_mnist_example_gen``; span 1 and span 2
hold different real digits, so the examples show which spans were read.
"""

import json
import os

import pytest
from tfx.types import standard_artifacts, standard_component_specs as specs

from model_garden.components import input_spans as spans_lib
from model_garden.components import mnist_example_gen as meg
from model_garden.datasets import SplitSpec
from tests.test_mnist_example_gen import (  # noqa: F401  (real_t10k is a fixture)
    _pixels_to_label, _read_split, _subset_dir, real_t10k)

PER_SPAN = 120


def _spans(root, real_t10k, spans):
    """``root/span-N`` for each N in ``spans``: PER_SPAN real digits each, distinct per span."""
    for n in spans:
        _subset_dir(os.path.join(root, f"span-{n}"), real_t10k,
                    {"t10k": slice(n * PER_SPAN, (n + 1) * PER_SPAN)})
    return str(root)


def test_latest_span_and_a_rolling_window(tmp_path, real_t10k):
    base = _spans(tmp_path, real_t10k, [1, 2, 10])
    os.makedirs(tmp_path / "span-x")  # not a span: ignored
    assert spans_lib.list_spans(base) == [1, 2, 10]  # numeric, not lexical, order
    latest = spans_lib.resolve_spans(base, 1)
    assert latest.spans == (10,) and latest.latest_span == 10 and latest.files == 2
    assert latest.folders() == [os.path.join(base, "span-10")]
    window = spans_lib.resolve_spans(base, 2)
    assert window.spans == (2, 10) and window.files == 4
    assert spans_lib.resolve_spans(base, 5).spans == (1, 2, 10)  # fewer present than K
    assert spans_lib.SpanWindow.from_json(window.to_json()) == window
    # Without the span layout the folder is read as is (span 0).
    flat = spans_lib.resolve_spans(os.path.join(base, "span-1"))
    assert flat.spans == () and flat.latest_span == 0 and flat.files == 2


def test_the_fingerprint_changes_exactly_when_the_input_changes(tmp_path, real_t10k):
    base = _spans(tmp_path, real_t10k, [1])
    first = spans_lib.resolve_spans(base, 1)
    assert spans_lib.resolve_spans(base, 1) == first  # unchanged: same key
    # Hidden files (partial uploads) are not input.
    (tmp_path / "span-1" / ".upload.tmp").write_bytes(b"partial")
    assert spans_lib.resolve_spans(base, 1).fingerprint == first.fingerprint
    # A file rewritten (same size, new mtime) is new input.
    images = tmp_path / "span-1" / "t10k-images-idx3-ubyte"
    stat = images.stat()
    os.utime(images, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    touched = spans_lib.resolve_spans(base, 1)
    assert touched.fingerprint != first.fingerprint and touched.spans == (1,)
    # A new span moves the window.
    _spans(tmp_path, real_t10k, [2])
    assert spans_lib.resolve_spans(base, 1).spans == (2,)


@pytest.mark.parametrize("setup,spans,message", [
    ("missing", 1, "the input folder does not exist"),
    ("flat", 1, "no span folders"),
    ("empty-span", 1, "no input files"),
    ("flat", 0, "--spans must be a whole number >= 1"),
])
def test_bad_input_names_the_folder(tmp_path, real_t10k, setup, spans, message):
    base = tmp_path / "in"
    if setup == "flat":
        _subset_dir(str(base), real_t10k, {"t10k": slice(0, 5)})
    elif setup == "empty-span":
        os.makedirs(base / "span-3")
    with pytest.raises(spans_lib.InputSpansError, match=message) as e:
        spans_lib.resolve_spans(str(base), spans)
    if spans >= 1:
        assert str(base) in str(e.value)


def test_the_kubeflow_step_writes_the_window_as_its_string_output(tmp_path, real_t10k):
    base = _spans(tmp_path / "in", real_t10k, [1, 2])
    output = standard_artifacts.String()
    output.uri = str(tmp_path / "out" / "value")
    os.makedirs(os.path.dirname(output.uri))
    spans_lib.Executor().Do({}, {spans_lib.INPUT_SPANS_KEY: [output]},
                            {"input_base": base, spans_lib.SPANS_KEY: 2})
    assert spans_lib.SpanWindow.from_json(output.value) == spans_lib.resolve_spans(base, 2)
    # The component's spec: 0 means no span layout.
    step = spans_lib.InputSpans(base)
    assert step.exec_properties[spans_lib.SPANS_KEY] == 0
    assert set(step.outputs) == {spans_lib.INPUT_SPANS_KEY}


def _run_example_gen(input_base, window, out_dir):
    component = meg.make_example_gen(input_base, SplitSpec.parse("hash"), window.to_json())
    props = component.exec_properties
    examples = standard_artifacts.Examples()
    examples.uri = str(out_dir)
    meg.Executor().Do({}, {specs.EXAMPLES_KEY: [examples]}, {
        specs.INPUT_BASE_KEY: input_base,
        specs.INPUT_CONFIG_KEY: props[specs.INPUT_CONFIG_KEY],
        specs.OUTPUT_CONFIG_KEY: props[specs.OUTPUT_CONFIG_KEY],
        spans_lib.INPUT_SPANS_KEY: props[spans_lib.INPUT_SPANS_KEY],
    })
    return examples


def test_example_gen_reads_every_span_of_the_window_and_stamps_the_latest(tmp_path, real_t10k):
    base = _spans(tmp_path / "in", real_t10k, [1, 2, 3])
    window = spans_lib.resolve_spans(base, 2)
    examples = _run_example_gen(base, window, tmp_path / "out")
    got = _read_split(examples, "train") + _read_split(examples, "test")
    assert len(got) == 2 * PER_SPAN
    images, labels = real_t10k
    expected = _pixels_to_label(images[2 * PER_SPAN:4 * PER_SPAN],
                                labels[2 * PER_SPAN:4 * PER_SPAN])  # spans 2 and 3
    import tensorflow as tf

    seen = {tf.io.decode_png(e.features.feature["image/encoded"].bytes_list.value[0])
            .numpy()[..., 0].tobytes() for e in got}
    assert seen == set(expected)
    assert examples.span == 3
    assert examples.get_string_custom_property("input_fingerprint") == window.fingerprint
    assert examples.get_string_custom_property("spans") == "2,3"
    assert json.loads(window.to_json())["spans"] == [2, 3]
