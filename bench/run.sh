#!/usr/bin/env bash
# Runs kiln's benchmarks and prints a table for each (see bench/README.md).
#
#   bench/run.sh          # all of them
#   bench/run.sh layer    # layer export: kiln's one-pass tar/hash/compress vs a shell pipeline
#   bench/run.sh go       # Go app rebuild, nothing changed, published: kiln vs ko vs go build
#   bench/run.sh base     # java17 base build from a warm .deb cache vs dpkg-deb|gzip|sha256sum
#   bench/run.sh java     # Spring Boot: one-line-change rebuild vs Jib, cold build vs mvn package, sizes
#   bench/run.sh node     # Express: cold build vs npm ci + npm prune, one-line-change rebuild vs cold
#   bench/run.sh rebase   # one app image between two bases, registry-side: kiln vs crane rebase
#   bench/run.sh pod      # Spring Boot in a locked-down pod: second build with --cache-image vs cold
#   bench/run.sh supply   # Express rebuild: with SBOMs + provenance + signature vs without
#
# Environment knobs are the scripts' own: BENCH_BIG, BENCH_REPEAT (layer); RUNS, WARMUP,
# KO, KO_VERSION (go); RUNS (base); RUNS, WARMUP, KILN, DISTROLESS_JAVA17_REF (java);
# RUNS, WARMUP (node); RUNS, WARMUP, CRANE, CRANE_VERSION (rebase); RUNS (pod); RUNS, WARMUP (supply).
# Scratch goes to bench/out (gitignored).
set -euo pipefail
cd "$(dirname "$0")"
what=${1:-all}
case $what in
  all) bash ./layer-export.sh; echo; bash ./go-rebuild.sh; echo; bash ./base-build.sh; echo; bash ./java-rebuild.sh; echo; bash ./node-build.sh; echo; bash ./rebase.sh; echo; bash ./pod-cache.sh; echo; bash ./supply-chain.sh ;;
  layer) bash ./layer-export.sh ;;
  go) bash ./go-rebuild.sh ;;
  base) bash ./base-build.sh ;;
  java) bash ./java-rebuild.sh ;;
  node) bash ./node-build.sh ;;
  rebase) bash ./rebase.sh ;;
  pod) bash ./pod-cache.sh ;;
  supply) bash ./supply-chain.sh ;;
  *) echo "usage: bench/run.sh [all|layer|go|base|java|node|rebase|pod|supply]" >&2; exit 2 ;;
esac
