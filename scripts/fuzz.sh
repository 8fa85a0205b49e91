#!/usr/bin/env bash
# Runs every fuzz target of the module for FUZZTIME each (default 10s): `make fuzz FUZZTIME=30s`.
# FUZZTIME may also be a count of executions (`5000x`). CI uses a count: with a
# duration, Go 1.26's fuzz coordinator can report a spurious "context deadline
# exceeded" when the deadline races a worker's in-flight input
# (https://go.dev/issue/75804, fixed in Go 1.27); a count has no deadline.
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
FUZZTIME=${FUZZTIME:-10s}

# `go test -list` prints each package's matching names, then an "ok <pkg>" line.
targets=$("$GO" test -list '^Fuzz' ./... | awk '
	/^Fuzz/ { names = names " " $1; next }
	/^ok /  { if (names != "") print $2 names; names = "" }
	/^\?/   { names = "" }')

if [ -z "$targets" ]; then
	echo "fuzz: no fuzz targets"
	exit 0
fi
while read -r pkg names; do
	for name in $names; do
		echo "fuzz: $pkg $name ($FUZZTIME)"
		"$GO" test -run '^$' -fuzz "^${name}\$" -fuzztime "$FUZZTIME" "$pkg"
	done
done <<<"$targets"
