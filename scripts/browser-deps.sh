#!/usr/bin/env bash
# Installs what the SMSC simulator's browser test (smsgw/smsc/browser_test.go)
# needs, only when missing: Debian's chromium, node and npm (apt-get), and
# playwright-core (npm ci from the lock file in smsgw/smsc/testdata/browser).
# Playwright never downloads a browser here; the test uses /usr/bin/chromium.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
[ -x /usr/bin/chromium ] || need+=(chromium)
command -v node >/dev/null 2>&1 || need+=(nodejs)
command -v npm >/dev/null 2>&1 || need+=(npm)

if [ ${#need[@]} -gt 0 ]; then
	if ! command -v apt-get >/dev/null 2>&1; then
		echo "browser-deps: missing ${need[*]} and no apt-get; install them by hand" >&2
		exit 1
	fi
	sudo=()
	if [ "$(id -u)" -ne 0 ]; then
		if ! command -v sudo >/dev/null 2>&1; then
			echo "browser-deps: missing ${need[*]}; run as root to install them" >&2
			exit 1
		fi
		sudo=(sudo)
	fi
	echo "browser-deps: installing ${need[*]}" >&2
	"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
	"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}"
fi

dir=smsgw/smsc/testdata/browser
if [ ! -f "$dir/node_modules/playwright-core/package.json" ]; then
	echo "browser-deps: npm ci in $dir" >&2
	(cd "$dir" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error)
fi
