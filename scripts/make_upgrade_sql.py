#!/usr/bin/env python3
"""Regenerate the tail of an upgrade script from the current install script.

    make sql/moe_pg--0.2.0.sql
    python3 scripts/make_upgrade_sql.py sql/moe_pg--0.2.0.sql sql/versions/moe_pg--0.1.0--0.2.0.sql

The upgrade script has two parts.  Above the line "-- Everything else as
<version> defines it." it is written by hand: it migrates the tables, types
and triggers, keeping every row, and drops what changes shape.  Below it,
this script writes every function, procedure, aggregate, view, comment,
privilege and pg_dump registration of the install script again (functions as
CREATE OR REPLACE), so that an updated database ends with what a fresh
install has.  test/shell/upgrade.sh checks that the two catalogues are equal.
"""
import re
import sys

MARKER = re.compile(r'^-- Everything else as .* defines it\.$', re.M)


def statements(s):
    """Split SQL into statements, respecting dollar quotes, strings and comments."""
    out, buf, i, n, dq = [], [], 0, len(s), None
    while i < n:
        c = s[i]
        if dq:
            if s.startswith(dq, i):
                buf.append(dq)
                i += len(dq)
                dq = None
            else:
                buf.append(c)
                i += 1
            continue
        m = re.match(r'\$[A-Za-z_]*\$', s[i:]) if c == '$' else None
        if m:
            dq = m.group(0)
            buf.append(dq)
            i += len(dq)
        elif c == "'":
            j = i + 1
            while not (s[j] == "'" and not s.startswith("''", j)):
                j += 2 if s.startswith("''", j) else 1
            buf.append(s[i:j + 1])
            i = j + 1
        elif s.startswith('--', i):
            j = s.find('\n', i)
            j = n if j < 0 else j
            buf.append(s[i:j])
            i = j
        elif c == ';':
            buf.append(';')
            out.append(''.join(buf))
            buf = []
            i += 1
        else:
            buf.append(c)
            i += 1
    return out


def code(st):
    return '\n'.join(l for l in st.split('\n') if l.strip() and not l.strip().startswith('--')).strip()


def regenerated(install):
    keep = []
    for st in statements(install):
        b = code(st)
        if re.match(r'CREATE (FUNCTION|PROCEDURE|AGGREGATE)', b, re.I):
            keep.append(re.sub(r'CREATE (FUNCTION|PROCEDURE|AGGREGATE)', r'CREATE OR REPLACE \1', st.strip(), count=1))
        elif re.match(r'DO\b', b, re.I) and 'does not belong to moe_pg' in b:
            continue        # the install-time check for a foreign schema moe
        elif re.match(r'(CREATE VIEW|COMMENT ON|DO\b|GRANT|REVOKE|ALTER FUNCTION|SELECT pg_catalog.pg_extension_config_dump)',
                      b, re.I):
            keep.append(st.strip())
        elif re.match(r'(CREATE (TABLE|TYPE|INDEX|TRIGGER|SCHEMA)|ALTER TABLE|\\echo)', b, re.I):
            continue        # the hand-written part's business
        elif b:
            sys.exit('unclassified statement: ' + b[:120])
    return '\n\n'.join(keep) + '\n'


def main():
    install, upgrade = sys.argv[1], sys.argv[2]
    text = open(upgrade).read()
    m = MARKER.search(text)
    if not m:
        sys.exit('%s has no "-- Everything else as ... defines it." line' % upgrade)
    head = text[:m.end()] + '\n\n'
    open(upgrade, 'w').write(head + regenerated(open(install).read()))


if __name__ == '__main__':
    main()
