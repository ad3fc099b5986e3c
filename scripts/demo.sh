#!/usr/bin/env bash
# A tour of intakefs: mount the demo catalog (testdata/demo/catalog.yaml,
# over the vega-datasets files) and read it with ls, head, cat, pandas and
# DuckDB. Everything is unmounted again when the script ends, even on error.
#
#   bash scripts/demo.sh            # from anywhere in the repo
#   KEEP_MOUNTED=1 bash scripts/demo.sh   # stay mounted until Ctrl-C
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

bash scripts/setup.sh --demo
[ -x bin/intakefs ] || { echo "demo: bin/intakefs was not built" >&2; exit 1; }

WORK="$(mktemp -d "${TMPDIR:-/tmp}/intakefs-demo.XXXXXX")"
MNT="$WORK/mnt"
CACHE="$WORK/cache"
LOG="$WORK/intakefs.log"
mkdir -p "$MNT" "$CACHE"
PID=""

cleanup() {
	local rc=$?
	set +e
	if [ -n "$PID" ] && kill -0 "$PID" 2>/dev/null; then
		kill -INT "$PID" 2>/dev/null
		for _ in $(seq 1 50); do
			kill -0 "$PID" 2>/dev/null || break
			sleep 0.2
		done
		if kill -0 "$PID" 2>/dev/null; then
			echo "demo: intakefs did not exit after SIGINT; killing it" >&2
			kill -KILL "$PID" 2>/dev/null
		fi
		wait "$PID" 2>/dev/null
	fi
	if mountpoint -q "$MNT" 2>/dev/null; then
		echo "demo: $MNT still mounted; unmounting" >&2
		fusermount3 -u "$MNT" 2>/dev/null || umount -l "$MNT" 2>/dev/null
	fi
	if [ "$rc" -ne 0 ] && [ -s "$LOG" ]; then
		echo "demo: failed (exit $rc); intakefs log:" >&2
		tail -n 40 "$LOG" >&2
	fi
	mountpoint -q "$MNT" 2>/dev/null || rm -rf "$WORK"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if [ -t 1 ]; then
	step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }
else
	step() { printf '\n$ %s\n' "$*"; }
fi

CATALOG="$ROOT/testdata/demo/catalog.yaml"
MOUNT_ARGS=("$CATALOG" "$MNT")
# A cache of the demo's own, where this build has the flag.
if bin/intakefs mount --help 2>&1 | grep -q -- '--cache-dir'; then
	MOUNT_ARGS+=(--cache-dir "$CACHE")
fi
step "intakefs mount ${MOUNT_ARGS[*]} &"
bin/intakefs mount "${MOUNT_ARGS[@]}" >"$LOG" 2>&1 &
PID=$!

# Wait (at most 30 s) for the mount to appear.
for _ in $(seq 1 150); do
	mountpoint -q "$MNT" && break
	if ! kill -0 "$PID" 2>/dev/null; then
		wait "$PID" || true
		PID=""
		echo "demo: intakefs exited before mounting:" >&2
		cat "$LOG" >&2
		exit 1
	fi
	sleep 0.2
done
mountpoint -q "$MNT" || { echo "demo: $MNT not mounted after 30 s" >&2; exit 1; }
sed -n '1,5p' "$LOG"

step "ls -la $MNT"
ls -la "$MNT"

step "ls -la $MNT/flights   # the nested catalog"
ls -la "$MNT/flights"

step "cat $MNT/.catalog/errors.txt   # empty when the catalog loaded cleanly"
cat "$MNT/.catalog/errors.txt"

step "head -n 5 $MNT/seattle_weather.csv"
head -n 5 "$MNT/seattle_weather.csv"

step "wc -l $MNT/seattle_weather_parts.csv   # three part files, one header"
wc -l "$MNT/seattle_weather_parts.csv"

step "cat $MNT/stocks/describe.yaml"
cat "$MNT/stocks/describe.yaml"

step "head -c 300 $MNT/flights/flights@size=5k.json   # a parameter in the path"
head -c 300 "$MNT/flights/flights@size=5k.json"
echo

step "/usr/bin/python3: pandas.read_csv('$MNT/seattle_weather.csv')"
/usr/bin/python3 - "$MNT" <<'PY'
import sys
import pandas as pd

mnt = sys.argv[1]
df = pd.read_csv(f"{mnt}/seattle_weather.csv", parse_dates=["date"])
print(df.shape, "rows x columns")
by_year = df.groupby(df["date"].dt.year).agg(
    precipitation_mm=("precipitation", "sum"),
    mean_max_temp_c=("temp_max", "mean"),
)
print(by_year.round(1).to_string())
PY

step "node scripts/node/query.mjs: DuckDB over $MNT/flights_3m.parquet"
node scripts/node/query.mjs "
	SELECT origin,
	       count(*) AS flights,
	       round(avg(delay), 1) AS avg_delay_min
	FROM read_parquet('$MNT/flights_3m.parquet')
	GROUP BY origin
	ORDER BY flights DESC
	LIMIT 5"

if [ -n "${KEEP_MOUNTED:-}" ]; then
	printf '\ndemo: mounted at %s; press Ctrl-C to unmount\n' "$MNT"
	trap 'echo; exit 0' INT
	wait "$PID" || true
fi
printf '\ndemo: done; unmounting %s\n' "$MNT"
