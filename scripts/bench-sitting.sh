#!/usr/bin/env bash
# Runs every measurement of a BENCHMARKS.md sitting, in the order of its
# tables, and prints the raw output (what the appendix holds):
#
#   scripts/bench-sitting.sh > sitting.txt      # or: make bench-sitting
#
# component-only on SQLite beside Kannel 1.4.5, and again; PostgreSQL twice;
# at Kannel's window (-smpp-window 1000), SQLite once and PostgreSQL twice;
# the same with receipts half a second late, as a carrier's; SQLite at the
# defaults; SQLite and PostgreSQL paced at 1,000 msg/s, twice
# each; messages from phones unpaced, in one part and in two, on SQLite
# and on PostgreSQL; users writing to each other (-relay, over XMPP), on
# both; through Prosody twice on SQLite (and once more with its clients
# over TLS, -c2s-tls) and twice on PostgreSQL, and
# relayed through Prosody on each; 100,000 messages waiting for receipts; the npm
# `smpp` SMSC instead of the bench's sink; and testdata/loadgen/run.sh (an
# independent load generator and SMSC). About seven minutes on two cores.
#
# Installs what is missing (scripts/bench-deps.sh: Kannel, Prosody,
# PostgreSQL, node, npm and the npm SMSC's package). PostgreSQL runs use a fresh
# database each on BENCH_PG (a postgres:// URL of a server whose user may
# create databases, without the database name, for example
# postgres://postgres@127.0.0.1:55432); without it, a throwaway durable
# server (fsync and synchronous_commit on) is started on a free port in a
# temporary directory and removed at the end (on BENCH_PG's server the
# databases the runs made are dropped at the end). SWITCHBOARD names the binary
# (default bin/switchboard, built first).
set -euo pipefail
shopt -s inherit_errexit
cd "$(dirname "$0")/.."

# shellcheck source=scripts/bench-lib.sh
. scripts/bench-lib.sh
bench_binary

tmp=$(mktemp -d)
pgdata=
smsc_pid=
cleanup() {
	[ -z "$smsc_pid" ] || kill "$smsc_pid" 2>/dev/null || true
	if [ -z "$pgdata" ] && [ -f "$tmp/dbs" ]; then # BENCH_PG's server: drop what the runs made
		while read -r name; do
			psql "$BENCH_PG/postgres" -qAt -c "DROP DATABASE IF EXISTS $name" >/dev/null 2>&1 || true
		done <"$tmp/dbs"
	fi
	pg_throwaway_stop
	rm -rf "$tmp"
}
trap cleanup EXIT

if [ -z "${BENCH_PG:-}" ]; then
	pg_throwaway "$tmp"
fi
db() { # called in $(…), a subshell: the name cannot come from a counter
	local name
	name=sitting_$(date +%s%N)
	psql "$BENCH_PG/postgres" -qAt -c "CREATE DATABASE $name" >/dev/null
	echo "$name" >>"$tmp/dbs"
	echo "$BENCH_PG/$name?sslmode=disable"
}
run() {
	echo "### switchboard bench $*"
	echo "load before: $(cut -d' ' -f1 /proc/loadavg)"
	"$SWITCHBOARD" bench -q "$@" 2>&1
	echo
}

echo "### $(git rev-parse --short HEAD 2>/dev/null || echo '?'), $(date -u +%FT%TZ), $(nproc) CPUs"
run -mode component -n 20000 -window 1000 -smpp-window 100 -mo 2000 -kannel
run -mode component -n 20000 -window 1000 -smpp-window 100 -mo 2000
dsn=$(db)
run -mode component -n 20000 -window 1000 -smpp-window 100 -mo 2000 -dsn "$dsn"
dsn=$(db)
run -mode component -n 20000 -window 1000 -smpp-window 100 -mo 2000 -dsn "$dsn"
# Switchboard's SMPP window equal to Kannel's max-pending-submits 1000.
run -mode component -n 20000 -window 1000 -smpp-window 1000 -mo -1
dsn=$(db)
run -mode component -n 20000 -window 1000 -smpp-window 1000 -mo -1 -dsn "$dsn"
dsn=$(db)
run -mode component -n 20000 -window 1000 -smpp-window 1000 -mo -1 -dsn "$dsn"
# Receipts half a second after their submit_sm_resp, as a carrier's come
# (the sink's are otherwise at once, and often share a commit with the id).
run -mode component -n 20000 -window 8000 -smpp-window 1000 -receipt-delay 500ms -mo -1
dsn=$(db)
run -mode component -n 20000 -window 8000 -smpp-window 1000 -receipt-delay 500ms -mo -1 -dsn "$dsn"
dsn=$(db)
run -mode component -n 20000 -window 8000 -smpp-window 1000 -receipt-delay 500ms -mo -1 -dsn "$dsn"
run -mode component -n 20000 -mo 2000
run -mode component -n 10000 -rate 1000 -mo -1
run -mode component -n 10000 -rate 1000 -mo -1
dsn=$(db)
run -mode component -n 10000 -rate 1000 -mo -1 -dsn "$dsn"
dsn=$(db)
run -mode component -n 10000 -rate 1000 -mo -1 -dsn "$dsn"
# Messages from phones as fast as the sink's 64 in flight take them, in
# one SMS part and in two (concatenated, reassembled).
run -mode component -n 2000 -mo 20000 -mo-rate -1
dsn=$(db)
run -mode component -n 2000 -mo 20000 -mo-rate -1 -dsn "$dsn"
run -mode component -n 2000 -mo 10000 -mo-rate -1 -mo-parts 2
dsn=$(db)
run -mode component -n 2000 -mo 10000 -mo-rate -1 -mo-parts 2 -dsn "$dsn"
# Users writing to each other's numbers: relayed over XMPP, acknowledged.
run -mode component -n 20000 -window 1000 -relay -mo -1
dsn=$(db)
run -mode component -n 20000 -window 1000 -relay -mo -1 -dsn "$dsn"
run -mode prosody -n 20000 -window 1000 -smpp-window 100 -mo 2000
run -mode prosody -n 20000 -window 1000 -smpp-window 100 -mo 2000
run -mode prosody -n 20000 -window 1000 -smpp-window 100 -mo 2000 -c2s-tls
dsn=$(db)
run -mode prosody -n 20000 -window 1000 -smpp-window 100 -mo 2000 -dsn "$dsn"
dsn=$(db)
run -mode prosody -n 20000 -window 1000 -smpp-window 100 -mo 2000 -dsn "$dsn"
run -mode prosody -n 20000 -window 1000 -relay -mo -1
dsn=$(db)
run -mode prosody -n 20000 -window 1000 -relay -mo -1 -dsn "$dsn"
run -mode component -n 100000 -no-receipts -window 2000 -mo -1

node testdata/smpp-node/smsc.js bench bench >"$tmp/smsc.out" 2>&1 &
smsc_pid=$!
port=
for _ in $(seq 50); do
	port=$(grep -o '"port":[0-9]*' "$tmp/smsc.out" | grep -o '[0-9]*$' || true)
	[ -z "$port" ] || break
	sleep 0.1
done
[ -n "$port" ] || { echo "bench-sitting: the npm SMSC printed no port" >&2; exit 1; }
# The npm SMSC shares the two cores: its CPU per message (from /proc, over
# the whole run, warm-up included) says how much of the machine it took.
ticks0=$(proc_ticks "$smsc_pid")
run -mode component -n 20000 -window 1000 -smpp-window 100 -mo -1 -smsc "127.0.0.1:$port"
ticks1=$(proc_ticks "$smsc_pid")
awk -v t="$((ticks1 - ticks0))" -v hz="$(getconf CLK_TCK)" \
	'BEGIN { printf "npm SMSC (node) CPU s / 1,000 msgs: %.3f\n", t / hz / 20000 * 1000 }'
kill "$smsc_pid" 2>/dev/null || true
wait "$smsc_pid" 2>/dev/null || true
smsc_pid=

echo "### testdata/loadgen/run.sh -n 20000 -w 1000 -u 100 -s 100"
SWITCHBOARD=$SWITCHBOARD testdata/loadgen/run.sh -n 20000 -w 1000 -u 100 -s 100 2>&1
echo "### done $(date -u +%T)"
