#!/usr/bin/env bash
# Rebase of one app image on a throwaway `docker-registry` on 127.0.0.1: `kiln rebase
# --publish` against `crane rebase` (go-containerregistry's crane, `go install`ed), same app,
# same two bases, same registry.
#
#   bench/rebase.sh            # RUNS=9 timed runs each, interleaved, after WARMUP=1 untimed one
#
# The app is tests/fixtures/node-express built by kiln on the node base v1 (the committed
# lock) and pushed twice, once per tool. v2 is the same lock with one more file. Every run
# really rebases: it moves the image to the base it is not on (v1 → v2 → v1 …), naming both
# bases explicitly (crane cannot find them itself). Afterwards the blobs each tool added to
# the registry's storage are counted and summed: layers would show there.
# Targets (issue 23): kiln in at most half crane's time; zero layer bytes uploaded; the
# requests each makes per rebase are counted in the registry's access log.
#
# Needs what .ci/setup installs, plus python3 and Go. crane comes from $CRANE, else PATH, else
# `go install github.com/google/go-containerregistry/cmd/crane@$CRANE_VERSION` into
# bench/out/bin. Scratch in bench/out/rebase; the registry is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
RUNS=${RUNS:-9}
WARMUP=${WARMUP:-1}
CRANE_VERSION=${CRANE_VERSION:-v0.22.1}
out=$PWD/bench/out/rebase
rm -rf "$out" && mkdir -p "$out"

reg_pid=""
cleanup() { if [ -n "$reg_pid" ]; then kill "$reg_pid" 2>/dev/null || true; wait "$reg_pid" 2>/dev/null || true; fi; }
trap cleanup EXIT

for tool in go node npm python3 curl /usr/bin/docker-registry; do
  command -v "$tool" >/dev/null || { echo "missing \`$tool\` (run .ci/setup)" >&2; exit 1; }
done
release_kiln
crane=${CRANE:-$(command -v crane || true)}
if [ -z "$crane" ]; then
  crane=$PWD/bench/out/bin/crane
  if [ ! -x "$crane" ] || [ "$("$crane" version)" != "$CRANE_VERSION" ]; then
    echo "installing crane $CRANE_VERSION with go install..." >&2
    GOFLAGS= GOBIN=$PWD/bench/out/bin go install "github.com/google/go-containerregistry/cmd/crane@$CRANE_VERSION"
  fi
fi

start_registry "$out"

echo "building and pushing bases v1 and v2 and the app..." >&2
for v in v1 v2; do
  mkdir -p "$out/defs-$v" && cp -r golden-base/keyrings "$out/defs-$v/"
  for b in static base node; do cp "golden-base/$b.toml" "golden-base/$b.lock" "$out/defs-$v/"; done
done
printf '\n[[files]]\npath = "/etc/kiln-base-v2"\ncontent = "v2\\n"\n' >>"$out/defs-v2/node.toml"
for v in v1 v2; do
  "$kiln" base build "$out/defs-$v/node.toml" --platform linux/amd64 --cache-dir "$out/cache" \
    --publish "$reg/bases/node:$v" >"$out/base-$v.log" 2>&1
done
cp -r tests/fixtures/node-express "$out/app"
export GIT_CEILING_DIRECTORIES=$out
for t in kiln crane; do
  "$kiln" build "$reg/app:$t" --path "$out/app" --run-image "$reg/bases/node:v1" --publish \
    --cache-dir "$out/cache" -q >"$out/build-$t.log" 2>&1
done

# Each run moves its image to the base it is not on; the state files say where it is.
echo v1 >"$out/kiln.on" && echo v1 >"$out/crane.on"
cat >"$out/kiln-rebase.sh" <<SH
on=\$(cat "$out/kiln.on"); next=v2; [ "\$on" = v2 ] && next=v1
"$kiln" rebase "$reg/app:kiln" --publish --run-image "$reg/bases/node:\$next" \
  --cache-dir "$out/cache" --report "$out/kiln-report.json" -q
echo \$next >"$out/kiln.on"
SH
cat >"$out/crane-rebase.sh" <<SH
on=\$(cat "$out/crane.on"); next=v2; [ "\$on" = v2 ] && next=v1
"$crane" rebase "$reg/app:crane" --insecure --old_base "$reg/bases/node:\$on" \
  --new_base "$reg/bases/node:\$next" --tag "$reg/app:crane"
echo \$next >"$out/crane.on"
SH
blobs() { find "$out/registry/docker/registry/v2/blobs" -name data -type f -printf '%s %p\n' | sort -k2; }

# Interleaved (crane, kiln, crane, kiln ...), so a drift of the machine's speed hits both.
for _ in $(seq "$WARMUP"); do
  bash "$out/crane-rebase.sh" >>"$out/crane.log" 2>&1
  bash "$out/kiln-rebase.sh" >>"$out/kiln.log" 2>&1
done
: >"$out/crane.times" && : >"$out/kiln.times"
echo "timing crane and kiln rebase, interleaved ($WARMUP warm-up + $RUNS runs each)..." >&2
for _ in $(seq "$RUNS"); do
  for t in crane kiln; do
    python3 bench/timeit.py 1 0 "$out/$t.log" -- bash "$out/$t-rebase.sh" | cut -d' ' -f1 >>"$out/$t.times"
  done
done
stats() { python3 -c 'import statistics, sys; v = [float(l) for l in open(sys.argv[1])]; print(statistics.median(v), min(v), max(v))' "$1"; }
read -r cr_med cr_min cr_max < <(stats "$out/crane.times")
read -r ki_med ki_min ki_max < <(stats "$out/kiln.times")

# One more rebase each: its requests counted in the registry's access log, and the blobs
# it added to the registry's storage (layers would show there).
one_more() {
  local before after
  blobs >"$out/blobs-$1-before"
  before=$(wc -l <"$out/registry.log")
  bash "$out/$1-rebase.sh" >/dev/null 2>&1
  after=$(wc -l <"$out/registry.log")
  blobs >"$out/blobs-$1-after"
  echo $((after - before))
}
cr_req=$(one_more crane)
ki_req=$(one_more kiln)

python3 - "$out" "$RUNS" "$WARMUP" "$("$crane" version)" \
  "$cr_med" "$cr_min" "$cr_max" "$ki_med" "$ki_min" "$ki_max" "$cr_req" "$ki_req" <<'PY'
import json, sys
out, runs, warmup, crane_version = sys.argv[1:5]
crane, kiln = (tuple(map(float, sys.argv[i:i + 3])) for i in (5, 8))
crane_requests, kiln_requests = sys.argv[11:13]
def blobs(name):
    return {line.split(" ", 1)[1]: int(line.split(" ", 1)[0]) for line in open(f"{out}/{name}") if line.strip()}
added = lambda t: {k: v for k, v in blobs(f"blobs-{t}-after").items() if k not in blobs(f"blobs-{t}-before")}
crane_new, kiln_new = added("crane"), added("kiln")
row = lambda name, t: print(f"{name:<44} {t[0]:9.3f} {t[1]:7.3f} {t[2]:7.3f}")
print(f"\nRebase of one app image (node-express on the node base, v1 <-> v2), local registry; "
      f"median/min/max of {runs} interleaved runs each after {warmup} warm-up")
print(f"{'command':<44} {'median s':>9} {'min':>7} {'max':>7}")
row(f"crane rebase ({crane_version})", crane)
row("kiln rebase --publish", kiln)
print(f"blobs one more rebase stored: crane {len(crane_new)} ({sum(crane_new.values())} bytes), "
      f"kiln {len(kiln_new)} ({sum(kiln_new.values())} bytes)")
r = json.load(open(f"{out}/kiln-report.json"))[0]
print(f"kiln's last run: {r['result']}, layer bytes uploaded {r['uploaded_bytes']}")
print(f"requests per rebase (registry access log): crane {crane_requests}, kiln {kiln_requests}")
ratio = kiln[0] / crane[0]
print(f"kiln/crane: {ratio:.2f}x (target <= 0.50x: {'met' if ratio <= 0.5 else 'NOT met'}); "
      f"kiln layer bytes uploaded: {r['uploaded_bytes']} (target 0: {'met' if r['uploaded_bytes'] == 0 else 'NOT met'})")
sys.path.insert(0, "bench")
from summary import row as summary
summary(f"rebase, kiln/crane ({kiln_requests} vs {crane_requests} requests)", "<= 0.50x", f"{ratio:.2f}x", f"{kiln[1] / crane[1]:.2f}x", ratio <= 0.5)
PY
