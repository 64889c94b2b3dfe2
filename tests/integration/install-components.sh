#!/usr/bin/env bash
# Installs the real components the integration tests run, from Debian's packages: Prometheus,
# HAProxy, Redis and redis-sentinel on loopback; for the real node runc, the CNI plugins
# (bridge, host-local, loopback, portmap), iptables and conntrack for kube-proxy; mmdebstrap and
# buildah for the images. Idempotent: does nothing when all are present.
# The packages' own services are not started (the tests start their own processes).
set -euo pipefail
need=()
command -v prometheus >/dev/null || need+=(prometheus)
command -v haproxy >/dev/null || need+=(haproxy)
command -v redis-server >/dev/null || need+=(redis-server)
command -v redis-sentinel >/dev/null || need+=(redis-sentinel)
# SPILLWAY_NODE_PARTS=0 (tests/e2e on kind, whose nodes bring their own) skips the node's parts.
if [ "${SPILLWAY_NODE_PARTS:-1}" = 1 ]; then
  [ -x /usr/sbin/runc ] || need+=(runc)
  [ -x /usr/lib/cni/bridge ] || need+=(containernetworking-plugins)
  [ -x /usr/sbin/iptables ] || need+=(iptables)
  [ -x /usr/sbin/conntrack ] || need+=(conntrack)
fi
command -v mmdebstrap >/dev/null || need+=(mmdebstrap)
[ -f /usr/share/keyrings/debian-archive-keyring.gpg ] || need+=(debian-archive-keyring)
command -v buildah >/dev/null || need+=(buildah)
[ ${#need[@]} -eq 0 ] && exit 0
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
# Keep package scripts from starting daemons: the tests own every process they run.
policy=/usr/sbin/policy-rc.d
created=0
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null && $SUDO chmod +x "$policy" && created=1
fi
trap '[ $created -eq 1 ] && $SUDO rm -f "$policy"' EXIT
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
echo "installed: ${need[*]}"
