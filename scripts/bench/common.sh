# Sourced by the benchmark scripts: the repository root as the working
# directory, the intakefs binary in $INTAKEFS (built when missing), and a
# check that this machine can mount.
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"

INTAKEFS="${INTAKEFS:-$ROOT/bin/intakefs}"
if [ ! -x "$INTAKEFS" ]; then
	echo "bench: building $INTAKEFS" >&2
	mkdir -p "$(dirname "$INTAKEFS")"
	go build -o "$INTAKEFS" ./cmd/intakefs
fi
[ -e /dev/fuse ] || { echo "bench: /dev/fuse is missing: cannot mount" >&2; exit 1; }

now() { date +%s.%N; }

# Figures (the issue 5 and 6 benchmarks): MB/s of N bytes in S seconds,
# ratios and comparisons that take "n/a", each run's figure kept under a
# key (add) and summed up as "median min max" (summary).
mbps() { awk -v n="$1" -v s="$2" 'BEGIN { if (s <= 0) s = 1e-6; printf "%.1f", n / 1e6 / s }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || b == 0) print "n/a"; else printf "%.2f", a / b }'; }
ge() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a != "n/a" && a != "" && a + 0 >= b + 0) }'; }
TICK="$(getconf CLK_TCK)"

# drop_caches: the page cache, as root (DROP_OK=0 when that was refused)
DROP_OK=1
drop_caches() {
	sync
	if ! (echo 3 >/proc/sys/vm/drop_caches) 2>/dev/null; then DROP_OK=0; fi
}

declare -A RES=()
DETAILS=()
detail() { DETAILS+=("$*"); log "$*"; } # the script defines log
add() { RES[$1]="${RES[$1]:-}$2 "; } # add KEY VALUE: one run's figure
# summary KEY: "median min max" of KEY's runs ("" if none)
summary() {
	# shellcheck disable=SC2086 # the runs are words
	printf '%s\n' ${RES[$1]:-} | sort -g | awk 'NF { v[++n] = $1 } END {
		if (!n) exit
		m = (n % 2) ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
		printf "%s %s %s", m, v[1], v[n] }'
}
med() { local s; s="$(summary "$1")"; echo "${s%% *}"; }
