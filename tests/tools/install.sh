#!/usr/bin/env bash
# Installs the outside tools the e2e tests check kiln's output with, once per machine, into a
# cache outside the clone, keyed by version (and, for policy-pull, by its source):
#
#   syft             Anchore's SBOM scanner, built with `go install` from the Go module proxy
#   policy-pull      podman's pull path (upstream containers/image) with a policy.json
#   sbom-validators  a virtualenv with SPDX's and CycloneDX's reference validators (PyPI)
#
# Usage: install.sh TOOL...|all. Prints, per tool, the path tests run (a binary, or the
# virtualenv's python). A tool already installed costs a stat; two processes installing at
# once wait for each other (flock). `.ci/setup` runs `install.sh all`; the e2e harness runs
# `install.sh TOOL` for a tool it does not find, so a machine without the cache still works.
#
# The cache: $KILN_E2E_CACHE, else ${XDG_CACHE_HOME:-$HOME/.cache}/kiln-e2e; tools in tools/.
set -euo pipefail

SYFT_VERSION=v1.57.0
# Modules syft's go.mod names at versions the Go module proxy here refuses, pinned to ones it
# serves (the same API for what syft uses). `go install pkg@version` ignores replacements,
# so syft is installed from a small wrapper module that holds them.
SYFT_REPLACE=(
  "github.com/github/go-spdx/v2 v2.3.3"
  "github.com/docker/cli v29.9.3+incompatible"
)
SBOM_REQUIREMENTS=(
  "spdx-tools==0.8.5"
  "cyclonedx-python-lib[json-validation]==11.12.0"
)

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cache=${KILN_E2E_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kiln-e2e}
tools="$cache/tools"
mkdir -p "$tools"

for dir in "$HOME/.cargo/bin" /usr/local/go/bin; do
  case ":$PATH:" in *":$dir:"*) ;; *) [ -d "$dir" ] && PATH="$dir:$PATH" ;; esac
done

log() { printf '==> %s\n' "$*" >&2; }

# locked DIR CMD...: runs CMD under an exclusive lock of DIR's lock file.
locked() {
  local lock="$1.lock"
  shift
  (
    flock 9
    "$@"
  ) 9>"$lock"
}

# Go builds: no cgo, the local toolchain, and (no go.sum is committed) the hashes the go
# command checks recorded as it goes.
go_env() {
  env CGO_ENABLED=0 GOTOOLCHAIN=local GOFLAGS="-mod=mod -buildvcs=false" "$@"
}

build_syft() {
  local dir=$1 work module version
  [ -x "$dir/bin/syft" ] && return
  work=$(mktemp -d "$tools/.syft-build.XXXXXX")
  # Runs when the lock's subshell ends, a failed build included.
  trap "rm -rf '$work'" EXIT
  {
    printf 'module kiln.invalid/tools/syft\n\ngo 1.25\n\nrequire github.com/anchore/syft %s\n' "$SYFT_VERSION"
    for r in "${SYFT_REPLACE[@]}"; do
      read -r module version <<<"$r"
      printf '\nreplace %s => %s %s\n' "$module" "$module" "$version"
    done
  } >"$work/go.mod"
  log "building syft $SYFT_VERSION (once per machine; a few minutes)"
  (cd "$work" && go_env GOBIN="$work/bin" go install -trimpath \
    -ldflags="-s -w -X main.version=$SYFT_VERSION" github.com/anchore/syft/cmd/syft)
  mkdir -p "$dir/bin"
  mv "$work/bin/syft" "$dir/bin/syft"
}

syft() {
  local dir="$tools/syft-$SYFT_VERSION"
  # Not `[ … ] || locked …`: errexit is off on the left of `||`, so a failed build would
  # go unnoticed.
  if [ ! -x "$dir/bin/syft" ]; then locked "$dir" build_syft "$dir"; fi
  echo "$dir/bin/syft"
}

build_policy_pull() {
  local dir=$1 work
  [ -x "$dir/policy-pull" ] && return
  work=$(mktemp -d "$tools/.policy-pull-build.XXXXXX")
  trap "rm -rf '$work'" EXIT
  cp "$here/policy-pull/go.mod" "$here/policy-pull/main.go" "$work/"
  log "building policy-pull (containers/image from the Go module proxy; once per machine)"
  # Pure Go: no gpgme, btrfs or devicemapper headers needed.
  (cd "$work" && go_env go build -trimpath -ldflags="-s -w" \
    -tags=containers_image_openpgp,exclude_graphdriver_btrfs,exclude_graphdriver_devicemapper \
    -o policy-pull .)
  mkdir -p "$dir"
  mv "$work/policy-pull" "$dir/policy-pull"
}

policy_pull() {
  local key dir
  key=$(cat "$here/policy-pull/go.mod" "$here/policy-pull/main.go" | sha256sum | cut -c1-16)
  dir="$tools/policy-pull-$key"
  if [ ! -x "$dir/policy-pull" ]; then locked "$dir" build_policy_pull "$dir"; fi
  echo "$dir/policy-pull"
}

build_sbom_validators() {
  local dir=$1
  [ -f "$dir/ready" ] && return
  rm -rf "$dir"
  log "installing ${SBOM_REQUIREMENTS[*]} into a virtualenv (once per machine)"
  python3 -m venv "$dir"
  "$dir/bin/python" -m pip install --quiet --disable-pip-version-check "${SBOM_REQUIREMENTS[@]}"
  touch "$dir/ready"
}

sbom_validators() {
  local key dir
  key=$(printf '%s\n' "${SBOM_REQUIREMENTS[@]}" | sha256sum | cut -c1-16)
  dir="$tools/py-$key"
  if [ ! -f "$dir/ready" ]; then locked "$dir" build_sbom_validators "$dir"; fi
  echo "$dir/bin/python"
}

[ "$#" -gt 0 ] || set -- all
for tool in "$@"; do
  case "$tool" in
    syft) syft ;;
    policy-pull) policy_pull ;;
    sbom-validators) sbom_validators ;;
    all) syft; policy_pull; sbom_validators ;;
    *) echo "install.sh: unknown tool \`$tool\` (syft, policy-pull, sbom-validators, all)" >&2; exit 2 ;;
  esac
done
