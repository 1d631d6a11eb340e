"""Our Keras networks against TF-Slim's own graphs (the ``tf-slim`` 1.1.0 package on PyPI).

For each network ``tf-slim`` carries, a child process builds Slim's graph
in TF1 graph mode (``tf_slim.nets``, under Slim's own ``arg_scope``), gives
every variable random values (betas, gammas and biases included, so that
nothing is trivially zero or one; the batch-norm moving statistics those of
the test images, layer after layer, so that activations stay of order one
through a deep network), saves a checkpoint
with Slim's variable names and computes the logits of real flower photos
(resized to the network's size, scaled to [-1, 1]). This process builds our
network, loads the checkpoint by name
(:func:`model_garden.nets.slim_checkpoint.load_slim_checkpoint`) and
computes the logits of the same images: every Slim variable must be used,
every Keras weight restored, and the logits equal within 1e-4.

``tf-slim`` 1.1.0 imports under TF 2.16 only with ``tf_keras.legacy_tf_layers``
aliased to ``tf_keras.src.legacy_tf_layers`` and without
``TF_USE_LEGACY_KERAS``, hence the child process.
"""

import glob
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from model_garden import nets, preprocessing
from model_garden.nets import slim_checkpoint

# Each network: a TF1 graph in a child process and our Keras model (~20 s each).
pytestmark = pytest.mark.slow

#: What every child process starts with: tf-slim importable under TF 2.16, TF1 graph mode.
_SLIM_IMPORTS = '''
import json, sys
import tf_keras
import tf_keras.src.legacy_tf_layers
sys.modules["tf_keras.legacy_tf_layers"] = tf_keras.src.legacy_tf_layers
import numpy as np
import tensorflow.compat.v1 as tf
tf.disable_eager_execution()
import tf_slim as slim
from tf_slim.nets import (inception_v1, inception_v2, inception_v3, resnet_utils, resnet_v1,
                          resnet_v2, vgg)
'''

#: tf_slim.nets module -> its arg_scope function.
ARG_SCOPES = {"inception_v1": "inception_v1.inception_v1_arg_scope",
              "inception_v2": "inception_v2.inception_v2_arg_scope",
              "inception_v3": "inception_v3.inception_v3_arg_scope",
              "resnet_v1": "resnet_utils.resnet_arg_scope",
              "resnet_v2": "resnet_utils.resnet_arg_scope",
              "vgg": "vgg.vgg_arg_scope"}


def _run_slim_child(code, *args, timeout=600):
    """Runs ``code`` after :data:`_SLIM_IMPORTS` without ``TF_USE_LEGACY_KERAS``; its last
    stdout line, parsed as JSON."""
    env = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
    proc = subprocess.run([sys.executable, "-c", _SLIM_IMPORTS + code, *map(str, args)],
                          capture_output=True, text=True, env=env, timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


_CHILD = textwrap.dedent('''
    images = np.load(sys.argv[1])
    rng = np.random.default_rng(0)
    with tf.Graph().as_default():
        inputs = tf.placeholder(tf.float32, images.shape)
        with slim.arg_scope({arg_scope}()):
            logits, _ = {module}.{fn}(inputs, num_classes={num_classes}, is_training=False)
        variables = tf.global_variables()
        trainable = sum(int(np.prod(v.shape.as_list())) for v in tf.trainable_variables())
        with tf.Session() as sess:
            sess.run(tf.global_variables_initializer())
            for v in variables:
                shape = v.shape.as_list()
                if v.op.name.endswith("moving_variance"):
                    value = rng.uniform(0.5, 1.5, shape)
                elif v.op.name.endswith(("moving_mean", "beta", "biases")):
                    value = rng.normal(0, 0.1, shape)
                elif v.op.name.endswith("gamma"):
                    value = rng.uniform(0.8, 1.2, shape)
                else:  # weights: He-scaled, so activations stay of order 1
                    fan_in = int(np.prod(shape[:-1])) or 1
                    value = rng.normal(0, np.sqrt(2.0 / fan_in), shape)
                v.load(value.astype(np.float32), sess)
            # Batch-norm statistics of these very images, layer after layer (in graph
            # order, so each sees its inputs already normalised): activations stay of
            # order 1 through a deep net, so that 1e-4 is a meaningful tolerance.
            by_name = {{v.op.name: v for v in variables}}
            graph = tf.get_default_graph()
            for op in graph.get_operations():
                if not op.type.startswith("FusedBatchNorm"):
                    continue
                def variable_of(tensor):  # inputs 3 and 4: the moving mean and variance
                    while tensor.op.type in ("Identity", "ReadVariableOp"):
                        tensor = tensor.op.inputs[0]
                    return by_name[tensor.op.name]
                x = sess.run(op.inputs[0], {{inputs: images}})
                variable_of(op.inputs[3]).load(x.mean(axis=(0, 1, 2)), sess)
                variance = x.var(axis=(0, 1, 2)) * rng.uniform(0.8, 1.25, x.shape[-1])
                variable_of(op.inputs[4]).load(variance.astype(np.float32), sess)
            out = sess.run(logits, {{inputs: images}}).reshape(len(images), -1)
            tf.train.Saver(variables).save(sess, sys.argv[2])
    np.save(sys.argv[3], out)
    print(json.dumps({{"variables": sorted(v.op.name for v in variables),
                      "trainable": trainable}}))
''')

#: Every registered network tf-slim 1.1.0 has -> its tf_slim.nets module (the function
#: has the network's name).
SLIM_HAS = {"inception_v1": "inception_v1", "inception_v2": "inception_v2",
            "inception_v3": "inception_v3",
            **{f"resnet_v1_{d}": "resnet_v1" for d in (50, 101, 152)},
            **{f"resnet_v2_{d}": "resnet_v2" for d in (50, 101, 152, 200)},
            "vgg_16": "vgg", "vgg_19": "vgg"}
#: The networks whose logits are compared: depth variants are thin registry entries over
#: the same builders as these (and are compared variable by variable below).
SLIM = ("inception_v1", "inception_v2", "inception_v3", "resnet_v1_50", "resnet_v2_50",
        "vgg_16")


def _images(data_root, spec):
    """Four real flower photos through the network's evaluation preprocessing."""
    import tensorflow as tf

    preprocess = preprocessing.get_preprocessing(spec.preprocessing)
    size = spec.default_image_size
    paths = sorted(glob.glob(os.path.join(data_root, "flowers", "flower_photos", "*", "*.jpg")))
    return np.stack([preprocess(tf.io.decode_jpeg(tf.io.read_file(p), channels=3), size, size)
                     .numpy() for p in paths[::100][:4]]).astype(np.float32)


def _slim_run(network, num_classes, images, tmp_path):
    module = SLIM_HAS[network]
    np.save(tmp_path / "images.npy", images)
    code = _CHILD.format(module=module, fn=network, arg_scope=ARG_SCOPES[module],
                         num_classes=num_classes)
    out = _run_slim_child(code, tmp_path / "images.npy", tmp_path / "model.ckpt",
                          tmp_path / "logits.npy")
    return out, np.load(tmp_path / "logits.npy")


def _logits_model(model):
    import tensorflow as tf

    logits = [layer for layer in model.layers  # the main logits, not the auxiliary ones
              if layer.name.endswith(("SpatialSqueeze", "fc8/squeezed"))
              and "AuxLogits" not in layer.name][-1]
    return tf.keras.Model(model.inputs, logits.output)


@pytest.mark.parametrize("network", sorted(SLIM))
def test_slims_checkpoint_gives_slims_logits_in_our_network(network, data_root, tmp_path):
    spec = nets.get_net(network)
    images = _images(data_root, spec)
    slim, slim_logits = _slim_run(network, 1001, images, tmp_path)
    model = nets.build(network, 1001)
    restored = slim_checkpoint.load_slim_checkpoint(model, str(tmp_path / "model.ckpt"))
    assert restored == slim["variables"]  # every Slim variable used, every Keras weight restored
    # Slim's own graph is the published count: the same trainable parameters.
    assert sum(int(np.prod(w.shape)) for w in model.trainable_weights) == slim["trainable"]
    ours = _logits_model(model)(images, training=False).numpy()
    assert ours.shape == slim_logits.shape == (len(images), 1001)
    assert np.abs(slim_logits).max() > 1.0  # a real signal, not all zeros
    np.testing.assert_allclose(ours, slim_logits, atol=1e-4, rtol=0)


def test_checkpoint_exclude_scopes_leave_the_logits_of_another_class_count(data_root, tmp_path):
    """Slim's ``checkpoint_exclude_scopes``: 1,001-class weights into a 5-class network."""
    spec = nets.get_net("inception_v1")
    _slim_run("inception_v1", 1001, _images(data_root, spec)[:1], tmp_path)
    checkpoint = str(tmp_path / "model.ckpt")
    model = nets.build("inception_v1", 5)
    with pytest.raises(slim_checkpoint.SlimCheckpointError,
                       match=r"InceptionV1/Logits/Conv2d_0c_1x1/weights \[1, 1, 1024, 1001\] "
                             r"!= \[1, 1, 1024, 5\]"):
        slim_checkpoint.load_slim_checkpoint(model, checkpoint)
    logits = model.get_layer("InceptionV1/Logits/Conv2d_0c_1x1")
    initial = [w.numpy() for w in logits.weights]
    restored = slim_checkpoint.load_slim_checkpoint(model, checkpoint,
                                                    exclude_scopes=["InceptionV1/Logits"])
    assert not any(n.startswith("InceptionV1/Logits") for n in restored)
    for before, after in zip(initial, logits.weights):
        np.testing.assert_array_equal(before, after.numpy())  # freshly initialised, untouched
    import tensorflow as tf

    reader = tf.train.load_checkpoint(checkpoint)
    conv = model.get_layer("InceptionV1/Mixed_4b/Branch_1/Conv2d_0b_3x3")
    np.testing.assert_array_equal(
        conv.kernel.numpy(), reader.get_tensor("InceptionV1/Mixed_4b/Branch_1/Conv2d_0b_3x3/weights"))


_NAMES_CHILD = textwrap.dedent('''
    out = {}
    def resolve(dotted):  # "resnet_v1.resnet_v1_50" -> the function
        module, attr = dotted.split(".")
        return getattr(globals()[module], attr)

    for name, fn, arg_scope, size in json.loads(sys.argv[1]):
        with tf.Graph().as_default():
            with slim.arg_scope(resolve(arg_scope)()):
                resolve(fn)(tf.placeholder(tf.float32, [1, size, size, 3]), num_classes=1001,
                   is_training=False)
            out[name] = {
                "variables": {v.op.name: v.shape.as_list() for v in tf.global_variables()},
                "trainable": sum(int(np.prod(v.shape.as_list())) for v in tf.trainable_variables())}
    print(json.dumps(out))
''')

@pytest.fixture(scope="module")
def slim_graphs():
    """Variable names, shapes and trainable parameter counts of Slim's own graphs (1,001 classes)."""
    spec = json.dumps([[name, f"{module}.{name}", ARG_SCOPES[module],
                        nets.get_net(name).default_image_size]
                       for name, module in SLIM_HAS.items()])
    return _run_slim_child(_NAMES_CHILD, spec, timeout=900)


def test_slim_nets_are_all_registered():
    assert set(SLIM_HAS) <= set(nets.NETS)


@pytest.mark.parametrize("network", sorted(SLIM_HAS))
def test_every_variable_and_parameter_count_is_slims(network, slim_graphs):
    """Slim's own graph is the reference count (the papers round: ResNet-50 25.6M, VGG-16 138M)."""
    model = nets.build(network, 1001)
    ours = {name: list(weight.shape) for name, weight in slim_checkpoint.slim_names(model).items()}
    assert ours == slim_graphs[network]["variables"]
    assert sum(int(np.prod(w.shape)) for w in model.trainable_weights) == \
        slim_graphs[network]["trainable"]
    five = nets.build(network, 5)
    assert all(tuple(output.shape) == (None, 5) for output in five.outputs)
