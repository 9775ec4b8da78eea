#!/usr/bin/env bash
# How rebuild cost scales with app size: tests/fixtures/node-express plus generated static
# assets under public/ (1x: 1,400 files, ~20 MB; 4x and 16x: that many times more; with
# the app and its node_modules 1x is ~1.5k files), each
# published to a throwaway `docker-registry` on 127.0.0.1 after one untimed first build.
# For every size, interleaved run by run: a no-op rebuild (nothing changed) and a rebuild
# after a one-line change to server.js (a text no earlier run had).
#
# Targets (issue 23): no-op <= 0.3 s and one-line change <= 1 s at every size, and at most
# 64 KiB uploaded for the change.
#
#   bench/node-scale.sh            # RUNS=5 timed rounds, SCALES="1 4 16"
#
# Needs what .ci/setup installs, plus python3. Scratch in bench/out/node-scale; the npm cache
# and the node base persist in bench/out/node-build-cache (shared with node-build.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
RUNS=${RUNS:-5}
SCALES=${SCALES:-1 4 16}
out=$PWD/bench/out/node-scale
cache=$PWD/bench/out/node-build-cache
rm -rf "$out" && mkdir -p "$out" "$cache"

reg_pid=""
cleanup() { if [ -n "$reg_pid" ]; then kill "$reg_pid" 2>/dev/null || true; wait "$reg_pid" 2>/dev/null || true; fi; }
trap cleanup EXIT

for tool in node npm python3 curl /usr/bin/docker-registry; do
  command -v "$tool" >/dev/null || { echo "missing \`$tool\` (run .ci/setup)" >&2; exit 1; }
done

release_kiln

start_registry "$out"

if [ ! -f "$cache/base/oci/index.json" ]; then
  echo "building the node base from the committed lock..." >&2
  "$kiln" base build golden-base/node.toml --platform linux/amd64 --cache-dir "$cache/base" >/dev/null
fi
export GIT_CEILING_DIRECTORIES=$out

for k in $SCALES; do
  app=$out/app-$k
  cp -r tests/fixtures/node-express "$app"
  python3 - "$app/public" "$k" <<'PY'
import os, random, sys
root, k = sys.argv[1], int(sys.argv[2])
rng = random.Random(23)
words = "layer image build kiln tar digest function return value const let var".split()
for i in range(1400 * k):
    d = os.path.join(root, f"d{i % (20 * k)}")
    os.makedirs(d, exist_ok=True)
    if i % 4 == 3:  # images: incompressible, ~40 KB
        data = rng.randbytes(20_000 + rng.randrange(40_000))
        name = f"img{i}.png"
    else:  # scripts and styles: text, ~6 KB
        data = " ".join(rng.choice(words) for _ in range(500 + rng.randrange(1000))).encode()
        name = f"f{i}.{'js' if i % 2 else 'css'}"
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)
PY
  mkdir -p "$out/cache-$k/buildpacks/kiln-node"
  cp -al "$cache/base/oci" "$out/cache-$k/oci"
  echo "${k}x: $(du -sh "$app" | cut -f1), $(find "$app" -type f | wc -l) files" >&2
done

echo "timing: $RUNS rounds of (no-op, one-line change) per size, interleaved..." >&2
python3 - "$kiln" "$reg" "$out" "$RUNS" $SCALES <<'PY'
import json, re, statistics, subprocess, sys, time
kiln, reg, out, runs, scales = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5:]
res = {k: {"noop": [], "change": [], "noop_up": [], "change_up": []} for k in scales}
def build(k, tag):
    report = f"{out}/report-{k}-{tag}.json"
    cmd = [kiln, "build", f"{reg}/scale:{k}", "--path", f"{out}/app-{k}", "--publish",
           "--cache-dir", f"{out}/cache-{k}", "--report", report, "-q"]
    t0 = time.monotonic()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    dt = time.monotonic() - t0
    return dt, json.load(open(report))["push"]["uploaded_bytes"]
# Two untimed builds per size, from here like the timed ones: the environment (PATH, which
# a Python shim may change) is part of the node_modules key.
for k in scales:
    print(f"first builds at {k}x...", file=sys.stderr)
    build(k, "first")
    time.sleep(2.1)  # Settle the racy window, so a no-op really is one.
    build(k, "first")
for r in range(runs):
    for k in scales:
        # The racy window: files changed in the last 2 s are always read again.
        time.sleep(2.1)
        dt, up = build(k, "noop")
        res[k]["noop"].append(dt); res[k]["noop_up"].append(up)
        path = f"{out}/app-{k}/server.js"
        text = open(path).read()
        text = re.sub(r"'hello from express[^']*'", f"'hello from express {time.time_ns()}'", text)
        open(path, "w").write(text)
        dt, up = build(k, "change")
        res[k]["change"].append(dt); res[k]["change_up"].append(up)
print(f"\nNode app + generated assets, published to a local registry; median/min of {runs} interleaved rounds")
print(f"{'size':<6} {'no-op s':>8} {'min':>6} {'change s':>9} {'min':>6} {'uploaded on change':>19} {'met':>4}")
for k in scales:
    r = res[k]
    noop, change = statistics.median(r["noop"]), statistics.median(r["change"])
    up = max(r["change_up"])
    met = noop <= 0.3 and change <= 1.0 and up <= 64 * 1024 and max(r["noop_up"]) == 0
    print(f"{k + 'x':<6} {noop:8.3f} {min(r['noop']):6.3f} {change:9.3f} {min(r['change']):6.3f} "
          f"{up:>13} bytes {'yes' if met else 'NO':>4}")
json.dump(res, open(f"{out}/results.json", "w"))
sys.path.insert(0, "bench")
from summary import row as summary
for k in scales:
    r = res[k]
    up = max(r["change_up"])
    summary(f"Node {k}x no-op publish", "<= 0.3 s", f"{statistics.median(r['noop']):.3f}", f"{min(r['noop']):.3f}",
            statistics.median(r["noop"]) <= 0.3 and max(r["noop_up"]) == 0)
    summary(f"Node {k}x one-line change ({up} bytes uploaded)", "<= 1 s, <= 64 KiB", f"{statistics.median(r['change']):.3f}",
            f"{min(r['change']):.3f}", statistics.median(r["change"]) <= 1 and up <= 64 * 1024)
PY
