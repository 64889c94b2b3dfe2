#!/usr/bin/env bash
# Builds the session app's jar from Maven Central, outside the repository:
#   ${SPILLWAY_CACHE:-~/.cache/spillway}/apps/session-app-<hash of the sources>.jar
# Installs Debian's openjdk-17-jdk-headless and maven when missing; Maven's repository is
# <cache>/m2. Idempotent: a jar whose sources have not changed is reused (a warm run takes well
# under a second), and only the newest jar is kept. Prints SESSION_APP_JAR=<path> and
# SESSION_APP_JAVA=<the Java 17 that runs it>.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
CACHE=${SPILLWAY_CACHE:-$HOME/.cache/spillway}
OUT=$CACHE/apps
mkdir -p "$OUT"

# The jar's name holds a hash of everything that goes into it, this script included.
sum=$(cd "$HERE" && { cat build.sh pom.xml; find src -type f | LC_ALL=C sort | while read -r f; do
        echo "$f"; cat "$f"; done; } | sha256sum | cut -c1-12)
jar=$OUT/session-app-$sum.jar
# Java 17 whatever the machine's default java is.
JAVA_HOME=/usr/lib/jvm/java-17-openjdk-$(dpkg --print-architecture)
export JAVA_HOME
report() { echo "SESSION_APP_JAR=$jar"; echo "SESSION_APP_JAVA=$JAVA_HOME/bin/java"; }
if [ -f "$jar" ] && [ -x "$JAVA_HOME/bin/java" ]; then
  report
  exit 0
fi

need=()
[ -x "$JAVA_HOME/bin/javac" ] || need+=(openjdk-17-jdk-headless)
command -v mvn >/dev/null || need+=(maven)
if [ ${#need[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  echo "installed: ${need[*]}" >&2
fi

# One build at a time per cache; the sources are copied so that target/ never lands in the repo.
exec 9>"$OUT/.build.lock"
flock 9
if [ ! -f "$jar" ]; then
  echo "building the session app (maven)" >&2
  # Maven reaches Maven Central through this machine's network; Debian's ca-certificates-java
  # keeps the JDK's trust store in step with /etc/ssl/certs, so a CA the host trusts is trusted.
  work=$(mktemp -d "$OUT/build-$sum.XXXXXX")
  trap 'rm -rf "$work"' EXIT
  cp -r "$HERE/pom.xml" "$HERE/src" "$work/"
  if ! mvn -B -ntp -f "$work/pom.xml" -Dmaven.repo.local="$CACHE/m2" -DskipTests package >"$work/maven.log" 2>&1; then
    tail -n 60 "$work/maven.log" >&2
    exit 1
  fi
  mv "$work/target/session-app.jar" "$jar.partial"
  mv "$jar.partial" "$jar"
  ls -t "$OUT"/session-app-*.jar | tail -n +2 | xargs -r rm -f
fi
report
