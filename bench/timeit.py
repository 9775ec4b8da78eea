#!/usr/bin/env python3
"""Times a command with a monotonic clock: WARMUP untimed runs, then RUNS timed ones.

usage: timeit.py RUNS WARMUP LOG [--env K=V]... [--before SHELL]... -- COMMAND ARG...

Prints `median min max` in seconds on one line. The command's stdout and stderr are appended
to LOG, each timed run after a `=== timed run N ===` line; a failing run prints the end of LOG and exits 1, so a broken run never becomes a
number. `--env K=V` applies to the timed runs only (e.g. GOPROXY=off, so a run that would
need the network fails instead of being measured). `--before SHELL` runs `bash -c SHELL`
untimed before every run, warm-ups included (e.g. an edit, or a fresh copy of the source).
"""

import os
import statistics
import subprocess
import sys
import time


def run(cmd, env, log):
    with open(log, "ab") as out:
        rc = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, env=env).returncode
    if rc != 0:
        with open(log, "rb") as f:
            tail = f.read()[-3000:].decode(errors="replace")
        sys.exit(f"`{' '.join(cmd)}` exited {rc}; end of {log}:\n{tail}")


def main():
    args = sys.argv[1:]
    runs, warmup, log = int(args[0]), int(args[1]), args[2]
    args = args[3:]
    timed_env = dict(os.environ)
    before = []
    while args and args[0] in ("--env", "--before"):
        if args[0] == "--env":
            key, _, value = args[1].partition("=")
            timed_env[key] = value
        else:
            before.append(["bash", "-c", args[1]])
        args = args[2:]
    if not args or args[0] != "--":
        sys.exit(__doc__)
    cmd = args[1:]
    for _ in range(warmup):
        for b in before:
            run(b, dict(os.environ), log)
        run(cmd, dict(os.environ), log)
    times = []
    for i in range(runs):
        for b in before:
            run(b, dict(os.environ), log)
        with open(log, "a") as out:
            out.write(f"=== timed run {i + 1} ===\n")
        t0 = time.monotonic()
        run(cmd, timed_env, log)
        times.append(time.monotonic() - t0)
    print(f"{statistics.median(times):.3f} {min(times):.3f} {max(times):.3f}")


if __name__ == "__main__":
    main()
