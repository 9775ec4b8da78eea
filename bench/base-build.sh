#!/usr/bin/env bash
# Base build benchmark (issue 4): `kiln base build golden-base/java17.toml` from a warm .deb
# cache, against the same packages piped one by one through
# `dpkg-deb --fsys-tarfile DEB | gzip -6 | sha256sum`. Also prints the compressed sizes of the
# static, base, node and java17 bases against distroless's published sizes.
#
#   bench/base-build.sh        # RUNS=3 timed runs after one untimed warm-up
#
# Target: kiln at least 2x faster than the peer. The cache lives in bench/out/base-cache
# (`debian/` = the .deb cache, `oci/` = kiln's blob store); the first run downloads the
# packages from the machine's apt sources, later runs are offline. The locks are used as
# committed: nothing here relocks.
set -euo pipefail

cd "$(dirname "$0")/.."
OUT=bench/out
DIR=$OUT/base-cache
RUNS=${RUNS:-3}
LOG=$OUT/base-build.log
mkdir -p "$DIR"
: >"$LOG"

for tool in dpkg-deb gzip sha256sum python3 /usr/bin/time; do
    command -v "$tool" >/dev/null || { echo "missing \`$tool\`" >&2; exit 1; }
done

cargo build --quiet --release -p kiln-cli
TARGET_DIR=$(cargo metadata --format-version 1 --no-deps |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
KILN=$TARGET_DIR/release/kiln

build() { # NAME: kiln base build into DIR's local store
    "$KILN" base build "golden-base/$1.toml" --platform linux/amd64 --cache-dir "$DIR" >>"$LOG" 2>&1 ||
        { tail -30 "$LOG" >&2; exit 1; }
}

# The compressed layers of kiln-base/NAME in DIR/oci: "DIGEST SIZE" lines, bottom first.
layers() {
    python3 - "$DIR/oci" "kiln-base/$1" <<'EOF'
import json, sys
oci, ref = sys.argv[1:]
index = json.load(open(f"{oci}/index.json"))
m = [d for d in index["manifests"]
     if d.get("annotations", {}).get("org.opencontainers.image.ref.name") == ref][0]
manifest = json.load(open(f"{oci}/blobs/{m['digest'].replace(':', '/')}"))
for layer in manifest["layers"]:
    print(layer["digest"], layer["size"])
EOF
}

# Warm-up: fills DIR/debian with java17's .debs (and DIR/oci with its blobs).
build java17
WANT=$(layers java17)

# The peer's input: every .deb of the lock, from kiln's content-addressed cache.
mapfile -t DEBS < <(python3 - "$DIR/debian/debs/sha256" <<'EOF'
import os, sys, tomllib
cache = sys.argv[1]
lock = tomllib.load(open("golden-base/java17.lock", "rb"))
for arch, pkgs in lock["packages"].items():
    if arch != "amd64":  # kiln builds linux/amd64 only here
        continue
    for p in pkgs:
        path = os.path.join(cache, p["sha256"])
        if not os.path.isfile(path):
            sys.exit(f"{p['name']}: {path} missing after the warm-up build")
        print(path)
EOF
)
DEB_BYTES=$(cat "${DEBS[@]}" | wc -c)
printf '%s\n' "${DEBS[@]}" >"$OUT/base-build.debs"
cat >"$OUT/base-build-peer.sh" <<'EOF'
set -euo pipefail
while read -r deb; do dpkg-deb --fsys-tarfile "$deb" | gzip -6 | sha256sum >/dev/null; done
EOF

# kiln has no layer reuse for base builds; make sure: a warm-store run must spend as much CPU
# as a cold-store one and write the same layers.
cpu() { # user+sys seconds of one kiln build of java17 into DIR
    /usr/bin/time -f '%U %S' -o "$OUT/base-build.time" "$KILN" base build \
        golden-base/java17.toml --platform linux/amd64 --cache-dir "$DIR" >>"$LOG" 2>&1
    awk '{ printf "%.2f", $1 + $2 }' "$OUT/base-build.time"
}
CPU_WARM=$(cpu)
[ "$(layers java17)" = "$WANT" ] || { echo "warm-store rebuild gave other layers" >&2; exit 1; }
rm -rf "$DIR/oci"
CPU_COLD=$(cpu)
[ "$(layers java17)" = "$WANT" ] || { echo "cold-store rebuild gave other layers" >&2; exit 1; }

# Timed: kiln into the existing store; kiln into an empty store (DIR/oci deleted before each
# run, outside the timing, DIR/debian kept); the peer.
read -r KW_MED KW_MIN KW_MAX < <(python3 bench/timeit.py "$RUNS" 0 "$LOG" -- \
    "$KILN" base build golden-base/java17.toml --platform linux/amd64 --cache-dir "$DIR")
read -r KC_MED KC_MIN KC_MAX < <(python3 - "$RUNS" "$DIR" "$LOG" "$KILN" <<'EOF'
import shutil, statistics, subprocess, sys, time
runs, cache, log, kiln = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
times = []
for _ in range(runs):
    shutil.rmtree(f"{cache}/oci", ignore_errors=True)
    with open(log, "ab") as out:
        t0 = time.monotonic()
        rc = subprocess.run([kiln, "base", "build", "golden-base/java17.toml",
                             "--platform", "linux/amd64", "--cache-dir", cache],
                            stdout=out, stderr=subprocess.STDOUT).returncode
        times.append(time.monotonic() - t0)
    if rc:
        sys.exit(f"kiln exited {rc}: see {log}")
print(f"{statistics.median(times):.3f} {min(times):.3f} {max(times):.3f}")
EOF
)
[ "$(layers java17)" = "$WANT" ] || { echo "timed rebuilds gave other layers" >&2; exit 1; }
read -r P_MED P_MIN P_MAX < <(python3 bench/timeit.py "$RUNS" 0 "$LOG" -- \
    bash -c 'bash "$1" <"$2"' _ "$OUT/base-build-peer.sh" "$OUT/base-build.debs")

# Sizes: each base built once (static, base and node fetch their own trixie packages once).
for b in static base node; do build "$b"; done
size() { layers "$1" | awk '{ s += $2 } END { printf "%.1f MiB", s / 2^20 }'; }

ratio() { awk -v k="$1" -v p="$2" 'BEGIN { printf "%.2fx", p / k }'; }
row() { printf "%-44s %8s %8s %8s %9s\n" "$@"; }
echo
echo "java17: ${#DEBS[@]} .debs, $(awk -v b="$DEB_BYTES" 'BEGIN { printf "%.1f", b / 2^20 }') MiB, warm .deb cache; median/min/max of $RUNS runs"
row "case" "median" "min" "max" "peer/kiln"
row "peer dpkg-deb --fsys-tarfile|gzip -6|sha256" "$P_MED" "$P_MIN" "$P_MAX" ""
row "kiln base build, blob store kept" "$KW_MED" "$KW_MIN" "$KW_MAX" "$(ratio "$KW_MED" "$P_MED")"
row "kiln base build, blob store DIR/oci emptied" "$KC_MED" "$KC_MIN" "$KC_MAX" "$(ratio "$KC_MED" "$P_MED")"
echo "no layer reuse for base builds: CPU ${CPU_WARM}s with the store kept vs ${CPU_COLD}s emptied, same layer digests"
echo "target: kiln >= 2x the peer"
echo
printf "%-8s %12s %16s\n" "base" "kiln" "distroless"
printf "%-8s %12s %16s\n" static "$(size static)" "~2 MiB" base "$(size base)" "~20 MiB" \
    node "$(size node)" "n/a" java17 "$(size java17)" "~200 MB"
