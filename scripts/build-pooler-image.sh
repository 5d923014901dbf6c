#!/usr/bin/env bash
# Build the local PgBouncer image without any container registry: debootstrap a minimal Debian
# trixie with its `pgbouncer` package (1.24), `docker import` it, then a tiny `docker build` for
# USER/ENTRYPOINT.  The pooler needs only `pgbouncer` on PATH and an unprivileged user (docs/pooler.md).
# Usage: scripts/build-pooler-image.sh -> image pgtopo-local/pgbouncer:1
# Cached by tag: an image that already exists is not rebuilt (FORCE=1 rebuilds).
set -euo pipefail

suite=trixie
tag="pgtopo-local/pgbouncer:1"
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}

if [[ -z ${FORCE:-} ]] && docker image inspect "$tag" >/dev/null 2>&1; then
    echo "build-pooler-image: $tag present (cached)" >&2
    exit 0
fi
if ! command -v debootstrap >/dev/null 2>&1; then
    if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null 2>&1; then
        echo "build-pooler-image: debootstrap is missing; install it (Debian/Ubuntu: apt-get install debootstrap) or set PGTOPO_POOLER_IMAGE to an image with pgbouncer" >&2
        exit 1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
fi
if [[ ! -e /usr/share/debootstrap/scripts/$suite ]]; then
    ln -s sid "/usr/share/debootstrap/scripts/$suite"
fi

work=$(mktemp -d /var/tmp/pgtopo-pooler-image.XXXXXX)
trap 'rm -rf "$work"' EXIT
rootfs=$work/rootfs
echo "build-pooler-image: debootstrap $suite with pgbouncer (about a minute)" >&2
started=$SECONDS
if ! debootstrap --variant=minbase --include=pgbouncer "$suite" "$rootfs" "$mirror" \
        >"$work/debootstrap.log" 2>&1; then
    tail -30 "$work/debootstrap.log" >&2
    echo "build-pooler-image: debootstrap failed (log above)" >&2
    exit 1
fi
# The package's own config and service files are not used: pgtopo writes the config into the container.
rm -rf "$rootfs"/etc/pgbouncer/* "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
install -d -m 0750 "$rootfs/etc/pgbouncer"
chroot "$rootfs" chown postgres:postgres /etc/pgbouncer

tar -C "$rootfs" -c . | docker import - "$tag-rootfs" >/dev/null
cat >"$work/Dockerfile" <<DOCKERFILE
FROM $tag-rootfs
ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8
STOPSIGNAL SIGINT
USER postgres
CMD ["pgbouncer", "/etc/pgbouncer/pgbouncer.ini"]
DOCKERFILE
docker build -q -t "$tag" "$work" >/dev/null
docker rmi "$tag-rootfs" >/dev/null 2>&1 || true
echo "build-pooler-image: built $tag in $((SECONDS - started)) s" >&2
