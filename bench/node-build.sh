#!/usr/bin/env bash
# Node.js builds of tests/fixtures/node-express (Express 4, eslint 8 as a devDependency:
# 174 packages installed, 77 shipped), all in one run on the same warm npm cache:
#
#   1. cold: `kiln build` from a fresh copy with a fresh kiln cache (only the node base in its
#      store, npm's cache linked in), image to kiln's local store, against the peer
#      `npm ci && npm prune --omit=dev` in a fresh copy. Target: kiln at most 15% over.
#   2. rebuild after a one-line change, published to a throwaway `docker-registry` on
#      127.0.0.1 (before each run, untimed, the greeting gets a text no earlier run had).
#      Target: at least 5x faster than kiln's cold build, and no node_modules bytes uploaded.
#
#   bench/node-build.sh            # RUNS=5 timed runs each, after WARMUP=1 untimed one
#
# Needs what .ci/setup installs, plus python3. Scratch in bench/out/node-build; the npm cache
# and the base persist in bench/out/node-build-cache (delete it for a cold npm cache).
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
RUNS=${RUNS:-5}
WARMUP=${WARMUP:-1}
out=$PWD/bench/out/node-build
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
npm_cache=$cache/npm
fixture=tests/fixtures/node-express
# Outside any git repository (the checkout it sits in is not the app's).
export GIT_CEILING_DIRECTORIES=$out
echo "warming npm's cache..." >&2
rm -rf "$out/warm" && cp -r "$fixture" "$out/warm"
npm ci --prefix "$out/warm" --cache "$npm_cache" --no-audit --no-fund >/dev/null 2>&1

time_cmd() { # LABEL [--before SHELL]... -- COMMAND... -> "median min max"
  python3 bench/timeit.py "$RUNS" "$WARMUP" "$out/$1.log" "${@:2}"
}

echo "timing cold builds: npm ci + npm prune, kiln ($WARMUP warm-up + $RUNS runs each)..." >&2
read -r npm_med npm_min npm_max < <(time_cmd npm \
  --before "rm -rf '$out/npm-app' && cp -r '$fixture' '$out/npm-app'" -- \
  bash -c "cd '$out/npm-app' && npm ci --cache '$npm_cache' --no-audit --no-fund && npm prune --omit=dev --cache '$npm_cache' --no-audit --no-fund")
cold=$out/cold-cache
read -r kc_med kc_min kc_max < <(time_cmd kiln-cold --before "rm -rf '$cold' '$out/cold-app' &&
  cp -r '$fixture' '$out/cold-app' && mkdir -p '$cold/buildpacks/kiln-node' &&
  cp -al '$cache/base/oci' '$cold/oci' && ln -s '$npm_cache' '$cold/buildpacks/kiln-node/npm'" -- \
  "$kiln" build local/express-cold:1 --path "$out/cold-app" --cache-dir "$cold" \
  --report "$out/cold-report.json" -q)

echo "timing rebuilds after a one-line change, published ($WARMUP warm-up + $RUNS runs each)..." >&2
warm=$out/warm-cache
mkdir -p "$warm/buildpacks/kiln-node" && cp -al "$cache/base/oci" "$warm/oci" &&
  ln -s "$npm_cache" "$warm/buildpacks/kiln-node/npm"
cp -r "$fixture" "$out/app"
"$kiln" build "$reg/express:latest" --path "$out/app" --publish --cache-dir "$warm" -q >"$out/first.log" 2>&1
read -r kr_med kr_min kr_max < <(time_cmd kiln-rebuild \
  --before "sed -i \"s/'hello from express[^']*'/'hello from express \$(date +%s%N)'/\" '$out/app/server.js'" -- \
  "$kiln" build "$reg/express:latest" --path "$out/app" --publish --cache-dir "$warm" \
  --report "$out/rebuild-report.json" -q)

python3 - "$out" "$reg" "$RUNS" "$WARMUP" \
  "$npm_med" "$npm_min" "$npm_max" "$kc_med" "$kc_min" "$kc_max" "$kr_med" "$kr_min" "$kr_max" <<'PY'
import json, re, sys
out, reg, runs, warmup = sys.argv[1:5]
npm, cold, rebuild = (tuple(map(float, sys.argv[i:i + 3])) for i in (5, 8, 11))
row = lambda name, t: print(f"{name:<52} {t[0]:9.3f} {t[1]:7.3f} {t[2]:7.3f}")
phases = lambda t: ", ".join(f"{k[:-3]} {t[k]}" for k in
                             ("detect_ms", "build_ms", "export_ms", "push_ms", "total_ms") if k in t)

print(f"\nNode.js builds of tests/fixtures/node-express on a warm npm cache; "
      f"median/min/max of {runs} runs after {warmup} warm-up")
print(f"{'command':<52} {'median s':>9} {'min':>7} {'max':>7}")
row("npm ci && npm prune --omit=dev (fresh copy)", npm)
row("kiln build, cold (fresh copy and kiln cache)", cold)
row("kiln build --publish after a one-line change", rebuild)
c = json.load(open(f"{out}/cold-report.json"))
print(f"kiln cold phases, last run (ms): {phases(c['timings'])}")
r = json.load(open(f"{out}/rebuild-report.json"))
print(f"kiln rebuild phases, last run (ms): {phases(r['timings'])}")
layers = {l["name"]: l for l in r["layers"]}
uploaded = r["push"]["uploaded_bytes"]
nm_bytes = uploaded - layers["app"]["size"]
print("kiln rebuild layers: " + ", ".join(
    f"{n} {l['size']} bytes {'reused' if l['reused'] else 'written'}" for n, l in layers.items())
      + f"; uploaded {uploaded} bytes, of which node_modules {nm_bytes}")
digests = re.findall(r"@(sha256:[0-9a-f]{64})", open(f"{out}/kiln-rebuild.log").read())
print(f"every rebuild a new image: {'yes' if len(set(digests)) == len(digests) == int(runs) + int(warmup) else 'NO'}")
over = (cold[0] / npm[0] - 1) * 100
print(f"kiln cold over npm ci + prune: {over:+.0f}% (target <= +15%: {'met' if over <= 15 else 'NOT met'})")
sys.path.insert(0, "bench")
from summary import row as summary
summary("Node cold build, kiln/(npm ci + prune)", "<= 1.15x", f"{cold[0] / npm[0]:.2f}x", f"{cold[1] / npm[1]:.2f}x", over <= 15)
speedup = cold[0] / rebuild[0]
print(f"cold / rebuild: {speedup:.1f}x (target >= 5x: {'met' if speedup >= 5 else 'NOT met'}); "
      f"node_modules bytes uploaded: {nm_bytes} (target 0: {'met' if nm_bytes == 0 and layers['node_modules']['reused'] else 'NOT met'})")
PY
