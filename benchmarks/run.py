"""Run the benchmarks and print their tables (``make bench``).

    python benchmarks/run.py                 # every benchmark
    python benchmarks/run.py mnist           # one
    python benchmarks/run.py mnist --modes multi_processing,in_memory
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
              "slim_trainer": "benchmarks.slim_trainer"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("names", nargs="*", metavar="NAME",
                        help=f"benchmarks to run, of {sorted(BENCHMARKS)} (default: all)")
    parser.add_argument("--modes", default="multi_processing",
                        help="comma-separated Beam DirectRunner modes (mnist)")
    args = parser.parse_args()
    unknown = set(args.names) - set(BENCHMARKS)
    if unknown:
        parser.error(f"unknown benchmark(s) {sorted(unknown)}; choose from {sorted(BENCHMARKS)}")
    import importlib

    for name in args.names or list(BENCHMARKS):
        module = importlib.import_module(BENCHMARKS[name])
        kwargs = {"modes": args.modes.split(",")} if name == "mnist" else {}
        print(module.run(**kwargs), flush=True)


if __name__ == "__main__":
    main()
