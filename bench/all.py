"""Every benchmark in turn, then one table of the figures each is judged by (`make bench`); or only
those named: `.venv/bin/python bench/all.py workers upload`.

Each ratio is against a baseline measured in the same run on the same machine: timings on shared
machines are noisy, ratios much less so.
"""

from __future__ import annotations

import argparse
from types import ModuleType

import clusters
import create_cases
import export
import guidance
import image_index
import images
import upload
import videos
import workers
from _harness import print_rows

BENCHES = (create_cases, workers, guidance, upload, export, images, videos, image_index, clusters)


def run(benches: list[tuple[ModuleType, list[str]]]) -> None:
    """Each bench with its arguments, then the summary table of every figure they are judged by."""
    targets = []
    for bench, argv in benches:
        print(f"\n=== {bench.__name__} ===", flush=True)
        targets += bench.main(argv)
    print("\n=== summary ===")
    print_rows([("bench", "measure", "measured", "target", ""), *(target.row() for target in targets)])


def main(argv: list[str] | None = None) -> None:
    by_name = {bench.__name__: bench for bench in BENCHES}
    parser = argparse.ArgumentParser(description="Every benchmark (or the ones named), then one summary table.")
    parser.add_argument("names", nargs="*", metavar="NAME", help=", ".join(by_name))
    names = parser.parse_args(argv).names or list(by_name)
    if unknown := [name for name in names if name not in by_name]:
        parser.error(f"no bench named {', '.join(unknown)}: choose from {', '.join(by_name)}")
    run([(by_name[name], []) for name in names])


if __name__ == "__main__":
    main()
