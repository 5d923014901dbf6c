#!/usr/bin/env bash
# Make sure a Docker engine answers. Used by `make test`, `make demo`, `make bench` and .ci/run.
# On a machine with no running engine (our CI machines), as root on Debian/Ubuntu, it installs
# Debian's docker.io when dockerd is missing and starts dockerd in the background, coping with a
# stale pid file and containers left from an earlier session. Elsewhere it explains what to do.
set -euo pipefail

log() { printf 'engine-up: %s\n' "$*" >&2; }

engine_answers() { timeout 5 docker info >/dev/null 2>&1; }

if command -v docker >/dev/null 2>&1 && engine_answers; then
    exit 0
fi

if [[ $(id -u) -ne 0 ]]; then
    log "no Docker engine answers and this is not root: start Docker (Docker Desktop or 'sudo systemctl start docker') and run again"
    exit 1
fi

if ! command -v dockerd >/dev/null 2>&1; then
    if ! command -v apt-get >/dev/null 2>&1; then
        log "no Docker engine and no apt-get: install Docker for this system and run again"
        exit 1
    fi
    log "installing docker.io from the Debian archive"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq docker.io >/dev/null
fi
if ! command -v docker >/dev/null 2>&1; then
    log "dockerd is installed but no docker client is on PATH"
    exit 1
fi

# A killed session leaves a pid file whose process is gone; dockerd refuses to start over it.
for pidfile in /var/run/docker.pid /var/run/docker/containerd/containerd.pid; do
    if [[ -f $pidfile ]]; then
        pid=$(cat "$pidfile" 2>/dev/null || true)
        if [[ -z $pid ]] || ! kill -0 "$pid" 2>/dev/null; then
            log "removing stale $pidfile"
            rm -f "$pidfile"
        fi
    fi
done

# The pid file, not `pgrep dockerd`: another dockerd (the tests' second engine, tests/engine2.py)
# is not this engine.
running_pid=$(cat /var/run/docker.pid 2>/dev/null || true)
if [[ -z $running_pid ]] || ! kill -0 "$running_pid" 2>/dev/null; then
    log "starting dockerd in the background (log: /var/log/pgtopo-dockerd.log)"
    nohup dockerd >/var/log/pgtopo-dockerd.log 2>&1 </dev/null &
    disown || true
fi

for _ in $(seq 1 150); do
    if engine_answers; then
        log "engine is up"
        exit 0
    fi
    sleep 0.2
done
log "dockerd did not answer within 30 s; see /var/log/pgtopo-dockerd.log"
tail -20 /var/log/pgtopo-dockerd.log >&2 || true
exit 1
