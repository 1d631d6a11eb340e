"""The baseline (latest blessed = newest pushed model), the Evaluator without one, the
Pusher that does not push the served model again, and warm start from the baseline.

The models are the official MNIST CNN (``trainers.mnist.build_model``), saved
the way its ``run_fn`` exports it (``export.save`` with the ``classify``
signature); the executors are run with ``Do`` as TFX's own executor tests do.
"""

import os

import numpy as np
import pytest
from tfx.proto import pusher_pb2
from tfx.types import standard_artifacts, standard_component_specs as specs
from tfx.utils import proto_utils

from model_garden.components import evaluator as evaluator_lib
from model_garden.components import latest_blessed_model as baseline_lib
from model_garden.components import pusher as pusher_lib
from model_garden.trainers import warm_start as warm_start_lib


def _saved_model(path, seed):
    """An MNIST CNN with seeded weights, exported like the mnist run_fn does."""
    import tensorflow as tf

    from model_garden.trainers import export, mnist

    tf.keras.utils.set_random_seed(seed)
    model = mnist.build_model(1e-3)
    export.save(model, str(path), {"classify": mnist.make_classify_fn(model)})
    return model


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    return {name: (str(root / name), _saved_model(root / name, seed))
            for name, seed in (("a", 1), ("b", 2))}


def _pusher_call(model_dir, destination, blessed=True):
    model = standard_artifacts.Model()
    model.uri = os.path.dirname(model_dir)
    os.makedirs(os.path.join(model.uri, baseline_lib.SERVING_MODEL_DIR), exist_ok=True)
    serving = os.path.join(model.uri, baseline_lib.SERVING_MODEL_DIR)
    if not os.listdir(serving):
        import shutil

        shutil.copytree(model_dir, serving, dirs_exist_ok=True)
    blessing = standard_artifacts.ModelBlessing()
    blessing.uri = model.uri + "-blessing"
    blessing.set_int_custom_property("blessed", int(blessed))
    pushed = standard_artifacts.PushedModel()
    pushed.uri = model.uri + "-pushed"
    destination_json = proto_utils.proto_to_json(pusher_pb2.PushDestination(
        filesystem=pusher_pb2.PushDestination.Filesystem(base_directory=destination)))
    pusher_lib.Executor().Do(
        {specs.MODEL_KEY: [model], specs.MODEL_BLESSING_KEY: [blessing]},
        {specs.PUSHED_MODEL_KEY: [pushed]},
        {specs.PUSH_DESTINATION_KEY: destination_json, specs.CUSTOM_CONFIG_KEY: "null"})
    return pushed


def _stage(tmp_path, name, model_dir):
    """A Trainer-like Model artifact folder ``<tmp>/<name>/Format-Serving`` holding model_dir."""
    import shutil

    serving = tmp_path / name / baseline_lib.SERVING_MODEL_DIR
    shutil.copytree(model_dir, serving)
    return str(serving)


def _baseline(tmp_path, destination, expected):
    model = standard_artifacts.Model()
    model.uri = str(tmp_path / "baseline")
    os.makedirs(model.uri)
    baseline_lib.Executor().Do({}, {baseline_lib.MODEL_KEY: [model]}, {
        baseline_lib.PUSH_DESTINATION_KEY: destination,
        baseline_lib.PUSHED_VERSION_KEY: expected})
    return model


def _version_step(tmp_path, destination):
    value = standard_artifacts.String()
    value.uri = str(tmp_path / "version" / "value")
    os.makedirs(os.path.dirname(value.uri), exist_ok=True)
    baseline_lib.VersionExecutor().Do({}, {baseline_lib.PUSHED_VERSION_KEY: [value]},
                                      {baseline_lib.PUSH_DESTINATION_KEY: destination})
    return value.value


def test_push_then_rerun_then_new_model(tmp_path, models):
    """First push; the same model again is not pushed; another model is."""
    destination = str(tmp_path / "serving")
    first = _pusher_call(_stage(tmp_path, "m1", models["a"][0]), destination)
    assert first.get_int_custom_property("pushed") == 1
    [version] = os.listdir(destination)
    assert baseline_lib.pushed_versions(destination) == [int(version)]

    again = _pusher_call(_stage(tmp_path, "m2", models["a"][0]), destination)
    assert again.get_int_custom_property("pushed") == 0
    assert again.get_string_custom_property("same_as_version") == version
    assert again.get_string_custom_property("not_pushed_reason") == (
        "the same model is already served")
    assert os.listdir(destination) == [version]

    import time

    time.sleep(1.1)  # TFX versions are UNIX seconds
    other = _pusher_call(_stage(tmp_path, "m3", models["b"][0]), destination)
    assert other.get_int_custom_property("pushed") == 1
    assert len(baseline_lib.pushed_versions(destination)) == 2
    # An unblessed model is never pushed (TFX's own check still applies).
    unblessed = _pusher_call(_stage(tmp_path, "m4", models["a"][0]), destination, blessed=False)
    assert unblessed.get_int_custom_property("pushed") == 0
    assert len(baseline_lib.pushed_versions(destination)) == 2


def test_a_local_push_appears_whole_or_not_at_all(tmp_path, models, monkeypatch):
    """TFX copies file by file into ``<destination>/<version>``; ours copies into
    ``.push-<execution id>/`` and renames: while the files are copied the destination holds
    no version folder, and a copy that fails half-way leaves neither a version nor staging."""
    from tfx.dsl.io import fileio

    destination = tmp_path / "serving"
    seen, real_copy = [], fileio.copy

    def copy_and_look(src, dst, *args, **kwargs):  # TFX's io_utils.copy_dir calls fileio.copy
        if str(destination) in dst:
            seen.append(sorted(os.listdir(destination)))
        return real_copy(src, dst, *args, **kwargs)

    monkeypatch.setattr(fileio, "copy", copy_and_look)
    pushed = _pusher_call(_stage(tmp_path, "m1", models["a"][0]), str(destination))
    assert len(seen) > 3 and all(names == [".push-m1-pushed"] for names in seen), seen
    [version] = os.listdir(destination)
    assert version.isdigit() and pushed.get_int_custom_property("pushed") == 1
    assert pushed.get_string_custom_property("pushed_destination") == str(destination / version)
    assert os.path.isfile(destination / version / "saved_model.pb")

    def fail_half_way(src, dst, *args, **kwargs):
        if dst.endswith("saved_model.pb"):
            raise OSError(28, "No space left on device", dst)
        return real_copy(src, dst, *args, **kwargs)

    import time

    time.sleep(1.1)  # TFX versions are UNIX seconds
    monkeypatch.setattr(fileio, "copy", fail_half_way)
    with pytest.raises(OSError, match="No space left"):
        _pusher_call(_stage(tmp_path, "m2", models["b"][0]), str(destination))
    assert os.listdir(destination) == [version]  # the served version only, nothing staged


def test_same_saved_model_compares_the_fingerprint(tmp_path, models):
    a, b = models["a"][0], models["b"][0]
    assert pusher_lib.same_saved_model(a, a)
    assert not pusher_lib.same_saved_model(a, b)
    assert not pusher_lib.same_saved_model(a, str(tmp_path))  # no SavedModel there
    assert os.path.exists(os.path.join(a, "fingerprint.pb"))


def test_baseline_is_the_newest_complete_pushed_version(tmp_path, models):
    import shutil

    destination = tmp_path / "serving"
    assert _version_step(tmp_path, str(destination)) == ""  # nothing pushed: no folder
    empty = _baseline(tmp_path / "e", str(destination), "")
    assert not baseline_lib.has_model(empty)
    assert empty.get_string_custom_property(baseline_lib.PUSHED_VERSION_KEY) == ""

    shutil.copytree(models["a"][0], destination / "100")
    shutil.copytree(models["b"][0], destination / "200")
    os.makedirs(destination / "300" / "variables")  # half-copied: no saved_model.pb
    os.makedirs(destination / "tmp-400")  # not a version
    assert baseline_lib.pushed_versions(str(destination)) == [100, 200]
    assert _version_step(tmp_path, str(destination)) == "200"
    baseline = _baseline(tmp_path / "b", str(destination), "200")
    assert baseline_lib.has_model(baseline)
    copied = os.path.join(baseline.uri, baseline_lib.SERVING_MODEL_DIR)
    assert pusher_lib.same_saved_model(copied, models["b"][0])
    assert baseline.get_string_custom_property("pushed_uri") == str(destination / "200")


def test_baseline_refuses_a_version_pushed_after_the_run_started(tmp_path, models):
    import shutil

    destination = tmp_path / "serving"
    shutil.copytree(models["a"][0], destination / "100")
    shutil.copytree(models["b"][0], destination / "200")
    with pytest.raises(RuntimeError, match="newest pushed version is 200, not 100"):
        _baseline(tmp_path, str(destination), "100")


def test_evaluator_drops_an_empty_baseline_only(tmp_path, models):
    empty = standard_artifacts.Model()
    empty.uri = str(tmp_path / "empty")
    os.makedirs(empty.uri)
    full = standard_artifacts.Model()
    full.uri = os.path.dirname(_stage(tmp_path, "full", models["a"][0]))
    candidate = standard_artifacts.Model()
    assert specs.BASELINE_MODEL_KEY not in evaluator_lib.drop_empty_baseline(
        {specs.MODEL_KEY: [candidate], specs.BASELINE_MODEL_KEY: [empty]})
    kept = evaluator_lib.drop_empty_baseline(
        {specs.MODEL_KEY: [candidate], specs.BASELINE_MODEL_KEY: [full]})
    assert kept[specs.BASELINE_MODEL_KEY] == [full]


def test_warm_start_loads_the_baseline_weights_into_a_new_model(models):
    import tensorflow as tf

    from model_garden.trainers import mnist

    path, source = models["a"]
    tf.keras.utils.set_random_seed(99)
    model = mnist.build_model(1e-3)
    assert not all(np.array_equal(x, y) for x, y in zip(model.get_weights(),
                                                        source.get_weights()))
    assert warm_start_lib.warm_start(model, path) is True
    for x, y in zip(model.get_weights(), source.get_weights()):
        np.testing.assert_array_equal(x, y)
    # Nothing pushed yet: the empty baseline, and no base model at all.
    assert warm_start_lib.warm_start(model, os.path.dirname(path) + "/missing") is False
    assert warm_start_lib.warm_start(model, None) is False


def test_warm_start_refuses_another_architecture(models):
    import tensorflow as tf

    image = tf.keras.Input(shape=(28, 28, 1), name="image")
    x = tf.keras.layers.Flatten()(image)
    other = tf.keras.Model({"image": image}, tf.keras.layers.Dense(10)(x), name="linear")
    with pytest.raises(warm_start_lib.WarmStartError, match="do not fit the model 'linear'"):
        warm_start_lib.warm_start(other, models["a"][0])
