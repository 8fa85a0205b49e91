# Sourced by scripts/bench-sitting.sh and scripts/pg-floor.sh.
#
#   bench_binary                  install what the runs need
#                                 (scripts/bench-deps.sh) and set
#                                 SWITCHBOARD, building bin/switchboard
#                                 unless it names a binary already.
#   pg_throwaway DIR              start a throwaway durable PostgreSQL
#                                 server (fsync and synchronous_commit on,
#                                 the defaults) on a free loopback port, its
#                                 files under DIR. Sets BENCH_PG
#                                 (postgres://postgres@127.0.0.1:PORT),
#                                 pgbin and pgdata.
#   pg_throwaway_stop             stop it (call from the caller's EXIT trap).
#   proc_ticks PID [children]     utime + stime of PID so far, in clock
#                                 ticks (getconf CLK_TCK a second), with
#                                 its reaped children's when asked; 0 if
#                                 PID is gone.
#
# Run as root, the server runs as the postgres user (initdb refuses root).

bench_binary() {
	scripts/bench-deps.sh >&2
	SWITCHBOARD=${SWITCHBOARD:-}
	if [ -z "$SWITCHBOARD" ]; then
		go build -o bin/switchboard ./cmd/switchboard
		SWITCHBOARD=bin/switchboard
	fi
}

as_pg() {
	if [ "$(id -u)" -eq 0 ]; then
		runuser -u postgres -- "$@"
	else
		"$@"
	fi
}

pg_throwaway() {
	local dir=$1 initdb port
	initdb=$(compgen -G '/usr/lib/postgresql/*/bin/initdb' | sort -V | tail -1 || true)
	[ -n "$initdb" ] || { echo "no PostgreSQL initdb under /usr/lib/postgresql; install postgresql or set BENCH_PG" >&2; return 1; }
	pgbin=$(dirname "$initdb")
	port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
	pgdata=$dir/pg/data
	mkdir -p "$dir/pg"
	[ "$(id -u)" -ne 0 ] || chown postgres "$dir" "$dir/pg"
	as_pg "$pgbin/initdb" -D "$pgdata" -A trust -U postgres >/dev/null
	as_pg "$pgbin/pg_ctl" -D "$pgdata" -o "-k $dir/pg -p $port -c listen_addresses=127.0.0.1" -l "$dir/pg/log" -w start >/dev/null
	BENCH_PG=postgres://postgres@127.0.0.1:$port
}

pg_throwaway_stop() {
	[ -z "${pgdata:-}" ] || as_pg "$pgbin/pg_ctl" -D "$pgdata" -m fast -w stop >/dev/null 2>&1 || true
}

proc_ticks() {
	# The command name, in parentheses, may hold spaces: fields after the
	# last ")" are counted from state (field 3); utime and stime are 14,
	# 15, cutime and cstime 16, 17.
	local stat
	stat=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null) || { echo 0; return; }
	awk -v children="${2:-}" '{ print $12 + $13 + (children != "" ? $14 + $15 : 0) }' <<<"$stat"
}
