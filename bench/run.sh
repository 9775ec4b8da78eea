#!/usr/bin/env bash
# Runs kiln's benchmarks and prints a table for each (see bench/README.md).
#
#   bench/run.sh          # all of them
#   bench/run.sh layer    # layer export: kiln's one-pass tar/hash/compress vs a shell pipeline
#   bench/run.sh go       # Go app rebuild, nothing changed, published: kiln vs ko vs go build
#   bench/run.sh base     # java17 base build from a warm .deb cache vs dpkg-deb|gzip|sha256sum
#   bench/run.sh java     # Spring Boot: one-line-change rebuild vs Jib, cold build vs mvn package, sizes
#   bench/run.sh node     # Express: cold build vs npm ci + npm prune, one-line-change rebuild vs cold
#   bench/run.sh scale    # Express + generated assets at 1x/4x/16x: no-op and one-line-change publish
#   bench/run.sh rebase   # one app image between two bases, registry-side: kiln vs crane rebase
#   bench/run.sh pod      # Spring Boot in a locked-down pod: second build with --cache-image vs cold
#   bench/run.sh supply   # Express rebuild: with SBOMs + provenance + signature vs without
#   bench/run.sh multi    # Go, Java, Node for amd64 + arm64 vs amd64 alone; Go vs ko for both
#
# Environment knobs are the scripts' own: BENCH_BIG, BENCH_REPEAT (layer); RUNS, WARMUP,
# KO, KO_VERSION (go); RUNS (base); RUNS, WARMUP, KILN, DISTROLESS_JAVA17_REF (java);
# RUNS, WARMUP (node); RUNS, SCALES (scale); RUNS, WARMUP, CRANE, CRANE_VERSION (rebase); RUNS (pod); RUNS, WARMUP (supply);
# RUNS, WARMUP, KO, KO_VERSION (multi).
# Scratch goes to bench/out (gitignored).
set -euo pipefail
cd "$(dirname "$0")"
what=${1:-all}
case $what in
  all)
    export BENCH_SUMMARY=$PWD/out/summary.tsv
    mkdir -p out && : >"$BENCH_SUMMARY"
    for b in layer-export go-rebuild base-build java-rebuild node-build node-scale rebase pod-cache supply-chain multi-platform; do
      bash "./$b.sh"; echo
    done
    python3 ./summary.py print "$BENCH_SUMMARY" ;;
  layer) bash ./layer-export.sh ;;
  go) bash ./go-rebuild.sh ;;
  base) bash ./base-build.sh ;;
  java) bash ./java-rebuild.sh ;;
  node) bash ./node-build.sh ;;
  scale) bash ./node-scale.sh ;;
  rebase) bash ./rebase.sh ;;
  pod) bash ./pod-cache.sh ;;
  supply) bash ./supply-chain.sh ;;
  multi) bash ./multi-platform.sh ;;
  *) echo "usage: bench/run.sh [all|layer|go|base|java|node|scale|rebase|pod|supply|multi]" >&2; exit 2 ;;
esac
