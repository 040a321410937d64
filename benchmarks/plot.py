"""Draw a saved benchmark result again: ``python benchmarks/plot.py RESULTS.json OUT.png``.

``python -m gpipe bench --plot`` draws the same picture at the end of a
run; this script redraws one from its ``--json`` file (after changing the
plot, say) without running the benchmark again. Needs matplotlib
(``pip install matplotlib``, or ``pip install '.[plot]'`` from a checkout).
"""

from __future__ import annotations

import json
import sys

from gpipe._bench.plot import plot_results


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__.strip().splitlines()[0], file=sys.stderr)
        return 2
    with open(argv[0], encoding="utf-8") as f:
        results = json.load(f)
    plot_results(results, argv[1])
    print(f"wrote {argv[1]}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
