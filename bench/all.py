"""Every benchmark in turn, then one table of the figures each is judged by (`make bench`).

Each ratio is against a baseline measured in the same run on the same machine: timings on shared
machines are noisy, ratios much less so.
"""

from __future__ import annotations

import clusters
import create_cases
import export
import guidance
import image_index
import images
import upload
import workers
from _harness import print_rows


def main() -> None:
    targets = []
    for bench in (create_cases, workers, guidance, upload, export, images, image_index, clusters):
        print(f"\n=== {bench.__name__} ===", flush=True)
        targets += bench.main([])
    print("\n=== summary ===")
    print_rows([("bench", "measure", "measured", "target", ""), *(target.row() for target in targets)])


if __name__ == "__main__":
    main()
