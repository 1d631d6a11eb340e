"""Typed Trainer configs: --set conversion, one clear error before anything runs."""

import json
import subprocess
import sys

import pytest
from click.testing import CliRunner

from model_garden.cli import cli
from model_garden.pipelines import recipes
from model_garden.trainers import configs


def test_set_strings_become_typed_values():
    config = recipes.get_recipe("cifar10_resnet20").config.override({
        "batch_size": "64", "base_learning_rate": "0.05", "boundary_epochs": "10,20",
        "decay_rates": "1,0.5,0.25", "net": "resnet_v2_20_cifar", "mixed_precision": "float32"})
    assert config.batch_size == 64 and config.base_learning_rate == 0.05
    assert config.boundary_epochs == (10, 20) and config.decay_rates == (1.0, 0.5, 0.25)
    assert config.net == "resnet_v2_20_cifar"
    # ... and survive the round trip through the Trainer's JSON custom_config.
    again = configs.from_custom_config(configs.ImageClassifierConfig,
                                       json.loads(json.dumps(config.to_custom_config())))
    assert again == config


@pytest.mark.parametrize("overrides,message", [
    ({"batch_sise": "64"}, r"unknown MnistConfig key\(s\) \['batch_sise'\]; valid keys: "
                           r"batch_size, strategy, steps_per_epoch, learning_rate, lr_schedule"),
    ({"batch_size": "6.5"}, "MnistConfig.batch_size: '6.5' is not a whole number"),
    ({"batch_size": "0"}, "MnistConfig.batch_size: 0 must be >= 1"),
    ({"learning_rate": "fast"}, "MnistConfig.learning_rate: 'fast' is not a number"),
    ({"learning_rate": "nan"}, "not a finite number"),
    ({"strategy": "mirorred"}, r"MnistConfig.strategy: 'mirorred' is not one of \['auto'"),
])
def test_a_bad_override_is_one_error_naming_the_key(overrides, message):
    with pytest.raises(configs.ConfigError, match=message):
        recipes.get_recipe("mnist").config.override(overrides)


def test_image_config_checks_the_network_and_the_schedule():
    base = recipes.get_recipe("cifar10_resnet20").config
    with pytest.raises(configs.ConfigError, match="unknown network 'resnet_v1_21_cifar'"):
        base.override({"net": "resnet_v1_21_cifar"})
    with pytest.raises(configs.ConfigError, match="decay_rates needs one more entry"):
        base.override({"boundary_epochs": "10"})


def test_the_run_fn_refuses_an_unknown_custom_config_key():
    with pytest.raises(configs.ConfigError, match=r"unknown WideDeepConfig key\(s\) \['depth'\]"):
        configs.from_custom_config(configs.WideDeepConfig, {"model_type": "wide", "depth": 3})
    with pytest.raises(configs.ConfigError, match="model_type"):
        configs.from_custom_config(configs.WideDeepConfig, {})


def test_each_default_is_written_once():
    """The recipes take the configs' defaults; the trainers read the config alone."""
    mnist = recipes.get_recipe("mnist")
    assert mnist.config == configs.MnistConfig()
    for kind in configs.CENSUS_LEARNING_RATES:
        assert recipes.get_recipe(f"census_{kind}").config == configs.WideDeepConfig(model_type=kind)


def test_step_budgets_derive_from_the_dataset_split_sizes():
    from model_garden.datasets import get_dataset

    cifar = recipes.get_recipe("cifar10_resnet20")
    train = get_dataset("cifar10").split_sizes["train"]
    # official/resnet cifar10_main.py: 182 epochs of 50,000 images at batch 128.
    assert cifar.train_steps == -(-182 * train // cifar.config.batch_size) == 71094
    assert cifar.config.train_examples == train
    census = recipes.get_recipe("census_wide")
    assert census.train_steps == -(-10 * get_dataset("census").split_sizes["train"] // 40)


@pytest.mark.parametrize("command", ["run", "compile"])
def test_cli_refuses_a_typo_before_anything_runs(command, tmp_path):
    args = [command, "mnist", "--set", "batch_sise=64"]
    if command == "run":
        args += ["--output-root", str(tmp_path / "out"), "--data-dir", str(tmp_path / "none")]
    else:
        args += ["--image", "img:1", "--pipeline-root", "gs://b/r", "-o", str(tmp_path / "p.yaml")]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2, result.output
    assert "batch_sise" in result.output and "valid keys: batch_size, strategy" in result.output
    assert list(tmp_path.iterdir()) == []  # nothing written, no data looked up


def test_configs_import_no_tensorflow():
    code = ("import sys, model_garden.trainers.configs, model_garden.nets, "
            "model_garden.preprocessing, model_garden.pipelines.recipes; "
            "print('tensorflow' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
