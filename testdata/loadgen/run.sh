#!/usr/bin/env bash
# Cross-checks Switchboard's component-only figure with a load generator and
# an SMSC that are not ours: testdata/loadgen/loadgen.py (Python's standard
# library) plays the XMPP server over XEP-0114, and testdata/smpp-node/smsc.js
# (the npm smpp package) is the SMSC. Nothing of internal/bench is used:
# Switchboard runs from an ordinary configuration, with numbers assigned by
# `switchboard numbers`, as an operator would.
#
#   testdata/loadgen/run.sh [-n N] [-w WINDOW] [-u USERS] [-s SMPP_WINDOW] [-d DSN] [-k]
#
# Each flag has an environment variable of the same meaning: N (default 20000),
# WINDOW (1000), USERS (100), SMPP_WINDOW (100), DSN (default a fresh SQLite
# file in a temporary directory; a PostgreSQL URL should name a fresh
# database), KEEP=1 (-k: keep the temporary directory with the configuration
# and every log). SWITCHBOARD names the binary (default bin/switchboard, built
# if missing), PYTHON the interpreter (python3), LOADGEN_ARGS more arguments
# for loadgen.py (for example "--trace 20" or "--parser etree").
#
# The exit status is loadgen.py's: 0 when every message got its receipt and
# none an error.
set -euo pipefail

N=${N:-20000}
WINDOW=${WINDOW:-1000}
USERS=${USERS:-100}
SMPP_WINDOW=${SMPP_WINDOW:-100}
DSN=${DSN:-}
KEEP=${KEEP:-0}
while getopts n:w:u:s:d:kh opt; do
	case $opt in
	n) N=$OPTARG ;;
	w) WINDOW=$OPTARG ;;
	u) USERS=$OPTARG ;;
	s) SMPP_WINDOW=$OPTARG ;;
	d) DSN=$OPTARG ;;
	k) KEEP=1 ;;
	*)
		sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'
		[ "$opt" = h ] && exit 0 || exit 2
		;;
	esac
done
if [ "$USERS" -lt 1 ] || [ "$USERS" -gt 9999 ]; then
	echo "run.sh: users must be 1 to 9999 (numbers +12015550000 to +12015559999)" >&2
	exit 2
fi

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
smscdir=$root/testdata/smpp-node
PYTHON=${PYTHON:-python3}
SWITCHBOARD=${SWITCHBOARD:-$root/bin/switchboard}
if [ ! -x "$SWITCHBOARD" ]; then
	echo "run.sh: building $SWITCHBOARD" >&2
	(cd "$root" && go build -o "$SWITCHBOARD" ./cmd/switchboard)
fi
if [ ! -f "$smscdir/node_modules/smpp/package.json" ]; then
	echo "run.sh: installing the npm smpp package in $smscdir" >&2
	(cd "$smscdir" && npm ci --no-audit --no-fund)
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/switchboard-loadgen-XXXXXX")
smsc_pid= lg_pid= sb_pid=
# cleanup stops what this script started, by pid, and removes the
# temporary directory unless it is to be kept or the run failed.
cleanup() {
	status=$?
	trap - EXIT INT TERM
	for pid in $sb_pid $lg_pid $smsc_pid; do
		kill "$pid" 2>/dev/null || true
	done
	for pid in $sb_pid $lg_pid $smsc_pid; do
		# Switchboard closes its store on SIGTERM; give it a moment.
		for _ in 1 2 3 4 5 6 7 8 9 10; do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.2
		done
		kill -KILL "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
	if [ "$status" -ne 0 ]; then
		for f in switchboard.log smsc.log; do
			[ -s "$tmp/$f" ] && { echo "--- last lines of $f" >&2; tail -n 5 "$tmp/$f" >&2; }
		done
	fi
	if [ "$KEEP" = 1 ] || [ "$status" -ne 0 ]; then
		echo "run.sh: kept $tmp" >&2
	else
		rm -rf "$tmp"
	fi
	exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# waitfor FILE PID WHAT: waits until FILE is non-empty, while PID lives.
waitfor() {
	for _ in $(seq 300); do
		[ -s "$1" ] && return 0
		kill -0 "$2" 2>/dev/null || { echo "run.sh: $3 exited" >&2; return 1; }
		sleep 0.1
	done
	echo "run.sh: no $3 after 30 s" >&2
	return 1
}

# The SMSC: it prints JSON events, the first one with its port, and one per
# submit_sm; they go to a file so that it never blocks on a full pipe.
(cd "$smscdir" && exec node smsc.js loadgen loadgen </dev/null >"$tmp/smsc.log" 2>&1) &
smsc_pid=$!
waitfor "$tmp/smsc.log" "$smsc_pid" "npm SMSC"
smsc_port=$(sed -n 's/.*"event":"listening","port":\([0-9]*\).*/\1/p' "$tmp/smsc.log" | head -n 1)
[ -n "$smsc_port" ] || { echo "run.sh: the npm SMSC printed no port" >&2; exit 1; }

secret=$(od -An -tx1 -N12 /dev/urandom | tr -d ' \n')
domain=loadgen.test
component=sms.loadgen.test

# The load generator listens first: XEP-0114 has the component dial the server.
"$PYTHON" "$here/loadgen.py" --port 0 --port-file "$tmp/loadgen.port" --pid-file "$tmp/switchboard.pid" \
	--smsc-pid "$smsc_pid" --domain "$domain" --component "$component" --secret "$secret" \
	-n "$N" -w "$WINDOW" -u "$USERS" --json "$tmp/report.json" ${LOADGEN_ARGS:-} </dev/null &
lg_pid=$!
waitfor "$tmp/loadgen.port" "$lg_pid" "loadgen.py"
lg_port=$(cat "$tmp/loadgen.port")

dsn=${DSN:-sqlite:$tmp/switchboard.db}
# The configuration the component-only figure is taken with: no sending
# limits, no SMS fallback (users message numbers, never each other), no
# verification (numbers are assigned below).
cat >"$tmp/switchboard.toml" <<EOF
[xmpp]
component = "$component"
server = "127.0.0.1:$lg_port"
secret = "$secret"
domains = ["$domain"]

[smpp]
addr = "127.0.0.1:$smsc_port"
system_id = "loadgen"
password = "loadgen"
window = $SMPP_WINDOW
resp_timeout = "30s"

[store]
dsn = "$dsn"

[registration]
verification = "none"

[routing]
sms_fallback_after = "0"

[limits]
per_user_minute = -1
per_user_day = -1
global_minute = -1
relays_per_user_minute = -1

[log]
level = "warn"
EOF

echo "run.sh: assigning numbers to $USERS users" >&2
for ((k = 0; k < USERS; k++)); do
	"$SWITCHBOARD" numbers -config "$tmp/switchboard.toml" assign "user$k@$domain" "$(printf '+1201555%04d' "$k")" >/dev/null ||
		{ echo "run.sh: switchboard numbers assign failed" >&2; exit 1; }
done

echo "run.sh: $N messages, window $WINDOW, $USERS users, smpp window $SMPP_WINDOW, store ${dsn%%:*}, SMSC on port $smsc_port" >&2
"$SWITCHBOARD" serve -config "$tmp/switchboard.toml" >"$tmp/switchboard.log" 2>&1 &
sb_pid=$!
echo "$sb_pid" >"$tmp/switchboard.pid.tmp" && mv "$tmp/switchboard.pid.tmp" "$tmp/switchboard.pid"

# loadgen.py ends the run and reports what arrived, also when Switchboard
# exits (it watches its pid); a Switchboard that exits before connecting
# is caught here, sooner than loadgen.py's connect timeout.
sb_gone=
while kill -0 "$lg_pid" 2>/dev/null; do
	if [ -z "$sb_gone" ] && ! kill -0 "$sb_pid" 2>/dev/null; then
		echo "run.sh: switchboard exited" >&2
		sb_gone=$SECONDS
	fi
	if [ -n "$sb_gone" ] && [ $((SECONDS - sb_gone)) -ge 5 ]; then
		exit 1
	fi
	sleep 0.2
done
status=0
wait "$lg_pid" || status=$?
lg_pid=
exit "$status"
