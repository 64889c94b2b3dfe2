#!/usr/bin/env bash
# Builds the test bed's container images without a registry or a Docker engine, as OCI archives
# under ${SPILLWAY_CACHE:-~/.cache/spillway}/images, for the real node's containerd to import:
#   localhost/spillway/pause:1         the pods' sandbox, from tests/cluster/images/pause (build.sh)
#   localhost/spillway/base:bookworm   Debian bookworm (mmdebstrap) with the packages the tests run
#                                      in pods: python3, haproxy, redis-server, redis-sentinel
#   localhost/spillway/operator:dev    the repository's Dockerfile, built by buildah on that base
#   localhost/spillway/redis:8         Debian trixie (mmdebstrap) with its redis-server, redis-sentinel 8.0
#   localhost/spillway/valkey:8        Debian trixie (mmdebstrap) with its valkey-server, valkey-sentinel 8.1
#                                      (the session store's other images: bookworm's base has Redis 7.0)
#   localhost/spillway/haproxy:3       Debian trixie (mmdebstrap) with its haproxy 3.x: the balancer the
#                                      tests and the demo run (bookworm's base has HAProxy 2.6)
#   localhost/spillway/java:bookworm   Debian bookworm (mmdebstrap) with openjdk-17-jre-headless
#   localhost/spillway/session-app:dev examples/session-app's jar (its build.sh, Maven) on that
#                                      Java, as user 65532; it needs a writable /tmp (an emptyDir)
#   localhost/spillway/prometheus:dev  build.sh's Prometheus (Debian's leaves Kubernetes discovery
#                                      out) on the base, as user 65534: the demo's in-cluster
#                                      Prometheus (`make demo CLUSTER=current`)
# Idempotent: an archive is rebuilt only when its inputs changed (a hash of them is in its name).
# Prints NAME=ARCHIVE lines. `images.sh NAME...` builds only those (and what they build FROM), e.g.
# `images.sh base operator java session-app redis valkey`, which needs no Go build: tests/cluster/deps.sh
# runs that beside build.sh's Go builds.
set -euo pipefail
shopt -s inherit_errexit  # a build that fails inside $(...) stops the script too
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
CACHE=${SPILLWAY_CACHE:-$HOME/.cache/spillway}
OUT=$CACHE/images
# build.sh is idempotent: with its builds cached it only prints where they are. Only the parts
# the images need, and only for the images that need them: a cluster of one's own
# (make demo CLUSTER=current) needs no control plane.
go_part() { bash "$ROOT/tests/cluster/build.sh" "$1" | sed -n "s/^$2=//p"; }
SUITE=bookworm
PACKAGES=passwd,ca-certificates,python3,python3-venv,haproxy,redis-server,redis-sentinel
JAVA_PACKAGES=passwd,ca-certificates,openjdk-17-jre-headless
# The Debian archive this machine's apt uses (its sources, deb822 or one-line), without the
# trailing /debian; SPILLWAY_DEBIAN_MIRROR overrides it. Never a host written here.
apt_mirror() {
  { { grep -hE '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null || true; } | sed 's/^URIs:[[:space:]]*//' | tr ' ' '\n'
    { grep -hE '^deb[[:space:]]' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null || true; } \
      | sed -E 's/^deb[[:space:]]+(\[[^]]*\][[:space:]]+)?//' | cut -d' ' -f1; } \
    | grep -E '^https?://.*/debian/?$' | head -n 1 | sed -E 's#/debian/?$##' || true
}
MIRROR=${SPILLWAY_DEBIAN_MIRROR:-$(apt_mirror)}
[ -n "$MIRROR" ] || { echo "images.sh: no Debian archive in this machine's apt sources; set SPILLWAY_DEBIAN_MIRROR" >&2; exit 2; }
APP_UID=65532
mkdir -p "$OUT"
# buildah keeps its layers in the cache too, never in the system's container storage.
buildah() { command buildah --root "$CACHE/buildah/root" --runroot "$CACHE/buildah/run" --storage-driver vfs "$@"; }

hash_of() { cat "$@" | sha256sum | cut -c1-12; }

archive() {  # IMAGE ARCHIVE: push a built image as an OCI archive named after the image
  rm -f "$2.partial"
  buildah push -q "$1" "oci-archive:$2.partial:$1" >/dev/null
  mv "$2.partial" "$2"
}

build_pause() {
  local image=localhost/spillway/pause:1 sum out
  PAUSE_BIN=${PAUSE_BIN:-$(go_part pause PAUSE_BIN)}
  sum=$(hash_of "$PAUSE_BIN/pause")
  out=$OUT/pause-$sum.oci.tar
  if [ ! -f "$out" ]; then
    local ctr
    ctr=$(buildah from scratch)
    buildah copy -q "$ctr" "$PAUSE_BIN/pause" /pause >/dev/null
    buildah config --entrypoint '["/pause"]' --user 65535:65535 "$ctr"
    buildah commit -q --format oci --rm "$ctr" "$image" >/dev/null
    archive "$image" "$out"
  fi
  echo "PAUSE=$out"
}

debian_rootfs() {  # PACKAGES ROOTFS [MMDEBSTRAP OPTIONS...]: Debian ($SUITE) minbase as a tarball
  local packages=$1 rootfs=$2 suite=${DEBIAN_SUITE:-$SUITE}
  shift 2
  mmdebstrap --quiet --variant=minbase --include="$packages" \
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' "$@" \
    "$suite" "$rootfs" "deb $MIRROR/debian $suite main" "deb $MIRROR/debian $suite-updates main" \
    "deb $MIRROR/debian-security $suite-security main"
}

commit_rootfs() {  # IMAGE ROOTFS ARCHIVE CMD: a rootfs tarball as the only layer of IMAGE, then archived
  local ctr
  ctr=$(buildah from scratch)
  buildah add -q "$ctr" "$2" / >/dev/null
  buildah config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin --cmd "[\"$4\"]" "$ctr"
  buildah commit -q --format oci --rm "$ctr" "$1" >/dev/null
  rm -f "$2"
  archive "$1" "$3"
}

build_store() {  # NAME TAG PACKAGES: an image of Debian trixie's packages (the session store's, HAProxy 3)
  local name=$1 image=localhost/spillway/$1:$2 packages=$3 sum out
  sum=$( { echo "trixie $packages $MIRROR"; declare -f debian_rootfs commit_rootfs build_store; } | sha256sum | cut -c1-12)
  out=$OUT/$name-$sum.oci.tar
  if [ ! -f "$out" ]; then
    echo "building $image (mmdebstrap, trixie)" >&2
    local rootfs=$OUT/$name-$sum.rootfs.tar
    DEBIAN_SUITE=trixie debian_rootfs "$packages" "$rootfs"
    commit_rootfs "$image" "$rootfs" "$out" /bin/sh
  fi
  echo "$(echo "$name" | tr a-z- A-Z_)=$out"
}

build_base() {
  local image=localhost/spillway/base:$SUITE sum out
  sum=$(echo "$SUITE $PACKAGES $MIRROR" | sha256sum | cut -c1-12)
  out=$OUT/base-$sum.oci.tar
  if [ ! -f "$out" ]; then
    echo "building $image (mmdebstrap)" >&2
    local rootfs=$OUT/base-$sum.rootfs.tar
    debian_rootfs "$PACKAGES" "$rootfs"
    commit_rootfs "$image" "$rootfs" "$out" /bin/bash
  elif ! buildah inspect "$image" >/dev/null 2>&1; then
    buildah pull -q "oci-archive:$out" >/dev/null  # the operator image builds FROM it
  fi
  echo "BASE=$out"
}

build_operator() {
  local image=localhost/spillway/operator:dev sum out base_out=$1
  sum=$(cd "$ROOT" && { echo "$base_out"; cat Dockerfile .dockerignore pyproject.toml README.md requirements/*.lock;
                         find operator -type f -not -path '*/__pycache__/*' | LC_ALL=C sort | xargs cat; } \
        | sha256sum | cut -c1-12)
  out=$OUT/operator-$sum.oci.tar
  if [ ! -f "$out" ]; then
    echo "building $image (buildah, Dockerfile)" >&2
    # The build's pip reaches PyPI through this machine's network, which may re-sign TLS with a
    # CA only the host trusts: the host's bundle is mounted for the RUN steps, never copied in.
    buildah build -q --isolation chroot --network host --layers=false \
      -v /etc/ssl/certs/ca-certificates.crt:/etc/ssl/certs/ca-certificates.crt:ro \
      --build-arg BASE=localhost/spillway/base:$SUITE -f "$ROOT/Dockerfile" -t "$image" "$ROOT" >/dev/null
    archive "$image" "$out"
  fi
  echo "OPERATOR=$out"
}

build_java() {  # the session app's runtime; not printed: no pod runs it as it is
  local image=localhost/spillway/java:$SUITE sum out
  sum=$( { echo "$SUITE $JAVA_PACKAGES $MIRROR $APP_UID"; declare -f debian_rootfs commit_rootfs build_java; } | sha256sum | cut -c1-12)
  out=$OUT/java-$sum.oci.tar
  if [ ! -f "$out" ]; then
    echo "building $image (mmdebstrap)" >&2
    local rootfs=$OUT/java-$sum.rootfs.tar
    # The JRE's postinst links its man pages (update-alternatives) into the man directory that
    # the path-exclude leaves out. A named user for the app's UID: the JVM takes user.name and
    # user.home from its entry.
    debian_rootfs "$JAVA_PACKAGES" "$rootfs" --essential-hook='mkdir -p "$1/usr/share/man/man1"' \
      --customize-hook="chroot \"\$1\" groupadd --gid $APP_UID app" \
      --customize-hook="chroot \"\$1\" useradd --uid $APP_UID --gid $APP_UID --no-create-home --home-dir /tmp --shell /usr/sbin/nologin app"
    commit_rootfs "$image" "$rootfs" "$out" /bin/bash
  elif ! buildah inspect "$image" >/dev/null 2>&1; then
    buildah pull -q "oci-archive:$out" >/dev/null  # the session app's image builds FROM it
  fi
  echo "$out"
}

build_session_app() {
  local image=localhost/spillway/session-app:dev java_out=$1 jar sum out
  jar=$(bash "$ROOT/examples/session-app/build.sh" | sed -n 's/^SESSION_APP_JAR=//p')
  [ -f "$jar" ] || { echo "examples/session-app/build.sh named no jar" >&2; exit 1; }
  # The jar's name holds the hash of its sources.
  sum=$( { echo "$java_out $(basename "$jar")"; declare -f build_session_app; } | sha256sum | cut -c1-12)
  out=$OUT/session-app-$sum.oci.tar
  if [ ! -f "$out" ]; then
    echo "building $image (buildah)" >&2
    local ctr
    ctr=$(buildah from localhost/spillway/java:$SUITE)
    buildah copy -q --chmod 0644 "$ctr" "$jar" /app/session-app.jar >/dev/null
    # Beside the jar, Spring Boot's class data sharing layout: the jar extracted into /app/cds
    # (session-app.jar and lib/), and a class archive from one training start that stops once
    # the context is refreshed. Started from there (`java -XX:SharedArchiveFile=/app/cds/session-app.jsa
    # -jar /app/cds/session-app.jar`, as the demo's sample does), a replica reaches readiness on
    # about 40 % less CPU (2.8 against 4.8 CPU-seconds, measured on this machine), which counts
    # when several start at once on a busy node. The training uses the demo sample's JVM flags;
    # the archive maps under the defaults too. The entrypoint stays the plain jar.
    buildah run --isolation chroot "$ctr" -- sh -euc '
      java -Djarmode=tools -jar /app/session-app.jar extract --destination /app/cds
      cd /tmp
      JAVA_TOOL_OPTIONS="-XX:TieredStopAtLevel=1 -XX:+UseSerialGC -XX:ActiveProcessorCount=1 -Xss512k" \
        java -XX:ArchiveClassesAtExit=/app/cds/session-app.jsa -Dspring.context.exit=onRefresh \
          -Dspring.main.lazy-initialization=true -Dserver.port=0 -Dmanagement.server.port=0 -jar /app/cds/session-app.jar
      # The archive must map when the app starts from it: -Xshare:on refuses to start otherwise
      # (a class path or JVM mismatch), where the default would quietly start without it.
      JAVA_TOOL_OPTIONS="-XX:TieredStopAtLevel=1 -XX:+UseSerialGC -XX:ActiveProcessorCount=1 -Xss512k" \
        java -Xshare:on -XX:SharedArchiveFile=/app/cds/session-app.jsa -Dspring.context.exit=onRefresh \
          -Dspring.main.lazy-initialization=true -Dserver.port=0 -Dmanagement.server.port=0 -jar /app/cds/session-app.jar
      rm -rf /tmp/* /tmp/.[!.]* 2>/dev/null || true
      chmod -R a+rX /app
      test -s /app/cds/session-app.jsa' >/dev/null
    # Tomcat, Spring Boot and the JVM write only under java.io.tmpdir (/tmp): with a read-only
    # root filesystem, /tmp is an emptyDir.
    buildah config --cmd '[]' "$ctr"
    buildah config --user $APP_UID:$APP_UID --workingdir /tmp --env HOME=/tmp --port 8080 \
      --entrypoint '["java", "-XX:MaxRAMPercentage=75", "-XX:+ExitOnOutOfMemoryError", "-Djava.io.tmpdir=/tmp", "-jar", "/app/session-app.jar"]' \
      "$ctr"
    buildah commit -q --format oci --rm "$ctr" "$image" >/dev/null
    archive "$image" "$out"
  fi
  echo "SESSION_APP=$out"
}

build_prometheus() {  # BASE_ARCHIVE: the Prometheus binary on the base image
  local image=localhost/spillway/prometheus:dev base_out=$1 sum out
  PROMETHEUS_BIN=${PROMETHEUS_BIN:-$(go_part prometheus PROMETHEUS_BIN)}
  sum=$( { echo "$base_out"; declare -f build_prometheus; } | cat - "$PROMETHEUS_BIN/prometheus" | sha256sum | cut -c1-12)
  out=$OUT/prometheus-$sum.oci.tar
  if [ ! -f "$out" ]; then
    echo "building $image (buildah)" >&2
    local ctr
    ctr=$(buildah from localhost/spillway/base:$SUITE)
    buildah copy -q --chmod 0755 "$ctr" "$PROMETHEUS_BIN/prometheus" /usr/local/bin/prometheus >/dev/null
    buildah config --cmd '[]' --user 65534:65534 --workingdir /prometheus \
      --entrypoint '["/usr/local/bin/prometheus"]' --port 9090 "$ctr"
    buildah commit -q --format oci --rm "$ctr" "$image" >/dev/null
    archive "$image" "$out"
  fi
  echo "PROMETHEUS=$out"
}

for tool in buildah mmdebstrap; do
  command -v $tool >/dev/null || { echo "images.sh needs $tool (tests/integration/install-components.sh)" >&2; exit 2; }
done
ALL=(pause base operator java session-app redis valkey haproxy prometheus)
wanted=("$@")
[ ${#wanted[@]} -gt 0 ] || wanted=("${ALL[@]}")
for name in "${wanted[@]}"; do
  [[ " ${ALL[*]} " == *" $name "* ]] || { echo "images.sh: no image named '$name' (${ALL[*]})" >&2; exit 2; }
done
want() { [[ " ${wanted[*]} " == *" $1 "* ]]; }
if want pause; then build_pause; fi
if want base || want operator || want prometheus; then
  base_line=$(build_base)
  echo "$base_line"
fi
if want operator; then build_operator "${base_line#BASE=}"; fi
if want java || want session-app; then java_out=$(build_java); fi
if want session-app; then build_session_app "$java_out"; fi
if want redis; then build_store redis 8 redis-server,redis-sentinel; fi
if want valkey; then build_store valkey 8 valkey-server,valkey-sentinel; fi
if want haproxy; then build_store haproxy 3 haproxy; fi
if want prometheus; then build_prometheus "${base_line#BASE=}"; fi
# Only the newest archive of each image is kept.
for name in pause base operator java session-app redis valkey haproxy prometheus; do
  { ls -t "$OUT/$name"-*.oci.tar 2>/dev/null || true; } | tail -n +2 | xargs -r rm -f  # none yet: a partial build
done
# And only the tagged images in buildah's storage: each rebuild leaves the previous one untagged.
buildah rmi --prune >/dev/null 2>&1 || true
