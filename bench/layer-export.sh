#!/usr/bin/env bash
# Layer export benchmark: kiln's one-pass tar → sha256 → gzip|zstd → sha256 → blob store
# against the shell pipeline a script would use, measured in the same run on the same
# (page-cache warm) tree. Prints MB/s, kiln/peer ratios and kiln's peak RSS.
#
#   bench/layer-export.sh            # 400 MB mixed tree + 1 GiB single-layer RSS run
#   BENCH_BIG=0 bench/layer-export.sh  # skip the 1 GiB run
#   BENCH_REPEAT=3 ...               # best of N for every timing (default 1)
#
# Targets: gzip ≥ 3× the peer, zstd ≥ 1×, peak RSS < 100 MiB. Everything it writes goes
# under bench/out (gitignored); generated trees are kept between runs.
set -euo pipefail

cd "$(dirname "$0")/.."
OUT=bench/out
TREE=$OUT/tree
BIG=$OUT/big-tree
REPEAT=${BENCH_REPEAT:-1}
mkdir -p "$OUT"

for tool in tar gzip sha256sum python3 /usr/bin/time; do
    command -v "$tool" >/dev/null || { echo "missing \`$tool\`" >&2; exit 1; }
done
HAVE_ZSTD=1
command -v zstd >/dev/null || { HAVE_ZSTD=0; echo "no \`zstd\` binary: zstd peer skipped (apt-get install zstd)" >&2; }

[ -d "$TREE" ] || python3 bench/gen-tree.py "$TREE" 400 1
if [ "${BENCH_BIG:-1}" = 1 ] && [ ! -d "$BIG" ]; then
    python3 bench/gen-tree.py "$BIG" 1074 2
fi

cargo build --quiet --release -p kiln-layer --example export_tree
TARGET_DIR=$(cargo metadata --format-version 1 --no-deps |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
KILN=$TARGET_DIR/release/examples/export_tree

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }

# Peer: one tar pass, sha256 of the tar and of the compressed stream, like kiln does.
peer() { # TREE COMPRESSOR...
    local tree=$1; shift
    rm -f "$OUT/fifo" && mkfifo "$OUT/fifo"
    sha256sum <"$OUT/fifo" >"$OUT/peer.diffid" &
    tar c -C "$tree" . | tee "$OUT/fifo" | "$@" | sha256sum >"$OUT/peer.digest"
    wait
}

# kiln: writes into a fresh store, records peak RSS and the blob size.
kiln() { # TREE COMPRESSION
    rm -rf "$OUT/store"
    /usr/bin/time -v "$KILN" "$1" "$2" "$OUT/store" >"$OUT/kiln.out" 2>"$OUT/kiln.time"
}

best=
measure() { # runs "$@" REPEAT times, sets $best to the fastest wall time
    best=
    for _ in $(seq "$REPEAT"); do
        local t0 t1 t
        t0=$(now); "$@"; t1=$(now); t=$(elapsed "$t0" "$t1")
        if [ -z "$best" ] || awk -v a="$t" -v b="$best" 'BEGIN { exit !(a < b) }'; then best=$t; fi
    done
}

rss_mib() { awk '/Maximum resident set size/ { printf "%.1f", $NF / 1024 }' "$OUT/kiln.time"; }
kiln_size() { awk '{ print $2 }' "$OUT/kiln.out"; }

echo "warming the page cache..."
BYTES=$(tar c -C "$TREE" . | wc -c)
tar c -C "$TREE" . | wc -c >/dev/null
MB=$(awk -v b="$BYTES" 'BEGIN { printf "%.1f", b / 1e6 }')
echo "tree: $TREE, tar stream $MB MB, $(nproc) CPUs"

declare -A SECS SIZE RSS
measure peer "$TREE" gzip -6;            SECS[pgz]=$best
SIZE[pgz]=$(tar c -C "$TREE" . | gzip -6 | wc -c)
measure kiln "$TREE" gzip;               SECS[kgz]=$best; SIZE[kgz]=$(kiln_size); RSS[kgz]=$(rss_mib)
DIGEST_GZ=$(awk '{ print $1 }' "$OUT/kiln.out")
if [ "$HAVE_ZSTD" = 1 ]; then
    measure peer "$TREE" zstd -q -3 -T2 -c; SECS[pzs]=$best
    SIZE[pzs]=$(tar c -C "$TREE" . | zstd -q -3 -T2 -c | wc -c)
fi
measure kiln "$TREE" zstd;               SECS[kzs]=$best; SIZE[kzs]=$(kiln_size); RSS[kzs]=$(rss_mib)
DIGEST_ZS=$(awk '{ print $1 }' "$OUT/kiln.out")

# Determinism spot check: the same tree on one thread must give the same blob.
same_on_one_thread() { # COMPRESSION EXPECTED_DIGEST
    rm -rf "$OUT/store"
    [ "$("$KILN" "$TREE" "$1" "$OUT/store" 1 | awk '{ print $1 }')" = "$2" ] && echo yes || echo NO
}
DET_GZ=$(same_on_one_thread gzip "$DIGEST_GZ")
DET_ZS=$(same_on_one_thread zstd "$DIGEST_ZS")

mbs() { awk -v b="$BYTES" -v s="$1" 'BEGIN { printf "%.0f", b / 1e6 / s }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2fx", b / a }'; }
row() { printf "%-40s %8s %8s %12s %9s %9s\n" "$@"; }

echo
row "case" "seconds" "MB/s" "out bytes" "vs peer" "peak MiB"
row "peer tar|tee sha256|gzip -6|sha256" "${SECS[pgz]}" "$(mbs "${SECS[pgz]}")" "${SIZE[pgz]}" "" ""
row "kiln gzip (level 1, parallel)" "${SECS[kgz]}" "$(mbs "${SECS[kgz]}")" "${SIZE[kgz]}" \
    "$(ratio "${SECS[kgz]}" "${SECS[pgz]}")" "${RSS[kgz]}"
if [ "$HAVE_ZSTD" = 1 ]; then
    row "peer tar|tee sha256|zstd -3 -T2|sha256" "${SECS[pzs]}" "$(mbs "${SECS[pzs]}")" "${SIZE[pzs]}" "" ""
    row "kiln zstd (level 3, mt)" "${SECS[kzs]}" "$(mbs "${SECS[kzs]}")" "${SIZE[kzs]}" \
        "$(ratio "${SECS[kzs]}" "${SECS[pzs]}")" "${RSS[kzs]}"
else
    row "kiln zstd (level 3, mt)" "${SECS[kzs]}" "$(mbs "${SECS[kzs]}")" "${SIZE[kzs]}" "n/a" "${RSS[kzs]}"
fi

if [ "${BENCH_BIG:-1}" = 1 ]; then
    BIG_BYTES=$(tar c -C "$BIG" . | wc -c)
    for c in gzip zstd; do
        kiln "$BIG" "$c"
        row "kiln $c, $(awk -v b="$BIG_BYTES" 'BEGIN { printf "%.2f", b / 2^30 }') GiB single layer" \
            "" "" "$(kiln_size)" "" "$(rss_mib)"
    done
fi
echo
echo "same blob with 1 thread: gzip $DET_GZ, zstd $DET_ZS"
echo "targets: gzip >= 4x peer (kiln's level 1, its output size beside gzip -6's), zstd >= 1.2x peer, peak RSS < 100 MiB"
python3 - "${SECS[pgz]}" "${SECS[kgz]}" "${SIZE[pgz]}" "${SIZE[kgz]}" "${SECS[pzs]:-0}" "${SECS[kzs]}" "$REPEAT" <<'PY'
import sys
sys.path.insert(0, "bench")
from summary import row
pgz, kgz, sgz_peer, sgz, pzs, kzs = map(float, sys.argv[1:7])
best = f"best of {sys.argv[7]}"
row(f"layer export gzip, peer/kiln (size {sgz / sgz_peer:.2f}x gzip -6's)", ">= 4x", f"{pgz / kgz:.2f}x", best, pgz / kgz >= 4)
if pzs:
    row("layer export zstd, peer/kiln", ">= 1.2x", f"{pzs / kzs:.2f}x", best, pzs / kzs >= 1.2)
PY
rm -rf "$OUT/store" "$OUT/fifo"
