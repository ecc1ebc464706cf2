#!/usr/bin/env bash
# META.json against the PGXN meta spec 1.0.0 (https://pgxn.org/meta/spec.txt),
# read by the server's JSON parser: the required keys with their types,
# a license the spec knows, versions that are semantic versions and agree
# with moe_pg.control, a provides entry whose file the build makes.
# Usage: meta.sh DB.
set -euo pipefail
db=$1
root=$(cd "$(dirname "$0")/../.." && pwd)
die() { echo "not ok - $*" >&2; exit 1; }
version=$(sed -n "s/^default_version *= *'\(.*\)'/\1/p" "$root/moe_pg.control")
problems=$(psql -X -q -At -v ON_ERROR_STOP=1 -d "$db" -v meta="$(cat "$root/META.json")" -v version="$version" <<'SQL'
WITH m AS (SELECT :'meta'::jsonb AS j),
checks(ok, what) AS (
    SELECT jsonb_typeof(j -> 'name') = 'string' AND j ->> 'name' ~ '^[A-Za-z][A-Za-z0-9_-]*$', 'name is a plain string' FROM m
    UNION ALL SELECT jsonb_typeof(j -> 'abstract') = 'string' AND length(j ->> 'abstract') > 0, 'abstract is a string' FROM m
    UNION ALL SELECT j ->> 'version' ~ '^\d+\.\d+\.\d+$', 'version is a semantic version' FROM m
    UNION ALL SELECT j ->> 'version' = :'version', 'version agrees with moe_pg.control' FROM m
    UNION ALL SELECT jsonb_typeof(j -> 'maintainer') IN ('string', 'array'), 'maintainer is a string or a list' FROM m
    UNION ALL SELECT j ->> 'license' IN ('agpl_3', 'apache_1_1', 'apache_2_0', 'artistic_1', 'artistic_2', 'bsd',
                                         'freebsd', 'gfdl_1_2', 'gfdl_1_3', 'gpl_1', 'gpl_2', 'gpl_3', 'lgpl_2_1',
                                         'lgpl_3_0', 'mit', 'mozilla_1_0', 'mozilla_1_1', 'openssl', 'perl_5',
                                         'postgresql', 'qpl_1_0', 'ssleay', 'sun', 'zlib', 'open_source',
                                         'restricted', 'unrestricted', 'unknown')
                  OR jsonb_typeof(j -> 'license') IN ('array', 'object'), 'license is one the spec names' FROM m
    UNION ALL SELECT jsonb_typeof(j -> 'provides') = 'object' AND j -> 'provides' ? 'moe_pg', 'provides moe_pg' FROM m
    UNION ALL SELECT j -> 'provides' -> 'moe_pg' ->> 'file' = 'sql/moe_pg--' || :'version' || '.sql', 'its file is the install script' FROM m
    UNION ALL SELECT j -> 'provides' -> 'moe_pg' ->> 'version' = :'version', 'its version agrees' FROM m
    UNION ALL SELECT j -> 'meta-spec' ->> 'version' = '1.0.0', 'meta-spec 1.0.0' FROM m
    UNION ALL SELECT coalesce(j ->> 'release_status' IN ('stable', 'testing', 'unstable'), true), 'release_status is known' FROM m
    UNION ALL SELECT j -> 'prereqs' -> 'runtime' -> 'requires' ->> 'PostgreSQL' ~ '^\d+\.\d+\.\d+$', 'requires a PostgreSQL version' FROM m
)
SELECT string_agg(what, '; ') FROM checks WHERE NOT coalesce(ok, false)
SQL
) || die "META.json is not valid JSON"
[ -z "$problems" ] || die "META.json: not true that $problems"
echo "ok - META.json is valid JSON and follows the PGXN meta spec 1.0.0 (version $version)"
