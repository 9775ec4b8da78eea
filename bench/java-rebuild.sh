#!/usr/bin/env bash
# Java (Spring Boot) benchmark, tests/fixtures/java-spring on the java17 golden base:
#  1. rebuild after a one-line change, published to a local registry: kiln against Jib
#     (jib-maven-plugin 3.5.2, `mvn compile jib:build`) from the same base in that registry;
#  2. cold build from a clean copy with a warm Maven repository: kiln (fresh cache dir) against
#     `mvn -B -DskipTests package` alone;
#  3. compressed image sizes: kiln's image against base + gzip'd fat jar (distroless-style),
#     and against $DISTROLESS_JAVA17_REF + jar when that names an image skopeo can inspect.
#
#   bench/java-rebuild.sh          # RUNS=3 timed runs each, after WARMUP=1 untimed one
#   RUNS=5 KILN=/path/to/kiln DISTROLESS_JAVA17_REF=docker://... bench/java-rebuild.sh
#
# Targets: Jib/kiln > 1 on the rebuild; kiln at most 15% over `mvn package` cold.
# Every rebuild is a real change: before each run (untimed) the greeting gets a text no
# earlier run had (alternating two texts would let both tools find the layer already built
# and pushed), and every run's image digest must be new. One Maven local repository serves
# all: the one kiln keeps in its cache (<cache>/buildpacks/kiln-java/repository). Caches
# persist in bench/out/java-rebuild-cache (delete it for a cold start: the first run fetches
# the base's .debs from the apt sources and Maven's artifacts through mvn's own settings);
# the registry is fresh every run and stopped on exit. KILN: a kiln binary to use instead of
# `cargo build --release`.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
RUNS=${RUNS:-3}
WARMUP=${WARMUP:-1}
JIB=com.google.cloud.tools:jib-maven-plugin:3.5.2:build
out=$PWD/bench/out/java-rebuild
cache=$PWD/bench/out/java-rebuild-cache
rm -rf "$out" && mkdir -p "$out/docker" "$cache"

reg_pid=""
cleanup() { # stop the registry; keep only logs and reports (the caches stay)
  if [ -n "$reg_pid" ]; then kill "$reg_pid" 2>/dev/null || true; wait "$reg_pid" 2>/dev/null || true; fi
  rm -rf "$out/registry" "$out/cold-cache" "$out"/*-app "$out/spring"
}
trap cleanup EXIT

for tool in mvn java python3 curl skopeo gzip /usr/bin/docker-registry; do
  command -v "$tool" >/dev/null || { echo "missing \`$tool\` (run .ci/setup)" >&2; exit 1; }
done

kiln=${KILN:-}
if [ -z "$kiln" ]; then
  release_kiln
fi

start_registry "$out"
export DOCKER_CONFIG=$out/docker # no credentials, no helpers, for kiln, Jib and skopeo

# The java17 base from the committed lock: into a store of its own (copied into each cold
# kiln cache) and into the registry (the base of the rebuilds, kiln's and Jib's).
echo "building the java17 base..." >&2
for publish in "" "--publish=$reg/java17:1"; do
  "$kiln" base build golden-base/java17.toml --platform linux/amd64 --cache-dir "$cache/base" \
    $publish >>"$out/base.log" 2>&1 || { tail -30 "$out/base.log" >&2; exit 1; }
done
base=$reg/java17:1
m2=$cache/kiln/buildpacks/kiln-java/repository # kiln's own Maven repository, shared by all
mkdir -p "$m2"

greeting=src/main/java/dev/kiln/fixture/Greeting.java
for d in kiln-app jib-app spring; do cp -r tests/fixtures/java-spring "$out/$d"; done
grep -q "hello from kiln java" "$out/spring/$greeting" ||
  { echo "the fixture's greeting moved; update bench/java-rebuild.sh" >&2; exit 1; }
# Run before each rebuild, untimed: prints the digest Jib wrote last (Jib does not print it),
# then gives the greeting a text no earlier build had, so no layer can be found already built.
cat >"$out/edit.sh" <<'SH'
[ -z "${2:-}" ] || [ ! -f "$2" ] || echo "jib image $(cat "$2")"
sed -i "s/\"hello from kiln java[^\"]*\"/\"hello from kiln java $(date +%s%N)\"/" "$1"
SH
time_cmd() { # LABEL [--before SHELL]... -- COMMAND... -> "median min max"
  python3 bench/timeit.py "$RUNS" "$WARMUP" "$out/$1.log" "${@:2}"
}

echo "timing rebuilds after a one-line change: Jib, kiln ($WARMUP warm-up + $RUNS runs each)..." >&2
read -r jib_med jib_min jib_max < <(time_cmd jib \
  --before "bash '$out/edit.sh' '$out/jib-app/$greeting' '$out/jib-app/target/jib-image.digest'" -- \
  mvn -B -f "$out/jib-app/pom.xml" -Dmaven.repo.local="$m2" compile "$JIB" \
  -Dimage="$reg/jib-spring" -Djib.from.image="$base" -Djib.allowInsecureRegistries=true \
  -Djib.sendCredentialsOverHttp=true -Djib.disableUpdateChecks=true -Djib.console=plain \
  -Djib.baseImageCache="$cache/jib")
echo "jib image $(cat "$out/jib-app/target/jib-image.digest")" >>"$out/jib.log"
read -r kil_med kil_min kil_max < <(time_cmd kiln \
  --before "bash '$out/edit.sh' '$out/kiln-app/$greeting'" -- \
  "$kiln" build "$reg/kiln-spring:latest" --path "$out/kiln-app" --publish --run-image "$base" \
  --cache-dir "$cache/kiln" --report "$out/report.json" -q)

echo "timing cold builds: mvn package, kiln build ($WARMUP warm-up + $RUNS runs each)..." >&2
read -r mvn_med mvn_min mvn_max < <(time_cmd mvn \
  --before "rm -rf '$out/mvn-app' && cp -r tests/fixtures/java-spring '$out/mvn-app'" -- \
  mvn -B -DskipTests -f "$out/mvn-app/pom.xml" -Dmaven.repo.local="$m2" package)
# A fresh kiln cache each run: the base as `kiln base build` leaves it (its store and the
# SBOM catalogs of its layers) and the warm Maven repository, hardlinked in
# (a symlink out of the cache dir is outside what kiln's sandbox lets Maven read).
cold=$out/cold-cache
read -r kc_med kc_min kc_max < <(time_cmd kiln-cold --before "rm -rf '$cold' &&
  mkdir -p '$cold/buildpacks/kiln-java' && cp -r '$cache/base/oci' '$cold/oci' &&
  cp -r '$cache/base/sbom-v1' '$cold/sbom-v1' &&
  cp -al '$m2' '$cold/buildpacks/kiln-java/repository'" -- \
  "$kiln" build local/spring-cold:1 --path "$out/spring" --cache-dir "$cold" \
  --report "$out/cold-report.json" -q)

python3 - "$out" "$reg" "$RUNS" "$WARMUP" "${DISTROLESS_JAVA17_REF:-}" \
  "$jib_med" "$jib_min" "$jib_max" "$kil_med" "$kil_min" "$kil_max" \
  "$mvn_med" "$mvn_min" "$mvn_max" "$kc_med" "$kc_min" "$kc_max" <<'PY'
import glob, gzip, json, re, subprocess, sys
out, reg, runs, warmup, distroless = sys.argv[1:6]
jib, kiln, mvn, cold = (tuple(map(float, sys.argv[i:i + 3])) for i in (6, 9, 12, 15))

def skopeo_raw(ref):
    tls = ["--tls-verify=false"] if ref.startswith(f"docker://{reg}/") else []
    return json.loads(subprocess.run(["skopeo", "inspect", "--raw", *tls, ref],
                                     check=True, capture_output=True).stdout)

def size(ref):  # compressed bytes of the linux/amd64 image's layers
    m = skopeo_raw(ref)
    if "manifests" in m:
        d = next(d["digest"] for d in m["manifests"]
                 if d.get("platform", {}).get("architecture") == "amd64")
        m = skopeo_raw(re.sub(r"(@sha256:[0-9a-f]+|:[\w.-]+)?$", "@" + d, ref, count=1))
    return sum(l["size"] for l in m["layers"]), len(m["layers"])

def digests(log, pattern):  # image digests printed by every run, warm-ups included
    return re.findall(pattern, open(f"{out}/{log}").read())

def all_changed(ds):
    return len(ds) == len(set(ds)) == int(runs) + int(warmup)

row = lambda name, t: print(f"{name:<46} {t[0]:9.3f} {t[1]:7.3f} {t[2]:7.3f}")
mib = lambda b: f"{b / 2**20:7.1f} MiB"

print(f"\nSpring Boot rebuild after a one-line change (tests/fixtures/java-spring), published to {reg}")
print(f"base {reg}/java17:1 for both; median/min/max of {runs} runs after {warmup} warm-up")
print(f"{'command':<46} {'median s':>9} {'min':>7} {'max':>7}")
row("jib-maven-plugin 3.5.2: mvn compile jib:build", jib)
row("kiln build --publish", kiln)
r = json.load(open(f"{out}/report.json"))
t = r["timings"]
print("kiln phases, last run (ms): " + ", ".join(
    f"{k[:-3]} {t[k]}" for k in ("detect_ms", "build_ms", "export_ms", "push_ms", "total_ms")))
print(f"kiln layers reused, last run: " + ", ".join(
    f"{l['name']} {'yes' if l['reused'] else 'no'}" for l in r["layers"])
      + f"; uploaded {r['push']['uploaded_bytes']} bytes")
changed = all_changed(digests("kiln.log", r"@(sha256:[0-9a-f]{64})")) and all_changed(
    digests("jib.log", r"jib image (sha256:[0-9a-f]{64})"))
print(f"every run a new image (kiln and Jib): {'yes' if changed else 'NO'}")
print(f"kiln/jib: {kiln[0] / jib[0]:.2f}x (target <= 0.50x: {'met' if kiln[0] <= 0.5 * jib[0] else 'NOT met'})")
sys.path.insert(0, "bench")
from summary import row as summary
summary("Java one-line change, kiln/Jib", "<= 0.50x", f"{kiln[0] / jib[0]:.2f}x", f"{kiln[1] / jib[1]:.2f}x", kiln[0] <= 0.5 * jib[0])

print(f"\nCold build from a clean copy, warm Maven repository; kiln: fresh cache dir (base in its "
      f"store), image to its local store")
print(f"{'command':<46} {'median s':>9} {'min':>7} {'max':>7}")
row("mvn -B -DskipTests package", mvn)
row("kiln build (fresh cache)", cold)
t = json.load(open(f"{out}/cold-report.json"))["timings"]
print("kiln phases, last run (ms): " + ", ".join(
    f"{k[:-3]} {t[k]}" for k in ("detect_ms", "build_ms", "export_ms", "total_ms") if k in t))
over = (cold[0] / mvn[0] - 1) * 100
print(f"kiln over mvn package: {over:+.0f}% (target <= +10%: {'met' if over <= 10 else 'NOT met'})")
summary("Java cold build, kiln/mvn package", "<= 1.10x", f"{cold[0] / mvn[0]:.2f}x", f"{cold[1] / mvn[1]:.2f}x", over <= 10)

[jar] = glob.glob(f"{out}/mvn-app/target/*.jar")
jar_gz = len(gzip.compress(open(jar, "rb").read(), 6))
base, _ = size(f"docker://{reg}/java17:1")
print(f"\nCompressed image size (linux/amd64, layers only)")
rows = [("java17 base", base, ""),
        ("kiln image (base + layers.idx layers)", *size(f"docker://{reg}/kiln-spring:latest")),
        ("Jib image (same base)", *size(f"docker://{reg}/jib-spring:latest")),
        ("java17 base + gzip -6 fat jar (distroless-style)", base + jar_gz, "")]
if distroless:
    if "://" not in distroless and not distroless.startswith(("oci:", "oci-archive:", "dir:")):
        distroless = "docker://" + distroless
    d, _ = size(distroless)
    rows += [("DISTROLESS_JAVA17_REF + gzip -6 fat jar", d + jar_gz, "")]
for name, b, n in rows:
    print(f"{name:<50} {mib(b)}" + (f"  ({n} layers)" if n else ""))
print(f"fat jar {jar.rsplit('/', 1)[1]}: {mib(jar_gz).strip()} gzip'd"
      + (f"; DISTROLESS_JAVA17_REF={distroless}" if distroless else ""))
PY
