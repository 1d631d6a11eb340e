"""TF-Slim Trainer benchmark: training throughput of the Trainer's input on the flower photos.

Measures, in images per second, training of ``mobilenet_v1`` and
``resnet_v1_50`` (:mod:`model_garden.nets`, 5 classes, 224 x 224, batch 32,
float32, on the CPU) on the real flower photos of ``shared/data/flowers``
(the 400 photos, ``hash:9/1`` split: the train split, repeated), fed two
ways, in one process on the same machine:

1. **TFX Trainer** input: what ``image_classifier.run_fn`` feeds ``model.fit``
   (:func:`model_garden.trainers.image_classifier.make_dataset`, training
   mode): the gzipped TFRecords written by the real image ExampleGen
   executor (:mod:`model_garden.components.image_example_gen`), read through
   the Trainer's ``DataAccessor`` (tfxio) with the raw schema
   (``flowers.pbtxt``), the Transform graph of
   :func:`model_garden.schemas.slim_images.preprocessing_fn` (written by the
   real Transform executor, ``materialize=False``: the encoded bytes pass
   through) applied in ``tf.data``, shuffling, then per image the JPEG decode
   and the net's training preprocessing (``inception`` for MobileNet v1:
   distorted-box crop, of which only the window is decoded
   (``decode_and_crop_jpeg``), resize, flip, colour distortion; ``vgg`` for ResNet
   v1: random aspect-preserving resize to 256..512, random crop, flip, mean
   subtraction).
2. **plain Keras**, the same decoded images: the very JPEGs of the train
   split the Trainer reads (from the ExampleGen's records, so the same
   photos, bytes and labels), decoded once before timing with the Trainer's
   own decoder (``tf.io.decode_image(channels=3)``) into uint8 arrays of
   their own sizes, held in memory as one ``tf.RaggedTensor``; then
   ``tf.data.Dataset.from_tensor_slices``, shuffled over all of them,
   repeated, the same training preprocessing
   (:func:`model_garden.preprocessing.get_preprocessing` of the net's name)
   mapped (``AUTOTUNE``), batched and prefetched. This is the reference of
   the target.

What "the same decoded images" means here: both sides train on the same
photos with the same random training preprocessing, so the only work the
plain side does not do per step is what the Trainer must do because it
cannot hold a dataset decoded in memory (ImageNet decoded is ~40x its
JPEGs): reading and parsing the records, the Transform graph and the JPEG
decode. The photos have different sizes, so there is no ``numpy`` array to
``fit`` on without preprocessing them first: a fixed pre-cropped array
would drop the random augmentation the Trainer does, and would not be the
same training.

Models are built and compiled as the Trainer does (``nets.build`` with the
recipe's ``weight_decay``, then ``image_classifier.compile_model`` with
``make_optimizer(config, make_schedule(config))``), with the configs of the
recipes ``flowers_mobilenet_v1`` (RMSProp, Slim's defaults) and
``imagenet_resnet_v1_50`` (momentum SGD, official/resnet's schedule), both
overridden to batch 32. Each side trains its own model (same architecture,
same initial weights), pinned to the CPU. A callback stamps the end of every
step; the first ``WARMUP_STEPS`` steps of every ``fit`` (tracing, shuffle
buffers, tf.data autotuning) are excluded; throughput is ``TIMED_STEPS[net]
* 32`` images over the wall time of the timed steps, and over the process
CPU time of those steps (images per CPU-second, all threads). The two sides
run back to back in each of ``ROUNDS`` rounds, alternating which goes first;
the ratios are taken within each round (paired) and the table gives their
median and range. Also reported: each input pipeline alone (no model).

Target: the TFX Trainer at least 0.95x plain Keras, per net, as the median
of the per-round images/s ratios.

GPU part (:func:`run_gpu`, ``python -m benchmarks.slim_trainer --gpu``, one
script of a few minutes): ``resnet_v1_50`` with ``mixed_float16`` (the
Trainer's ``auto`` policy on a GPU) at the recipe's batch 256, through the
Trainer's input against a synthetic in-memory input (one batch of random
float32 images and labels, ``Dataset.from_tensors(...).repeat()``: the
ceiling of any input pipeline), paired rounds as above. Target: at least
0.9x. Without a GPU it says "not measured: no GPU".
"""

import os
import statistics
import sys
import tempfile
import time
from typing import Dict, List

from benchmarks.common import (fit_throughput, markdown_table, paired_rounds, pipeline_alone,
                               transform_artifacts)

BATCH = 32
IMAGE_SIZE = 224
NUM_CLASSES = 5
SPLIT = "hash:9/1"  # Slim's flowers: 3,320 train / 350 validation
#: net -> the recipe whose Trainer config (optimizer, schedule, weight decay) it trains with.
NETS = {"mobilenet_v1": "flowers_mobilenet_v1", "resnet_v1_50": "imagenet_resnet_v1_50"}
WARMUP_STEPS = 2
TIMED_STEPS = {"mobilenet_v1": 12, "resnet_v1_50": 5}
ROUNDS = 3
PIPELINE_ONLY_BATCHES = 8
TARGET = 0.95

GPU_NET = "resnet_v1_50"
GPU_BATCH = 256  # the imagenet_resnet_v1_50 recipe's
GPU_WARMUP_STEPS = 10
GPU_TIMED_STEPS = 40
GPU_ROUNDS = 3
GPU_TARGET = 0.9


def _flowers_dir() -> str:
    """``$MODEL_GARDEN_DATA/flowers`` (default: ``shared/data`` beside the checkout)."""
    here = os.path.dirname(os.path.abspath(__file__))
    root = os.environ.get("MODEL_GARDEN_DATA") or os.path.join(here, "..", "..", "shared", "data")
    folder = os.path.abspath(os.path.join(root, "flowers"))
    if not os.path.isdir(os.path.join(folder, "flower_photos")):
        raise FileNotFoundError(f"{folder}/flower_photos: the real flower photos are needed "
                                "(set MODEL_GARDEN_DATA to shared/data)")
    return folder


def _pipeline_artifacts(input_base: str, out: str) -> Dict:
    """Runs the real image ExampleGen and Transform executors; returns the Trainer's inputs.

    The ExampleGen runs as its tests run it (``make_flowers_example_gen``'s
    exec properties, Beam's in-process DirectRunner); see
    :func:`benchmarks.common.transform_artifacts` for the rest.
    """
    from tfx.dsl.components.base.base_beam_executor import BaseBeamExecutor
    from tfx.types import standard_artifacts
    from tfx.types import standard_component_specs as specs

    from model_garden.components import image_example_gen as gen
    from model_garden.datasets import SplitSpec
    from model_garden.schemas import slim_images

    component = gen.make_flowers_example_gen(input_base, SplitSpec.parse(SPLIT))
    examples = standard_artifacts.Examples()
    examples.uri = os.path.join(out, "examples")
    gen.Executor(BaseBeamExecutor.Context(beam_pipeline_args=[])).Do(
        {}, {specs.EXAMPLES_KEY: [examples]}, dict(component.exec_properties))
    schema_file = os.path.join(os.path.dirname(slim_images.__file__), "flowers.pbtxt")
    return transform_artifacts(examples, schema_file,
                               "model_garden.schemas.slim_images.preprocessing_fn", out)


def _decoded_train_images(train_files: List[str]):
    """The train split's JPEGs, decoded: uint8 ``[N, (H), (W), 3]`` ragged, int64 labels ``[N]``.

    Read from the ExampleGen's records the Trainer reads (``fn_args.train_files``),
    decoded with the Trainer's decoder (``image_classifier._decode``).
    """
    import numpy as np
    import tensorflow as tf

    from model_garden.schemas.cifar10 import LABEL_KEY, RAW_IMAGE_KEY
    from model_garden.trainers import image_classifier

    files = sorted(f for pattern in train_files for f in tf.io.gfile.glob(pattern))
    spec = {RAW_IMAGE_KEY: tf.io.FixedLenFeature([], tf.string),
            LABEL_KEY: tf.io.FixedLenFeature([], tf.int64)}
    images, labels = [], []
    for record in tf.data.TFRecordDataset(files, compression_type="GZIP"):
        example = tf.io.parse_single_example(record, spec)
        images.append(image_classifier._decode(example[RAW_IMAGE_KEY]).numpy())
        labels.append(int(example[LABEL_KEY]))
    pixels = np.concatenate([image.reshape(-1, 3) for image in images])
    rows = tf.RaggedTensor.from_row_lengths(
        pixels, np.concatenate([[image.shape[1]] * image.shape[0] for image in images]))
    ragged = tf.RaggedTensor.from_row_lengths(rows, [image.shape[0] for image in images])
    return ragged, np.array(labels, np.int64)


def _plain_dataset(images, labels, net: str):
    """The decoded images in memory -> the net's training preprocessing, batched."""
    import tensorflow as tf

    from model_garden import nets, preprocessing

    preprocess = preprocessing.get_preprocessing(nets.get_net(net).preprocessing)
    return (
        tf.data.Dataset.from_tensor_slices((images, labels))
        .shuffle(len(labels)).repeat()
        .map(lambda image, label: (preprocess(image.to_tensor(), IMAGE_SIZE, IMAGE_SIZE,
                                              is_training=True), label),
             num_parallel_calls=tf.data.AUTOTUNE)
        .batch(BATCH, drop_remainder=True)
        .prefetch(tf.data.AUTOTUNE)
    )


def _new_model(net: str, batch: int):
    """``net`` built and compiled as the Trainer does, with its recipe's config at ``batch``."""
    import tensorflow as tf

    from model_garden import nets
    from model_garden.pipelines import recipes
    from model_garden.trainers import image_classifier

    config = recipes.get_recipe(NETS[net]).config.override({"batch_size": batch})
    tf.keras.utils.set_random_seed(0)
    model = nets.build(net, NUM_CLASSES, weight_decay=config.weight_decay,
                       image_size=IMAGE_SIZE)
    image_classifier.compile_model(
        model, None, optimizer=image_classifier.make_optimizer(
            config, image_classifier.make_schedule(config)),
        aux_loss_weight=config.aux_loss_weight)
    return model


def _med(values):
    return statistics.median(values)


def _range(values, digits: int = 0) -> str:
    return f"{min(values):.{digits}f}-{max(values):.{digits}f}"


def _cpu_net(net: str, artifacts: Dict, tf_transform_output, images, labels) -> Dict:
    """Paired rounds of the Trainer input against plain Keras for ``net``, on the CPU."""
    import tensorflow as tf

    from model_garden.trainers import image_classifier

    fn_args = artifacts["fn_args"]
    configs = {
        "trainer": {"x": image_classifier.make_dataset(
            fn_args.train_files, fn_args.data_accessor, tf_transform_output, BATCH,
            training=True, net=net, image_size=IMAGE_SIZE)},
        "keras": {"x": _plain_dataset(images, labels, net)},
    }
    with tf.device("/CPU:0"):
        models = {name: _new_model(net, BATCH) for name in configs}
        measured = paired_rounds(configs, ROUNDS, lambda name: fit_throughput(
            models[name], configs[name], WARMUP_STEPS, TIMED_STEPS[net], BATCH))
    alone = {name: pipeline_alone(configs[name]["x"], PIPELINE_ONLY_BATCHES, 2)
             for name in configs}
    wall = {name: [w for w, _ in measured[name]] for name in configs}
    cpu = {name: [c for _, c in measured[name]] for name in configs}
    return {"wall": wall, "cpu": cpu, "alone": alone,
            "ratios": [t / k for t, k in zip(wall["trainer"], wall["keras"])],
            "cpu_ratios": [t / k for t, k in zip(cpu["trainer"], cpu["keras"])]}


def run() -> str:
    """Runs the CPU benchmark (about 8 minutes on 2 cores), then :func:`run_gpu`; returns
    a markdown report."""
    import tensorflow as tf
    import tensorflow_transform as tft

    input_base = _flowers_dir()
    load_before = os.getloadavg()
    results = {}
    with tempfile.TemporaryDirectory(prefix="bench-slim-trainer-") as out:
        start = time.monotonic()
        artifacts = _pipeline_artifacts(input_base, out)
        setup_s = time.monotonic() - start
        tf_transform_output = tft.TFTransformOutput(artifacts["transform_graph"])
        images, labels = _decoded_train_images(artifacts["fn_args"].train_files)
        for net in NETS:
            results[net] = _cpu_net(net, artifacts, tf_transform_output, images, labels)
    load_after = os.getloadavg()

    rows, summary = [], []
    for net, r in results.items():
        wall, cpu = r["wall"], r["cpu"]
        rows.append([f"`{net}`", "TFX Trainer: ExampleGen TFRecords -> tfxio -> Transform graph "
                     "-> JPEG decode -> augment", f"{_med(wall['trainer']):.1f}",
                     _range(wall["trainer"], 1), "-", f"{_med(cpu['trainer']):.1f}", "-",
                     f"{r['alone']['trainer']:.0f}"])
        rows.append([f"`{net}`", "plain Keras: decoded images in memory -> tf.data + same "
                     "augment (target reference)", f"{_med(wall['keras']):.1f}",
                     _range(wall["keras"], 1),
                     f"{_med(r['ratios']):.3f} ({_range(r['ratios'], 2)})",
                     f"{_med(cpu['keras']):.1f}", f"{_med(r['cpu_ratios']):.3f}",
                     f"{r['alone']['keras']:.0f}"])
        ratio = _med(r["ratios"])
        summary.append([f"`{net}`: TFX Trainer / plain Keras, images/s, median of {ROUNDS} "
                        "paired rounds", f"{ratio:.3f}",
                        f">= {TARGET} ({'met' if ratio >= TARGET else 'MISSED'})"])
    table = markdown_table(
        ["net (224 px, batch 32, float32, CPU)", "input", "images/s (median)",
         "images/s (min-max)", "TFX Trainer / plain Keras, per round: median (min-max)",
         "images per CPU-s (median)", "TFX Trainer / plain Keras, per CPU-s",
         "input pipeline alone, images/s"], rows)
    timed = ", ".join(f"{TIMED_STEPS[net]} ({net})" for net in NETS)
    return (
        "### slim_trainer: Trainer input vs plain Keras on the flower photos "
        "(training throughput)\n\n"
        + table + "\n\n"
        + markdown_table(["metric", "measured", "target"], summary)
        + f"\n\nData: the {len(labels)} train-split photos of the 400 real flower photos "
        f"(`{SPLIT}`, repeated). {WARMUP_STEPS} warm-up steps excluded per fit, timed steps "
        f"{timed} x {ROUNDS} rounds per input. Machine: {os.cpu_count()} cores, "
        f"TF {tf.__version__}, load average {load_before[0]:.1f} before / "
        f"{load_after[0]:.1f} after (shared machine). ExampleGen + Transform setup: "
        f"{setup_s:.0f} s.\n\n" + run_gpu()
    )


def run_gpu() -> str:
    """``resnet_v1_50``, ``mixed_float16``: the Trainer input against a synthetic in-memory one.

    Returns:
      a markdown report, or ``"GPU: not measured: no GPU"`` when none is visible.
    """
    import tensorflow as tf
    import tensorflow_transform as tft

    from model_garden.trainers import image_classifier

    title = ("### slim_trainer (GPU): `resnet_v1_50`, mixed_float16, Trainer input vs "
             "synthetic in-memory input")
    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        return f"{title}\n\nnot measured: no GPU"
    load_before = os.getloadavg()
    previous = tf.keras.mixed_precision.global_policy()
    tf.keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        with tempfile.TemporaryDirectory(prefix="bench-slim-trainer-gpu-") as out:
            start = time.monotonic()
            artifacts = _pipeline_artifacts(_flowers_dir(), out)
            setup_s = time.monotonic() - start
            fn_args = artifacts["fn_args"]
            tf_transform_output = tft.TFTransformOutput(artifacts["transform_graph"])
            with tf.device("/CPU:0"):  # in host memory, as the Trainer's batches are
                random = tf.random.Generator.from_seed(0)
                synthetic = tf.data.Dataset.from_tensors((
                    random.uniform([GPU_BATCH, IMAGE_SIZE, IMAGE_SIZE, 3], -128.0, 128.0),
                    random.uniform([GPU_BATCH], 0, NUM_CLASSES, tf.int64),
                )).repeat().prefetch(tf.data.AUTOTUNE)
            configs = {
                "trainer": {"x": image_classifier.make_dataset(
                    fn_args.train_files, fn_args.data_accessor, tf_transform_output,
                    GPU_BATCH, training=True, net=GPU_NET, image_size=IMAGE_SIZE)},
                "synthetic": {"x": synthetic},
            }
            models = {name: _new_model(GPU_NET, GPU_BATCH) for name in configs}
            measured = paired_rounds(configs, GPU_ROUNDS, lambda name: fit_throughput(
                models[name], configs[name], GPU_WARMUP_STEPS, GPU_TIMED_STEPS, GPU_BATCH))
            alone = pipeline_alone(configs["trainer"]["x"], 20)
    finally:
        tf.keras.mixed_precision.set_global_policy(previous)
    wall = {name: [w for w, _ in measured[name]] for name in configs}
    ratios = [t / s for t, s in zip(wall["trainer"], wall["synthetic"])]
    ratio = _med(ratios)
    device = tf.config.experimental.get_device_details(gpus[0]).get("device_name", "GPU")
    return (
        f"{title}\n\n"
        + markdown_table(
            ["input (resnet_v1_50, 224 px, batch 256, mixed_float16)", "images/s (median)",
             "images/s (min-max)"],
            [["TFX Trainer: ExampleGen TFRecords -> tfxio -> Transform graph -> JPEG decode "
              "-> vgg augment", f"{_med(wall['trainer']):.0f}", _range(wall["trainer"])],
             ["synthetic in-memory batch, repeated (ceiling)", f"{_med(wall['synthetic']):.0f}",
              _range(wall["synthetic"])],
             ["TFX Trainer input pipeline alone (no model)", f"{alone:.0f}", "-"]])
        + "\n\n"
        + markdown_table(["metric", "measured", "target"], [[
            f"TFX Trainer / synthetic, images/s, median of {GPU_ROUNDS} paired rounds "
            f"({_range(ratios, 2)})", f"{ratio:.3f}",
            f">= {GPU_TARGET} ({'met' if ratio >= GPU_TARGET else 'MISSED'})"]])
        + f"\n\n{device} x{len(gpus)}, {os.cpu_count()} cores, TF {tf.__version__}; "
        f"{GPU_WARMUP_STEPS} warm-up + {GPU_TIMED_STEPS} timed steps per fit; load average "
        f"{load_before[0]:.1f} before / {os.getloadavg()[0]:.1f} after; "
        f"ExampleGen + Transform setup: {setup_s:.0f} s."
    )


if __name__ == "__main__":
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    print(run_gpu() if "--gpu" in sys.argv[1:] else run(), flush=True)
