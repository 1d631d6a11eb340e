"""tf.distribute strategies by name, on this machine's CPU."""

import pytest
import tensorflow as tf

from model_garden.trainers import strategies


def test_auto_on_a_machine_without_gpus_is_the_default_strategy():
    assert not tf.config.list_logical_devices("GPU")  # CI has no GPU
    assert strategies.get_strategy("auto") is tf.distribute.get_strategy()


@pytest.mark.parametrize(
    "name,cls",
    [("one_device", tf.distribute.OneDeviceStrategy), ("mirrored", tf.distribute.MirroredStrategy)],
)
def test_named_strategies_build_and_train_inside_their_scope(name, cls):
    strategy = strategies.get_strategy(name)
    assert isinstance(strategy, cls)
    with strategy.scope():
        model = tf.keras.Sequential([tf.keras.Input((3,)), tf.keras.layers.Dense(1)])
        model.compile("sgd", "mse")
    history = model.fit(tf.ones((8, 3)), tf.ones((8, 1)), epochs=1, verbose=0)
    assert len(history.history["loss"]) == 1


def test_multi_worker_without_tf_config_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(RuntimeError, match="multi_worker needs TF_CONFIG"):
        strategies.get_strategy("multi_worker")


def test_unknown_strategy_names_the_choices():
    with pytest.raises(ValueError, match="choose one of .*'mirrored'"):
        strategies.get_strategy("horovod")
