"""Fine-tuning as TF-Slim's train_image_classifier.py does it: ``checkpoint_path``,
``checkpoint_exclude_scopes`` and ``trainable_scopes``
(:mod:`model_garden.trainers.initialize`), the Slim and official training
defaults (:mod:`model_garden.trainers.configs`) and the generated
``<dataset>_<network>`` recipes.

The network is TF-Slim's MobileNet v1 at depth 0.25 and 128 px (the smallest
released variant), trained on real flower photos from ``shared/data``.
"""

import glob
import os

import numpy as np
import pytest

from model_garden.nets import released
from model_garden.nets.slim_checkpoint import SlimCheckpointError
from model_garden.pipelines import recipes
from model_garden.trainers import configs

NET, SIZE, LOGITS = "mobilenet_v1_025", 128, "MobilenetV1/Logits"


def _model(num_classes=5, seed=0):
    import tensorflow as tf

    from model_garden import nets

    tf.keras.utils.set_random_seed(seed)
    return nets.build(NET, num_classes, image_size=SIZE)


def _values(model):
    from model_garden.nets import slim_checkpoint

    return {n: w.numpy().copy() for n, w in slim_checkpoint.slim_names(model).items()}


def _write_slim_ckpt(model, prefix):
    """A name-based TF1 checkpoint with Slim's variable names (what Slim's Saver writes)."""
    import tensorflow as tf

    from model_garden.nets import slim_checkpoint

    names = slim_checkpoint.slim_names(model)
    tf.raw_ops.SaveV2(prefix=prefix, tensor_names=list(names), shape_and_slices=[""] * len(names),
                      tensors=[w.read_value() for w in names.values()])
    return prefix


def _assert_initialized(model, source, initial, excluded):
    # the two inits differ, so equality below says where each value came from
    assert all(not np.array_equal(source[n], initial[n]) for n in source if n.endswith("weights"))
    got = _values(model)
    for name, value in got.items():
        expected = initial[name] if name.startswith(excluded) else source[name]
        assert np.array_equal(value, expected), name
    assert any(name.startswith(excluded) for name in got)


@pytest.mark.parametrize("kind", ["slim_ckpt", "keras_h5", "saved_model"])
def test_each_checkpoint_kind_initializes_by_name_minus_the_excluded_scopes(kind, tmp_path):
    from model_garden.trainers import initialize

    source_model = _model(seed=1)
    source = _values(source_model)
    if kind == "slim_ckpt":
        path = _write_slim_ckpt(source_model, str(tmp_path / "model.ckpt"))
    elif kind == "keras_h5":
        path = str(tmp_path / "weights.h5")
        source_model.save_weights(path)
    else:
        path = str(tmp_path / "serving" / "1")
        source_model.save(path, save_format="tf")
    model = _model(seed=2)
    initial = _values(model)
    restored = initialize.initialize_from(model, path, exclude_scopes=[LOGITS])
    _assert_initialized(model, source, initial, LOGITS)
    assert restored and not any(n.startswith(LOGITS) for n in restored)


def test_logits_of_another_class_count_are_named_unless_excluded(tmp_path):
    from model_garden.trainers import initialize

    imagenet = _write_slim_ckpt(_model(num_classes=1001, seed=1), str(tmp_path / "in.ckpt"))
    model = _model(num_classes=5)
    with pytest.raises(SlimCheckpointError) as e:
        initialize.initialize_from(model, imagenet)
    assert imagenet in str(e.value) and f"{LOGITS}/Conv2d_1c_1x1/weights" in str(e.value)
    assert "checkpoint_exclude_scopes" in str(e.value)
    initialize.initialize_from(model, imagenet, exclude_scopes=released.RELEASED[NET].logits_scopes)


def test_unreadable_checkpoints_are_one_error_naming_the_path(tmp_path):
    import tensorflow as tf

    from model_garden.trainers import initialize

    model = _model()
    for path in (str(tmp_path / "nothing.ckpt"), str(tmp_path / "nothing.h5")):
        with pytest.raises(SlimCheckpointError, match="nothing"):
            initialize.initialize_from(model, path)
    tf.train.Checkpoint(model=model).write(str(tmp_path / "object"))
    with pytest.raises(SlimCheckpointError, match="object-based"):
        initialize.initialize_from(model, str(tmp_path / "object"))


def _flower_batch(data_root, per_class=2):
    import tensorflow as tf

    from model_garden import preprocessing

    preprocess = preprocessing.get_preprocessing("inception")
    images, labels = [], []
    classes = sorted(os.listdir(os.path.join(data_root, "flowers", "flower_photos")))
    classes = [c for c in classes if os.path.isdir(os.path.join(data_root, "flowers",
                                                                 "flower_photos", c))]
    for label, name in enumerate(classes):
        for path in sorted(glob.glob(os.path.join(data_root, "flowers", "flower_photos", name,
                                                  "*.jpg")))[:per_class]:
            image = tf.io.decode_jpeg(tf.io.read_file(path), channels=3)
            images.append(preprocess(image, SIZE, SIZE, is_training=True, seed=[label, 7]))
            labels.append(label)
    return tf.stack(images), tf.constant(labels, tf.int64)


def test_trainable_scopes_train_only_the_logits_and_keep_batch_norm_statistics(
        data_root, tmp_path):
    from model_garden.trainers import image_classifier, initialize

    checkpoint = _write_slim_ckpt(_model(num_classes=1001, seed=1), str(tmp_path / "in.ckpt"))
    model = _model()
    initialize.initialize_from(model, checkpoint, exclude_scopes=[LOGITS])
    trainable = initialize.freeze_outside(model, [LOGITS])
    assert trainable == [f"{LOGITS}/Conv2d_1c_1x1"]
    config = configs.slim_defaults(net=NET, num_classes=5, train_examples=10,
                                   lr_schedule="fixed", base_learning_rate=0.1)
    image_classifier.compile_model(
        model, None, optimizer=image_classifier.make_optimizer(config,
                                                               image_classifier.make_schedule(config)))
    before = _values(model)
    images, labels = _flower_batch(data_root)
    model.fit(images, labels, batch_size=5, epochs=2, verbose=0)
    after = _values(model)
    changed = sorted(n for n in after if not np.array_equal(after[n], before[n]))
    # The logits moved; every other weight, batch norm's moving mean and
    # variance included, is bit for bit the checkpoint's.
    assert changed == [f"{LOGITS}/Conv2d_1c_1x1/biases", f"{LOGITS}/Conv2d_1c_1x1/weights"]


def test_trainable_scopes_that_match_no_layer_are_refused():
    from model_garden.trainers import initialize

    with pytest.raises(ValueError, match="InceptionV3/Logits"):
        initialize.freeze_outside(_model(), ["InceptionV3/Logits"])


def test_every_released_network_has_a_recipe_per_slim_dataset_and_its_logits_scopes():
    from model_garden import nets

    for net, entry in released.RELEASED.items():
        if net not in nets.NETS:
            continue  # registered by its own module's entry
        for dataset in recipes.SLIM_DATASETS:
            recipe = recipes.get_recipe(f"{dataset}_{net}")
            assert recipe.config.net == net and recipe.dataset == dataset
            assert recipe.eval.slices == (("image/class/label",),)
    # the logits scopes name real layers (one small network; every net's are
    # checked where it is built, tests/test_nets.py)
    model = _model()
    assert all(any(layer.name.startswith(scope + "/") for layer in model.layers)
               for scope in released.RELEASED[NET].logits_scopes)


def test_flowers_inception_v3_is_slims_fine_tuning_and_needs_a_checkpoint():
    recipe = recipes.get_recipe("flowers_inception_v3")
    scopes = ("InceptionV3/Logits", "InceptionV3/AuxLogits")
    assert recipe.config.checkpoint_exclude_scopes == scopes
    assert recipe.config.trainable_scopes == scopes
    # finetune_inception_v3_on_flowers.sh: 1000 steps, batch 32, rmsprop, lr 0.01 fixed, wd 4e-5
    assert recipe.train_steps == 1000
    c = recipe.config
    assert (c.batch_size, c.optimizer, c.base_learning_rate, c.lr_schedule, c.weight_decay) == (
        32, "rmsprop", 0.01, "fixed", 4e-5)
    with pytest.raises(configs.ConfigError, match="inception_v3_2016_08_28.tar.gz"):
        c.check_runnable()
    c.override({"checkpoint_path": "gs://bucket/inception_v3.ckpt"}).check_runnable()


def test_official_resnet_50_schedule():
    from model_garden.trainers import image_classifier

    recipe = recipes.get_recipe("imagenet_resnet_v1_50")
    c = recipe.config
    # official/resnet imagenet_main.py: 90 epochs, lr 0.1 x batch/256, x0.1 at 30/60/80/90, wd 1e-4
    assert recipe.train_steps == -(-90 * 1_281_167 // 256)
    assert (c.optimizer, c.momentum, c.weight_decay) == ("momentum", 0.9, 1e-4)
    half = c.override({"batch_size": 128})
    schedule = image_classifier.make_schedule(half)
    per_epoch = 1_281_167 / 128
    assert schedule.boundaries == [int(per_epoch * e) for e in (30, 60, 80, 90)]
    np.testing.assert_allclose(schedule.values, [0.05, 0.005, 0.0005, 0.00005, 0.000005])


def test_slim_exponential_schedule_and_rmsprop():
    from model_garden.trainers import image_classifier

    c = recipes.get_recipe("imagenet_inception_v3").config
    schedule = image_classifier.make_schedule(c)
    decay_steps = int(1_281_167 * 2.0 / 32)  # train_image_classifier._configure_learning_rate
    assert float(schedule(decay_steps - 1)) == pytest.approx(0.01)
    assert float(schedule(decay_steps)) == pytest.approx(0.0094)
    optimizer = image_classifier.make_optimizer(c, schedule)
    cfg = optimizer.get_config()
    assert (cfg["rho"], cfg["momentum"], cfg["epsilon"]) == (0.9, 0.9, 1.0)


def test_a_resumed_run_keeps_its_own_weights_and_a_fresh_one_loads_the_checkpoint(tmp_path):
    from model_garden.trainers import image_classifier

    path = str(tmp_path / "weights.h5")
    _model(seed=1).save_weights(path)
    source = _values(_model(seed=1))
    config = configs.slim_defaults(net=NET, num_classes=5, train_examples=10, image_size=SIZE,
                                   checkpoint_path=path)
    resumed = _model(seed=2)
    own = _values(resumed)  # stands for the weights restored from the run's epoch checkpoint
    assert image_classifier.initial_weights(resumed, config, None, initial_epoch=3) == "resumed"
    assert all(np.array_equal(v, own[n]) for n, v in _values(resumed).items())
    fresh = _model(seed=2)
    assert image_classifier.initial_weights(fresh, config, None, 0) == "checkpoint_path"
    assert all(np.array_equal(v, source[n]) for n, v in _values(fresh).items())
