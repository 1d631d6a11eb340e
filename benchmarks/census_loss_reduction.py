"""Census loss reduction (summed vs batch-mean loss), chosen on a validation split of adult.data.

The official model (TensorFlow 1.x, ``official/r1/wide_deep/census_main.py``)
trains the v1 canned estimators, whose loss is the SUM of the per-example
cross-entropy over the batch (tensorflow_estimator ``canned/linear.py``,
``canned/dnn.py``, ``canned/dnn_linear_combined.py``:
``loss_reduction=tf.compat.v1.losses.Reduction.SUM``); Keras' default is the
batch mean (``sum_over_batch_size``), 40x smaller gradients at batch 40.
This compares the two (:attr:`~model_garden.trainers.configs.WideDeepConfig.loss_reduction`)
**without touching adult.test**: only ``adult.data`` (32,561 rows) is read,
divided deterministically into 26,049 rows to train on (4 of every 5 in file
order) and 6,512 to validate on (every 5th). The census ``preprocessing_fn``
is analyzed by tf.Transform (Beam, in process) on the training rows only,
then applied to both parts by the transform graph; each (model, reduction,
seed) trains the recipe's model (:func:`model_garden.trainers.wide_deep.build_model`,
default learning rates) for ``EPOCHS`` epochs of the training rows at the
recipe's batch 40, shuffled every epoch. The table gives the validation
accuracy (threshold 0.5) and AUC (exact, rank statistic) of the last epoch's
model, per seed and their mean.

For ``wide_deep``, two more rows tell which part's optimizer the reduction
matters for: the mean loss, with only the wide part's (FTRL) or only the
deep part's (Adagrad) gradients multiplied by the batch size before they
are applied, i.e. that one part trained as with the summed loss.

    python benchmarks/run.py census_loss_reduction
    # a subset: models, seeds, epochs (default 10), without the per-part rows
    CENSUS_LR_KINDS=wide_deep CENSUS_LR_SEEDS=1 CENSUS_LR_EPOCHS=40 CENSUS_LR_PARTS=0 \
        python benchmarks/run.py census_loss_reduction
"""

import os
import statistics
import tempfile
import time
from typing import Dict, List, Sequence, Tuple

from benchmarks.common import markdown_table

KINDS = tuple(os.environ.get("CENSUS_LR_KINDS", "wide_deep,wide,deep").split(","))
SEEDS = tuple(int(s) for s in os.environ.get("CENSUS_LR_SEEDS", "1,2,3").split(","))
REDUCTIONS = ("sum_over_batch_size", "sum")
#: wide_deep only: (row name, loss reduction, the part whose gradients are x BATCH).
PART_VARIANTS = (
    ("sum_over_batch_size, wide (FTRL) gradients x40", "sum_over_batch_size", "wide"),
    ("sum_over_batch_size, deep (Adagrad) gradients x40", "sum_over_batch_size", "deep"),
)
EPOCHS = int(os.environ.get("CENSUS_LR_EPOCHS", "10"))  # the recipes' 10 epochs
BATCH = 40  # official census_main.define_census_flags
VALIDATION_EVERY = 5  # every 5th row of adult.data validates: 80/20


def split_rows(rows: Sequence) -> Tuple[List, List]:
    """``(train, validation)``: every ``VALIDATION_EVERY``-th row (file order) validates."""
    train = [r for i, r in enumerate(rows) if i % VALIDATION_EVERY != VALIDATION_EVERY - 1]
    validation = [r for i, r in enumerate(rows) if i % VALIDATION_EVERY == VALIDATION_EVERY - 1]
    return train, validation


def _schema():
    from google.protobuf import text_format
    from tensorflow_metadata.proto.v0 import schema_pb2

    import model_garden.schemas

    path = os.path.join(os.path.dirname(model_garden.schemas.__file__), "census.pbtxt")
    with open(path) as f:
        return text_format.Parse(f.read(), schema_pb2.Schema())


def _transform(train_rows, tmp: str):
    """tf.Transform analysis of ``census.preprocessing_fn`` on ``train_rows`` -> TFTransformOutput."""
    import apache_beam as beam
    import tensorflow_transform as tft
    import tensorflow_transform.beam as tft_beam
    from apache_beam.options.pipeline_options import PipelineOptions
    from tensorflow_transform.tf_metadata import dataset_metadata

    from model_garden.schemas import census

    metadata = dataset_metadata.DatasetMetadata(_schema())
    instances = [{k: [v] for k, v in r.items()} for r in train_rows]
    with beam.Pipeline(options=PipelineOptions([])) as p:
        with tft_beam.Context(temp_dir=os.path.join(tmp, "tmp")):
            transform_fn = (p | beam.Create(instances), metadata) | tft_beam.AnalyzeDataset(
                census.preprocessing_fn)
            _ = transform_fn | tft_beam.WriteTransformFn(os.path.join(tmp, "transform_graph"))
    return tft.TFTransformOutput(os.path.join(tmp, "transform_graph"))


def _features(rows, tft_output) -> Dict:
    """Raw rows -> the transformed features, numpy ``[N, 1]`` (label under ``census.LABEL_KEY``)."""
    import tensorflow as tf

    from model_garden.datasets import census_csv

    raw = {n: tf.constant([[r[n]] for r in rows],
                          tf.int64 if n in census_csv.NUMERIC_COLUMNS else tf.string)
           for n in census_csv.COLUMNS}
    return {k: v.numpy() for k, v in tft_output.transform_raw_features(raw).items()}


def auc(labels, scores) -> float:
    """Exact ROC AUC (Mann-Whitney U; ties count one half). ``labels`` 0/1, ``scores`` [N]."""
    import numpy as np
    from scipy.stats import rankdata

    labels = np.asarray(labels).ravel().astype(bool)
    ranks = rankdata(np.asarray(scores).ravel())
    positives, negatives = labels.sum(), (~labels).sum()
    return float((ranks[labels].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def scale_gradients(optimizer, factor: float) -> None:
    """Makes ``optimizer.apply_gradients`` multiply every gradient by ``factor`` first."""
    import tensorflow as tf

    apply = optimizer.apply_gradients

    def scaled(grads_and_vars, *args, **kwargs):
        out = []
        for g, v in grads_and_vars:
            if isinstance(g, tf.IndexedSlices):
                g = tf.IndexedSlices(g.values * factor, g.indices, g.dense_shape)
            elif g is not None:
                g = g * factor
            out.append((g, v))
        return apply(out, *args, **kwargs)

    optimizer.apply_gradients = scaled


def _run(kind: str, reduction: str, seed: int, train, validation, vocab_sizes,
         scaled_part: str = "") -> Dict[str, float]:
    import numpy as np
    import tensorflow as tf

    from model_garden.schemas import census
    from model_garden.trainers import wide_deep

    tf.keras.utils.set_random_seed(seed)
    model = wide_deep.build_model(kind, vocab_sizes=vocab_sizes, loss_reduction=reduction)
    if scaled_part:  # wide_deep: model.optimizer trains wide, model.dnn_optimizer deep
        scale_gradients(model.optimizer if scaled_part == "wide" else model.dnn_optimizer, BATCH)
    start = time.monotonic()
    model.fit({k: train[k] for k in model.input_names}, train[census.LABEL_KEY],
              batch_size=BATCH, epochs=EPOCHS, shuffle=True, verbose=0)
    seconds = time.monotonic() - start
    p = model.predict({k: validation[k] for k in model.input_names}, batch_size=1000, verbose=0)
    y = validation[census.LABEL_KEY].ravel()
    return {"accuracy": float(np.mean((p.ravel() >= 0.5) == (y == 1))), "auc": auc(y, p),
            "seconds": seconds}


def run() -> str:
    """Trains every (kind, reduction, seed); returns the markdown table."""
    from model_garden.datasets import census_csv
    from model_garden.schemas import census

    rows = census_csv.read_file(os.path.join(os.environ["MODEL_GARDEN_DATA"], "census",
                                             "adult.data")).rows
    train_rows, validation_rows = split_rows(rows)
    with tempfile.TemporaryDirectory(prefix="bench-census-lr-") as tmp:
        tft_output = _transform(train_rows, tmp)
        train = _features(train_rows, tft_output)
        validation = _features(validation_rows, tft_output)
        vocab_sizes = {n: census.vocab_size(n, tft_output) for n in census.VOCAB_FEATURES}
    results: Dict[Tuple[str, str], List[Dict[str, float]]] = {}
    for kind in KINDS:
        variants = [(r, r, "") for r in REDUCTIONS]
        if kind == "wide_deep" and os.environ.get("CENSUS_LR_PARTS", "1") == "1":
            variants += PART_VARIANTS
        for name, reduction, part in variants:
            results[kind, name] = []
            for seed in SEEDS:
                r = _run(kind, reduction, seed, train, validation, vocab_sizes, part)
                print(f"census_loss_reduction: {kind} {name} seed {seed}: "
                      f"accuracy {r['accuracy']:.4f} AUC {r['auc']:.4f} ({r['seconds']:.0f} s)",
                      flush=True)
                results[kind, name].append(r)
    rows_out = []
    for (kind, reduction), runs in results.items():
        acc = [r["accuracy"] for r in runs]
        aucs = [r["auc"] for r in runs]
        rows_out.append([kind, reduction, ", ".join(f"{a * 100:.2f}%" for a in acc),
                         f"{statistics.mean(acc) * 100:.2f}%",
                         ", ".join(f"{a:.4f}" for a in aucs), f"{statistics.mean(aucs):.4f}"])
    positives = int(validation[census.LABEL_KEY].sum())
    return "\n".join([
        f"census loss reduction: {len(train_rows):,} train / {len(validation_rows):,} validation "
        f"rows of adult.data (every {VALIDATION_EVERY}th validates; {positives:,} validation rows "
        f"are >50K, majority class {(1 - positives / len(validation_rows)) * 100:.2f}%), "
        f"{EPOCHS} epochs, batch {BATCH}, default learning rates, seeds {SEEDS}", "",
        markdown_table(["model", "loss reduction", "validation accuracy per seed", "mean",
                        "validation AUC per seed", "mean AUC"], rows_out), ""])


if __name__ == "__main__":
    print(run())
