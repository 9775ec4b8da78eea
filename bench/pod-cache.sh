#!/usr/bin/env bash
# A build pod without a disk: tests/fixtures/java-spring (Spring Boot) built inside kiln's
# builder image by podman with the pod's lock-down (user 65532, --cap-drop=ALL, --read-only,
# no-new-privileges, tmpfs /kiln and /tmp), pushed to a throwaway `docker-registry` on
# 127.0.0.1. Each run is a pair of fresh containers: the first with a new, empty
# --cache-image (cold: Maven's repository is downloaded), the second with the cache image
# the first pushed (warm). Prints both times, kiln's own total in the pod (its report) and
# the pod's wall time, and a bare container start, which here is mostly podman's vfs
# storage copying the image (overlay storage in a cluster does not).
# Target: the second build at most half the cold time.
#
#   bench/pod-cache.sh            # RUNS=3 pairs
#
# Needs what .ci/setup installs, plus python3. The builder image (the `build` base relocked,
# plus a release kiln) is built from .debs kept in bench/out/pod-cache-cache; scratch in
# bench/out/pod-cache; registry and containers are stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
RUNS=${RUNS:-3}
out=$PWD/bench/out/pod-cache
keep=$PWD/bench/out/pod-cache-cache
rm -rf "$out" && mkdir -p "$out" "$keep"
podman_args=(--root "$out/storage" --runroot "$out/run" --storage-driver vfs)

reg_pid=""
cleanup() {
  if [ -n "$reg_pid" ]; then kill "$reg_pid" 2>/dev/null || true; wait "$reg_pid" 2>/dev/null || true; fi
  podman "${podman_args[@]}" rm -af >/dev/null 2>&1 || true
  podman "${podman_args[@]}" rmi -af >/dev/null 2>&1 || true
  rm -rf "$out/storage" 2>/dev/null || true
}
trap cleanup EXIT

for tool in podman python3 curl strip /usr/bin/docker-registry; do
  command -v "$tool" >/dev/null || { echo "missing \`$tool\` (run .ci/setup)" >&2; exit 1; }
done
release_kiln
cp "$kiln" "$out/kiln" && strip --strip-debug "$out/kiln"

echo "building the builder image (the build base, relocked, plus kiln)..." >&2
# Relocked in a copy: a committed lock goes stale when the mirror drops superseded .debs.
mkdir -p "$out/defs" && cp -r golden-base/keyrings "$out/defs/"
for b in static base java21 build; do cp "golden-base/$b.toml" "golden-base/$b.lock" "$out/defs/"; done
"$kiln" base lock "$out/defs/build.toml" >"$out/lock.log" 2>&1
"$kiln" base build "$out/defs/build.toml" --platform linux/amd64 \
  --add-file "$out/kiln:/usr/local/bin/kiln" --cache-dir "$keep/base" \
  --output "$out/builder.tar" >"$out/builder.log" 2>&1
podman "${podman_args[@]}" load --quiet --input "$out/builder.tar" >/dev/null

start_registry "$out"
"$kiln" base build golden-base/java17.toml --platform linux/amd64 --cache-dir "$keep/java17" \
  --publish "$reg/bases/java17:1" >"$out/java17.log" 2>&1

# The pod: the app read-only, the machine's trust store for a TLS-intercepting network.
cp -r tests/fixtures/java-spring "$out/spring"
pod=(--network host --user 65532:65532 --cap-drop=ALL --read-only --security-opt no-new-privileges
  --tmpfs /tmp:rw,exec,mode=1777 --tmpfs /kiln:rw,exec,mode=1777 -v "$out/spring:/src:ro"
  -v "$out/reports:/out")
mkdir -p "$out/reports" && chmod 777 "$out/reports"
pem=${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}
[ -f "$pem" ] && pod+=(-v "$pem:/kiln-ca/ca.crt:ro" -e SSL_CERT_FILE=/kiln-ca/ca.crt)
[ -f /etc/ssl/certs/java/cacerts ] && pod+=(-v /etc/ssl/certs/java/cacerts:/kiln-ca/cacerts:ro
  -e MAVEN_OPTS=-Djavax.net.ssl.trustStore=/kiln-ca/cacerts)

build() { # CACHE_TAG NAME -> seconds (the pod's whole life)
  local start end
  start=$(date +%s.%N)
  podman "${podman_args[@]}" run --rm "${pod[@]}" localhost/kiln-base/build \
    kiln build "$reg/team/spring:1" --path /src --publish --run-image "$reg/bases/java17:1" \
    --cache-image "$reg/cache/spring:$1" --report "/out/$2.json" >"$out/$2.log" 2>&1
  end=$(date +%s.%N)
  python3 -c "print(f'{$end - $start:.3f}')"
}
# What a container start alone costs here: vfs storage copies the whole image each time.
start=$(date +%s.%N)
podman "${podman_args[@]}" run --rm "${pod[@]}" localhost/kiln-base/build true
echo "$(python3 -c "print($(date +%s.%N) - $start)")" >"$out/startup"
: >"$out/times"
for i in $(seq "$RUNS"); do
  echo "pair $i of $RUNS: cold, then warm..." >&2
  cold=$(build "run-$i" "cold-$i")
  warm=$(build "run-$i" "warm-$i")
  echo "$cold $warm" >>"$out/times"
done

python3 - "$out" <<'PY'
import json, statistics, sys
out = sys.argv[1]
pairs = [tuple(map(float, l.split())) for l in open(f"{out}/times") if l.strip()]
kiln = lambda name: json.load(open(f"{out}/reports/{name}.json"))["timings"]["total_ms"] / 1000
cold = [c for c, _ in pairs]
warm = [w for _, w in pairs]
print("\nSpring Boot (tests/fixtures/java-spring) in a locked-down pod (podman: user 65532, "
      "no capabilities, read-only root, tmpfs /kiln and /tmp), pushed to a local registry")
print(f"{'build':<44} {'median s':>9} {'min':>7} {'max':>7}")
for name, xs in (("fresh pod, no cache image (cold)", cold), ("fresh pod, --cache-image restored", warm)):
    print(f"{name:<44} {statistics.median(xs):9.3f} {min(xs):7.3f} {max(xs):7.3f}")
for i, (c, w) in enumerate(pairs, 1):
    kc, kw = kiln(f"cold-{i}"), kiln(f"warm-{i}")
    restored = json.load(open(f"{out}/reports/warm-{i}.json"))["cache_image"]["restored"]
    print(f"pair {i}: pod cold {c:.3f} s, warm {w:.3f} s, warm/cold {w / c:.2f}; kiln alone "
          f"cold {kc:.3f} s, warm {kw:.3f} s ({kw / kc:.2f}); restored {restored}")
startup = float(open(f"{out}/startup").read())
print(f"a container start alone (podman's vfs storage copies the {'~'}700 MB image): {startup:.3f} s")
kc = statistics.median(kiln(f"cold-{i}") for i in range(1, len(pairs) + 1))
kw = statistics.median(kiln(f"warm-{i}") for i in range(1, len(pairs) + 1))
print(f"pod wall time warm/cold: {statistics.median(warm) / statistics.median(cold):.2f}")
ratio = kw / kc
print(f"the build in the pod (kiln's total), warm/cold: {kw:.3f} / {kc:.3f} s = {ratio:.2f} "
      f"(target <= 0.50: {'met' if ratio <= 0.5 else 'NOT met'})")
PY
