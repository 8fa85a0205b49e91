#!/usr/bin/env bash
# Alternating runs of two builds, the evidence BENCHMARKS.md gives for a
# change: one machine's run-to-run drift (±7 % here) is larger than most
# changes, so the two builds take turns and the means are compared.
#
#   scripts/bench-ab.sh OLD NEW PAIRS [bench flags…]
#
# OLD and NEW are switchboard binaries (go build -o /tmp/old ./cmd/switchboard
# on each commit). Each pair runs OLD then NEW with the bench flags (default
# -mode component -n 30000 -window 1000 -smpp-window 100 -mo -1, SQLite).
# Prints each run as "binary msg/s CPU-s-per-1,000", then the means.
set -euo pipefail
[ $# -ge 3 ] || { sed -n '2,12p' "$0"; exit 2; }
a=$1 b=$2 pairs=$3
shift 3
flags=("$@")
[ ${#flags[@]} -gt 0 ] || flags=(-mode component -n 30000 -window 1000 -smpp-window 100 -mo -1)
out=$(mktemp)
trap 'rm -f "$out"' EXIT
for _ in $(seq "$pairs"); do
	for bin in "$a" "$b"; do
		res=$("$bin" bench "${flags[@]}" -q 2>&1) || { echo "$res" >&2; exit 1; }
		rate=$(awk -F'|' '/msg\/s \(whole run\)/ {gsub(/ /, "", $2); print $2}' <<<"$res")
		cpu=$(awk -F'|' '/Switchboard CPU s \/ 1,000 msgs/ {gsub(/ /, "", $2); print $2}' <<<"$res")
		echo "$bin $rate $cpu" | tee -a "$out"
	done
done
awk '{n[$1]++; r[$1] += $2; c[$1] += $3}
	END {for (k in n) printf "%s: mean %d msg/s, %.4f CPU s per 1,000 (%d runs)\n", k, r[k]/n[k], c[k]/n[k], n[k]}' "$out"
