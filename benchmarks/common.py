"""Shared benchmark helpers: timed `model-garden run`, TFMA metrics, tables."""

import glob
import os
import resource
import subprocess
import sys
import time
from typing import Dict, List, Sequence, Tuple


def timed_run(recipe: str, output_root: str, args: Sequence[str]) -> Tuple[float, float]:
    """Runs `model-garden run RECIPE` in a subprocess.

    Returns:
      (wall seconds, peak resident memory in MiB of the largest process of the
      run: the driver or one Beam worker, from getrusage(RUSAGE_CHILDREN)).

    Raises:
      RuntimeError: the run failed (its last output lines attached).
    """
    cmd = [sys.executable, "-m", "model_garden.cli", "run", recipe,
           "--output-root", output_root, *args]
    start = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.monotonic() - start
    if proc.returncode:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
    peak_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0
    return wall, peak_mib


def evaluator_metrics(output_root: str, recipe: str) -> Dict[str, float]:
    """The overall-slice metrics of the newest Evaluator output of a run."""
    import tensorflow_model_analysis as tfma

    uris = sorted(glob.glob(os.path.join(output_root, recipe, "pipeline", "Evaluator",
                                         "evaluation", "*")), key=lambda p: int(os.path.basename(p)))
    result = tfma.load_eval_result(uris[-1])
    overall = dict(result.slicing_metrics)[()][""][""]
    return {k: v["doubleValue"] for k, v in overall.items() if "doubleValue" in v}


def markdown_table(header: List[str], rows: List[List[str]]) -> str:
    """A GitHub-markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)
