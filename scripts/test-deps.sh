#!/usr/bin/env bash
# Installs what the integration tests start (Prosody, mod_privilege, PostgreSQL, ejabberd, and node with
# the npm smpp package for the independent SMSC), and gcc for -race and SQLite's C, from Debian and npm,
# only when missing. Used by
# `make test`; safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

need=()
command -v prosody >/dev/null 2>&1 || installed prosody || need+=(prosody)
installed prosody-modules || [ -e /usr/lib/prosody/modules/mod_privilege/mod_privilege.lua ] || need+=(prosody-modules)
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || need+=(postgresql)
command -v ejabberdctl >/dev/null 2>&1 || [ -x /usr/sbin/ejabberdctl ] || need+=(ejabberd)
# A C compiler: go test -race needs cgo, and with it the store links SQLite's C.
command -v gcc >/dev/null 2>&1 || need+=(gcc libc6-dev)
# An independent XMPP client for the interop test.
/usr/bin/python3 -c 'import slixmpp' >/dev/null 2>&1 || need+=(python3-slixmpp)
# An independent SMSC for the interop test: the npm smpp package under node.
command -v node >/dev/null 2>&1 || need+=(nodejs)
command -v npm >/dev/null 2>&1 || need+=(npm)

npm_smsc() {
	local dir=testdata/smpp-node
	if [ ! -f "$dir/node_modules/smpp/package.json" ]; then
		echo "test-deps: npm ci in $dir" >&2
		(cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
	fi
}

if [ ${#need[@]} -eq 0 ]; then
	npm_smsc
	exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
	echo "test-deps: missing ${need[*]} and no apt-get; install them by hand" >&2
	exit 1
fi
sudo=()
if [ "$(id -u)" -ne 0 ]; then
	if ! command -v sudo >/dev/null 2>&1; then
		echo "test-deps: missing ${need[*]}; run as root to install them" >&2
		exit 1
	fi
	sudo=(sudo)
fi
echo "test-deps: installing ${need[*]}" >&2
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}"
# Debian starts the ejabberd it installs on the standard ports; the tests start their own.
if [[ " ${need[*]} " == *" ejabberd "* ]]; then "${sudo[@]}" ejabberdctl stop >/dev/null 2>&1 || true; fi
npm_smsc
