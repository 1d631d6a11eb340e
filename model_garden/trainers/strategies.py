"""``tf.distribute`` strategies by name, for every ``run_fn``.

Names (the Trainer's ``custom_config["strategy"]``, ``--set strategy=NAME``):

``auto``
    ``MirroredStrategy`` over the visible GPUs when there are two or more,
    ``OneDeviceStrategy`` on the one GPU, else the default strategy (CPU).
``default``
    ``tf.distribute.get_strategy()``: no distribution.
``one_device``
    ``OneDeviceStrategy`` on ``/gpu:0`` if there is a GPU, else ``/cpu:0``.
``mirrored``
    ``MirroredStrategy``: synchronous data parallelism on one machine.
``multi_worker``
    ``MultiWorkerMirroredStrategy``; the cluster comes from ``TF_CONFIG``
    (as the Kubeflow Training Operator's TFJob sets it).
``tpu``
    ``TPUStrategy`` on the TPU named by ``TPU_NAME`` (or the local TPU).
"""

import logging
import os

STRATEGIES = ("auto", "default", "one_device", "mirrored", "multi_worker", "tpu")


_MULTI_WORKER = None  # the process's one MultiWorkerMirroredStrategy


def get_strategy(name: str = "auto"):
    """Returns the ``tf.distribute.Strategy`` called ``name``.

    Args:
      name: one of :data:`STRATEGIES`.

    Returns:
      A ``tf.distribute.Strategy``; build and compile the model inside its
      ``scope()``. ``multi_worker`` returns the same instance on every call in
      a process (the one ``kubeflow.tfjob_entry`` creates at start-up).

    Raises:
      ValueError: ``name`` is not one of :data:`STRATEGIES`.
      RuntimeError: ``multi_worker`` without ``TF_CONFIG``.
    """
    import tensorflow as tf

    if name not in STRATEGIES:
        raise ValueError(f"unknown strategy {name!r}; choose one of {STRATEGIES}")
    if name == "multi_worker":
        # Before anything initializes the TF runtime (listing devices does):
        # collective ops must be configured at program start-up.
        if not os.environ.get("TF_CONFIG"):
            raise RuntimeError(
                "strategy multi_worker needs TF_CONFIG (cluster and task); "
                "run the Trainer as a TFJob or set TF_CONFIG"
            )
        global _MULTI_WORKER
        if _MULTI_WORKER is None:
            # One per process: a second instance re-initializes the collective
            # ops under a running cluster, and a replica can hang there waiting
            # for peers that have already moved on.
            _MULTI_WORKER = tf.distribute.MultiWorkerMirroredStrategy()
        return _MULTI_WORKER
    gpus = tf.config.list_logical_devices("GPU")
    if name == "auto":
        if len(gpus) > 1:
            name = "mirrored"
        elif gpus:
            name = "one_device"
        else:
            name = "default"
    logging.info("tf.distribute strategy: %s (%d GPUs visible)", name, len(gpus))
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "one_device":
        return tf.distribute.OneDeviceStrategy("/gpu:0" if gpus else "/cpu:0")
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    resolver = tf.distribute.cluster_resolver.TPUClusterResolver(
        tpu=os.environ.get("TPU_NAME", "")
    )
    tf.config.experimental_connect_to_cluster(resolver)
    tf.tpu.experimental.initialize_tpu_system(resolver)
    return tf.distribute.TPUStrategy(resolver)
