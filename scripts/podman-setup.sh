#!/usr/bin/env bash
# Container engine for `make image`, tests/test_image.py and the kfp.local run
# (scripts/kfp_local_run.py) on machines without a Docker engine: podman with
# runc, as root, non-interactive, idempotent (a second run changes nothing).
#
#   sudo bash scripts/podman-setup.sh        # CI: .ci/run calls it
#
# What it does, each step skipped when already done:
#   1. apt-get install podman runc debootstrap (Debian bookworm packages).
#   2. /etc/containers/containers.conf (below: why each setting).
#   3. the base image localhost/model-garden-base (scripts/base-image.sh: a
#      debootstrap rootfs + this machine's Python 3.10; no registry pull).
#   4. podman's Docker-API socket, unix:///run/podman/podman.sock by default
#      (PODMAN_SOCKET=...), for the Docker SDK: kfp.local's DockerRunner and
#      any `docker -H` client.  Use it with
#        export DOCKER_HOST=unix:///run/podman/podman.sock
#
# Environment found on the development machines (Debian 12, kernel 6.18,
# cgroup v1 hybrid, no systemd as PID 1, ext4 root, no image registry
# reachable, package registries reached through a TLS-terminating proxy), and
# what podman 4.3.1 does there with its stock settings (each one tried):
#   - stock default_ulimits (nofile 1048576 and nproc from the host) are
#     refused: "runc create failed: ... error setting rlimits for ready
#     process: error setting rlimit type 7 [6 for nproc]: operation not
#     permitted: OCI permission denied".  Limits at or under the machine's hard
#     limits (ulimit -Hn: 20000 here) work.
#   - cgroup_manager = systemd (the stock value): "systemd not running on this
#     host, cannot use systemd cgroups manager": cgroupfs.  events_logger =
#     file for the same reason (no journald).
#   - runtime: Debian's podman does not pull in crun ("default OCI runtime
#     crun not found"); runc is installed and named explicitly.
#   - no registry: the base image is imported from a debootstrap rootfs, and
#     builds must not try to pull it (make image passes --pull=never).
set -euo pipefail

SOCKET="${PODMAN_SOCKET:-/run/podman/podman.sock}"
HERE="$(cd "$(dirname "$0")" && pwd)"
log() { echo "podman-setup: $*"; }

if [ "$(id -u)" != 0 ]; then
  echo "podman-setup: run as root (sudo bash $0)" >&2
  exit 1
fi

# 1. packages ---------------------------------------------------------------
need=()
for tool in podman runc debootstrap; do
  command -v "$tool" >/dev/null 2>&1 || need+=("$tool")
done
if [ ${#need[@]} -gt 0 ]; then
  log "installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q </dev/null
  # With Recommends (buildah, slirp4netns, uidmap, fuse-overlayfs, ...).
  apt-get install -y -q podman runc debootstrap </dev/null
else
  log "podman, runc, debootstrap present"
fi

# 2. configuration ----------------------------------------------------------
# default_ulimits: see the header; never above the machine's hard nofile limit.
nofile="$(ulimit -Hn)"
case "$nofile" in unlimited|'') nofile=20000 ;; esac
if [ "$nofile" -gt 20000 ]; then nofile=20000; fi
conf="$(cat <<EOF
# Written by model-garden scripts/podman-setup.sh (see its comments).
[containers]
default_ulimits = ["nofile=${nofile}:${nofile}", "nproc=32768:32768"]

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
EOF
)"
mkdir -p /etc/containers
if [ "$(cat /etc/containers/containers.conf 2>/dev/null)" != "$conf" ]; then
  if [ -f /etc/containers/containers.conf ] && ! grep -q "model-garden scripts/podman-setup.sh" /etc/containers/containers.conf; then
    cp /etc/containers/containers.conf "/etc/containers/containers.conf.bak.$(date +%s)"
  fi
  printf '%s\n' "$conf" > /etc/containers/containers.conf
  log "wrote /etc/containers/containers.conf"
fi
# Unqualified names (e.g. "python:3.10") must not prompt for a registry.
if [ ! -f /etc/containers/registries.conf.d/50-model-garden.conf ]; then
  mkdir -p /etc/containers/registries.conf.d
  printf '# model-garden: no short-name prompts (non-interactive CI)\nshort-name-mode = "permissive"\n' \
    > /etc/containers/registries.conf.d/50-model-garden.conf
fi

# 3. base image ---------------------------------------------------------------
bash "$HERE/base-image.sh"

# 4. Docker-API socket ---------------------------------------------------------
ping() { curl -fsS --max-time 5 --unix-socket "$SOCKET" http://d/_ping >/dev/null 2>&1; }
if ping; then
  log "Docker API already served at unix://$SOCKET"
else
  mkdir -p "$(dirname "$SOCKET")"
  rm -f "$SOCKET"
  # --time=0: never exit when idle. setsid+nohup: outlives this script and CI's
  # shell; its log is kept for diagnosis.
  setsid nohup podman system service --time=0 "unix://$SOCKET" \
    >/var/log/podman-service.log 2>&1 </dev/null &
  for _ in $(seq 1 50); do ping && break; sleep 0.2; done
  if ! ping; then
    echo "podman-setup: podman system service did not answer on $SOCKET:" >&2
    tail -20 /var/log/podman-service.log >&2 || true
    exit 1
  fi
  log "Docker API served at unix://$SOCKET (log: /var/log/podman-service.log)"
fi
log "ready: export DOCKER_HOST=unix://$SOCKET"
