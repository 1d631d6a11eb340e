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


# research/slim/nets/mobilenet_v1.py's docstring tables (tensorflow/models): the
# convolution kernels of "100% Mobilenet V1 (base) with input size 224x224"
# (3,185,088) and of "75% ... 128x128" (1,800,144); tf-slim 1.1.0 has no MobileNet,
# so its mapping is checked against that file's layer names and counts.
@pytest.mark.parametrize("name, size, published", [
    ("mobilenet_v1", 224, 3_185_088), ("mobilenet_v1_075", 128, 1_800_144)])
def test_mobilenet_v1_kernels_are_slims_published_counts(name, size, published):
    from model_garden.nets import slim_checkpoint

    model = nets.build(name, 1001, image_size=size)
    names = slim_checkpoint.slim_names(model)
    kernels = {n: w for n, w in names.items()
               if n.endswith(("/weights", "/depthwise_weights")) and "/Logits/" not in n}
    assert sum(int(np.prod(w.shape)) for w in kernels.values()) == published
    assert len(kernels) == 27  # Conv2d_0 and 13 depthwise + 13 pointwise
    assert "MobilenetV1/Conv2d_13_depthwise/depthwise_weights" in names
    assert "MobilenetV1/Conv2d_13_pointwise/BatchNorm/gamma" in names
    assert model.output_shape == (None, 1001)


@pytest.mark.parametrize("multiplier", [1.0, 0.75, 0.5, 0.25])
@pytest.mark.parametrize("size", [224, 192, 160, 128])
def test_mobilenet_v1_builds_every_released_variant(multiplier, size):
    from model_garden.nets import mobilenet_v1

    model = mobilenet_v1.mobilenet_v1(5, image_size=size, depth_multiplier=multiplier)
    assert model.output_shape == (None, 5)
    last = model.get_layer("MobilenetV1/Conv2d_13_pointwise")
    assert last.filters == max(int(1024 * multiplier), 8)
