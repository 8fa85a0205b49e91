#!/usr/bin/env bash
# Installs what `switchboard bench` compares against and drives (Kannel 1.4.5 for -kannel,
# Prosody for -mode prosody, PostgreSQL for -dsn postgres) from Debian, and node, npm
# and the npm smpp package for the SMSC of testdata/smpp-node (bench -smsc,
# testdata/loadgen), only when missing. Used by `make bench-tool` and
# scripts/bench-lib.sh (bench-sitting.sh, pg-floor.sh); safe to run again. Never run from tests.
set -euo pipefail
cd "$(dirname "$0")/.."

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

need=()
command -v bearerbox >/dev/null 2>&1 || installed kannel || need+=(kannel)
command -v prosody >/dev/null 2>&1 || installed prosody || need+=(prosody)
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || need+=(postgresql)
command -v node >/dev/null 2>&1 || need+=(nodejs)
command -v npm >/dev/null 2>&1 || need+=(npm)

npm_smsc() {
	if [ ! -f testdata/smpp-node/node_modules/smpp/package.json ]; then
		(cd testdata/smpp-node && npm ci --no-audit --no-fund --loglevel=error >&2)
	fi
}
if [ ${#need[@]} -eq 0 ]; then
	npm_smsc
	exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
	echo "bench-deps: missing ${need[*]} and no apt-get; install them by hand" >&2
	exit 1
fi
sudo=()
if [ "$(id -u)" -ne 0 ]; then
	if ! command -v sudo >/dev/null 2>&1; then
		echo "bench-deps: missing ${need[*]}; run as root to install them" >&2
		exit 1
	fi
	sudo=(sudo)
fi
echo "bench-deps: installing ${need[*]}" >&2
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
# The kannel package starts its own bearerbox/smsbox service on install; the bench runs its own.
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}"
if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
	"${sudo[@]}" systemctl disable --now kannel >/dev/null 2>&1 || true
fi
npm_smsc
