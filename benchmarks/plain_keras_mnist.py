"""The ``mnist`` recipe's training as a plain Keras script: no TFX, no Beam, no pipeline.

    python benchmarks/plain_keras_mnist.py --out /tmp/plain-mnist
    python benchmarks/plain_keras_mnist.py --out /tmp/plain-mnist --train-steps 50  # smoke only

The peer (b) of ``benchmarks/local_run.py``: what ``make demo`` trains and
evaluates, written by hand. Everything that decides the result comes from the
project, not a copy:

* data: the shared ``t10k`` idx files read by :func:`model_garden.datasets.idx.read_idx_pair`
  (every complete pair ``--split hash`` reads: the shared folder has no
  training images), split by :func:`model_garden.components.mnist_example_gen.hash_split_masks`
  with the split of ``--split hash:80/20``: the very 8k/2k examples the
  pipeline's ExampleGen writes (``tests/test_mnist_example_gen.py`` holds the
  two to each other);
  (the benchmark hashes them before it starts this script, and passes them
  as ``--split-file`` with the idx files' paths: a plain script reads its
  split, it does not re-derive it, nor import TFX and Beam to do so);
* pixels: ``/ 255`` as the recipe's ``preprocessing_fn`` (:mod:`model_garden.schemas.mnist`);
* model, optimizer and learning-rate schedule: :func:`model_garden.trainers.mnist.build_model`
  with :func:`~model_garden.trainers.mnist.learning_rate_of` of the recipe's
  :class:`~model_garden.trainers.configs.MnistConfig` (Adam 1e-3, cosine
  decay over the train steps);
* batch size, train steps and eval steps: the recipe's (100, 1,200, 20);
  the epochs the Trainer cuts them into (:func:`model_garden.trainers.steps.epoch_plan`,
  10 epochs of 120 steps) with the Trainer's validation of ``eval_steps``
  batches of the 2k after each epoch (:func:`model_garden.trainers.steps.fit`,
  less its TensorBoard logs).

Then it evaluates the model on all of the 2k test examples (what the
Evaluator scores) and exports a SavedModel whose ``serving_default`` is the
recipe's float-image ``classify`` signature. It prints one line
``RESULT {json}``: the accuracy, the split sizes and the seconds of each phase.
"""

import argparse
import json
import os
import sys
import time

START = time.monotonic()
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

RECIPE = "mnist"
SPLIT = "hash:80/20"  # as `make demo`


def hash_pairs(data_dir: str):
    """The ``(images, labels)`` idx file pairs ``--split hash`` reads in ``data_dir``, in its order.

    (The ExampleGen's :func:`~model_garden.components.mnist_example_gen.find_pairs`:
    imports TFX and Beam.)
    """
    from model_garden.components.mnist_example_gen import HASH_PATTERN, find_pairs

    return find_pairs(data_dir, HASH_PATTERN, strict=False)


def read_images(pairs):
    """``(images, labels)`` of the idx file ``pairs``, concatenated."""
    import numpy as np

    from model_garden.datasets.idx import read_idx_pair

    parts = [read_idx_pair(*pair) for pair in pairs]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def write_split_file(data_dir: str, path: str, split_text: str = SPLIT) -> None:
    """Saves the ``train`` / ``test`` masks of ``split_text`` over ``data_dir`` (``.npz``).

    The benchmark computes them before it starts the script's clock: the
    split's hashing (a PNG encoding of every image, as the ExampleGen
    writes them) is a cost of reproducing the pipeline's split, not of a
    plain script, which would read its split from a file.
    """
    import numpy as np

    from model_garden.components.mnist_example_gen import hash_split_masks
    from model_garden.datasets import SplitSpec

    pairs = hash_pairs(data_dir)
    train, test = hash_split_masks(*read_images(pairs), SplitSpec.parse(split_text))
    np.savez(path, train=train, test=test, pairs=np.array(pairs))


def load_split(data_dir: str, split_file=None, split_text: str = SPLIT):
    """``((train_images, train_labels), (test_images, test_labels))`` as the pipeline splits them.

    Images are float32 ``[N, 28, 28, 1]`` in [0, 1], labels int64 ``[N]``, in
    file order (the Trainer shuffles the training examples; so does :func:`main`).
    ``split_file``: the files and masks of :func:`write_split_file` (nothing of
    TFX or Beam is imported); ``None``: computed here (importing both).
    """
    import numpy as np

    if split_file:
        saved = np.load(split_file)
        images, labels = read_images([tuple(p) for p in saved["pairs"]])
        train, test = saved["train"], saved["test"]
        if train.shape != labels.shape:
            raise ValueError(f"{split_file}: masks of {train.shape[0]} examples, "
                             f"its files hold {labels.shape[0]}")
    else:
        from model_garden.components.mnist_example_gen import hash_split_masks
        from model_garden.datasets import SplitSpec

        images, labels = read_images(hash_pairs(data_dir))
        train, test = hash_split_masks(images, labels, SplitSpec.parse(split_text))
    as_float = lambda a: (a[..., None] / np.float32(255.0)).astype(np.float32)  # noqa: E731
    return ((as_float(images[train]), labels[train].astype(np.int64)),
            (as_float(images[test]), labels[test].astype(np.int64)))


def main(argv=None) -> dict:
    """Trains, evaluates and exports; prints and returns the ``RESULT`` dict."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--data-dir", default=None,
                        help="folder of the MNIST idx files (default $MODEL_GARDEN_DATA/mnist)")
    parser.add_argument("--out", required=True, help="the SavedModel is written to OUT/saved_model")
    parser.add_argument("--split-file", default=None,
                        help="the train/test masks of write_split_file (default: hash them here)")
    parser.add_argument("--train-steps", type=int, default=None,
                        help="SMOKE TESTS ONLY (default: the recipe's); never for reported numbers")
    args = parser.parse_args(argv)
    data_dir = args.data_dir or os.path.join(os.environ["MODEL_GARDEN_DATA"], "mnist")

    import tensorflow as tf

    from model_garden.pipelines.recipes import get_recipe
    from model_garden.schemas import mnist as mnist_schema
    from model_garden.trainers import mnist, steps

    recipe = get_recipe(RECIPE)
    config = recipe.config
    train_steps = args.train_steps or recipe.train_steps
    seconds = {"imports": time.monotonic() - START}

    t = time.monotonic()
    (x_train, y_train), (x_test, y_test) = load_split(data_dir, args.split_file)
    batch = config.batch_size
    train_ds = (tf.data.Dataset.from_tensor_slices(({mnist_schema.IMAGE_KEY: x_train}, y_train))
                .shuffle(len(y_train)).repeat().batch(batch, drop_remainder=True)
                .prefetch(tf.data.AUTOTUNE))
    test_ds = (tf.data.Dataset.from_tensor_slices(({mnist_schema.IMAGE_KEY: x_test}, y_test))
               .batch(batch).prefetch(tf.data.AUTOTUNE))
    seconds["data"] = time.monotonic() - t

    t = time.monotonic()
    model = mnist.build_model(mnist.learning_rate_of(config.learning_rate, config.lr_schedule,
                                                     train_steps))
    epochs, steps_per_epoch = steps.epoch_plan(train_steps, config.steps_per_epoch or None)
    validate_at = list(range(1, epochs + 1))
    model.fit(train_ds, steps_per_epoch=steps_per_epoch, epochs=epochs,
              validation_data=test_ds.repeat(), validation_steps=recipe.eval_steps,
              validation_freq=validate_at, verbose=2)
    seconds["fit"] = time.monotonic() - t

    t = time.monotonic()
    _, accuracy = model.evaluate(test_ds, verbose=0)
    seconds["evaluate"] = time.monotonic() - t

    t = time.monotonic()
    saved_model = os.path.join(args.out, "saved_model")
    tf.saved_model.save(model, saved_model,
                        signatures={"serving_default": mnist.make_classify_fn(model)})
    seconds["export"] = time.monotonic() - t
    seconds["total"] = time.monotonic() - START

    result = {"accuracy": float(accuracy), "train_examples": int(len(y_train)),
              "test_examples": int(len(y_test)), "train_steps": train_steps,
              "epochs": epochs, "batch_size": batch, "saved_model": saved_model,
              "seconds": seconds}
    print("RESULT " + json.dumps(result), flush=True)
    return result


if __name__ == "__main__":
    main()
