#!/usr/bin/env bash
# The release build, used by docker/Dockerfile and checked by make compose-check:
# one static binary that runs on a base without libc.
#
#   scripts/build-static.sh OUT
#
# SQLite's C (mattn/go-sqlite3: about a tenth less CPU per message than the
# pure-Go build, docs/benchmarks/sessions.md, twentieth session) linked statically, with Go's own DNS resolver
# and user lookup (netgo, osusergo) so that nothing wants glibc's NSS at run
# time. Without a C compiler, CGO_ENABLED=0 builds the pure-Go store
# (modernc.org/sqlite) instead: `go build` does that by itself.
set -euo pipefail
[ $# -eq 1 ] || { sed -n '2,11p' "$0"; exit 2; }
cd "$(dirname "$0")/.."
CGO_ENABLED=1 go build -trimpath -tags 'netgo osusergo sqlite_omit_load_extension' \
	-ldflags="-s -w -linkmode external -extldflags -static" \
	-o "$1" ./cmd/switchboard
