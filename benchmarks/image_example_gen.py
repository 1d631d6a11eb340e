"""Image ExampleGen benchmark: conversion throughput and peak memory on the real flower photos.

The 400 real photos of ``shared/data/flowers`` are repeated (symbolic links
``r<k>_<name>.jpg`` beside each other in their class folders) to N = 1,000,
4,000 and 16,000 records, and converted, each in a fresh process, two ways:

1. **ExampleGen**: the image ExampleGen's executor
   (:mod:`model_garden.components.image_example_gen`), ``hash:9/1`` split,
   TF-Slim's 5 + 5 shards, on Beam's DirectRunner in ``multi_processing``
   mode with one worker per core (what ``model-garden convert`` runs);
2. **Slim's loop**: one process, one image after the other, as
   ``download_and_convert_flowers.py`` does: read the file, decode it
   (:func:`~model_garden.components.image_normalize.normalize_image`, the
   same check and re-encoding), build the same ``tf.train.Example`` and write
   it with ``tf.io.TFRecordWriter`` into 5 + 5 shards (uncompressed, Slim's way).

Throughput is images over wall time, two ways: over the whole conversion
(the executor's ``Do()``; the loop), without the Python and TF import; and
at steady state, over the converting itself, which for the ExampleGen is its
``conversion_seconds`` (the first shard's start to the last shard's end in
the Beam workers), leaving out Beam's fixed start-up (worker processes, each
importing TensorFlow, about 12 s here) and shutdown; the loop has neither,
so both its figures are the same. The target is judged at steady state on
the 4,000- and 16,000-record runs. Peak memory: the largest
resident set of any one process of the run (the driver or one Beam worker)
and of all of them together, sampled every 200 ms with psutil.

Targets (issue 10): steady-state ExampleGen >= 1.5x Slim's loop on 2 cores;
peak memory flat (the largest within 1.1x of the smallest of the three sizes).
"""

import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from typing import Dict, List, Tuple

from benchmarks.common import markdown_table

SIZES = (1000, 4000, 16000)
SPLIT = "hash:9/1"


def _photos() -> List[Tuple[str, str]]:
    root = os.path.join(os.environ["MODEL_GARDEN_DATA"], "flowers", "flower_photos")
    return sorted((os.path.basename(os.path.dirname(p)), p)
                  for p in glob.glob(os.path.join(root, "*", "*.jpg")))


def make_repeated(folder: str, count: int) -> str:
    """``folder/flower_photos/<class>/r<k>_<name>.jpg``: ``count`` links to the real photos."""
    photos = _photos()
    for k in range(count):
        class_name, path = photos[k % len(photos)]
        target = os.path.join(folder, "flower_photos", class_name,
                              f"r{k // len(photos):03d}_{os.path.basename(path)}")
        os.makedirs(os.path.dirname(target), exist_ok=True)
        os.symlink(path, target)
    return folder


def child_example_gen(input_base: str, out: str) -> Dict:
    from tfx.dsl.components.base.base_beam_executor import BaseBeamExecutor
    from tfx.types import standard_artifacts
    from tfx.types import standard_component_specs as specs

    from model_garden.components import image_example_gen as gen
    from model_garden.datasets import SplitSpec

    component = gen.make_flowers_example_gen(input_base, SplitSpec.parse(SPLIT))
    examples = standard_artifacts.Examples()
    examples.uri = out
    args = ["--direct_running_mode=multi_processing", f"--direct_num_workers={os.cpu_count()}"]
    executor = gen.Executor(BaseBeamExecutor.Context(beam_pipeline_args=args))
    start = time.monotonic()
    executor.Do({}, {specs.EXAMPLES_KEY: [examples]}, dict(component.exec_properties))
    seconds = time.monotonic() - start
    props = examples.mlmd_artifact.custom_properties
    return {"seconds": seconds, "images": props["images_written"].int_value,
            "converting": props["conversion_seconds"].double_value}


def child_slim_loop(input_base: str, out: str) -> Dict:
    import tensorflow as tf

    from model_garden.components import image_example, image_normalize
    from model_garden.components.image_example_gen import hash_bucket
    from model_garden.datasets import image_layouts

    start = time.monotonic()
    layout = image_layouts.find_flowers(input_base)
    splits: Dict[str, list] = {"train": [], "test": []}
    for image in layout.images():
        splits["train" if hash_bucket(image.relpath, 10) < 9 else "test"].append(image)
    written = 0
    for split, images in splits.items():
        for shard in range(5):
            path = os.path.join(out, f"flowers_{split}_{shard:05d}-of-00005.tfrecord")
            os.makedirs(out, exist_ok=True)
            with tf.io.TFRecordWriter(path) as writer:
                for image in images[shard::5]:
                    with open(image.path, "rb") as f:
                        data = f.read()
                    norm = image_normalize.normalize_image(data, image.path)
                    writer.write(image_example.image_to_tfexample(
                        norm.encoded, norm.image_format, norm.height, norm.width, image.label,
                        class_text=image.text).SerializeToString())
                    written += 1
    seconds = time.monotonic() - start
    return {"seconds": seconds, "images": written, "converting": seconds}


def _measure(kind: str, input_base: str, out: str) -> Dict:
    """Runs one conversion in a fresh process; adds its peak memory (MiB)."""
    import psutil

    proc = subprocess.Popen([sys.executable, "-m", "benchmarks.image_example_gen", "--child",
                             kind, input_base, out], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    parent = psutil.Process(proc.pid)
    peak_one = peak_all = 0
    while proc.poll() is None:
        try:
            rss = [p.memory_info().rss for p in [parent] + parent.children(recursive=True)]
        except psutil.Error:
            rss = []
        if rss:
            peak_one, peak_all = max(peak_one, max(rss)), max(peak_all, sum(rss))
        time.sleep(0.2)
    stdout, stderr = proc.communicate()
    if proc.returncode:
        raise RuntimeError(f"{kind} conversion failed:\n{stderr[-4000:]}")
    result = json.loads(stdout.strip().splitlines()[-1])
    result.update(peak_one_mib=peak_one / 2**20, peak_all_mib=peak_all / 2**20)
    return result


def run() -> str:
    """Runs both conversions at every size; returns the markdown tables."""
    results: Dict[Tuple[str, int], Dict] = {}
    with tempfile.TemporaryDirectory(prefix="bench-image-gen-") as tmp:
        for size in SIZES:
            base = make_repeated(os.path.join(tmp, f"in-{size}"), size)
            for kind in ("example_gen", "slim_loop"):
                out = os.path.join(tmp, f"out-{kind}-{size}")
                results[kind, size] = _measure(kind, base, out)
                shutil.rmtree(out, ignore_errors=True)
                assert results[kind, size]["images"] == size, results[kind, size]
    rows = []
    for size in SIZES:
        for kind in ("example_gen", "slim_loop"):
            r = results[kind, size]
            rows.append([kind, f"{size:,}", f"{r['seconds']:.1f}", f"{size / r['seconds']:.0f}",
                         f"{size / r['converting']:.0f}",
                         f"{r['peak_one_mib']:.0f}", f"{r['peak_all_mib']:.0f}"])
    steady = {kind: {size: size / results[kind, size]["converting"] for size in SIZES[1:]}
              for kind in ("example_gen", "slim_loop")}
    ratios = [steady["example_gen"][size] / steady["slim_loop"][size] for size in SIZES[1:]]
    peaks = [results["example_gen", s]["peak_one_mib"] for s in SIZES]
    totals = [results["example_gen", s]["peak_all_mib"] for s in SIZES]
    summary = [
        ["ExampleGen / Slim's loop, steady state at 4,000 and 16,000 records (target >= 1.5x)",
         " and ".join(f"{r:.2f}x" for r in ratios)],
        ["ExampleGen / Slim's loop at 16,000 records, start-up included",
         f"{results['slim_loop', SIZES[2]]['seconds'] / results['example_gen', SIZES[2]]['seconds']:.2f}x"],
        ["ExampleGen peak of one process, largest / smallest size (target <= 1.1x)",
         f"{max(peaks) / min(peaks):.2f}x"],
        ["ExampleGen peak of all its processes, largest / smallest size",
         f"{max(totals) / min(totals):.2f}x"],
    ]
    header = f"Image ExampleGen on the real flower photos repeated, {os.cpu_count()} cores"
    return "\n".join([
        header, "",
        markdown_table(["conversion", "records", "seconds", "images/s", "images/s converting",
                        "peak MiB (one process)", "peak MiB (all processes)"], rows),
        "", markdown_table(["measure", "value"], summary), ""])


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--child":
        os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        import logging

        logging.disable(logging.WARNING)
        child = {"example_gen": child_example_gen, "slim_loop": child_slim_loop}[sys.argv[2]]
        print(json.dumps(child(sys.argv[3], sys.argv[4])))
    else:
        print(run())
