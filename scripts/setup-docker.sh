#!/usr/bin/env bash
# Make a Docker engine answer on this (Debian) machine, for the docker sandbox backend:
#   - install docker.io and debootstrap when missing (debootstrap builds the base image
#     offline-from-registries: see `corral sandbox prepare docker`);
#   - start dockerd in the background when no engine answers, then wait until it does.
# Idempotent and silent when everything is already there. Root, or sudo, is needed.
# CORRAL_SKIP_DOCKER=1 skips it all (the docker tests then fail with a one-line reason).
set -euo pipefail
[ -n "${CORRAL_SKIP_DOCKER:-}" ] && exit 0
SUDO=""
[ "$(id -u)" = 0 ] || SUDO=sudo
LOG=/var/log/corral-dockerd.log

have() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || [ -x "/sbin/$1" ]; }
answers() { $SUDO docker version --format '{{.Server.Version}}' >/dev/null 2>&1; }

missing=""
have dockerd || missing="$missing docker.io"
have debootstrap || missing="$missing debootstrap"
if [ -n "$missing" ]; then
  echo "installing:$missing"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing >/dev/null
fi

answers && exit 0
if [ -d /run/systemd/system ]; then
  $SUDO systemctl start docker >/dev/null 2>&1 || true
fi
if ! answers; then
  echo "starting dockerd in the background (log: $LOG)"
  # Sandboxes use --network none, so the engine needs no bridge and no iptables rules.
  $SUDO bash -c "setsid nohup dockerd --iptables=false --ip6tables=false --bridge=none \
    >>$LOG 2>&1 </dev/null &"
fi
for _ in $(seq 1 300); do
  answers && exit 0
  sleep 0.2
done
echo "dockerd did not answer within 60 s; last lines of $LOG:" >&2
$SUDO tail -n 5 "$LOG" >&2 || true
exit 1
