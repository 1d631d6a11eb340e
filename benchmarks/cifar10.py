"""CIFAR-10 benchmark: training throughput of the Trainer's input pipeline.

Measures, in images per second, ResNet-20 v1 training (official/resnet
hyperparameters, batch 128, float32 on CPU) on the 1,000 real CIFAR-10
training JPEGs of ``shared/data/cifar10`` (repeated: 7 batches per pass), fed
three ways, in one process on the same machine:

1. **TFX Trainer** input: what ``image_classifier.run_fn`` feeds ``model.fit``
   (:func:`model_garden.trainers.image_classifier.make_dataset`, training mode):
   the gzipped TFRecords written by the real CIFAR-10 ExampleGen executor,
   read through the Trainer's ``DataAccessor`` (tfxio) with the raw schema,
   the Transform graph (written by the real Transform executor,
   ``materialize=False``) applied in ``tf.data`` (JPEG decode), shuffling
   and the ``cifar`` training preprocessing (official/resnet: pad 4, random
   32x32 crop, random flip, per-image standardization).
2. **plain Keras, numpy, no augmentation**: ``model.fit(x, y,
   batch_size=128, shuffle=True)`` on the same images, decoded and
   standardized once into a float32 ``[16000, 32, 32, 3]`` numpy array (the
   1,000 images 16 times, so that every batch is full) and int64 labels
   ``[16000]``. This is the
   reference of the target.
3. **plain Keras, numpy + the same augmentation**: the same 1,000 decoded
   images held in memory, through ``tf.data.Dataset.from_tensor_slices``,
   shuffled, repeated, the same ``cifar`` training preprocessing mapped
   (``AUTOTUNE``) and batched.

Each configuration trains its own model (same architecture, same initial
weights, same optimizer) with ``model.fit(verbose=0)``; a callback stamps
the end of every step. The first ``WARMUP_STEPS`` steps of every ``fit``
(tracing, shuffle buffers, tf.data autotuning) are excluded; throughput is
``TIMED_STEPS * 128`` images over the wall time of the timed steps
(images/s), and over the process CPU time of those steps (images per
CPU-second, all threads: less sensitive to other processes' load, and it
shows any extra CPU the input pipeline spends). The three configurations run
back to back in each of ``ROUNDS`` rounds (rotating the order); the ratios
are taken within each round (paired, so that load drifting between rounds
on a shared machine cancels) and the table gives their median and range.
Also reported: the Trainer's input pipeline alone (no model), which shows
how far it is from being the bottleneck.

Target: the TFX Trainer at least 0.95x plain Keras (configuration 2), as
the median of the per-round images/s ratios.
"""

import os
import statistics
import tempfile
import time
from typing import Dict

from benchmarks.common import (fit_throughput, markdown_table, paired_rounds, pipeline_alone,
                               transform_artifacts)

BATCH = 128
NET = "resnet_v1_20_cifar"  # ResNet-20 v1 (model_garden.nets)
WARMUP_STEPS = 8
TIMED_STEPS = 20
ROUNDS = 7
PIPELINE_ONLY_BATCHES = 60
TARGET = 0.95
JPG = "cifar-10-images-jpg"


def _data_dir() -> str:
    """``$MODEL_GARDEN_DATA/cifar10`` (default: ``shared/data`` beside the checkout)."""
    here = os.path.dirname(os.path.abspath(__file__))
    root = os.environ.get("MODEL_GARDEN_DATA") or os.path.join(here, "..", "..", "shared", "data")
    folder = os.path.abspath(os.path.join(root, "cifar10"))
    if not os.path.isdir(os.path.join(folder, JPG, "train")):
        raise FileNotFoundError(f"{folder}/{JPG}/train: the real CIFAR-10 JPEGs are needed "
                                "(set MODEL_GARDEN_DATA to shared/data)")
    return folder


def _pipeline_artifacts(input_base: str, out: str) -> Dict:
    """Runs the real ExampleGen and Transform executors; returns the Trainer's inputs.

    Returns:
      ``{"fn_args": FnArgs (train_files, data_accessor, ...), "transform_graph": uri}``,
      built by TFX's own ``fn_args_utils.get_common_fn_args`` as the Trainer does.
    """
    from tfx.types import standard_artifacts
    from tfx.types import standard_component_specs as specs

    from model_garden.components import cifar10_example_gen as gen
    from model_garden.datasets import SplitSpec
    from model_garden.schemas import cifar10 as cifar_schema

    component = gen.make_example_gen(input_base, SplitSpec())
    examples = standard_artifacts.Examples()
    examples.uri = os.path.join(out, "examples")
    gen.Executor().Do({}, {specs.EXAMPLES_KEY: [examples]}, {
        specs.INPUT_BASE_KEY: input_base,
        specs.INPUT_CONFIG_KEY: component.exec_properties[specs.INPUT_CONFIG_KEY],
        specs.OUTPUT_CONFIG_KEY: component.exec_properties[specs.OUTPUT_CONFIG_KEY],
    })
    return transform_artifacts(examples, cifar_schema.SCHEMA_FILE,
                               "model_garden.schemas.cifar10.preprocessing_fn", out)


def _decoded_train_images(input_base: str):
    """The real train JPEGs decoded: int64 ``[1000, 32, 32, 3]`` (0..255), int64 labels ``[1000]``.

    Decoded with the Transform graph's own decoder
    (:func:`model_garden.schemas.cifar10.decode_image`); labels are the
    class folder's index in the real ``batches.meta``, as the ExampleGen
    assigns them.
    """
    import glob

    import numpy as np
    import tensorflow as tf

    from model_garden.datasets import cifar10
    from model_garden.schemas import cifar10 as cifar_schema

    names = cifar10.load_label_names(os.path.join(input_base, cifar10.PY_DIR, cifar10.PY_META))
    paths = sorted(glob.glob(os.path.join(input_base, JPG, "train", "*", "*.jpg")))
    images = np.stack([cifar_schema.decode_image(tf.io.read_file(p)).numpy() for p in paths])
    labels = np.array([names.index(os.path.basename(os.path.dirname(p))) for p in paths])
    return images.astype(np.int64), labels.astype(np.int64)


def _new_model():
    """ResNet-20 v1 compiled as the Trainer compiles it, from fixed initial weights."""
    import tensorflow as tf

    from model_garden import nets
    from model_garden.trainers import image_classifier

    tf.keras.utils.set_random_seed(0)
    model = nets.build(NET, num_classes=10)
    image_classifier.compile_model(model, image_classifier.learning_rate_schedule(BATCH, 50000))
    return model


def run() -> str:
    """Runs the benchmark (about 6 minutes on 2 cores); returns a markdown report."""
    import numpy as np
    import tensorflow as tf
    import tensorflow_transform as tft

    from model_garden.preprocessing import cifar
    from model_garden.trainers import image_classifier

    input_base = _data_dir()
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bench-cifar10-") as out:
        start = time.monotonic()
        artifacts = _pipeline_artifacts(input_base, out)
        setup_s = time.monotonic() - start
        fn_args = artifacts["fn_args"]
        tf_transform_output = tft.TFTransformOutput(artifacts["transform_graph"])
        trainer_ds = image_classifier.make_dataset(
            fn_args.train_files, fn_args.data_accessor, tf_transform_output, BATCH,
            training=True, net=NET)
        images, labels = _decoded_train_images(input_base)
        repeats = BATCH // int(np.gcd(len(labels), BATCH))  # 1,000 x 16 = 125 full batches
        x = np.tile(cifar.standardize(images).numpy(), (repeats, 1, 1, 1))
        y = np.tile(labels, repeats)
        augmented_ds = (
            tf.data.Dataset.from_tensor_slices((images, labels))
            .shuffle(len(labels)).repeat()
            .map(lambda image, label: (cifar.preprocess_image(image, is_training=True), label),
                 num_parallel_calls=tf.data.AUTOTUNE)
            .batch(BATCH, drop_remainder=True)
            .prefetch(tf.data.AUTOTUNE)
        )
        configs = {
            "trainer": {"x": trainer_ds},
            "keras": {"x": x, "y": y, "batch_size": BATCH, "shuffle": True},
            "keras_aug": {"x": augmented_ds},
        }
        models = {name: _new_model() for name in configs}
        measured = paired_rounds(configs, ROUNDS, lambda name: fit_throughput(
            models[name], configs[name], WARMUP_STEPS, TIMED_STEPS, BATCH))
        wall = {name: [w for w, _ in measured[name]] for name in configs}
        cpu = {name: [c for _, c in measured[name]] for name in configs}
        alone = pipeline_alone(trainer_ds, PIPELINE_ONLY_BATCHES)
    load_after = os.getloadavg()

    def med(values):
        return statistics.median(values)

    # Each round runs the three inputs back to back: the per-round ratios
    # cancel load that drifts between rounds.
    ratios = {name: [t / k for t, k in zip(wall["trainer"], wall[name])] for name in configs}
    cpu_ratios = {name: [t / k for t, k in zip(cpu["trainer"], cpu[name])] for name in configs}

    def row(label, augmentation, name):
        return [label, augmentation, f"{med(wall[name]):.0f}",
                f"{min(wall[name]):.0f}-{max(wall[name]):.0f}",
                f"{med(ratios[name]):.3f} ({min(ratios[name]):.2f}-{max(ratios[name]):.2f})",
                f"{med(cpu[name]):.0f}", f"{med(cpu_ratios[name]):.3f}"]

    table = markdown_table(
        ["input (ResNet-20 v1, batch 128, float32)", "augmentation", "images/s (median)",
         "images/s (min-max)", "TFX Trainer / this, per round: median (min-max)",
         "images per CPU-s (median)", "TFX Trainer / this, per CPU-s"],
        [
            row("TFX Trainer: ExampleGen TFRecords -> tfxio -> Transform graph -> augment",
                "pad-crop-flip", "trainer"),
            row("plain Keras `model.fit(numpy)` (target reference)", "none", "keras"),
            row("plain Keras, numpy in memory -> tf.data + same augment", "pad-crop-flip",
                "keras_aug"),
            ["TFX Trainer input pipeline alone (no model)", "pad-crop-flip", f"{alone:.0f}",
             "-", "-", "-", "-"],
        ],
    )
    ratio = med(ratios["keras"])
    verdict = "met" if ratio >= TARGET else "MISSED"
    return (
        "### cifar10: Trainer input pipeline vs plain Keras (training throughput)\n\n"
        + table + "\n\n"
        + markdown_table(
            ["metric", "measured", "target"],
            [["TFX Trainer / plain Keras (numpy, no augmentation), images/s, median of "
              f"{ROUNDS} paired rounds", f"{ratio:.3f}", f">= {TARGET} ({verdict})"]],
        )
        + f"\n\nData: the {len(labels)} real train JPEGs (repeated). {WARMUP_STEPS} warm-up "
        f"steps excluded per fit, {TIMED_STEPS} timed steps x {ROUNDS} rounds per input. "
        f"Machine: {os.cpu_count()} cores, TF {tf.__version__}, load average "
        f"{load_before[0]:.1f} before / {load_after[0]:.1f} after (shared machine). "
        f"ExampleGen + Transform setup: {setup_s:.0f} s."
    )
