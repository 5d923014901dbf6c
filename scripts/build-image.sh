#!/usr/bin/env bash
# Build a local PostgreSQL image without any container registry:
#   debootstrap a minimal Debian with the postgresql-N package, `docker import` it, then a tiny
#   `docker build` for ENV/STOPSIGNAL (docker import -c refuses STOPSIGNAL).
# Usage: scripts/build-image.sh 13|15|17|18 -> image pgtopo-local/postgres:13, :15, :17 or :18
# Cached by tag: an image that already exists is not rebuilt (FORCE=1 rebuilds).
set -euo pipefail

major=${1:?usage: build-image.sh 13|15|17|18}
packages="postgresql-$major,pgbackrest"
case $major in
    13) suite=bullseye; packages="postgresql-$major" ;;
    15) suite=bookworm ;;
    17) suite=trixie ;;
    18) suite=forky ;;
    *) echo "build-image: only 13 (bullseye), 15 (bookworm), 17 (trixie) and 18 (forky) are known" >&2; exit 2 ;;
esac
tag=${IMAGE_TAG:-"pgtopo-local/postgres:$major"}  # IMAGE_TAG: another name (a trial build beside the tested one)
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}

# An image an older recipe built (without pgBackRest, say) is built again.  Not by a label: every
# container of the image would carry it.
if [[ -z ${FORCE:-} ]] && docker image inspect "$tag" >/dev/null 2>&1; then
    if [[ $packages != *pgbackrest* ]] || docker run --rm --pull never --network none --entrypoint sh "$tag" \
            -c 'command -v pgbackrest' >/dev/null 2>&1; then
        echo "build-image: $tag present (cached)" >&2
        exit 0
    fi
fi

if ! command -v debootstrap >/dev/null 2>&1; then
    if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null 2>&1; then
        echo "build-image: debootstrap is missing; install it (Debian/Ubuntu: apt-get install debootstrap) or set PGTOPO_TEST_IMAGE to an image you have" >&2
        exit 1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
fi
# trixie's and forky's keyrings may be newer than the host's; debootstrap needs the suite's script.
if [[ ! -e /usr/share/debootstrap/scripts/$suite ]]; then
    ln -s sid "/usr/share/debootstrap/scripts/$suite"
fi

work=$(mktemp -d /var/tmp/pgtopo-image.XXXXXX)
trap 'rm -rf "$work"' EXIT
rootfs=$work/rootfs
echo "build-image: debootstrap $suite with ${packages//,/ and } (about a minute)" >&2
started=$SECONDS
if ! debootstrap --variant=minbase --include="$packages" "$suite" "$rootfs" "$mirror" \
        >"$work/debootstrap.log" 2>&1; then
    tail -30 "$work/debootstrap.log" >&2
    echo "build-image: debootstrap failed (log above)" >&2
    exit 1
fi
# The Debian package makes a default cluster and config we do not use; an image carries no data.
rm -rf "$rootfs/var/lib/postgresql/$major" "$rootfs/etc/postgresql/$major" \
       "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
install -d -m 0700 "$rootfs/var/lib/postgresql/data"
install -d -m 2775 "$rootfs/var/run/postgresql" 2>/dev/null || install -d -m 2775 "$rootfs/run/postgresql"
chroot "$rootfs" chown postgres:postgres /var/lib/postgresql /var/lib/postgresql/data /run/postgresql

tar -C "$rootfs" -c . | docker import - "$tag-rootfs" >/dev/null
cat >"$work/Dockerfile" <<DOCKERFILE
FROM $tag-rootfs
ENV PATH=/usr/lib/postgresql/$major/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PGDATA=/var/lib/postgresql/data \
    LANG=C.UTF-8
STOPSIGNAL SIGINT
USER postgres
CMD ["postgres"]
DOCKERFILE
docker build -q -t "$tag" "$work" >/dev/null
docker rmi "$tag-rootfs" >/dev/null 2>&1 || true
echo "build-image: built $tag in $((SECONDS - started)) s" >&2
