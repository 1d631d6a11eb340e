"""The official MNIST model, its preprocessing_fn and its signatures, on real digits."""

import os
import tempfile

import numpy as np
import pytest
import tensorflow as tf

from model_garden.datasets.idx import read_idx_pair
from model_garden.components.image_example import png_example
from model_garden.schemas import mnist as mnist_schema
from model_garden.trainers import mnist


@pytest.fixture(scope="module")
def real_digits(mnist_dir):
    images, labels = read_idx_pair(
        os.path.join(mnist_dir, "t10k-images-idx3-ubyte.gz"),
        os.path.join(mnist_dir, "t10k-labels-idx1-ubyte.gz"),
    )
    return images[:64], labels[:64]


def test_official_architecture_layer_shapes_and_parameter_count():
    model = mnist.build_model()
    # official/mnist: 832 + 51,264 + 3,212,288 + 10,250 parameters.
    assert model.count_params() == 3_274_634
    shapes = [tuple(layer.output_shape[1:]) for layer in model.layers[1:]]
    assert shapes == [
        (28, 28, 32), (14, 14, 32), (14, 14, 64), (7, 7, 64),
        (3136,), (1024,), (1024,), (10,),
    ]
    assert isinstance(model.optimizer, tf.keras.optimizers.Adam)
    assert [type(l).__name__ for l in model.layers].count("Dropout") == 1
    assert model.get_layer(index=7).rate == 0.4


def test_preprocessing_fn_on_real_examples(real_digits):
    images, labels = real_digits
    encoded = [png_example(img, int(lab)).features.feature["image/encoded"].bytes_list.value[0]
               for img, lab in zip(images, labels)]
    out = mnist_schema.preprocessing_fn({
        "image/encoded": tf.constant(encoded)[:, None],
        "image/class/label": tf.constant(labels.astype(np.int64))[:, None],
    })
    assert out["image"].dtype == tf.float32 and out["image"].shape == (64, 28, 28, 1)
    np.testing.assert_allclose(out["image"].numpy()[..., 0], images / 255.0, atol=1e-7)
    assert out["label"].dtype == tf.int64 and out["label"].shape == (64,)
    np.testing.assert_array_equal(out["label"].numpy(), labels)


def test_preprocessing_fn_in_tft_beam(real_digits):
    """The preprocessing_fn traces and runs inside TFT with the curated schema."""
    import tensorflow_transform.beam as tft_beam
    from tensorflow_metadata.proto.v0 import schema_pb2
    from tensorflow_transform.tf_metadata import dataset_metadata
    from tfx.utils import io_utils

    schema = io_utils.parse_pbtxt_file(mnist_schema.SCHEMA_FILE, schema_pb2.Schema())
    images, labels = real_digits
    rows = [
        {
            "image/encoded": [png_example(img, int(lab)).features.feature["image/encoded"].bytes_list.value[0]],
            "image/format": [b"png"], "image/class/label": [int(lab)],
            "image/height": [28], "image/width": [28],
        }
        for img, lab in zip(images[:8], labels[:8])
    ]
    with tempfile.TemporaryDirectory() as tmp, tft_beam.Context(temp_dir=tmp):
        (transformed, metadata), _ = (
            (rows, dataset_metadata.DatasetMetadata(schema))
            | tft_beam.AnalyzeAndTransformDataset(mnist_schema.preprocessing_fn)
        )
    assert [r["label"] for r in transformed] == [int(l) for l in labels[:8]]
    assert np.asarray(transformed[0]["image"]).size == 28 * 28
    spec = metadata.schema
    assert {f.name for f in spec.feature} == {"image", "label"}


def test_classify_signature_shapes(real_digits):
    images, _ = real_digits
    classify = mnist.make_classify_fn(mnist.build_model())
    for batch in (images[:3] / 255.0, images[:3, :, :, None] / 255.0):
        out = classify(tf.constant(batch, tf.float32))
        assert out["classes"].shape == (3,) and out["classes"].dtype == tf.int64
        np.testing.assert_allclose(out["probabilities"].numpy().sum(-1), 1.0, rtol=1e-5)
