"""The network registry (model_garden.nets) and its pairing with preprocessing."""

import functools

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


# --- Inception v2, v4, Inception-ResNet-v2 (TF-Slim) -------------------------------------
@functools.lru_cache(maxsize=None)
def _built(name, num_classes, **kwargs):
    """One build per (network, classes) for this module (Inception-ResNet-v2: ~8 s a build)."""
    return nets.build(name, num_classes, **kwargs)


def _end_point_shapes(model, scope, names, layer_of=None):
    """Slim's end points ``names`` -> their shapes without the batch: the layer ``layer_of``
    names (under ``scope``), else a block's ``concat``, a conv's ``Relu``, else the layer of
    that name (a pool)."""
    layers = {layer.name: layer for layer in model.layers}
    layer_of = {"Predictions": "predictions", **(layer_of or {})}
    shapes = {}
    for name in names:
        for candidate in (layer_of.get(name), f"{scope}/{layer_of.get(name)}",
                          f"{scope}/{name}/concat", f"{scope}/{name}/Relu", f"{scope}/{name}"):
            if candidate in layers:
                shapes[name] = list(layers[candidate].output.shape[1:])
                break
    return shapes


def _count(weights):
    return sum(int(np.prod(w.shape)) for w in weights)


# tf-slim 1.1.0 nets/inception_v2_test.py (the installed package; tensorflow/models
# research/slim/nets/inception_v2_test.py): testBuildAndCheckAllEndPointsUptoMixed5c at 224.
INCEPTION_V2_END_POINTS = {
    "Mixed_3b": [28, 28, 256], "Mixed_3c": [28, 28, 320], "Mixed_4a": [14, 14, 576],
    "Mixed_4b": [14, 14, 576], "Mixed_4c": [14, 14, 576], "Mixed_4d": [14, 14, 576],
    "Mixed_4e": [14, 14, 576], "Mixed_5a": [7, 7, 1024], "Mixed_5b": [7, 7, 1024],
    "Mixed_5c": [7, 7, 1024], "Conv2d_1a_7x7": [112, 112, 64], "MaxPool_2a_3x3": [56, 56, 64],
    "Conv2d_2b_1x1": [56, 56, 64], "Conv2d_2c_3x3": [56, 56, 192],
    "MaxPool_3a_3x3": [28, 28, 192]}


def test_inception_v2_end_points_and_parameters_are_slims():
    model = _built("inception_v2", 1001)
    assert _end_point_shapes(model, "InceptionV2", INCEPTION_V2_END_POINTS) == \
        INCEPTION_V2_END_POINTS
    # Slim's testModelHasExpectedNumberOfParameters (same file): the model variables of
    # inception_v2_base, batch-norm moving statistics included, are 10,173,112.
    base = [w for w in model.weights if not w.name.startswith("InceptionV2/Logits/")]
    assert _count(base) == 10_173_112
    # + the logits (1x1 conv 1024 -> 1,001 with biases) = tf-slim's graph at 1,001 classes
    # (11,179,361 trainable; test_slim_parity compares it variable by variable).
    trainable = _count(model.trainable_weights)
    assert trainable == _count(w for w in base if w.trainable) + 1024 * 1001 + 1001 == 11_179_361
    assert model.output_shape == (None, 1001) and model.input_shape == (None, 224, 224, 3)
    assert _built("inception_v2", 5).output_shape == (None, 5)


def test_inception_v2_depth_multiplier_thins_every_layer():
    """Slim's testBuildEndPointsWithDepthMultiplierLessThanOne: every Mixed/Conv end point
    has half the channels at 0.5."""
    full = _end_point_shapes(_built("inception_v2", 1001), "InceptionV2", INCEPTION_V2_END_POINTS)
    half = _end_point_shapes(_built("inception_v2", 1001, depth_multiplier=0.5), "InceptionV2",
                             INCEPTION_V2_END_POINTS)
    for name in full:
        if name.startswith(("Mixed", "Conv")):
            assert half[name][2] * 2 == full[name][2], name
    with pytest.raises(ValueError, match="depth_multiplier"):
        nets.build("inception_v2", 5, depth_multiplier=0)


# tensorflow/models research/slim/nets/inception_v4_test.py (tf-slim 1.1.0 lacks Inception
# v4): testAllEndPointsShapes at 299, 1,001 classes here (1,000 there).
INCEPTION_V4_END_POINTS = {
    "Conv2d_1a_3x3": [149, 149, 32], "Conv2d_2a_3x3": [147, 147, 32],
    "Conv2d_2b_3x3": [147, 147, 64], "Mixed_3a": [73, 73, 160], "Mixed_4a": [71, 71, 192],
    "Mixed_5a": [35, 35, 384], **{f"Mixed_5{c}": [35, 35, 384] for c in "bcde"},
    "Mixed_6a": [17, 17, 1024], **{f"Mixed_6{c}": [17, 17, 1024] for c in "bcdefgh"},
    "Mixed_7a": [8, 8, 1536], **{f"Mixed_7{c}": [8, 8, 1536] for c in "bcd"},
    "AuxLogits": [1001], "global_pool": [1, 1, 1536], "PreLogitsFlatten": [1536],
    "Logits": [1001], "Predictions": [1001]}
_V4_LAYERS = {"AuxLogits": "AuxLogits/Aux_logits", "global_pool": "Logits/AvgPool_1a",
              "PreLogitsFlatten": "Logits/PreLogitsFlatten", "Logits": "Logits/Logits"}


def test_inception_v4_end_points_and_parameters_are_slims():
    model = _built("inception_v4", 1001)
    assert _end_point_shapes(model, "InceptionV4", INCEPTION_V4_END_POINTS, _V4_LAYERS) == \
        INCEPTION_V4_END_POINTS
    assert model.output_names == ["predictions", "aux_predictions"]
    # Trainable parameters of Slim's own graph at 1,001 classes: research/slim/nets/
    # inception_v4.py (tensorflow/models) built with tf-slim 1.1.0 under
    # inception_v4_arg_scope (a one-off build of the upstream file, which tf-slim does not
    # carry; its variable names and shapes equal ours, every one).
    trainable = _count(model.trainable_weights)
    assert trainable == 46_009_106
    aux = _count(w for w in model.trainable_weights if "/AuxLogits/" in w.name)
    # AuxLogits: Conv2d_1b_1x1 (1024 -> 128, BN beta), Conv2d_2a (5x5, 128 -> 768, beta),
    # Aux_logits (768 -> 1,001 with biases).
    assert aux == 1024 * 128 + 128 + 5 * 5 * 128 * 768 + 768 + 768 * 1001 + 1001
    # timm's inception_v4.tf_in1k (huggingface.co/timm/inception_v4.tf_in1k, "Params (M):
    # 42.7"; Slim's checkpoint via Cadene's pretrained-models.pytorch): 1,000 classes, no
    # AuxLogits, and a batch-norm gamma for every beta.
    betas = _count(w for w in model.weights
                   if w.name.endswith("/beta:0") and "/AuxLogits/" not in w.name)
    assert round((trainable - aux - (1536 + 1) + betas) / 1e5) == 427
    assert [tuple(o.shape) for o in _built("inception_v4", 5).outputs] == [(None, 5)] * 2


@pytest.mark.slow
def test_inception_v4_builds_at_half_size_and_without_aux_logits():
    """Slim's testHalfSizeImages (150x150: Mixed_7d 3x3x1536) and testBuildWithoutAuxLogits."""
    model = nets.build("inception_v4", 1001, image_size=150)
    assert _end_point_shapes(model, "InceptionV4", ["Mixed_7d", "AuxLogits"], _V4_LAYERS) == \
        {"Mixed_7d": [3, 3, 1536], "AuxLogits": [1001]}
    plain = nets.build("inception_v4", 1001, aux_logits=False)
    assert plain.output_shape == (None, 1001)
    assert not [layer for layer in plain.layers if "/AuxLogits/" in layer.name]


# tensorflow/models research/slim/nets/inception_resnet_v2_test.py (tf-slim 1.1.0 lacks it):
# testBuildAndCheckAllEndPointsUptoPreAuxLogits, testBuildEndPoints and testBuildNoClasses
# (the pool before the logits) at 299.
INCEPTION_RESNET_V2_END_POINTS = {
    "Conv2d_1a_3x3": [149, 149, 32], "Conv2d_2a_3x3": [147, 147, 32],
    "Conv2d_2b_3x3": [147, 147, 64], "MaxPool_3a_3x3": [73, 73, 64],
    "Conv2d_3b_1x1": [73, 73, 80], "Conv2d_4a_3x3": [71, 71, 192],
    "MaxPool_5a_3x3": [35, 35, 192], "Mixed_5b": [35, 35, 320], "Mixed_6a": [17, 17, 1088],
    "PreAuxLogits": [17, 17, 1088], "Conv2d_7b_1x1": [8, 8, 1536],
    "AvgPool": [1, 1, 1536], "AuxLogits": [1001], "Logits": [1001]}
_IRV2_LAYERS = {"PreAuxLogits": "Repeat_1/block17_20/Relu", "AvgPool": "Logits/AvgPool_1a_8x8",
                "AuxLogits": "AuxLogits/Logits", "Logits": "Logits/Logits"}
#: InceptionResnetV2's AuxLogits: Conv2d_1b_1x1 (1088 -> 128, BN beta), Conv2d_2a_5x5
#: (5x5, 128 -> 768, beta), Logits (768 -> 1,001 with biases).
_IRV2_AUX = 1088 * 128 + 128 + 5 * 5 * 128 * 768 + 768 + 768 * 1001 + 1001


def test_inception_resnet_v2_end_points_and_parameters_are_slims():
    model = _built("inception_resnet_v2", 1001)
    assert _end_point_shapes(model, "InceptionResnetV2", INCEPTION_RESNET_V2_END_POINTS,
                             _IRV2_LAYERS) == INCEPTION_RESNET_V2_END_POINTS
    assert model.output_names == ["predictions", "aux_predictions"]
    # Keras' InceptionResNetV2 is Slim's network without AuxLogits (the slow test below
    # checks it layer by layer): tf_keras.applications.InceptionResNetV2(weights=None)
    # has 55,873,736 parameters at 1,000 classes (keras.io/api/applications: "55.9M"),
    # 60,544 of them batch-norm moving statistics (not trainable). The 1,001st class adds
    # a row of 1,536 weights and a bias; AuxLogits add _IRV2_AUX (3,367,529).
    assert _count(w for w in model.trainable_weights if "/AuxLogits/" in w.name) == _IRV2_AUX
    assert _count(model.trainable_weights) == 55_873_736 - 60_544 + 1536 + 1 + _IRV2_AUX \
        == 59_182_258
    assert [tuple(o.shape) for o in _built("inception_resnet_v2", 5).outputs] == [(None, 5)] * 2


def _irv2_bn_convs():
    """Our batch-normalised convolutions of Inception-ResNet-v2 but ``Conv2d_7b_1x1``, in
    the order Slim's (and Keras') code creates them (tower by tower, block by block)."""
    from model_garden.nets import inception_resnet_v2 as irv2
    from model_garden.nets.inception_layers import C

    def towers(scope, branches):
        return [f"{scope}/Branch_{i}/{c.name}" for i, b in enumerate(branches) for c in b
                if isinstance(c, C)]

    s = irv2.SCOPE
    names = [f"{s}/{n}" for n in ("Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3",
                                  "Conv2d_3b_1x1", "Conv2d_4a_3x3")]
    names += towers(f"{s}/Mixed_5b", irv2.MIXED_5B)
    after = (("Mixed_6a", irv2.MIXED_6A), ("Mixed_7a", irv2.MIXED_7A), None)
    for (repeat, block, table, n, _), reduction in zip(irv2.REPEATS, after):
        for i in range(1, n + 1):
            names += towers(f"{s}/{repeat}/{block}_{i}", table)
        if reduction:
            names += towers(f"{s}/{reduction[0]}", reduction[1])
    return names + towers(f"{s}/Block8", irv2.BLOCK8)


@pytest.mark.slow
def test_inception_resnet_v2_is_keras_applications_inception_resnet_v2(flower_photo):
    """tf_keras.applications.InceptionResNetV2 (include_top, 1,001 classes) with random
    weights, copied into ours, gives the same logits and probabilities on real photos.

    Correspondence (Keras' names -> Slim's scopes, under ``InceptionResnetV2/``): Keras'
    auto-named ``conv2d``, ``conv2d_1``, ... and ``batch_normalization``, ... in creation
    order -> :func:`_irv2_bn_convs` and their ``/BatchNorm``; ``block35_<i>_conv``,
    ``block17_<i>_conv``, ``block8_<i>_conv`` -> ``Repeat/block35_<i>/Conv2d_1x1``,
    ``Repeat_1/block17_<i>/...``, ``Repeat_2/block8_<i>/...``, except ``block8_10_conv`` ->
    ``Block8/Conv2d_1x1`` (Slim's last block8, outside the repeat, no activation);
    ``conv_7b``/``conv_7b_bn`` -> ``Conv2d_7b_1x1``; the Dense ``predictions`` ->
    ``Logits/Logits`` (Keras pools globally and has no 1x1-conv logits, Slim pools 8x8 and
    flattens: the same). Keras has no AuxLogits: ours keep their own initial weights.
    """
    import tensorflow as tf

    keras_model = tf.keras.applications.InceptionResNetV2(weights=None, include_top=True,
                                                          classes=1001)
    assert keras_model.count_params() == 55_873_736 + 1536 + 1  # see the count test above
    non_trainable = _count(keras_model.non_trainable_weights)
    assert non_trainable == 60_544
    rng = np.random.default_rng(0)
    for weight in keras_model.weights:  # He-scaled kernels, and nothing trivially 0 or 1
        shape, kind = weight.shape, weight.name.split("/")[-1].split(":")[0]
        value = {"moving_variance": lambda: rng.uniform(0.5, 1.5, shape),
                 "kernel": lambda: rng.normal(0, np.sqrt(2 / np.prod(shape[:-1])), shape)}.get(
            kind, lambda: rng.normal(0, 0.1, shape))()
        weight.assign(value.astype(np.float32))

    model = nets.build("inception_resnet_v2", 1001)
    ours = {layer.name: layer for layer in model.layers}
    theirs = {layer.name: layer for layer in keras_model.layers}

    def creation_order(prefix):
        names = [n for n in theirs if n == prefix or n.startswith(prefix + "_")
                 and n[len(prefix) + 1:].isdigit()]
        return sorted(names, key=lambda n: int(n[len(prefix) + 1:] or 0))

    pairs = []
    for name, conv, bn in zip(_irv2_bn_convs(), creation_order("conv2d"),
                              creation_order("batch_normalization"), strict=True):
        pairs += [(name, conv), (name + "/BatchNorm", bn)]
    s = "InceptionResnetV2"
    for repeat, block, n in (("Repeat", "block35", 10), ("Repeat_1", "block17", 20),
                             ("Repeat_2", "block8", 9)):
        pairs += [(f"{s}/{repeat}/{block}_{i}/Conv2d_1x1", f"{block}_{i}_conv")
                  for i in range(1, n + 1)]
    pairs += [(f"{s}/Block8/Conv2d_1x1", "block8_10_conv"), (f"{s}/Conv2d_7b_1x1", "conv_7b"),
              (f"{s}/Conv2d_7b_1x1/BatchNorm", "conv_7b_bn"), (f"{s}/Logits/Logits", "predictions")]
    for mine, keras_name in pairs:
        ours[mine].set_weights(theirs[keras_name].get_weights())  # raises on another shape
    copied = {id(w) for mine, _ in pairs for w in ours[mine].weights}
    assert {w.name for w in model.weights if id(w) not in copied
            and "/AuxLogits/" not in w.name} == set()  # every weight but AuxLogits' copied
    used = [keras_name for _, keras_name in pairs]  # every Keras layer with weights, once
    assert sorted(used) == sorted(layer.name for layer in keras_model.layers if layer.weights)

    preprocess = preprocessing.get_preprocessing("inception")
    images = np.stack([preprocess(flower_photo(c), 299, 299).numpy()
                       for c in ("daisy", "dandelion", "roses", "tulips")])
    pooled = tf.keras.Model(keras_model.inputs, keras_model.get_layer("avg_pool").output)
    dense = theirs["predictions"]
    keras_logits = pooled(images, training=False).numpy() @ dense.kernel.numpy() \
        + dense.bias.numpy()
    logits = tf.keras.Model(model.inputs, ours[f"{s}/Logits/Logits"].output)(
        images, training=False).numpy()
    assert np.abs(keras_logits).max() > 1.0  # a real signal
    np.testing.assert_allclose(logits, keras_logits, atol=1e-4, rtol=0)
    probabilities, _ = model(images, training=False)
    np.testing.assert_allclose(probabilities.numpy(), keras_model(images, training=False).numpy(),
                               rtol=1e-4, atol=0)
