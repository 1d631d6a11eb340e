"""Shared benchmark helpers: timed `model-garden run`, TFMA metrics, tables, and the
Trainer-input benchmarks' pieces (Transform artifacts, per-step clocks, paired rounds)."""

import dataclasses
import glob
import os
import subprocess
import sys
import tempfile
import threading
import time
from typing import Callable, Dict, List, Optional, Sequence, Tuple

#: The checkout these benchmarks belong to.
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@dataclasses.dataclass
class Measured:
    """What :func:`measured_run` saw of one child process.

    Attributes:
      wall: seconds from start to exit.
      peak_mib: peak resident memory in MiB of the largest single process:
        the larger of ``os.wait4``'s ``ru_maxrss`` of the child (on Linux the
        max over the child and every descendant it waited for: Beam's
        DirectRunner waits for its ``multi_processing`` workers) and
        :attr:`sampled_mib`.
      waited_mib: ``os.wait4``'s ``ru_maxrss`` alone.
      sampled_mib: the largest RSS of any one process of the child's tree,
        sampled with psutil every ``sample_s`` (catches a descendant nobody
        waited for; can miss a peak shorter than the period).
      returncode, stdout, stderr: the child's.
    """

    wall: float
    peak_mib: float
    waited_mib: float
    sampled_mib: float
    returncode: int
    stdout: str
    stderr: str


def measured_run(cmd: Sequence[str], env: Optional[Dict[str, str]] = None,
                 cwd: Optional[str] = None, sample_s: float = 0.5,
                 check: bool = True) -> Measured:
    """Runs ``cmd`` in a child process; its wall time and per-process peak memory.

    Raises:
      RuntimeError: ``check`` and the child failed (its last output lines attached).
    """
    import psutil

    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        start = time.monotonic()
        proc = subprocess.Popen(list(cmd), env=env, cwd=cwd, stdout=out, stderr=err, text=True)
        sampled = 0
        stop = threading.Event()

        def sample():
            nonlocal sampled
            try:
                root = psutil.Process(proc.pid)
            except psutil.NoSuchProcess:
                return
            while not stop.is_set():
                try:
                    tree = [root] + root.children(recursive=True)
                except psutil.NoSuchProcess:
                    return
                for p in tree:
                    try:
                        sampled = max(sampled, p.memory_info().rss)
                    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                        pass
                stop.wait(sample_s)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.monotonic() - start
        stop.set()
        sampler.join()
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        waited = usage.ru_maxrss / 1024.0  # KiB on Linux
        result = Measured(wall, max(waited, sampled / 2**20), waited, sampled / 2**20,
                          proc.returncode, out.read(), err.read())
    if check and result.returncode:
        raise RuntimeError(f"{' '.join(cmd)} failed (exit {result.returncode}):\n"
                           f"{result.stdout[-2000:]}\n{result.stderr[-4000:]}")
    return result


def checkout_env(**extra: str) -> Dict[str, str]:
    """This environment with the checkout first on ``PYTHONPATH`` (children import its code,
    not another install's), plus ``extra``."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (REPO, env.get("PYTHONPATH")) if p)
    env.update(extra)
    return env


def cli_command(*args: str) -> List[str]:
    """``model-garden ARGS`` as this checkout's code runs it (``python -m model_garden.cli``)."""
    return [sys.executable, "-m", "model_garden.cli", *args]


def timed_run(recipe: str, output_root: str, args: Sequence[str]) -> Tuple[float, float]:
    """Runs `model-garden run RECIPE` in a subprocess.

    Returns:
      (wall seconds, peak resident memory in MiB of the largest process of the
      run: the driver or one Beam worker; :func:`measured_run`).

    Raises:
      RuntimeError: the run failed (its last output lines attached).
    """
    run = measured_run(cli_command("run", recipe, "--output-root", output_root, *args),
                       env=checkout_env())
    return run.wall, run.peak_mib


def tfma_overall_metrics(evaluation_dir: str) -> Dict[str, float]:
    """The overall-slice metrics of the newest execution in an Evaluator's ``evaluation/`` folder."""
    import tensorflow_model_analysis as tfma

    uris = sorted(glob.glob(os.path.join(evaluation_dir, "*")),
                  key=lambda p: int(os.path.basename(p)))
    result = tfma.load_eval_result(uris[-1])
    overall = dict(result.slicing_metrics)[()][""][""]
    return {k: v["doubleValue"] for k, v in overall.items() if "doubleValue" in v}


def evaluator_metrics(output_root: str, recipe: str) -> Dict[str, float]:
    """The overall-slice metrics of the newest Evaluator output of a run."""
    return tfma_overall_metrics(os.path.join(output_root, recipe, "pipeline", "Evaluator",
                                             "evaluation"))


def markdown_table(header: List[str], rows: List[List[str]]) -> str:
    """A GitHub-markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def transform_artifacts(examples, schema_file: str, preprocessing_fn: str, out: str) -> Dict:
    """Runs the real Transform executor on ``examples``; returns the Trainer's inputs.

    Args:
      examples: the ``Examples`` artifact an ExampleGen executor wrote.
      schema_file: the curated schema (``.pbtxt``), copied in as the ``Schema`` artifact.
      preprocessing_fn: dotted path of the Transform ``preprocessing_fn``.
      out: folder for the schema and transform graph artifacts.

    Returns:
      ``{"fn_args": FnArgs (train_files, data_accessor, ...), "transform_graph": uri}``,
      built by TFX's own ``fn_args_utils.get_common_fn_args`` as the Trainer does
      (``materialize=False``: the graph only, no transformed examples).
    """
    import json
    import shutil

    from tfx.components.trainer import fn_args_utils
    from tfx.components.transform import executor as transform_executor
    from tfx.proto import trainer_pb2, transform_pb2
    from tfx.types import standard_artifacts
    from tfx.types import standard_component_specs as specs
    from tfx.utils import proto_utils

    schema = standard_artifacts.Schema()
    schema.uri = os.path.join(out, "schema")
    os.makedirs(schema.uri)
    shutil.copy(schema_file, os.path.join(schema.uri, "schema.pbtxt"))
    graph = standard_artifacts.TransformGraph()
    graph.uri = os.path.join(out, "transform_graph")
    transform_executor.Executor().Do(
        {specs.EXAMPLES_KEY: [examples], specs.SCHEMA_KEY: [schema]},
        {specs.TRANSFORM_GRAPH_KEY: [graph]},  # materialize=False: no transformed examples
        {
            specs.PREPROCESSING_FN_KEY: preprocessing_fn,
            specs.SPLITS_CONFIG_KEY: proto_utils.proto_to_json(
                transform_pb2.SplitsConfig(analyze=["train"], transform=["train"])),
            specs.DISABLE_STATISTICS_KEY: 1,
            specs.FORCE_TF_COMPAT_V1_KEY: 0,
            specs.CUSTOM_CONFIG_KEY: "null",
        },
    )
    input_dict = {
        specs.EXAMPLES_KEY: [examples],
        specs.TRANSFORM_GRAPH_KEY: [graph],
        specs.SCHEMA_KEY: [schema],
    }
    exec_properties = {
        specs.TRAIN_ARGS_KEY: proto_utils.proto_to_json(trainer_pb2.TrainArgs(splits=["train"])),
        specs.EVAL_ARGS_KEY: proto_utils.proto_to_json(trainer_pb2.EvalArgs(splits=["test"])),
        specs.CUSTOM_CONFIG_KEY: json.dumps({}),
    }
    return {"fn_args": fn_args_utils.get_common_fn_args(input_dict, exec_properties),
            "transform_graph": graph.uri}


def step_clock():
    """A Keras callback whose ``stamps`` get ``(wall s, process CPU s)`` at each step's end.

    Process CPU time (``time.process_time``) sums every thread of this
    process: the model's and tf.data's.
    """
    import tensorflow as tf

    class StepClock(tf.keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.stamps: List[Tuple[float, float]] = []

        def on_train_batch_end(self, batch, logs=None):
            self.stamps.append((time.perf_counter(), time.process_time()))

    return StepClock()


def fit_throughput(model, fit_kwargs: Dict, warmup_steps: int, timed_steps: int,
                   batch: int) -> Tuple[float, float]:
    """One ``fit`` of ``warmup_steps + timed_steps`` steps, measured on the timed steps.

    Returns:
      ``(images per wall second, images per CPU second of this process)`` of
      the ``timed_steps`` after the end of the last warm-up step.
    """
    clock = step_clock()
    model.fit(**fit_kwargs, steps_per_epoch=warmup_steps + timed_steps, epochs=1,
              callbacks=[clock], verbose=0)
    stamps = clock.stamps
    assert len(stamps) == warmup_steps + timed_steps, len(stamps)
    (wall0, cpu0), (wall1, cpu1) = stamps[warmup_steps - 1], stamps[-1]
    images = timed_steps * batch
    return images / (wall1 - wall0), images / (cpu1 - cpu0)


def pipeline_alone(dataset, batches: int, warmup_batches: int = 5) -> float:
    """Images/s of iterating ``dataset`` without a model (after ``warmup_batches``)."""
    iterator = iter(dataset)
    for _ in range(warmup_batches):
        next(iterator)
    start = time.perf_counter()
    for _ in range(batches):
        images, _ = next(iterator)
    return batches * int(images.shape[0]) / (time.perf_counter() - start)


def paired_rounds(names: Sequence[str], rounds: int, measure: Callable[[str], Tuple]
                  ) -> Dict[str, List[Tuple]]:
    """``measure(name)`` for every name, back to back, in each of ``rounds`` rounds.

    The order rotates by one each round (two names: alternating), so that
    neither always runs first; ratios taken within a round are paired (load
    drifting between rounds on a shared machine cancels).

    Returns:
      ``{name: [measure(name) of round 0, round 1, ...]}``.
    """
    names = list(names)
    results: Dict[str, List[Tuple]] = {name: [] for name in names}
    for r in range(rounds):
        k = r % len(names)
        for name in names[k:] + names[:k]:
            results[name].append(measure(name))
    return results
