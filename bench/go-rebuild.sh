#!/usr/bin/env bash
# Go app rebuild with nothing changed, published to a local registry: kiln against
# `ko build` (same app, base, registry and Go environment) and a bare `go build`.
#
#   bench/go-rebuild.sh            # RUNS=5 timed runs each, after WARMUP=1 untimed one
#   RUNS=9 KO=/path/to/ko bench/go-rebuild.sh
#
# Prints median/min/max seconds (monotonic clock), kiln's time over each peer, kiln's
# per-phase timings and the layer bytes it uploaded on the last rebuild.
# Targets: kiln no slower than ko; 0 layer bytes uploaded, every layer reused.
#
# Needs what .ci/setup installs, plus python3. ko comes from $KO, else PATH, else
# `go install github.com/google/ko@$KO_VERSION` into bench/out/bin. Go/kiln/ko caches are
# kept in bench/out/go-rebuild-cache (delete it for a cold start); the registry is fresh
# every run and stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
RUNS=${RUNS:-5}
WARMUP=${WARMUP:-1}
KO_VERSION=${KO_VERSION:-v0.19.1}
out=$PWD/bench/out/go-rebuild
cache=$PWD/bench/out/go-rebuild-cache
rm -rf "$out" && mkdir -p "$out" "$cache"

reg_pid=""
cleanup() { if [ -n "$reg_pid" ]; then kill "$reg_pid" 2>/dev/null || true; wait "$reg_pid" 2>/dev/null || true; fi; }
trap cleanup EXIT

for tool in go python3 curl /usr/bin/docker-registry; do
  command -v "$tool" >/dev/null || { echo "missing \`$tool\` (run .ci/setup)" >&2; exit 1; }
done

release_kiln

ensure_ko
ko_version=$("$ko" version)

start_registry "$out"

# One base for both, from this registry: a tiny image built by script, not by kiln.
base_digest=$(python3 bench/tiny-base.py "$reg" base 1)
base=$reg/base:1
app=$out/app
cp -r tests/fixtures/go-web "$app"
# Outside any git repository (the checkout it sits in is not the app's): kiln and ko both ask git.
export GIT_CEILING_DIRECTORIES=$out

# The same Go environment for all: GOFLAGS as a user would set it, static, the host's Go
# only. `go build` and ko add -trimpath (ko by default); kiln adds -trimpath -buildvcs=false
# -ldflags=-buildid=. Stripping the build ID makes `go build -o` relink every time (go
# cannot tell the output is up to date) and turns ko's layer cache off (keyed by build ID),
# so the extra "same, kiln's -ldflags=-buildid=" row shows ko with that handicap too.
export GOFLAGS=-buildvcs=false GOTOOLCHAIN=local CGO_ENABLED=0
gocache=$cache/go-build # go build and ko; kiln keeps its own under --cache-dir

time_cmd() { # LABEL COMMAND... -> "median min max"; timed runs may not touch the network
  python3 bench/timeit.py "$RUNS" "$WARMUP" "$out/$1.log" --env GOPROXY=off -- "${@:2}"
}
echo "timing go build, ko build (twice), kiln build ($WARMUP warm-up + $RUNS runs each)..." >&2
read -r go_med go_min go_max < <(time_cmd go env -C "$app" GOCACHE="$gocache" \
  go build -trimpath -o "$out/goweb" .)
read -r ko_med ko_min ko_max < <(time_cmd ko env -C "$app" GOCACHE="$gocache" \
  KOCACHE="$cache/ko" KO_DOCKER_REPO="$reg/ko/goweb" KO_DEFAULTBASEIMAGE="$base" \
  "$ko" build --bare --sbom=none --insecure-registry --platform=linux/amd64 --tags=latest .)
read -r kb_med kb_min kb_max < <(time_cmd ko-nobuildid env -C "$app" GOCACHE="$gocache" \
  KOCACHE="$cache/ko-nobuildid" GOFLAGS="-buildvcs=false -ldflags=-buildid=" \
  KO_DOCKER_REPO="$reg/ko/goweb" KO_DEFAULTBASEIMAGE="$base" \
  "$ko" build --bare --sbom=none --insecure-registry --platform=linux/amd64 --tags=nobuildid .)
read -r kl_med kl_min kl_max < <(time_cmd kiln "$kiln" build "$reg/kiln/goweb:latest" \
  --path "$app" --publish --run-image "$base" --cache-dir "$cache/kiln" \
  --report "$out/report.json" -q)

# ko's last run: blobs it pushed rather than found.
ko_pushed=$(awk '/^=== timed run/ { n = 0 } /pushed blob/ { n++ } END { print n + 0 }' "$out/ko.log")

python3 - "$out/report.json" "$reg" "$RUNS" "$WARMUP" "$ko_version" "$base_digest" "$ko_pushed" \
  "$go_med" "$go_min" "$go_max" "$ko_med" "$ko_min" "$ko_max" "$kb_med" "$kb_min" "$kb_max" \
  "$kl_med" "$kl_min" "$kl_max" <<'PY'
import json, sys
report, reg, runs, warmup, ko_version, base, ko_pushed = sys.argv[1:8]
go, ko, ko_nobuildid, kiln = (tuple(map(float, sys.argv[i:i + 3])) for i in (8, 11, 14, 17))
r = json.load(open(report))
print(f"\nGo app rebuild, nothing changed (tests/fixtures/go-web), published to {reg}")
print(f"base {reg}/base:1@{base[:19]}…; median/min/max of {runs} runs after {warmup} warm-up")
print(f"{'command':<44} {'median s':>9} {'min':>7} {'max':>7} {'kiln/this':>10}")
rows = [("go build -trimpath (no image)", go),
        (f"ko {ko_version} build --bare --sbom=none", ko),
        ("  same, kiln's -ldflags=-buildid= (no cache)", ko_nobuildid),
        ("kiln build --publish", kiln)]
for name, (med, lo, hi) in rows:
    print(f"{name:<44} {med:9.3f} {lo:7.3f} {hi:7.3f} {kiln[0] / med:9.2f}x")
t = r["timings"]
print("kiln phases, last run (ms): " + ", ".join(
    f"{k[:-3]} {t[k]}" for k in ("detect_ms", "build_ms", "export_ms", "push_ms", "total_ms")))
uploaded = r["push"]["uploaded_bytes"]
reused = all(l["reused"] for l in r["layers"])
print(f"kiln layer bytes uploaded on the last rebuild: {uploaded} (target 0); "
      f"all {len(r['layers'])} layers reused: {'yes' if reused else 'NO'}; "
      f"ko blobs pushed on its last run: {ko_pushed}")
print("targets: kiln/ko <= 0.50x: " + ("met" if kiln[0] <= 0.5 * ko[0] else "NOT met")
      + "; 0 bytes uploaded: " + ("met" if uploaded == 0 and reused else "NOT met"))
sys.path.insert(0, "bench")
from summary import row as summary
summary("Go no-op publish, kiln/ko", "<= 0.50x", f"{kiln[0] / ko[0]:.2f}x", f"{kiln[1] / ko[1]:.2f}x", kiln[0] <= 0.5 * ko[0])
summary("Go no-op publish, layer bytes uploaded", "0", str(uploaded), str(uploaded), uploaded == 0 and reused)
PY
