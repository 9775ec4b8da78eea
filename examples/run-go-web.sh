#!/usr/bin/env bash
# Builds tests/fixtures/go-web with kiln, pushes it to a throwaway registry on 127.0.0.1,
# then pulls it with podman, runs it as the image says, and calls it.
# Needs what `.ci/setup` installs. Everything it starts is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."

work=$(mktemp -d)
reg_pid=""
ctr=""
podman_args=(--root "$work/storage" --runroot "$work/run" --storage-driver vfs)
cleanup() {
  [ -n "$ctr" ] && podman "${podman_args[@]}" rm -f "$ctr" >/dev/null 2>&1 || true
  [ -n "$reg_pid" ] && kill "$reg_pid" 2>/dev/null || true
  podman "${podman_args[@]}" rmi -af >/dev/null 2>&1 || true
  rm -rf "$work" 2>/dev/null || true
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
port=$(free_port)
cat > "$work/registry.yml" <<YML
version: 0.1
log: { level: warn }
storage: { filesystem: { rootdirectory: $work/registry } }
http: { addr: 127.0.0.1:$port }
YML
docker-registry serve "$work/registry.yml" >"$work/registry.log" 2>&1 &
reg_pid=$!
for _ in $(seq 50); do curl -fsS "http://127.0.0.1:$port/v2/" >/dev/null 2>&1 && break; sleep 0.2; done

echo "==> building kiln (cargo shows its progress; the first build takes minutes)"
cargo build -p kiln-cli --bin kiln
# Where cargo put it: CARGO_TARGET_DIR, else ./target.
kiln="${CARGO_TARGET_DIR:-target}/debug/kiln"
image="127.0.0.1:$port/go-web:demo"
echo "==> kiln build $image --publish"
ref=$("$kiln" build "$image" --path tests/fixtures/go-web --publish --cache-dir "$work/cache")
echo "==> pushed $ref"

app_port=$(free_port)
podman "${podman_args[@]}" pull -q --tls-verify=false "$ref" >/dev/null
ctr=$(podman "${podman_args[@]}" run -d --network host -e PORT="$app_port" "$ref")
for _ in $(seq 50); do curl -fsS "http://127.0.0.1:$app_port/" >/dev/null 2>&1 && break; sleep 0.2; done
echo "==> GET /       $(curl -fsS "http://127.0.0.1:$app_port/")"
echo "==> GET /asset  $(curl -fsS "http://127.0.0.1:$app_port/asset")"
echo "==> GET /uid    $(curl -fsS "http://127.0.0.1:$app_port/uid")"
