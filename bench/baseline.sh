#!/usr/bin/env bash
# The seed article's procedure as a plain sequential script: a primary and N streaming replicas
# on one Docker bridge network, written the way a careful person would (fast checkpoint for the
# base backups, polling instead of fixed sleeps), so bench/run.py can time pgtopo against it.
#
#   usage: bench/baseline.sh NAME N IMAGE
#
# Creates network NAME-net, volumes NAME-<node>-data and containers NAME-primary,
# NAME-replica1..N.  Every object carries the labels io.pgtopo.bench=1 and
# io.pgtopo.bench.run=NAME; nothing is published on the host.  Exits 0 once the primary's
# pg_stat_replication shows all N replicas streaming, leaving the cluster running (the caller
# removes it).  On any failure it removes what it created and exits non-zero.
#
#   remove by hand:
#     docker rm -f $(docker ps -aq --filter label=io.pgtopo.bench.run=NAME)
#     docker volume rm $(docker volume ls -q --filter label=io.pgtopo.bench.run=NAME)
#     docker network rm NAME-net
set -euo pipefail

if [ "$#" -ne 3 ]; then
    echo "usage: $0 NAME N IMAGE" >&2
    exit 2
fi
NAME=$1 N=$2 IMAGE=$3
case "$N" in ''|*[!0-9]*) echo "N must be a number" >&2; exit 2 ;; esac

NET="$NAME-net"
DATA=/var/lib/postgresql/data
PGDATA="$DATA/pgdata"
LABELS=(--label io.pgtopo.bench=1 --label "io.pgtopo.bench.run=$NAME")
SUPERUSER_PASSWORD=$(head -c 18 /dev/urandom | base64 | tr '+/' '-_')
REPLICATION_PASSWORD=$(head -c 18 /dev/urandom | base64 | tr '+/' '-_')

cleanup() {
    docker ps -aq --filter "label=io.pgtopo.bench.run=$NAME" | xargs -r docker rm -f >/dev/null 2>&1 || true
    docker volume ls -q --filter "label=io.pgtopo.bench.run=$NAME" | xargs -r docker volume rm >/dev/null 2>&1 || true
    docker network ls -q --filter "label=io.pgtopo.bench.run=$NAME" | xargs -r docker network rm >/dev/null 2>&1 || true
}
trap 'status=$?; if [ "$status" -ne 0 ]; then echo "baseline failed; removing $NAME" >&2; cleanup; fi' EXIT

psql_primary() {
    docker exec "$NAME-primary" psql -U postgres -v ON_ERROR_STOP=1 -Atc "$1"
}

# 1. network and one volume per node (the image must be local: this never pulls)
docker image inspect "$IMAGE" >/dev/null
docker network create "${LABELS[@]}" "$NET" >/dev/null
docker volume create "${LABELS[@]}" "$NAME-primary-data" >/dev/null
for i in $(seq 1 "$N"); do
    docker volume create "${LABELS[@]}" "$NAME-replica$i-data" >/dev/null
done

# 2. initdb in a one-shot container (the password file comes on stdin, never on a command line)
printf '%s' "$SUPERUSER_PASSWORD" | docker run --pull never --rm -i "${LABELS[@]}" --user postgres \
    -v "$NAME-primary-data:$DATA" "$IMAGE" \
    sh -c 'cat > /tmp/pwfile && initdb -D "$1" --auth-local=trust --auth-host=scram-sha-256 \
           --username=postgres --pwfile=/tmp/pwfile >/dev/null' initdb "$PGDATA"

# 3. the primary
docker run --pull never -d "${LABELS[@]}" --name "$NAME-primary" --network "$NET" --network-alias primary \
    --user postgres -v "$NAME-primary-data:$DATA" "$IMAGE" \
    postgres -D "$PGDATA" -c listen_addresses='*' >/dev/null
until psql_primary 'SELECT 1' >/dev/null 2>&1; do sleep 0.1; done

# 4. replication role and its pg_hba line, then reload
psql_primary "SET password_encryption = 'scram-sha-256';
              CREATE ROLE repuser WITH REPLICATION LOGIN PASSWORD '$REPLICATION_PASSWORD'" >/dev/null
docker exec "$NAME-primary" sh -c \
    'echo "host replication repuser samenet scram-sha-256" >> "$1/pg_hba.conf"' hba "$PGDATA"
psql_primary 'SELECT pg_reload_conf()' >/dev/null

# 5. each replica in turn: base backup in a one-shot container, then the server
for i in $(seq 1 "$N"); do
    node="replica$i"
    printf '%s' "$REPLICATION_PASSWORD" | docker run --pull never --rm -i "${LABELS[@]}" --user postgres \
        --network "$NET" -v "$NAME-$node-data:$DATA" "$IMAGE" \
        sh -c 'PGPASSWORD=$(cat) exec pg_basebackup -h primary -U repuser -D "$1" -X stream -R \
               -c fast -d "application_name=$2"' basebackup "$PGDATA" "$node"
    docker run --pull never -d "${LABELS[@]}" --name "$NAME-$node" --network "$NET" --network-alias "$node" \
        --user postgres -v "$NAME-$node-data:$DATA" "$IMAGE" \
        postgres -D "$PGDATA" -c listen_addresses='*' >/dev/null
done

# 6. wait until every replica streams
until [ "$(psql_primary "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'")" = "$N" ]; do
    sleep 0.1
done
echo "$NAME: primary + $N replica(s) streaming"
