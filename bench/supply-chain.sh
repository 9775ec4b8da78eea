#!/usr/bin/env bash
# What SBOMs, signing and attaching add to a warm rebuild of tests/fixtures/node-express
# (one-line change, published to a throwaway `docker-registry` on 127.0.0.1), all in one run
# on the same kiln cache, alternating:
#
#   A. kiln build --publish --no-sbom --no-provenance             (the build alone)
#   B. kiln build --publish --sign-key KEY                        (SBOMs + provenance + signature,
#                                                                   unencrypted PKCS#8 key)
#   C. as B with an encrypted key (cosign's format: scrypt N=2^16, so ~0.1 s of key
#      decryption on purpose; shown apart, it is not SBOM, signing or attaching)
#
# Target: B at most 5% over A.
#
# Also measured, in the same rounds: the registry's own CPU time per build (from
# /proc/PID/stat). Every request costs docker-registry CPU on the same machine, so B's extra
# requests set a floor under B - A that no client can go below: the extra registry CPU
# spread over every core. The script prints that floor beside the target, and a second one
# from what a bare client (curl) costs the same registry for each new blob B attaches.
#
#   bench/supply-chain.sh            # RUNS=9 timed runs each, after WARMUP=1 untimed one
#
# Needs what .ci/setup installs, plus python3. Scratch in bench/out/supply-chain; the npm
# cache and the node base are shared with bench/node-build.sh (bench/out/node-build-cache).
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
RUNS=${RUNS:-9}
WARMUP=${WARMUP:-1}
out=$PWD/bench/out/supply-chain
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
reg_cpu() { awk '{print $14 + $15}' "/proc/$reg_pid/stat"; } # clock ticks, every thread

if [ ! -f "$cache/base/oci/index.json" ]; then
  echo "building the node base from the committed lock..." >&2
  "$kiln" base build golden-base/node.toml --platform linux/amd64 --cache-dir "$cache/base" >/dev/null
fi
export GIT_CEILING_DIRECTORIES=$out
warm=$out/warm-cache
mkdir -p "$warm/buildpacks/kiln-node" "$cache/npm" && cp -al "$cache/base/oci" "$warm/oci" &&
  ln -s "$cache/npm" "$warm/buildpacks/kiln-node/npm"
cp -r tests/fixtures/node-express "$out/app"

env -u KILN_KEY_PASSWORD -u COSIGN_PASSWORD "$kiln" key generate --output-prefix "$out/plain" >/dev/null 2>&1
KILN_KEY_PASSWORD=bench "$kiln" key generate --output-prefix "$out/encrypted" >/dev/null
# The first build, untimed: node_modules installed, the base's layers cataloged once.
"$kiln" build "$reg/express:latest" --path "$out/app" --publish \
  --cache-dir "$warm" --sign-key "$out/plain.key" -q >"$out/first.log" 2>&1

edit="sed -i \"s/'hello from express[^']*'/'hello from express \$(date +%s%N)'/\" '$out/app/server.js'"
time_cmd() { # LABEL -- COMMAND... -> "median min max"
  python3 bench/timeit.py "$RUNS" "$WARMUP" "$out/$1.log" --before "$edit" "${@:2}"
}
build=("$kiln" build "$reg/express:latest" --path "$out/app" --publish --cache-dir "$warm" -q)

echo "timing rebuilds after a one-line change: A, B and C alternate, $WARMUP warm-up + $RUNS rounds..." >&2
# Warm-ups go through timeit.py too: a python3 shim (pyenv) may change PATH, which keys
# the node_modules cache, and a warm-up under another PATH would leave round 1 an install.
for _ in $(seq $((WARMUP))); do
  RUNS=1 WARMUP=0 time_cmd warmup -- "${build[@]}" --no-sbom --no-provenance >/dev/null
  RUNS=1 WARMUP=0 time_cmd warmup -- "${build[@]}" --sign-key "$out/plain.key" >/dev/null
  RUNS=1 WARMUP=0 time_cmd warmup --env KILN_KEY_PASSWORD=bench -- "${build[@]}" --sign-key "$out/encrypted.key" >/dev/null
done
: >"$out/a.times"; : >"$out/b.times"; : >"$out/c.times"
a_ticks=0; b_ticks=0
for round in $(seq $((RUNS))); do
  t0=$(reg_cpu)
  read -r a _ _ < <(RUNS=1 WARMUP=0 time_cmd a -- "${build[@]}" --no-sbom --no-provenance --report "$out/a.json")
  t1=$(reg_cpu)
  read -r b _ _ < <(RUNS=1 WARMUP=0 time_cmd b -- "${build[@]}" --sign-key "$out/plain.key" --report "$out/b.json")
  t2=$(reg_cpu)
  a_ticks=$((a_ticks + t1 - t0)); b_ticks=$((b_ticks + t2 - t1))
  read -r c _ _ < <(RUNS=1 WARMUP=0 time_cmd c --env KILN_KEY_PASSWORD=bench -- "${build[@]}" --sign-key "$out/encrypted.key")
  echo "$a" >>"$out/a.times"; echo "$b" >>"$out/b.times"; echo "$c" >>"$out/c.times"
  cp "$out/b.json" "$out/b-$round.json"
done

# The same registry's price of one blob upload (POST, then PUT with the bytes) by a bare
# client: what any client pays for each new blob it attaches.
curl_uploads=20
u0=$(reg_cpu)
for i in $(seq $curl_uploads); do
  printf 'bench blob %s %s' "$i" "$(date +%s%N)" >"$out/blob"
  digest=sha256:$(sha256sum "$out/blob" | cut -d' ' -f1)
  loc=$(curl -fsSi -X POST "http://$reg/v2/express/blobs/uploads/" |
    awk -F': ' 'tolower($1) == "location" { print $2 }' | tr -d '\r')
  case $loc in http*) ;; *) loc=http://$reg$loc ;; esac
  case $loc in *\?*) sep='&' ;; *) sep='?' ;; esac
  curl -fsS -o /dev/null -X PUT -H 'Content-Type: application/octet-stream' \
    --data-binary @"$out/blob" "$loc${sep}digest=$digest"
done
curl_ticks=$(($(reg_cpu) - u0))

python3 - "$out" "$RUNS" "$a_ticks" "$b_ticks" "$(getconf CLK_TCK)" "$(nproc)" \
  "$curl_ticks" "$curl_uploads" <<'PY'
import json, statistics, sys
out, runs = sys.argv[1], int(sys.argv[2])
a_ticks, b_ticks, hz, cores, curl_ticks, curl_uploads = (int(x) for x in sys.argv[3:9])
t = {k: [float(x) for x in open(f"{out}/{k}.times")] for k in "abc"}
row = lambda name, v: print(f"{name:<62} {statistics.median(v):9.3f} {min(v):7.3f} {max(v):7.3f}")
print(f"\nnode-express rebuild after a one-line change, published; {runs} alternating rounds")
print(f"{'command':<62} {'median s':>9} {'min':>7} {'max':>7}")
row("A  kiln build --publish --no-sbom --no-provenance", t["a"])
row("B  kiln build --publish --sign-key (SBOM + provenance + sig)", t["b"])
row("C  as B, key in cosign's encrypted format", t["c"])
b = json.load(open(f"{out}/b.json"))
s = b["supply"]
pk = s["sboms"][0]["packages"]
print(f"B's SBOM: {sum(pk.values())} packages ({', '.join(f'{k} {v}' for k, v in pk.items())}); "
      f"signed {len(s['signatures'])}, provenance signed: {s['provenance']['signed']}")
a_med, b_med = statistics.median(t["a"]), statistics.median(t["b"])
rounds = [json.load(open(f"{out}/b-{i}.json"))["supply"] for i in range(1, runs + 1)]
sbom_ms = statistics.median(r["sbom_ms"] for r in rounds)
after_ms = statistics.median(r["attach_after_push_ms"] for r in rounds)
print(f"B's parts (medians): cataloging + writing the SBOMs {sbom_ms} ms "
      f"({sbom_ms / 1000 / a_med * 100:.1f}% of A); attaching past the image's push {after_ms} ms")
over = (b_med / a_med - 1) * 100
print(f"B over A: {over:+.1f}% ({(b_med - a_med) * 1000:+.0f} ms) (target < +5%: {'met' if over < 5 else 'NOT met'})")
reg_a, reg_b = a_ticks / hz / runs * 1000, b_ticks / hz / runs * 1000
floor = (reg_b - reg_a) / cores / (a_med * 1000) * 100
print(f"registry CPU per build: A {reg_a:.0f} ms, B {reg_b:.0f} ms; B's extra requests alone, "
      f"spread over {cores} cores, put a floor of {floor:+.1f}% under B over A")
upload_ms = curl_ticks / hz / curl_uploads * 1000
new_blobs = 2 * len(s["sboms"]) + 1 + len(s["signatures"])
blob_floor = new_blobs * upload_ms / cores / (a_med * 1000) * 100
print(f"one blob upload by curl costs the registry {upload_ms:.1f} ms CPU; B's {new_blobs} new blobs "
      f"alone, by any client, put a floor of {blob_floor:+.1f}% under B over A")
print(f"C over B (key decryption): {(statistics.median(t['c']) - b_med) * 1000:+.0f} ms")
PY
