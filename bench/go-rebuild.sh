#!/usr/bin/env bash
# Go app rebuild with nothing changed, published to a local registry:
# kiln against `ko build` (same app, same registry, same base) and a bare `go build`.
# Prints medians of RUNS runs (default 5) after one warm-up, the ratios, and the layer
# bytes kiln uploaded on the last rebuild (target: 0).
#
# Needs what .ci/setup installs. ko is installed with `go install` from the Go module proxy
# into bench/out/bin if it is not on PATH. Everything started here is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-5}
KO_VERSION=${KO_VERSION:-v0.19.1}
out=$PWD/bench/out/go-rebuild
rm -rf "$out" && mkdir -p "$out"
reg_pid=""
cleanup() { [ -n "$reg_pid" ] && kill "$reg_pid" 2>/dev/null || true; }
trap cleanup EXIT

echo "building kiln (release)..." >&2
cargo build -q --release -p kiln-cli --bin kiln
kiln=$PWD/target/release/kiln
ko=$(command -v ko || true)
if [ -z "$ko" ]; then
  ko=$PWD/bench/out/bin/ko
  if [ ! -x "$ko" ]; then
    echo "installing ko $KO_VERSION with go install..." >&2
    GOFLAGS= GOBIN=$PWD/bench/out/bin go install "github.com/google/ko@$KO_VERSION"
  fi
fi

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > "$out/registry.yml" <<YML
version: 0.1
log: { level: error }
storage: { filesystem: { rootdirectory: $out/registry } }
http: { addr: 127.0.0.1:$port }
YML
docker-registry serve "$out/registry.yml" >"$out/registry.log" 2>&1 &
reg_pid=$!
for _ in $(seq 50); do curl -fsS "http://127.0.0.1:$port/v2/" >/dev/null 2>&1 && break; sleep 0.2; done
reg=127.0.0.1:$port

# One base for both: kiln's generated static base, pushed once.
cp -r tests/fixtures/go-web "$out/app"
"$kiln" build "$reg/base:1" --path tests/fixtures/go-multi --process api --publish \
  --cache-dir "$out/kiln-cache" -q >/dev/null
base="$reg/base:1"

kiln_build() {
  "$kiln" build "$reg/kiln/goweb:latest" --path "$out/app" --publish --run-image "$base" \
    --cache-dir "$out/kiln-cache" --report "$out/report.json" -q >/dev/null
}
ko_build() {
  (cd "$out/app" && KO_DOCKER_REPO="$reg/ko/goweb" KO_DEFAULTBASEIMAGE="$base" KOCACHE="$out/ko-cache" \
    GOFLAGS=-buildvcs=false "$ko" build --bare --sbom=none --insecure-registry --platform=linux/amd64 . >/dev/null 2>&1)
}
go_build() {
  (cd "$out/app" && CGO_ENABLED=0 go build -trimpath -buildvcs=false -ldflags=-buildid= -o "$out/goweb-bin" .)
}

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
time_runs() {
  local fn=$1 t0 t1
  "$fn" # warm-up: caches, first push
  for _ in $(seq "$RUNS"); do
    t0=$(date +%s.%N); "$fn"; t1=$(date +%s.%N)
    echo "$t1 - $t0" | bc -l
  done | median
}

t_go=$(time_runs go_build)
t_ko=$(time_runs ko_build)
t_kiln=$(time_runs kiln_build)
uploaded=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["push"]["uploaded_bytes"])' "$out/report.json")
reused=$(python3 -c 'import json,sys; print(all(l["reused"] for l in json.load(open(sys.argv[1]))["layers"]))' "$out/report.json")

printf '\nGo app rebuild, nothing changed, published to %s (median of %s runs)\n' "$reg" "$RUNS"
printf '%-28s %10s %12s\n' "command" "seconds" "kiln/this"
printf '%-28s %10.3f %12.2f\n' "go build (bare)" "$t_go" "$(echo "$t_kiln / $t_go" | bc -l)"
printf '%-28s %10.3f %12.2f\n' "ko build --sbom=none" "$t_ko" "$(echo "$t_kiln / $t_ko" | bc -l)"
printf '%-28s %10.3f %12s\n' "kiln build --publish" "$t_kiln" "1.00"
printf 'kiln layer bytes uploaded on the last rebuild: %s (all layers reused: %s)\n' "$uploaded" "$reused"
