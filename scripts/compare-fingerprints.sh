#!/usr/bin/env bash
# scripts/compare-fingerprints.sh -- show that the near-duplicate
# fingerprints of every image below DIRs are bit-identical at REV (default
# origin's main, else main) and in the work tree: bench/fpdump is built from
# both (copied into REV's tree, which may predate it) and their outputs must
# be the same bytes. -x leaves the pixel hash (and the version byte) out,
# for a change of the pixel hash.
#
#   scripts/compare-fingerprints.sh [-r REV] [-x] DIR...
set -euo pipefail
cd "$(dirname "$0")/.."
rev=main
if [[ ${1:-} == -r ]]; then rev=$2; shift 2; fi
flags=()
if [[ ${1:-} == -x ]]; then flags=(-no-pixels); shift; fi
(($# > 0)) || { echo "usage: $0 [-r REV] [-x] DIR..." >&2; exit 2; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir "$tmp/old"
git archive "$rev" | tar -x -C "$tmp/old"
mkdir -p "$tmp/old/bench/fpdump"
cp bench/fpdump/main.go "$tmp/old/bench/fpdump/"
(cd "$tmp/old" && go build -o "$tmp/fpdump.old" ./bench/fpdump)
go build -o "$tmp/fpdump.new" ./bench/fpdump
"$tmp/fpdump.old" ${flags[@]+"${flags[@]}"} "$@" >"$tmp/old.txt"
"$tmp/fpdump.new" ${flags[@]+"${flags[@]}"} "$@" >"$tmp/new.txt"
if ! cmp -s "$tmp/old.txt" "$tmp/new.txt"; then
	diff "$tmp/old.txt" "$tmp/new.txt" | head -20 >&2
	echo "compare-fingerprints: fingerprints differ from $rev" >&2
	exit 1
fi
echo "compare-fingerprints: $(wc -l <"$tmp/new.txt") images ($(grep -c ' error ' "$tmp/new.txt" || true) errors), fingerprints identical to $rev ($(git rev-parse --short "$rev"))"
