"""What the run report's plot metrics cost the Evaluator (MNIST, demo-sized eval split).

    python benchmarks/run.py eval_plots

One short MNIST run (``--split hash:80/20``, 200 train steps, in_memory)
gives a model and the eval split of `make demo` (the same ~2,060 digits
whatever the train steps). TFMA then evaluates that model on that split
with the recipe's EvalConfig with and without ``MultiClassConfusionMatrixPlot``,
alternating, ``REPEATS`` times each, in one process on Beam's in_memory
DirectRunner, as the Evaluator runs it (TFMA's ``run_model_analysis``: the
model load, the extractors, the metrics and the writers).
"""

import dataclasses
import glob
import os
import statistics
import tempfile
import time

from benchmarks.common import markdown_table, timed_run

REPEATS = 5
ARGS = ["--split", "hash:80/20", "--train-steps", "200", "--eval-steps", "20", "--threshold", "0.5",
        "--direct-running-mode", "in_memory"]
PLOTS = ("MultiClassConfusionMatrixPlot",)


def _eval_seconds(model_dir: str, examples: str, eval_config, out: str) -> float:
    import tensorflow_model_analysis as tfma
    from apache_beam.options.pipeline_options import PipelineOptions

    start = time.monotonic()
    tfma.run_model_analysis(
        eval_shared_model=tfma.default_eval_shared_model(model_dir, eval_config=eval_config),
        eval_config=eval_config, data_location=examples, file_format="tfrecords",
        output_path=out,
        pipeline_options=PipelineOptions(["--direct_running_mode=in_memory"]))
    return time.monotonic() - start


def measure(output_root: str, repeats: int = REPEATS):
    """``{"without plots": [s, ...], "with plots": [s, ...]}`` on the newest MNIST model of ``output_root``."""
    from model_garden.pipelines import factory, recipes

    recipe = recipes.get_recipe("mnist")
    (model_dir,) = glob.glob(os.path.join(output_root, "mnist", "pipeline", "Trainer", "model", "*",
                                          "Format-Serving"))
    (split,) = glob.glob(os.path.join(output_root, "mnist", "pipeline", "ExampleGen", "examples",
                                      "*", "Split-test"))
    examples = os.path.join(split, "*")  # every shard
    without = dataclasses.replace(
        recipe.eval, metrics=tuple(m for m in recipe.eval.metrics if m not in PLOTS))
    with_plots = dataclasses.replace(recipe.eval, metrics=tuple(without.metrics) + PLOTS)
    configs = {"without plots": factory.make_eval_config(without, 0.5),
               "with plots": factory.make_eval_config(with_plots, 0.5)}
    for config in configs.values():  # one model, no baseline: TFMA refuses change thresholds
        for metric in config.metrics_specs[0].metrics:
            for per_slice in metric.per_slice_thresholds:
                per_slice.threshold.ClearField("change_threshold")
    times = {name: [] for name in configs}
    with tempfile.TemporaryDirectory(prefix="bench-eval-plots-") as out:
        _eval_seconds(model_dir, examples, configs["without plots"], out)  # warm-up
        for i in range(repeats):
            for name, config in configs.items():
                times[name].append(_eval_seconds(model_dir, examples, config,
                                                 os.path.join(out, f"{name}-{i}")))
    return times


def run(output_root: str = "") -> str:
    """Runs the benchmark (a short MNIST run first unless ``output_root`` has one); markdown."""
    with tempfile.TemporaryDirectory(prefix="bench-eval-plots-") as tmp:
        root = output_root or tmp
        if not output_root:
            timed_run("mnist", root, ARGS)
        times = measure(root)
    base = statistics.median(times["without plots"])
    rows = [[name, ", ".join(f"{t:.1f}" for t in ts), f"{statistics.median(ts):.1f}",
             f"{statistics.median(ts) - base:+.1f}"] for name, ts in times.items()]
    return ("### Evaluator: the run report's plot metrics (MNIST eval split)\n\n"
            + markdown_table(["EvalConfig", "seconds per run", "median", "vs without"], rows))


if __name__ == "__main__":
    import sys

    print(run(sys.argv[1] if len(sys.argv) > 1 else ""))
