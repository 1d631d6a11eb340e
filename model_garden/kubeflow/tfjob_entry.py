"""Entry point of each TFJob replica: the Trainer's ``run_fn`` with the step's FnArgs.

The TFJob Trainer executor (:mod:`model_garden.kubeflow.tfjob_trainer`)
writes the Trainer invocation (its input and output artifacts and execution
properties) as JSON next to its outputs on the pipeline root, then every
replica of the TFJob runs::

    python -m model_garden.kubeflow.tfjob_entry --fn-args gs://.../fn_args.json

This rebuilds the very ``FnArgs`` the in-pod Trainer would pass
(``GenericExecutor._GetFnArgs``: train/eval file patterns, data accessor,
transform graph, steps, ``custom_config``) and calls the recipe's ``run_fn``
unchanged; the executor has set ``custom_config["strategy"] = "multi_worker"``,
so the run_fn builds its model under ``MultiWorkerMirroredStrategy`` with the
cluster of ``TF_CONFIG`` (set by the Training Operator).

Only the chief writes the outputs. As the TF multi-worker guide prescribes,
every replica still runs the same program (saving is a collective step), but
a non-chief replica's ``serving_model_dir`` and ``eval_model_dir`` point
into a local temporary folder that is deleted afterwards. ``model_run_dir``
stays the run's own on every replica: it holds the checkpoints every
replica restores from after a restart (a worker pointed elsewhere resumed
at epoch 0 while the chief resumed at its last epoch), and the run_fns write
there only from the chief (Keras' TensorBoard and
:class:`model_garden.trainers.checkpoints.EpochCheckpoint` send a worker's
writes to a temporary folder). The chief is task ``chief:0`` (or ``master:0``), or ``worker:0``
when the cluster has neither.

Exit status: 0 on success; 1 with a message on stderr when the file is
missing or malformed, the run_fn raises, or the chief's run_fn wrote no
SavedModel (with ``restartPolicy: ExitCode`` that fails the TFJob rather than
restarting the pod).
"""

import argparse
import json
import logging
import os
import shutil
import sys
import tempfile
from typing import Any, Dict, List, Mapping, Optional, Tuple

#: ``format`` of the invocation file.
FORMAT = "model-garden/trainer-invocation/v1"
log = logging.getLogger(__name__)


def dump_invocation(
    uri: str,
    input_dict: Mapping[str, List[Any]],
    output_dict: Mapping[str, List[Any]],
    exec_properties: Mapping[str, Any],
) -> str:
    """Writes a Trainer invocation as JSON to ``uri`` (local or ``gs://``).

    Args:
      uri: the file to write; its folder is created.
      input_dict, output_dict: TFX artifacts by key (``Artifact.to_json_dict``).
      exec_properties: JSON-serializable execution properties (``train_args``
        etc. as TFX's JSON strings).

    Returns:
      ``uri``.

    Raises:
      TypeError: an execution property that is not JSON-serializable.
    """
    from tfx.dsl.io import fileio

    doc = {
        "format": FORMAT,
        "input_dict": {k: [a.to_json_dict() for a in v] for k, v in input_dict.items()},
        "output_dict": {k: [a.to_json_dict() for a in v] for k, v in output_dict.items()},
        "exec_properties": dict(exec_properties),
    }
    text = json.dumps(doc, indent=1, sort_keys=True)
    fileio.makedirs(os.path.dirname(uri))
    with fileio.open(uri, "w") as f:
        f.write(text)
    return uri


def load_invocation(uri: str) -> Tuple[Dict[str, list], Dict[str, list], Dict[str, Any]]:
    """``(input_dict, output_dict, exec_properties)`` from :func:`dump_invocation`'s file.

    Raises:
      FileNotFoundError: no file at ``uri``.
      ValueError: not a model-garden Trainer invocation (names the uri).
    """
    from tfx.dsl.io import fileio
    from tfx.types.artifact import Artifact

    if not fileio.exists(uri):
        raise FileNotFoundError(f"no Trainer invocation at {uri}")
    with fileio.open(uri, "r") as f:
        text = f.read()
    try:
        doc = json.loads(text)
    except ValueError as e:
        raise ValueError(f"{uri} is not JSON: {e}") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ValueError(f"{uri} is not a Trainer invocation (format {FORMAT!r})")

    def artifacts(key: str) -> Dict[str, list]:
        return {k: [Artifact.from_json_dict(a) for a in v] for k, v in doc[key].items()}

    return artifacts("input_dict"), artifacts("output_dict"), dict(doc["exec_properties"])


def is_chief(tf_config: Mapping[str, Any]) -> bool:
    """Whether this replica writes the outputs (see the module docstring).

    Args:
      tf_config: the parsed ``TF_CONFIG`` (``{}`` when unset: a single worker).
    """
    cluster = tf_config.get("cluster") or {}
    task = tf_config.get("task") or {}
    if not cluster:
        return True
    kind, index = task.get("type"), int(task.get("index", 0))
    if kind in ("chief", "master"):
        return index == 0
    return kind == "worker" and index == 0 and not ({"chief", "master"} & set(cluster))


def _configure_collectives() -> None:
    """Creates a ``MultiWorkerMirroredStrategy`` before anything starts the TF runtime.

    Collective ops can only be configured at program startup: a
    ``MultiWorkerMirroredStrategy()`` created after the runtime started (for
    example after ``tf.config.list_logical_devices``, which
    ``strategies.get_strategy`` calls first) raises "Collective ops must be
    configured at program startup". Creating one here, from ``TF_CONFIG``,
    configures them; ``strategies.get_strategy("multi_worker")`` keeps that
    instance, so the run_fn's call returns it instead of creating a second one
    (a second instance re-initializes the collectives and can hang a replica).
    """
    from model_garden.trainers import strategies

    strategies.get_strategy("multi_worker")


def run(uri: str, tf_config: Optional[Mapping[str, Any]] = None) -> str:
    """Runs the invocation's ``run_fn`` as this replica.

    Args:
      uri: the invocation file.
      tf_config: the parsed ``TF_CONFIG`` (default: from the environment).

    Returns:
      The serving model dir this replica wrote (a deleted temporary folder
      for a non-chief replica).

    Raises:
      RuntimeError: the chief's run_fn wrote no SavedModel.
      (anything the run_fn raises)
    """
    from tfx.components.trainer import executor as trainer_executor
    from tfx.components.util import udf_utils
    from tfx.dsl.io import fileio

    if tf_config is None:
        tf_config = json.loads(os.environ.get("TF_CONFIG") or "{}")
    input_dict, output_dict, exec_properties = load_invocation(uri)
    custom_config = json.loads(exec_properties.get("custom_config") or "null") or {}
    if tf_config.get("cluster") and custom_config.get("strategy") == "multi_worker":
        _configure_collectives()
    fn_args = trainer_executor.GenericExecutor()._GetFnArgs(  # pylint: disable=protected-access
        input_dict, output_dict, exec_properties)
    run_fn = udf_utils.get_fn(exec_properties, "run_fn")
    task = tf_config.get("task") or {}
    who = f"{task.get('type', 'chief')}:{task.get('index', 0)}"
    if is_chief(tf_config):
        log.info("replica %s (chief) trains; SavedModel -> %s", who, fn_args.serving_model_dir)
        run_fn(fn_args)
        if not fileio.exists(fn_args.serving_model_dir):
            raise RuntimeError(f"run_fn wrote no SavedModel to {fn_args.serving_model_dir}")
        return fn_args.serving_model_dir
    scratch = tempfile.mkdtemp(prefix=f"tfjob-{who.replace(':', '-')}-")
    fn_args.serving_model_dir = os.path.join(scratch, "serving_model_dir")
    fn_args.eval_model_dir = os.path.join(scratch, "eval_model_dir")
    log.info("replica %s trains; its outputs go to %s (deleted afterwards)", who, scratch)
    try:
        run_fn(fn_args)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return fn_args.serving_model_dir


def main(argv: Optional[List[str]] = None) -> int:
    """``python -m model_garden.kubeflow.tfjob_entry --fn-args URI``; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m model_garden.kubeflow.tfjob_entry",
                                     description=__doc__.split("\n", 1)[0])
    parser.add_argument("--fn-args", required=True, metavar="URI",
                        help="the Trainer invocation JSON written by the TFJob Trainer executor")
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    # INFO from this module, TensorFlow (strategy, collectives) and Keras; WARNING elsewhere.
    logging.basicConfig(level=logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    for name in (__name__, "tensorflow", "absl"):
        logging.getLogger(name).setLevel(logging.INFO)
    try:
        run(args.fn_args)
    except Exception as e:  # the pod's exit status is what the TFJob sees
        log.exception("training replica failed")
        print(f"tfjob_entry: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
