#!/usr/bin/env bash
# Every measured figure quoted in README.md (and in the docs/ pages that
# mark theirs) comes from the results file it cites.  Measured figures
# stand between
#     <!-- figures: bench/results/NAME.txt [bench/results/OTHER.txt ...] -->
# and <!-- /figures -->; every decimal number there (0.2024, 1.13, 6.29)
# must occur, as written, in one of the files the block names, and the
# files must exist.  Text only: no database, no build.
#   scripts/check_figures.sh            README.md (which must have blocks) and docs/*.md
#   scripts/check_figures.sh FILE...    those files
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -eq 0 ]; then
    set -- README.md $(grep -l '<!-- figures:' docs/*.md 2>/dev/null || true)
fi
total=0
for doc in "$@"; do
status=0 blocks=0 checked=0
files=()
inside=false
while IFS= read -r line || [ -n "$line" ]; do
    if [[ $line =~ \<\!--\ figures:\ (.*)\ --\> ]]; then
        read -r -a files <<<"${BASH_REMATCH[1]}"
        inside=true
        blocks=$((blocks + 1))
        for f in "${files[@]}"; do
            [ -f "$f" ] || { echo "$doc: figures block $blocks cites $f, which does not exist" >&2; status=1; }
        done
        continue
    fi
    if [[ $line == *"<!-- /figures -->"* ]]; then inside=false; continue; fi
    $inside || continue
    # decimal numbers, not parts of longer tokens (versions, paths, dates)
    for n in $(grep -oE '(^|[^0-9A-Za-z._/-])[0-9]+\.[0-9]+' <<<"$line" | grep -oE '[0-9]+\.[0-9]+' || true); do
        checked=$((checked + 1))
        found=false
        for f in "${files[@]}"; do
            if grep -qE "(^|[^0-9.])${n//./\\.}([^0-9]|$)" "$f" 2>/dev/null; then found=true; break; fi
        done
        $found || { echo "$doc: $n is not in ${files[*]}: $line" >&2; status=1; }
    done
done <"$doc"
$inside && { echo "$doc: a figures block is not closed" >&2; status=1; }
[ "$blocks" -gt 0 ] || { echo "$doc: no figures blocks" >&2; status=1; }
[ $status = 0 ] && echo "ok - $checked figures in $blocks blocks of $doc are in the results files they cite"
[ $status = 0 ] || total=1
done
exit $total
