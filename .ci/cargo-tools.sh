#!/usr/bin/env bash
# Installs the cargo subcommands CI and the fuzzers use, once per machine, from crates.io into
# the machine cache tests/tools/install.sh uses (outside the clone), keyed by version:
#
#   cargo-deny   licenses, bans and sources of kiln's dependency graph (`.ci/run` phase)
#   cargo-fuzz   the libFuzzer driver of fuzz/ (needs the nightly toolchain; not run by CI)
#
# Usage: cargo-tools.sh TOOL... Prints, per tool, the path of its binary. A tool already
# installed costs a stat; two processes installing at once wait for each other (flock).
#
# The cache: $KILN_E2E_CACHE, else ${XDG_CACHE_HOME:-$HOME/.cache}/kiln-e2e; tools in tools/.
set -euo pipefail

CARGO_DENY_VERSION=0.20.2
CARGO_FUZZ_VERSION=0.13.2

cache=${KILN_E2E_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kiln-e2e}
tools="$cache/tools"
mkdir -p "$tools"

for dir in "$HOME/.cargo/bin"; do
  case ":$PATH:" in *":$dir:"*) ;; *) [ -d "$dir" ] && PATH="$dir:$PATH" ;; esac
done

log() { printf '==> %s\n' "$*" >&2; }

# install CRATE VERSION: prints the crate's binary, `cargo install`ing it (its own lockfile,
# a private target dir) under an exclusive lock on first use.
install() {
  local crate=$1 version=$2 dir
  dir="$tools/$crate-$version"
  # Not `[ … ] || ( … )`: errexit is off on the left of `||`, so a failed build would go
  # unnoticed.
  if [ ! -x "$dir/bin/$crate" ]; then
    (
      flock 9
      if [ ! -x "$dir/bin/$crate" ]; then
        log "installing $crate $version from crates.io (once per machine; a few minutes)"
        # A fresh target dir: CARGO_TARGET_DIR from the caller would mix its build in.
        work=$(mktemp -d "$tools/.$crate-build.XXXXXX")
        trap "rm -rf '$work'" EXIT
        env -u CARGO_TARGET_DIR -u RUSTFLAGS cargo install --quiet --locked "$crate" \
          --version "$version" --root "$work/root" --target-dir "$work/target"
        mkdir -p "$dir/bin"
        mv "$work/root/bin/$crate" "$dir/bin/$crate"
      fi
    ) 9>"$dir.lock"
  fi
  echo "$dir/bin/$crate"
}

[ "$#" -gt 0 ] || { echo "usage: cargo-tools.sh cargo-deny|cargo-fuzz..." >&2; exit 2; }
for tool in "$@"; do
  case "$tool" in
    cargo-deny) install cargo-deny "$CARGO_DENY_VERSION" ;;
    cargo-fuzz) install cargo-fuzz "$CARGO_FUZZ_VERSION" ;;
    *) echo "cargo-tools.sh: unknown tool \`$tool\` (cargo-deny, cargo-fuzz)" >&2; exit 2 ;;
  esac
done
