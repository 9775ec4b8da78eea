# Shared by the benchmark scripts: `source bench/lib.sh` from the repository root.

# Builds kiln (release) and sets `kiln` to the binary.
release_kiln() {
  echo "building kiln (release)..." >&2
  cargo build -q --release -p kiln-cli --bin kiln
  kiln=$(cargo metadata --format-version 1 --no-deps |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/release/kiln
}

# Starts a throwaway `docker-registry` on a free 127.0.0.1 port, its config, storage and log
# under DIR; sets `reg` (host:port) and `reg_pid` (the caller stops it, by that PID).
start_registry() { # DIR
  local dir=$1 port
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  cat >"$dir/registry.yml" <<YML
version: 0.1
log: { level: error }
storage: { filesystem: { rootdirectory: $dir/registry } }
http: { addr: 127.0.0.1:$port }
YML
  /usr/bin/docker-registry serve "$dir/registry.yml" >"$dir/registry.log" 2>&1 &
  reg_pid=$!
  for _ in $(seq 50); do curl -fsS "http://127.0.0.1:$port/v2/" >/dev/null 2>&1 && break; sleep 0.2; done
  curl -fsS "http://127.0.0.1:$port/v2/" >/dev/null || { cat "$dir/registry.log" >&2; exit 1; }
  reg=127.0.0.1:$port
}

# Sets `ko` to $KO, else the ko on PATH, else ko $KO_VERSION `go install`ed into
# bench/out/bin (once).
ensure_ko() {
  ko=${KO:-$(command -v ko || true)}
  if [ -z "$ko" ]; then
    ko=$PWD/bench/out/bin/ko
    if [ ! -x "$ko" ] || [ "$("$ko" version)" != "$KO_VERSION" ]; then
      echo "installing ko $KO_VERSION with go install..." >&2
      GOFLAGS= GOBIN=$PWD/bench/out/bin go install "github.com/google/ko@$KO_VERSION"
    fi
  fi
}
