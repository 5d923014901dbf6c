#!/usr/bin/env bash
# Make sure the PostgreSQL images the tests use exist: PGTOPO_TEST_IMAGE when set (never pulled),
# else pgtopo-local/postgres:13, :15, :17 and :18, built without a registry (in parallel, cached by tag);
# pgtopo-local/pgbouncer:1 unless PGTOPO_POOLER_IMAGE names one;
# and Debian's docker-registry, for the pull tests.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

if [[ -n ${PGTOPO_TEST_IMAGE:-} ]]; then
    if ! docker image inspect "$PGTOPO_TEST_IMAGE" >/dev/null 2>&1; then
        echo "images: PGTOPO_TEST_IMAGE=$PGTOPO_TEST_IMAGE is not present locally; build or pull it first" >&2
        exit 1
    fi
    exit 0
fi

# The builds run in parallel: install debootstrap once first, so two apt-gets never race for
# apt's lock on a fresh machine (one build failed that way).
missing=0
for major in ${PGTOPO_TEST_MAJORS:-13 15 17 18}; do
    docker image inspect "pgtopo-local/postgres:$major" >/dev/null 2>&1 || missing=1
done
if [[ -z ${PGTOPO_POOLER_IMAGE:-} ]]; then
    docker image inspect pgtopo-local/pgbouncer:1 >/dev/null 2>&1 || missing=1
fi
if [[ $missing -eq 1 ]] && ! command -v debootstrap >/dev/null 2>&1 && [[ $(id -u) -eq 0 ]] \
        && command -v apt-get >/dev/null 2>&1; then
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
fi

# The registry the pull tests push to and pull from on 127.0.0.1 (tests/integration/test_pull.py):
# Debian's docker-registry. Installed only; the tests start and stop their own.
if ! command -v docker-registry >/dev/null 2>&1 && [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-registry >/dev/null \
        || { DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
             DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-registry >/dev/null; }
fi

pids=()
for major in ${PGTOPO_TEST_MAJORS:-13 15 17 18}; do
    bash "$here/build-image.sh" "$major" &
    pids+=($!)
done
# The pooler's image (PgBouncer from Debian trixie), unless the tests are given one
if [[ -z ${PGTOPO_POOLER_IMAGE:-} ]]; then
    bash "$here/build-pooler-image.sh" &
    pids+=($!)
fi
status=0
for pid in "${pids[@]}"; do
    wait "$pid" || status=1
done
exit $status
