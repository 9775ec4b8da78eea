#!/usr/bin/env bash
# Multi-platform builds: what a second platform costs. For a Go, a Java and a Node fixture,
# a rebuild after a one-line change published to a local registry, for linux/amd64 alone
# and for linux/amd64,linux/arm64 (an index), interleaved run by run; for Go also `ko build
# --platform=linux/amd64,linux/arm64` of the same app on the same base. `nodedeps` is the
# Node app again with its install settings changed (`.npmrc`), so npm installs again.
#
#   bench/multi-platform.sh        # RUNS=5 timed rounds after WARMUP=1 untimed one
#   LANGS=node bench/multi-platform.sh   # some of go, java, node, nodedeps only
#
# Every run is a real change: before it (untimed) the app's greeting gets a text no earlier
# run had. Each variant keeps its own copy of the app and its own kiln cache (shared
# downloads), so one variant's link and layer caches never serve the other.
# Targets (issue 24): two platforms cost at most 1.3x one for Java and Node, 1.8x for Go;
# kiln's two-platform Go build no slower than ko's.
#
# Needs what .ci/setup installs (the bases come from the committed locks through the
# machine's Debian mirror), plus python3. ko comes from $KO, else PATH, else `go install`
# into bench/out/bin. Caches persist in bench/out/multi-platform-cache.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
RUNS=${RUNS:-5}
WARMUP=${WARMUP:-1}
LANGS=${LANGS:-go java node nodedeps}
KO_VERSION=${KO_VERSION:-v0.19.1}
out=$PWD/bench/out/multi-platform
cache=$PWD/bench/out/multi-platform-cache
rm -rf "$out" && mkdir -p "$out" "$cache"

reg_pid=""
cleanup() { if [ -n "$reg_pid" ]; then kill "$reg_pid" 2>/dev/null || true; wait "$reg_pid" 2>/dev/null || true; fi; }
trap cleanup EXIT

for tool in go mvn node npm python3 curl /usr/bin/docker-registry; do
  command -v "$tool" >/dev/null || { echo "missing \`$tool\` (run .ci/setup)" >&2; exit 1; }
done

release_kiln
ensure_ko

start_registry "$out"
export DOCKER_CONFIG=$out/docker # no credentials, no helpers
# Outside any git repository (the checkout it sits in is not the apps').
export GIT_CEILING_DIRECTORIES=$out
export GOFLAGS=-buildvcs=false GOTOOLCHAIN=local CGO_ENABLED=0

# The bases, for both platforms, from the committed locks (the .debs cached across runs).
declare -A base_of=([go]=static [java]=java17 [node]=node [nodedeps]=node)
for base in $(for lang in $LANGS; do echo "${base_of[$lang]}"; done | sort -u); do
  echo "building the $base base for amd64 and arm64..." >&2
  "$kiln" base build "golden-base/$base.toml" --platform linux/amd64,linux/arm64 \
    --cache-dir "$cache/base" --publish="$reg/bases/$base:1" >>"$out/base.log" 2>&1 ||
    { tail -30 "$out/base.log" >&2; exit 1; }
done

# fixture, file holding the greeting, sed expression giving it a new text ($1 = a stamp).
declare -A fixture=([go]=go-web [java]=java-multi [node]=node-express [nodedeps]=node-express)
declare -A file=([go]=main.go
  [java]=greeting/src/main/java/dev/kiln/fixture/greeting/Greeting.java [node]=server.js
  [nodedeps]=.npmrc)
declare -A edit=([go]='s/hello from kiln[^%]*%s/hello from kiln STAMP %s/'
  [java]='s/from a kiln multi-module app[^"]*"/from a kiln multi-module app STAMP"/'
  [node]="s/hello from express[^']*'/hello from express STAMP'/"
  [nodedeps]='s/kiln-bench [0-9]*/kiln-bench STAMP/')

# One build script per (fixture, variant), each with its own app copy and kiln cache.
variant_script() { # LANG VARIANT PLATFORMS
  local lang=$1 v=$2 platforms=$3 app=$out/$1-$2/app
  mkdir -p "$out/$lang-$v"
  cp -r "tests/fixtures/${fixture[$lang]}" "$app"
  [ "$lang" != nodedeps ] || echo "# kiln-bench 0" >"$app/.npmrc"
  grep -q "$(echo "${edit[$lang]}" | sed 's/^s\/\([^[]*\).*/\1/')" "$app/${file[$lang]}" ||
    { echo "the greeting of ${fixture[$lang]} moved; update bench/multi-platform.sh" >&2; exit 1; }
  printf '%s\n' "${edit[$lang]}" >"$out/$lang-$v/edit.sed"
  cat >"$out/$lang-$v/edit.sh" <<SH
sed "s/STAMP/\$(date +%s%N)/" '$out/$lang-$v/edit.sed' >'$out/$lang-$v/now.sed'
sed -i -f '$out/$lang-$v/now.sed' '$app/${file[$lang]}'
SH
  if [ "$v" = ko ]; then
    cat >"$out/$lang-$v/build.sh" <<SH
cd '$app' && GOCACHE='$cache/ko-go-build' KOCACHE='$cache/ko' KO_DOCKER_REPO='$reg/ko/goweb' \
  KO_DEFAULTBASEIMAGE='$reg/bases/${base_of[$lang]}:1' '$ko' build --bare --sbom=none \
  --insecure-registry --platform=$platforms --tags=latest .
SH
  else
    cat >"$out/$lang-$v/build.sh" <<SH
'$kiln' build '$reg/$lang/$v:latest' --path '$app' --publish --platform $platforms \
  --run-image '$reg/bases/${base_of[$lang]}:1' --cache-dir '$cache/kiln-$lang-$v' \
  --report '$out/$lang-$v/report.json' -q
SH
  fi
}
variants=()
for lang in $LANGS; do
  variant_script "$lang" one linux/amd64
  variant_script "$lang" two linux/amd64,linux/arm64
  variants+=("$lang-one" "$lang-two")
done
if [[ " $LANGS " == *" go "* ]]; then
  variant_script go ko linux/amd64,linux/arm64
  variants+=(go-ko)
fi

run_one() { # VARIANT -> seconds
  bash "$out/$1/edit.sh"
  python3 bench/timeit.py 1 0 "$out/$1/build.log" -- bash "$out/$1/build.sh" | cut -d' ' -f1
}
echo "warming up (downloads, caches)..." >&2
for _ in $(seq "$WARMUP"); do for v in "${variants[@]}"; do run_one "$v" >/dev/null; done; done
echo "timing: $RUNS rounds, each variant once a round, interleaved..." >&2
for v in "${variants[@]}"; do : >"$out/$v/times"; done
for _ in $(seq "$RUNS"); do
  for v in "${variants[@]}"; do run_one "$v" >>"$out/$v/times"; done
done

python3 - "$out" "$RUNS" "$("$ko" version)" "${variants[@]}" <<'PY'
import json, statistics, sys
out, runs, ko_version = sys.argv[1], sys.argv[2], sys.argv[3]
times = {}
for v in sys.argv[4:]:
    t = [float(l) for l in open(f"{out}/{v}/times")]
    times[v] = (statistics.median(t), min(t), max(t))
print(f"\nOne-line-change rebuild, published to a local registry; median/min/max of {runs} interleaved rounds")
print(f"{'build':<46} {'median s':>9} {'min':>7} {'max':>7}")
names = {"go-one": "kiln go-web, linux/amd64", "go-two": "kiln go-web, amd64 + arm64",
         "go-ko": f"ko {ko_version} go-web, amd64 + arm64",
         "java-one": "kiln java-multi, linux/amd64", "java-two": "kiln java-multi, amd64 + arm64",
         "node-one": "kiln node-express, linux/amd64", "node-two": "kiln node-express, amd64 + arm64",
         "nodedeps-one": "kiln node-express, npm installs, linux/amd64",
         "nodedeps-two": "kiln node-express, npm installs, amd64 + arm64"}
for v, name in names.items():
    if v not in times:
        continue
    m, lo, hi = times[v]
    print(f"{name:<46} {m:9.3f} {lo:7.3f} {hi:7.3f}")
sys.path.insert(0, "bench")
from summary import row as summary
def shared(lang):
    r = json.load(open(f"{out}/{lang}-two/report.json"))
    layers = [[l["digest"] for l in p["layers"]] for p in r["platforms"]]
    return "same blobs" if layers[0] == layers[1] else "own blobs"
for lang, goal in [("go", 1.8), ("java", 1.3), ("node", 1.3), ("nodedeps", 1.3)]:
    if f"{lang}-two" not in times:
        continue
    ratio = times[f"{lang}-two"][0] / times[f"{lang}-one"][0]
    low = times[f"{lang}-two"][1] / times[f"{lang}-one"][1]
    met = ratio <= goal
    print(f"{lang}: two platforms / one = {ratio:.2f}x (min {low:.2f}x; target <= {goal}x: "
          f"{'met' if met else 'NOT met'}); app layers of both platforms: {shared(lang)}")
    what = "npm installs again" if lang == "nodedeps" else "one-line change"
    summary(f"{lang} two platforms / one ({what})", f"<= {goal}x", f"{ratio:.2f}x", f"{low:.2f}x", met)
if "go-ko" in times:
    ratio = times["go-two"][0] / times["go-ko"][0]
    low = times["go-two"][1] / times["go-ko"][1]
    print(f"go, two platforms: kiln / ko = {ratio:.2f}x (min {low:.2f}x; target <= 1x: {'met' if ratio <= 1 else 'NOT met'})")
    summary("go two platforms, kiln/ko (one-line change)", "<= 1.00x", f"{ratio:.2f}x", f"{low:.2f}x", ratio <= 1)
PY
