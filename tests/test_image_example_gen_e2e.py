"""End to end: ``model-garden convert`` of the real flowers and ImageNet sample through BeamDagRunner.

``convert flowers``: ExampleGen (its Beam workers in separate processes, as
``model-garden`` runs by default) -> StatisticsGen -> ExampleValidator
against the curated schema, on the 400 real photos: no anomalies, 400
examples in the statistics. A second run with nothing changed comes from
the TFX cache. ``convert imagenet``: the 100-image sample converts with 100
distinct labels that match its csv.
"""

import csv
import os
import subprocess
import sys

import pytest

from model_garden.components import image_example as ie
from model_garden.pipelines import report
from tests.test_image_example_gen import read_split

pytestmark = pytest.mark.slow


def _convert(output_root, *args):
    cmd = [sys.executable, "-m", "model_garden.cli", "convert", *args,
           "--output-root", str(output_root), "--direct-num-workers", "2"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:]
    return proc.stdout


def _output(metadata_path, node_id):
    """The one output artifact (MLMD proto) of ``node_id`` in the latest run."""
    store = report.open_store(metadata_path)
    [row] = [r for r in report.component_runs(metadata_path) if r.node_id == node_id]
    events = store.get_events_by_execution_ids([row.execution_id])
    [artifact] = store.get_artifacts_by_id([e.artifact_id for e in events if e.type == e.OUTPUT])
    return artifact


def _examples(metadata_path):
    """The Examples artifact the latest run's ExampleGen wrote (a TFX Artifact)."""
    from tfx.types import standard_artifacts

    examples = standard_artifacts.Examples()
    examples.set_mlmd_artifact(_output(metadata_path, "ExampleGen"))
    return examples


def _statistics_count(metadata_path):
    """Examples counted by StatisticsGen over both splits."""
    import tensorflow_data_validation as tfdv

    uri = _output(metadata_path, "StatisticsGen").uri
    return sum(tfdv.load_stats_binary(os.path.join(uri, f"Split-{s}", "FeatureStats.pb"))
               .datasets[0].num_examples for s in ("train", "test"))


def test_convert_flowers_validates_the_400_photos_and_reruns_from_the_cache(tmp_path):
    out = _convert(tmp_path, "flowers", "--split", "hash:9/1")
    metadata = os.path.join(tmp_path, "data", "flowers", "metadata.sqlite")
    runs = {r.node_id: r for r in report.component_runs(metadata)}
    assert {n: r.state for n, r in runs.items()} == {
        n: "COMPLETE" for n in ("ExampleGen", "StatisticsGen", "CuratedSchema", "InferredSchema",
                                "ExampleValidator")}
    assert runs["ExampleValidator"].blessed is True  # no anomalies against the curated schema
    assert "images: 400 written (0 re-encoded to RGB JPEG), 0 skipped" in out
    assert _statistics_count(metadata) == 400
    examples = _examples(metadata)
    rows = read_split(examples, "train") + read_split(examples, "test")
    assert len(rows) == 400 and {r[ie.LABEL_KEY] for r in rows} == set(range(5))

    _convert(tmp_path, "flowers", "--split", "hash:9/1")
    again = {r.node_id: r.state for r in report.component_runs(metadata)}
    assert again["ExampleGen"] == again["StatisticsGen"] == "CACHED"


def test_convert_the_imagenet_sample_gives_100_labels_matching_its_csv(tmp_path, data_root):
    out = _convert(tmp_path, "imagenet", "--split", "hash:4/1")
    assert "images: 100 written (1 re-encoded to RGB JPEG), 0 skipped" in out
    metadata = os.path.join(tmp_path, "data", "imagenet", "metadata.sqlite")
    runs = {r.node_id: r for r in report.component_runs(metadata)}
    assert runs["ExampleValidator"].blessed is True
    examples = _examples(metadata)
    rows = read_split(examples, "train") + read_split(examples, "test")
    with open(os.path.join(data_root, "imagenet", "sample-images-labels.csv"), newline="") as f:
        expected = {r["synset"]: int(r["label_index"]) + 1 for r in csv.DictReader(f)}
    assert len(rows) == 100
    assert {r[ie.SYNSET_KEY]: r[ie.LABEL_KEY] for r in rows} == expected
