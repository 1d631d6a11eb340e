"""The recipe registry and the CLI's view of it."""

import dataclasses

import pytest
from click.testing import CliRunner

from model_garden import cli
from model_garden.datasets import DATASETS, SplitSpec
from model_garden.pipelines import recipes


def test_every_recipe_points_at_real_modules_and_files():
    import importlib
    import os

    from model_garden.pipelines.factory import SCHEMAS_DIR

    assert "mnist" in recipes.RECIPES
    for recipe in recipes.RECIPES.values():
        assert recipe.dataset in DATASETS, recipe.name
        assert os.path.isfile(os.path.join(SCHEMAS_DIR, recipe.schema_file)), recipe.name
        for dotted in (recipe.preprocessing_fn, recipe.run_fn):
            module, _, attr = dotted.rpartition(".")
            assert callable(getattr(importlib.import_module(module), attr)), dotted


def test_register_rejects_duplicates_and_bad_threshold_metric():
    mnist = recipes.get_recipe("mnist")
    with pytest.raises(ValueError, match="registered twice"):
        recipes.register(mnist)
    bad = dataclasses.replace(
        mnist, name="mnist_bad", eval=dataclasses.replace(mnist.eval, threshold_metric="AUC")
    )
    with pytest.raises(ValueError, match="'AUC' is not among"):
        recipes.register(bad)
    assert "mnist_bad" not in recipes.RECIPES


def test_unknown_recipe_names_the_known_ones():
    with pytest.raises(KeyError, match="known: .*'mnist'"):
        recipes.get_recipe("lenet")
    result = CliRunner().invoke(cli.cli, ["run", "lenet"])
    assert result.exit_code == 2 and "unknown recipe 'lenet'" in result.output


def test_list_prints_every_recipe_then_every_dataset():
    result = CliRunner().invoke(cli.cli, ["list"])
    assert result.exit_code == 0
    recipe_table, dataset_table = result.output.rstrip("\n").split("\n\n")
    listed = [line.split()[0] for line in recipe_table.splitlines()]
    assert listed == sorted(recipes.RECIPES)
    header, *rows = [line.split() for line in dataset_table.splitlines()]
    assert header == ["dataset", "classes", "train", "test", "homepage"]
    assert [r[0] for r in rows] == sorted(DATASETS)
    for name, classes, train, test, homepage in rows:
        d = DATASETS[name]
        assert int(classes) == d.num_classes and homepage == d.homepage
        assert (int(train.replace(",", "")), int(test.replace(",", ""))) == (
            d.split_sizes["train"], d.split_sizes["test"])


@pytest.mark.parametrize(
    "text,expected",
    [
        ("official", SplitSpec("official", 4, 1)),
        ("hash", SplitSpec("hash", 4, 1)),
        ("hash:80/20", SplitSpec("hash", 80, 20)),
    ],
)
def test_split_spec_parse(text, expected):
    assert SplitSpec.parse(text) == expected


@pytest.mark.parametrize("text", ["hash:80", "hash:0/5", "random", ""])
def test_split_spec_rejects(text):
    with pytest.raises(ValueError, match="bad split"):
        SplitSpec.parse(text)
