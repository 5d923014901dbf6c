#!/usr/bin/env bash
# Write pgtopo/catalog/settings-<major>.tsv: the settings a PostgreSQL server of an image knows
# (pg_settings: name, vartype, unit, min_val, max_val, enumvals, context), read from a throw-away
# server in a container that starts, answers one query and is removed.  `validate` checks the
# file's parameter names and values against it offline.  For a major with no file here, diff and
# apply run the same query through pgtopo's own job (desired.CATALOG_QUERY, image_catalog.py);
# tests/integration/test_server_catalog.py checks that the two agree.
#   bash scripts/settings-catalog.sh pgtopo-local/postgres:17 [more images…]
set -euo pipefail
out="$(cd "$(dirname "$0")/.." && pwd)/pgtopo/catalog"
mkdir -p "$out"
query="COPY (SELECT name, vartype, coalesce(unit, ''), coalesce(min_val, ''), coalesce(max_val, ''),
  coalesce(array_to_string(enumvals, ','), ''), context FROM pg_settings ORDER BY name) TO STDOUT"
for image in "$@"; do
    tsv=$(docker run --rm --label io.pgtopo.cluster=pgtopo-catalog -u postgres -e "Q=$query" "$image" sh -c '
        set -e; d=$(mktemp -d); initdb -D "$d" -A trust >/dev/null
        pg_ctl -D "$d" -o "-c listen_addresses= -k /tmp" -w start >/dev/null
        psql -h /tmp -X -q -d postgres -c "$Q"; major=$(cat "$d/PG_VERSION")
        pg_ctl -D "$d" -m immediate stop >/dev/null; echo "#major $major"')
    major=$(printf '%s\n' "$tsv" | sed -n 's/^#major //p')
    printf '%s\n' "$tsv" | grep -v '^#major ' > "$out/settings-$major.tsv"
    echo "settings-catalog: $image → pgtopo/catalog/settings-$major.tsv ($(wc -l < "$out/settings-$major.tsv") settings)"
done
