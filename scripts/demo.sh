#!/usr/bin/env bash
# make demo: Prosody + the SMSC simulator + switchboard on this machine, on the standard ports.
#
#   sudo scripts/demo.sh                 # everything (needs cmd/switchboard)
#   sudo scripts/demo.sh --prosody-only  # just Prosody with alice and bob
#
# Installs Prosody from Debian if missing, writes a throwaway ./demo/ (gitignored) and stops
# everything it started on Ctrl-C. The Prosody config comes from
# testdata/prosody/prosody.cfg.lua.tmpl, the same template the integration tests use.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
export PATH="$PATH:/usr/local/go/bin"

prosody_only=false
case "${1:-}" in
	--prosody-only) prosody_only=true ;;
	"") ;;
	*) echo "usage: $0 [--prosody-only]" >&2; exit 2 ;;
esac

say() { printf '\033[1mdemo:\033[0m %s\n' "$*"; }
die() {
	printf 'demo: %s\n' "$*" >&2
	[ -z "${build_pid:-}" ] || kill "$build_pid" 2>/dev/null || true # a build still running
	exit 1
}

[ "$(id -u)" -eq 0 ] || die "run as root (it installs Prosody and runs it as user prosody): sudo make demo"
command -v go >/dev/null || die "no go on PATH or in /usr/local/go/bin"

# --- Build, while Prosody installs ----------------------------------------------------------
# On a fresh machine compiling takes about as long as installing Prosody: both at once.
build_pid=
if ! $prosody_only; then
	[ -d cmd/switchboard ] || die "cmd/switchboard does not exist yet; try --prosody-only"
	say "building bin/switchboard"
	# Pure Go (modernc.org/sqlite): compiling SQLite's C as well would add
	# about half a minute to a first build, for speed a demo does not need.
	CGO_ENABLED=0 go build -buildvcs=auto -o bin/switchboard ./cmd/switchboard &
	build_pid=$!
fi

# --- Prosody from Debian -------------------------------------------------------------------
need=()
command -v prosody >/dev/null || need+=(prosody)
[ -e /usr/lib/prosody/modules/mod_privilege/mod_privilege.lua ] || need+=(prosody-modules)
if [ ${#need[@]} -gt 0 ]; then
	say "installing ${need[*]} from Debian"
	DEBIAN_FRONTEND=noninteractive apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}"
	# Debian starts the Prosody it installs, on port 5222; the demo runs its own.
	if [[ " ${need[*]} " == *" prosody "* ]] && command -v systemctl >/dev/null &&
		systemctl is-active --quiet prosody 2>/dev/null; then
		say "stopping the prosody service Debian started (the demo runs its own Prosody)"
		systemctl stop prosody
	fi
fi
id prosody >/dev/null 2>&1 || die "the prosody package did not create user prosody"

# --- Ports ----------------------------------------------------------------------------------
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
ports=(5222 5347)
$prosody_only || ports+=(2775 8025)
for p in "${ports[@]}"; do
	if port_busy "$p"; then
		case $p in
		5222 | 5347) die "127.0.0.1:$p is in use (a system Prosody? try: systemctl stop prosody)" ;;
		*) die "127.0.0.1:$p is in use (the SMSC simulator's port: another demo or smsc-sim still running? see: ss -ltnp 'sport = :$p')" ;;
		esac
	fi
done

# --- Build done ---------------------------------------------------------------------------------
if [ -n "$build_pid" ]; then
	wait "$build_pid" || { build_pid=; die "building bin/switchboard failed (the go build output is above)"; }
	build_pid=
	# Under sudo, leave bin/ to the user, whose own go build (README, Running it) writes there.
	if [ -n "${SUDO_UID:-}" ] && [ -n "${SUDO_GID:-}" ]; then
		chown "$SUDO_UID:$SUDO_GID" bin bin/switchboard
	fi
fi

# --- Throwaway directory ----------------------------------------------------------------------
demo="$root/demo"
pdir="$demo/prosody"
rm -rf "$pdir" "$demo"/switchboard.db*
mkdir -p "$demo"
# Prosody runs as user prosody and must reach its directory; a repo under /root is not reachable.
if ! runuser -u prosody -- test -x "$demo"; then
	pdir=$(mktemp -d /tmp/switchboard-demo-prosody.XXXXXX)
	say "user prosody cannot reach $demo; using $pdir for Prosody"
fi
secret=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')

privilege=()
[ -e /usr/lib/prosody/modules/mod_privilege/mod_privilege.lua ] && privilege=(-privilege)
go run ./scripts/prosodyconf -dir "$pdir" -secret "$secret" \
	-domain localhost -component sms.localhost -c2s-port 5222 -component-port 5347 \
	-user alice:alice -user bob:bob "${privilege[@]}" >/dev/null
chown -R prosody:prosody "$pdir"

cat >"$demo/switchboard.toml" <<TOML
[xmpp]
component = "sms.localhost"
server = "127.0.0.1:5347"
secret = "$secret"
domains = ["localhost"]

[smpp]
addr = "127.0.0.1:2775"
system_id = "switchboard"
password = "demo"

[store]
dsn = "sqlite:demo/switchboard.db"

[phone]
default_region = "US"

[log]
format = "console"
TOML
chmod 600 "$demo/switchboard.toml"

# --- Processes --------------------------------------------------------------------------------
# Each runs in a session of its own (setsid), so Ctrl-C reaches only this script, which then
# stops them all (SIGTERM; switchboard closes its stream and unbinds on its own).
pids=()
stop_all() { # exit status
	trap - INT TERM EXIT
	say "stopping"
	# Last started, first stopped, each waited for: switchboard closes its stream and unbinds
	# while Prosody and the simulator are still there.
	for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
		if ((i == 0)) && [ -s "$pdir/prosody.pid" ]; then
			kill -TERM "$(cat "$pdir/prosody.pid")" 2>/dev/null || true
		fi
		kill -TERM "${pids[i]}" 2>/dev/null || true
		wait "${pids[i]}" 2>/dev/null || true
	done
	[[ $pdir == /tmp/switchboard-demo-prosody.* ]] && rm -rf "$pdir"
	exit "$1"
}
# Ctrl-C or a TERM is the way to stop the demo: status 0. A failure (die) keeps its status.
trap 'stop_all 0' INT TERM
trap 'stop_all $?' EXIT

wait_port() { # port what
	for _ in $(seq 100); do
		port_busy "$1" && return 0
		sleep 0.1
	done
	die "$2 did not open 127.0.0.1:$1; see its log"
}

say "starting Prosody (log $pdir/prosody.log)"
setsid runuser -u prosody -- prosody --config "$pdir/prosody.cfg.lua" -F >"$pdir/prosody.out" 2>&1 &
pids+=($!)
wait_port 5222 Prosody
wait_port 5347 Prosody

if ! $prosody_only; then
	say "starting the SMSC simulator (log demo/smsc-sim.log)"
	# At debug the simulator logs the texts it carries: the demo's phones are not real people.
	setsid bin/switchboard smsc-sim -smpp 127.0.0.1:2775 -http 127.0.0.1:8025 -log-level debug >"$demo/smsc-sim.log" 2>&1 &
	pids+=($!)
	wait_port 2775 "the SMSC simulator"

	bin/switchboard numbers assign -config demo/switchboard.toml alice@localhost +12015550100
	bin/switchboard numbers assign -config demo/switchboard.toml bob@localhost +12015550101

	say "starting switchboard (log demo/switchboard.log)"
	setsid bin/switchboard serve -config demo/switchboard.toml >"$demo/switchboard.log" 2>&1 &
	pids+=($!)
	# Ready once connected to Prosody and bound to the simulator.
	for _ in $(seq 300); do
		kill -0 "${pids[-1]}" 2>/dev/null || { tail -n 20 "$demo/switchboard.log" >&2; die "switchboard exited; its log is above"; }
		grep -q "connected to XMPP server" "$demo/switchboard.log" && grep -q "smpp bound" "$demo/switchboard.log" && break
		sleep 0.1
	done
	grep -q "connected to XMPP server" "$demo/switchboard.log" || die "switchboard did not connect to Prosody within 30 s; see demo/switchboard.log"
	grep -q "smpp bound" "$demo/switchboard.log" || die "switchboard did not bind to the simulator within 30 s; see demo/switchboard.log"
fi

cat <<TEXT

  Switchboard demo is running. Ctrl-C stops everything.

  XMPP server   127.0.0.1:5222 (Prosody, domain localhost, no TLS: allow plain-text login)
  accounts      alice@localhost / alice   (number +12015550100)
                bob@localhost   / bob     (number +12015550101)
  component     sms.localhost on 127.0.0.1:5347
TEXT
if $prosody_only; then
	printf '\n  (--prosody-only: no SMSC simulator, no switchboard)\n\n'
else
	cat <<TEXT
  SMSC sim      SMPP 127.0.0.1:2775, web http://127.0.0.1:8025/

  1. Log in as alice@localhost / alice with any XMPP client (Gajim, Dino, profanity, ...),
     server 127.0.0.1 port 5222, TLS off.
  2. Send a message to +12015550199@sms.localhost: it leaves as SMS; watch it arrive at the
     simulator (http://127.0.0.1:8025/ and the log below).
  3. Text back as the phone:
       curl --data-urlencode from=+12015550199 --data-urlencode to=+12015550100 \\
            --data-urlencode text='hi alice' http://127.0.0.1:8025/mo
  4. Message +12015550101@sms.localhost: bob has that number, so it goes over XMPP
     (log in as bob@localhost / bob to see it).

  Logs: demo/switchboard.log, demo/smsc-sim.log, $pdir/prosody.log

TEXT
	setsid tail -n +1 -F "$demo/smsc-sim.log" "$demo/switchboard.log" &
	pids+=($!)
fi

# Runs until Ctrl-C (the trap stops everything), or until something we started exits.
wait -n "${pids[@]}" || true
say "a demo process exited unasked; stopping the rest (see the logs)"
exit 1
