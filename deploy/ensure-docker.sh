#!/usr/bin/env bash
# Makes sure a Docker daemon answers: installs Debian's docker.io, docker-compose and mmdebstrap if missing
# (as root), and starts `dockerd` in the background if none is running.
# Prints "dockerd-started PID" when it started one (the caller may stop it: kill PID), "dockerd-running" otherwise.
# Exit 0: a daemon answers; exit 2: none can run here (the reason is on stderr).
set -uo pipefail
LOG=${MEMDB_DOCKERD_LOG:-/var/log/memdb-dockerd.log}

need=()
command -v docker >/dev/null || need+=(docker.io)
command -v dockerd >/dev/null || need+=(docker.io)
command -v docker-compose >/dev/null || docker compose version >/dev/null 2>&1 || need+=(docker-compose)
command -v mmdebstrap >/dev/null || need+=(mmdebstrap)
if ((${#need[@]})); then
  if [[ $(id -u) != 0 ]]; then
    echo "missing ${need[*]} and not root: cannot apt-get install them" >&2; exit 2
  fi
  echo "installing ${need[*]} ..." >&2
  if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"; } >/tmp/memdb-apt.log 2>&1; then
    echo "apt-get install ${need[*]} failed:" >&2; tail -5 /tmp/memdb-apt.log >&2; exit 2
  fi
fi

if docker info >/dev/null 2>&1; then echo "dockerd-running"; exit 0; fi
if [[ $(id -u) != 0 ]]; then echo "no Docker daemon answers and not root: cannot start dockerd" >&2; exit 2; fi
if [[ -S /var/run/docker.sock ]] && pgrep -x dockerd >/dev/null; then
  echo "a dockerd is running but does not answer" >&2; exit 2
fi
setsid dockerd >>"$LOG" 2>&1 < /dev/null &
pid=$!
for _ in $(seq 1 150); do
  if docker info >/dev/null 2>&1; then echo "dockerd-started $pid"; exit 0; fi
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "dockerd exited at start: $(tail -3 "$LOG" | tr '\n' ' ')" >&2; exit 2
  fi
  sleep 0.2
done
kill "$pid" 2>/dev/null
echo "dockerd did not answer within 30 s: $(tail -3 "$LOG" | tr '\n' ' ')" >&2
exit 2
