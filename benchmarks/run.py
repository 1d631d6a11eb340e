"""Run the benchmarks and print their tables (``make bench``: ``local_run``).

    python benchmarks/run.py                 # every benchmark (also: all)
    python benchmarks/run.py local_run       # one
    python benchmarks/run.py local_run --modes multi_processing,in_memory
    python benchmarks/run.py local_run --smoke   # smoke test only, never for reporting
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

BENCHMARKS = {"mnist": "benchmarks.mnist", "cifar10": "benchmarks.cifar10", "census": "benchmarks.census",
              "image_example_gen": "benchmarks.image_example_gen",
              "mnist_lr_schedule": "benchmarks.mnist_lr_schedule",
              "census_loss_reduction": "benchmarks.census_loss_reduction",
              "slim_trainer": "benchmarks.slim_trainer", "eval_plots": "benchmarks.eval_plots",
              "local_run": "benchmarks.local_run"}
#: Benchmarks taking ``modes`` (Beam DirectRunner modes), and ``smoke``.
WITH_MODES = {"mnist", "local_run"}
WITH_SMOKE = {"local_run"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("names", nargs="*", metavar="NAME",
                        help=f"benchmarks to run, of {sorted(BENCHMARKS)}, or all (default: all)")
    parser.add_argument("--modes", default=None,
                        help=f"comma-separated Beam DirectRunner modes ({', '.join(sorted(WITH_MODES))})")
    parser.add_argument("--smoke", action="store_true",
                        help=f"shrunk settings, SMOKE TESTS ONLY, never for reported numbers "
                             f"({', '.join(sorted(WITH_SMOKE))})")
    args = parser.parse_args()
    if "all" in args.names:
        args.names = []
    unknown = set(args.names) - set(BENCHMARKS)
    if unknown:
        parser.error(f"unknown benchmark(s) {sorted(unknown)}; choose from {sorted(BENCHMARKS)}")
    names = args.names or list(BENCHMARKS)
    if args.smoke and set(names) - WITH_SMOKE:
        parser.error(f"--smoke is for {sorted(WITH_SMOKE)} only, not {sorted(set(names) - WITH_SMOKE)}")
    import importlib

    for name in names:
        module = importlib.import_module(BENCHMARKS[name])
        kwargs = {"modes": args.modes.split(",")} if name in WITH_MODES and args.modes else {}
        if name in WITH_SMOKE:
            kwargs["smoke"] = args.smoke
        print(module.run(**kwargs), flush=True)


if __name__ == "__main__":
    main()
