#!/usr/bin/env bash
# scripts/check_figures.sh catches a figure that its results file does not
# hold, an unclosed block and a missing file, and passes a correct page.
# Text only; the database argument of the other shell tests is ignored.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
die() { echo "not ok - $*" >&2; exit 1; }
check() { bash "$root/scripts/check_figures.sh" "$1" >/dev/null 2>&1; }

printf 'mse 0.2024 (ci 0.9020)\nspeed 1.13\nv1.2.3 in /a/b.2/c\n' >"$tmp/results.txt"
page() { printf 'Intro 3.14 is outside any block.\n<!-- figures: %s -->\n%s\n<!-- /figures -->\n' "$1" "$2" >"$tmp/page.md"; }

page "$tmp/results.txt" '| MSE 0.2024 | CI 0.9020 | 1.13x |'
check "$tmp/page.md" || die "a page whose figures are all in its results file passes"
echo "ok - a page whose figures are all in its results file passes"
page "$tmp/results.txt" '| MSE 0.2025 | CI 0.9020 |'
! check "$tmp/page.md" || die "a figure not in the results file fails"
echo "ok - a figure not in the results file fails"
page "$tmp/results.txt" '| MSE 0.202 |'
! check "$tmp/page.md" || die "a figure that is only a prefix of one in the file fails"
echo "ok - a prefix of a figure is not the figure"
page "$tmp/missing.txt" '| MSE 0.2024 |'
! check "$tmp/page.md" || die "a block citing a missing file fails"
echo "ok - a block citing a missing file fails"
printf '<!-- figures: %s -->\nMSE 0.2024\n' "$tmp/results.txt" >"$tmp/page.md"
! check "$tmp/page.md" || die "an unclosed block fails"
echo "ok - an unclosed block fails"
printf 'no blocks at all: 0.5\n' >"$tmp/page.md"
! check "$tmp/page.md" || die "a page without blocks fails"
echo "ok - a page without blocks fails"
