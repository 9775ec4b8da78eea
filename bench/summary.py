#!/usr/bin/env python3
"""The one table `bench/run.sh all` ends with: measure, goal, median, min, met.

Each benchmark calls `row(...)` for every figure that has a goal; rows go to the file named
by BENCH_SUMMARY (nothing happens when it is unset, so a benchmark run alone is unchanged).
`summary.py print FILE` prints the table.
"""

import os
import sys


def row(measure, goal, median, minimum, met):
    path = os.environ.get("BENCH_SUMMARY")
    if not path:
        return
    with open(path, "a") as f:
        f.write("\t".join([measure, goal, median, minimum, "yes" if met else "NO"]) + "\n")


def main():
    if len(sys.argv) != 3 or sys.argv[1] != "print":
        sys.exit("usage: summary.py print FILE")
    rows = [line.rstrip("\n").split("\t") for line in open(sys.argv[2]) if line.strip()]
    head = ["measure", "goal", "median", "min", "met"]
    widths = [max(len(r[i]) for r in rows + [head]) for i in range(5)]
    line = lambda r: "  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
    print("\nSummary")
    print(line(head))
    for r in rows:
        print(line(r))
    met = sum(r[4] == "yes" for r in rows)
    print(f"{met} of {len(rows)} goals met")


if __name__ == "__main__":
    main()
