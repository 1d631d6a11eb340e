"""The network registry (model_garden.nets) and its pairing with preprocessing."""

import numpy as np
import pytest

from model_garden import nets, preprocessing


def test_depth_variants_are_thin_entries_over_one_builder():
    names = [f"resnet_v{v}_{d}_cifar" for v in (1, 2) for d in (20, 32, 44, 56, 110)]
    assert set(names) <= set(nets.NETS)
    assert {nets.get_net(n).builder for n in names} == {"model_garden.nets.resnet_cifar.resnet_cifar"}
    assert {nets.get_net(n).default_image_size for n in names} == {32}
    assert {nets.get_net(n).preprocessing for n in names} == {"cifar"}


def test_every_net_has_a_known_preprocessing_and_a_source():
    for spec in nets.NETS.values():
        assert spec.preprocessing in preprocessing.PREPROCESSING, spec.name
        assert spec.source, spec.name


def test_unknown_names_list_the_known_ones():
    with pytest.raises(KeyError, match="resnet_v1_20_cifar"):
        nets.get_net("resnet_20")
    with pytest.raises(KeyError, match="cifar"):
        preprocessing.get_preprocessing("inceptoin")


def test_build_gives_the_registered_variant_with_slim_scoped_layer_names():
    model = nets.build("resnet_v2_56_cifar", num_classes=7)
    assert model.name == "resnet56_v2" and model.output_shape == (None, 7)
    assert model.input_shape == (None, 32, 32, 3)
    names = {layer.name for layer in model.layers}
    # TF-Slim nets/resnet_v2.py scopes: preact, postnorm, logits under the net's scope.
    assert {"resnet_v2_56/conv1", "resnet_v2_56/block1/unit_1/basic_v2/preact",
            "resnet_v2_56/block3/unit_9/basic_v2/conv2", "resnet_v2_56/postnorm",
            "resnet_v2_56/logits"} <= names
    weights = {w.name for w in model.weights}
    assert "resnet_v2_56/block2/unit_1/basic_v2/conv1/BatchNorm/gamma:0" in weights


def test_eval_preprocessing_standardizes_each_image(data_root):
    import glob
    import os

    import tensorflow as tf

    path = sorted(glob.glob(os.path.join(data_root, "cifar10", "cifar-10-images-jpg", "test",
                                         "cat", "*.jpg")))[0]
    image = tf.io.decode_jpeg(tf.io.read_file(path), channels=3)
    preprocess = preprocessing.get_preprocessing("cifar")
    out = preprocess(tf.cast(image, tf.int64), 32, 32, is_training=False).numpy()
    assert out.dtype == np.float32 and out.shape == (32, 32, 3)
    assert abs(out.mean()) < 1e-4 and abs(out.std() - 1) < 1e-3
    train = preprocess(image, 32, 32, is_training=True, seed=tf.constant([1, 2])).numpy()
    assert train.shape == (32, 32, 3) and abs(train.std() - 1) < 1e-3
