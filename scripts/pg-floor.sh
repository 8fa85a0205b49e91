#!/usr/bin/env bash
# What PostgreSQL itself costs for the rows of a message's life, next to
# what it costs under Switchboard: BENCHMARKS.md's evidence for what limits
# the component-only rate on PostgreSQL.
#
#   scripts/pg-floor.sh [MESSAGES]      # default 40000 per run
#
# Starts a throwaway durable server (scripts/bench-lib.sh), runs
# `switchboard bench -mode component` on it (whose report gives the server's
# CPU per 1,000 messages), then, in a database of the same schema (made by a
# short bench run, so every index and foreign key is the store's),
# testdata/pgfloor/life.sql under pgbench: the inserts and updates a
# message's life needs, 100 messages a statement, four commits per 100,
# nothing else (no reads, no locks, no receipt matching), from 1, 4 and 16
# clients. Prints the server's CPU seconds per 1,000 messages (its
# processes' and its exited backends', from /proc) and the rate for each.
# SWITCHBOARD names the binary (default bin/switchboard, built first).
set -euo pipefail
shopt -s inherit_errexit
cd "$(dirname "$0")/.."

n=${1:-40000}
# shellcheck source=scripts/bench-lib.sh
. scripts/bench-lib.sh
bench_binary

tmp=$(mktemp -d)
cleanup() {
	pg_throwaway_stop
	rm -rf "$tmp"
}
trap cleanup EXIT
pg_throwaway "$tmp"

# server_ticks: clock ticks used by the postmaster, its live children and
# the children it has reaped; first it waits (up to 10 s) until the
# backends of the last run have been reaped, since one caught between
# exiting and being reaped may be counted twice or not at all.
server_ticks() {
	local pm sum=0 pid i
	pm=$(head -1 "$pgdata/postmaster.pid")
	for i in $(seq 100); do
		[ "$(pgrep -c -P "$pm")" -gt "$background" ] || break
		sleep 0.1
	done
	sum=$(proc_ticks "$pm" children)
	for pid in $(pgrep -P "$pm"); do
		sum=$((sum + $(proc_ticks "$pid")))
	done
	echo "$sum"
}
hz=$(getconf CLK_TCK)
# The server's own processes (checkpointer, WAL writer…), counted before
# any client connects.
background=$(pgrep -c -P "$(head -1 "$pgdata/postmaster.pid")")

echo "### $(git rev-parse --short HEAD 2>/dev/null || echo '?'), $(date -u +%FT%TZ), $(nproc) CPUs, $("$pgbin/postgres" --version)"
psql "$BENCH_PG/postgres" -qAt -c "CREATE DATABASE sb" -c "CREATE DATABASE floor"
echo "### switchboard bench -mode component -n $n -window 1000 -smpp-window 100 -mo -1 -dsn …/sb"
"$SWITCHBOARD" bench -q -mode component -n "$n" -window 1000 -smpp-window 100 -mo -1 -dsn "$BENCH_PG/sb?sslmode=disable" 2>&1 |
	grep -E 'msg/s \(whole run\)|Switchboard CPU s /|PostgreSQL server'
# The floor's schema: the store's migrations, by a short run.
"$SWITCHBOARD" bench -q -mode component -n 1000 -mo -1 -dsn "$BENCH_PG/floor?sslmode=disable" >/dev/null 2>&1
echo "### pgbench -f testdata/pgfloor/life.sql, $n messages a run"
echo "clients | server CPU s / 1,000 msgs | msg/s"
for c in 1 4 16 1 4 16 1 4 16; do
	per=$((n / 100 / c)) # transactions of 100 messages per client
	a=$(server_ticks) t0=$(date +%s%N)
	"$pgbin/pgbench" -n -c "$c" -t "$per" -f testdata/pgfloor/life.sql "$BENCH_PG/floor" >"$tmp/pgbench.out" 2>&1 ||
		{ cat "$tmp/pgbench.out" >&2; exit 1; }
	t1=$(date +%s%N) b=$(server_ticks)
	grep -q 'number of failed transactions: 0 ' "$tmp/pgbench.out" || { cat "$tmp/pgbench.out" >&2; exit 1; }
	awk -v c="$c" -v t="$((b - a))" -v hz="$hz" -v m="$((per * c * 100))" -v ns="$((t1 - t0))" \
		'BEGIN {printf "%7d | %25.3f | %d\n", c, t / hz / m * 1000, m / (ns / 1e9)}'
done
