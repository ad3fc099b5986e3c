#!/usr/bin/env bash
# Benchmark for issue 6: reading a large compressed CSV file through the
# mount (intakefs serves x.csv.gz / .zst / .xz decompressed as x.csv,
# through a spool in its cache directory) vs the format's own tool on the
# same file, in one run, side by side:
#
#   tool:   `gzip -dc F > /dev/null` (zstd -dc, xz -dc), the compressed file
#           read once first (page cache warm): MB/s of decompressed bytes;
#   cold:   a fresh mount on an empty --cache-dir, the compressed file warm
#           in the page cache as for the tool, `cat MOUNT/big.csv > /dev/null`
#           (the first read: decompressing); goal >= 0.9x the tool (aim:
#           beat gzip); the bytes are then compared with the original (cmp,
#           not timed);
#   warm:   a remount on the same cache directory (the spool is kept), page
#           cache dropped, `cat` again, vs `cat` of the uncompressed original
#           after dropping the page cache; goal: local-disk speed (>= 0.9x);
#   also:   st_size of MOUNT/big.csv before and after the first read, and
#           before the warm one; the daemon's peak RSS (VmHWM) and CPU
#           seconds (its own + its children's, i.e. an external xz).
#
# xz is measured both ways: "xz" with the daemon finding xz(1) on its PATH
# (intakefs then decodes with `xz -dc -T0` in a child process, see
# engine/decomp.go useExternalXZ), and "xz-go" with a PATH without xz (the
# built-in Go decoder). `xz -dc -T0` is timed too, for reference.
#
# The CSV: vega-datasets flights-3m.parquet exported to CSV by DuckDB
# (3 M real rows, about 106 MB), its rows repeated (header once) up to
# SIZE_MB MB and cut at a row boundary; compressed with the tools'
# defaults: gzip -6, zstd -3 (-T0 to make it: same format), xz -6 -T0
# (-T0 writes independent blocks, which a threaded xz can decode in
# parallel). All of it is kept in DATA_DIR and reused by later runs.
#
#   bash scripts/bench_issue6.sh
#   SIZE_MB=100 ONLY=gz,zst bash scripts/bench_issue6.sh
#
# Knobs (environment): SIZE_MB (1000; MB = 10^6 bytes), REPEAT (1; timed
# figures are the median, min-max shown, the formats interleaved round by
# round), ONLY (gz,zst,xz; "xz" means both xz rows, "xz-ext" or "xz-go"
# picks one), OUT (${TMPDIR:-/tmp}/intakefs-bench6-results.txt), DATA_DIR
# (${TMPDIR:-/tmp}/intakefs-bench6-data), STEP_TIMEOUT (600 s for any one
# step), CACHE_MAX (10G, --cache-max-size), INTAKEFS (bin/intakefs, built
# when missing).
#
# Needs /dev/fuse, root for dropping the page cache (without it the warm
# figures are marked), DuckDB for node (scripts/setup.sh) the first time,
# and about 2.5x SIZE_MB free under TMPDIR besides DATA_DIR. Mounts and the
# per-run directory are removed at the end, also on failure or Ctrl-C.
set -euo pipefail

# shellcheck source=scripts/bench/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/bench/common.sh" # cd ROOT; INTAKEFS; now()

SIZE_MB="${SIZE_MB:-1000}"
REPEAT="${REPEAT:-1}"
ONLY="${ONLY:-gz,zst,xz}"
OUT="${OUT:-${TMPDIR:-/tmp}/intakefs-bench6-results.txt}"
DATA_DIR="${DATA_DIR:-${TMPDIR:-/tmp}/intakefs-bench6-data}"
STEP_TIMEOUT="${STEP_TIMEOUT:-600}"
CACHE_MAX="${CACHE_MAX:-10G}"

log() { printf 'bench6: %s\n' "$*" >&2; }
die() { printf 'bench6: error: %s\n' "$*" >&2; exit 1; }

has() { case ",$ONLY," in *",$1,"*) return 0 ;; *) return 1 ;; esac; }
want() { # want VARIANT: gz zst xz xz-go
	case "$1" in
	xz) has xz || has xz-ext ;;
	xz-go) has xz || has xz-go ;;
	*) has "$1" ;;
	esac
}
VARIANTS=()
for v in gz zst xz xz-go; do want "$v" && VARIANTS+=("$v"); done
[ "${#VARIANTS[@]}" -gt 0 ] || die "ONLY=$ONLY selects nothing (gz, zst, xz, xz-ext, xz-go)"
for t in gzip zstd xz cmp; do command -v "$t" >/dev/null 2>&1 || die "$t is needed"; done

# ================================================================ helpers
mib() { if [ -n "$1" ]; then awk -v k="$1" 'BEGIN { printf "%.0f MiB", k / 1024 }'; else echo "—"; fi; }
# cpu_of PID: "self children" CPU seconds of PID so far (children: waited for)
cpu_of() { awk -v t="$TICK" '{ printf "%.2f %.2f", ($14 + $15) / t, ($16 + $17) / t }' "/proc/$1/stat" 2>/dev/null || true; }

# timed CMD...: run CMD (bounded by STEP_TIMEOUT), stdout to /dev/null;
# T_SECS is its wall time, T_CPU its user+system CPU seconds.
T_SECS="" T_CPU=""
timed() {
	local TIMEFORMAT='%R %U %S' rc=0 r u s
	sync
	{ time timeout -k 10 "$STEP_TIMEOUT" "$@" >/dev/null 2>>"$WORK/commands.err"; } 2>"$WORK/time.out" || rc=$?
	if [ "$rc" -ne 0 ]; then
		T_SECS="" T_CPU=""
		log "failed (exit $rc$([ "$rc" -eq 124 ] && echo ", timed out after ${STEP_TIMEOUT}s")): $*"
		tail -3 "$WORK/commands.err" >&2
		return 1
	fi
	read -r r u s <"$WORK/time.out"
	T_SECS="$r"
	T_CPU="$(awk -v u="$u" -v s="$s" 'BEGIN { printf "%.2f", u + s }')"
}

declare -A ONE=()
fig() { # fig KEY [DECIMALS]: "median" or "median (min–max)"
	local s m lo hi d="${2:-1}"
	s="$(summary "$1")"
	[ -n "$s" ] || { echo "—"; return; }
	read -r m lo hi <<<"$s"
	m="$(printf "%.${d}f" "$m")" lo="$(printf "%.${d}f" "$lo")" hi="$(printf "%.${d}f" "$hi")"
	if [ "$lo" = "$hi" ]; then printf '%s' "$m"; else printf '%s (%s–%s)' "$m" "$lo" "$hi"; fi
}
cpu() { local m; m="$(med "$1")"; if [ -n "$m" ]; then printf '%.2f' "$m"; else echo "—"; fi; } # median CPU s
# measure KEY BYTES CMD...: time CMD, record MB/s of BYTES under KEY and
# the CPU seconds under KEY_cpu
measure() {
	local key="$1" bytes="$2"
	shift 2
	timed "$@" || return 1
	add "$key" "$(mbps "$bytes" "$T_SECS")"
	add "${key}_cpu" "$T_CPU"
	detail "  $key: $T_SECS s, $(mbps "$bytes" "$T_SECS") MB/s, CPU $T_CPU s: $*"
}

# ================================================================ data
mkdir -p "$DATA_DIR"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/intakefs-bench6.XXXXXX")"
MNT="$WORK/mnt"
IPID="" IPHASE=""
PEAK_KB=0
mkdir -p "$MNT"

stop_intakefs() { # records VmHWM and CPU of the daemon under HWM_/CPU_$IPHASE
	[ -n "$IPID" ] || return 0
	local hwm
	hwm="$(awk '$1 == "VmHWM:" { print $2 }' "/proc/$IPID/status" 2>/dev/null || true)"
	if [ -n "$hwm" ]; then
		ONE["hwm_$IPHASE"]="$hwm"
		[ "$hwm" -le "$PEAK_KB" ] || PEAK_KB="$hwm"
	fi
	ONE["cpu_$IPHASE"]="$(cpu_of "$IPID")"
	if kill -0 "$IPID" 2>/dev/null; then
		kill -INT "$IPID" 2>/dev/null || true
		for _ in $(seq 1 150); do
			kill -0 "$IPID" 2>/dev/null || break
			sleep 0.1
		done
		kill -0 "$IPID" 2>/dev/null && kill -KILL "$IPID" 2>/dev/null
	fi
	wait "$IPID" 2>/dev/null || true
	IPID=""
	if mountpoint -q "$MNT" 2>/dev/null; then
		fusermount3 -u "$MNT" 2>/dev/null || umount "$MNT" 2>/dev/null || umount -l "$MNT" 2>/dev/null || true
	fi
}
cleanup() {
	local rc=$?
	set +e
	stop_intakefs
	rm -rf "$WORK"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

TARGET=$((SIZE_MB * 1000000))
BASE="$DATA_DIR/flights-3m.csv"
ORIG="$DATA_DIR/big-${SIZE_MB}MB.csv"
avail_kb="$(df -Pk "$DATA_DIR" | awk 'NR == 2 { print $4 }')"
need_kb=$((SIZE_MB * 1000 * 5 / 2))
[ -f "$ORIG.xz" ] || need_kb=$((need_kb + SIZE_MB * 1000 * 3 / 2))
[ "$avail_kb" -ge "$need_kb" ] || die "need about $((need_kb / 1000)) MB free under ${TMPDIR:-/tmp}, have $((avail_kb / 1000)) MB"

t_make="$(now)"
if [ ! -f "$BASE" ]; then
	FLIGHTS="$ROOT/testdata/vega/data/flights-3m.parquet"
	[ -f "$FLIGHTS" ] || die "$FLIGHTS missing (run scripts/setup.sh)"
	[ -d "$ROOT/scripts/node/node_modules/@duckdb/node-api" ] || die "DuckDB for node missing (run scripts/setup.sh)"
	log "exporting $FLIGHTS to CSV with DuckDB"
	# shellcheck disable=SC2016 # JavaScript, not shell
	timeout "$STEP_TIMEOUT" node --input-type=module -e '
		import { createRequire } from "node:module";
		const [pkg, src, out] = process.argv.slice(1);
		const { DuckDBInstance } = createRequire(pkg)("@duckdb/node-api");
		const Q = String.fromCharCode(39);
		const q = (s) => Q + s.split(Q).join(Q + Q) + Q;
		const conn = await (await DuckDBInstance.create(":memory:")).connect();
		await conn.run("SET preserve_insertion_order = true");
		await conn.run(`COPY (SELECT * FROM read_parquet(${q(src)})) TO ${q(out)} (FORMAT csv, HEADER)`);
	' "$ROOT/scripts/node/package.json" "$FLIGHTS" "$BASE.tmp"
	mv "$BASE.tmp" "$BASE"
fi
if [ ! -f "$ORIG" ]; then
	log "building $ORIG: the rows of $(basename "$BASE") repeated up to $SIZE_MB MB"
	body=$(($(stat -c %s "$BASE") - $(head -n 1 "$BASE" | wc -c)))
	copies=$((TARGET / body + 1))
	# head -c ends the loop early (SIGPIPE): the size is checked below
	{
		head -n 1 "$BASE"
		for _ in $(seq 1 "$copies"); do tail -n +2 "$BASE"; done
	} 2>/dev/null | head -c "$TARGET" >"$ORIG.tmp" || true
	[ "$(stat -c %s "$ORIG.tmp")" -eq "$TARGET" ] || die "could not write $ORIG.tmp"
	# cut the last, partial row
	truncate -s $((TARGET - $(tail -n 1 "$ORIG.tmp" | wc -c))) "$ORIG.tmp"
	mv "$ORIG.tmp" "$ORIG"
fi
BYTES="$(stat -c %s "$ORIG")"
declare -A EXT=([gz]=gz [zst]=zst [xz]=xz [xz-go]=xz)
declare -A MAKE=([gz]="gzip -6" [zst]="zstd -3 -T0 -q" [xz]="xz -6 -T0")
for v in "${VARIANTS[@]}"; do
	e="${EXT[$v]}"
	[ ! -f "$ORIG.$e" ] || continue
	log "compressing: ${MAKE[$v]} -c $(basename "$ORIG") > $(basename "$ORIG").$e"
	t0="$(now)"
	# shellcheck disable=SC2086 # MAKE is a command with its options
	timeout "$STEP_TIMEOUT" ${MAKE[$v]} -c "$ORIG" >"$ORIG.$e.tmp" || die "${MAKE[$v]} failed"
	mv "$ORIG.$e.tmp" "$ORIG.$e"
	log "  $(stat -c %s "$ORIG.$e") bytes in $(awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.0f", b - a }') s"
done
MAKE_SECS="$(awk -v a="$t_make" -v b="$(now)" 'BEGIN { printf "%.0f", b - a }')"

# one catalog per format, each with one source "big" (served as big.csv)
for e in gz zst xz; do
	printf 'metadata: {version: 1}\nsources:\n  big: {driver: csv, args: {urlpath: %s}}\n' \
		"'$ORIG.$e'" >"$WORK/catalog-$e.yaml"
done
# a PATH without xz, for the daemon to use its Go decoder
NOXZ="$WORK/noxz-bin"
mkdir -p "$NOXZ"
for t in fusermount3 fusermount; do
	if p="$(command -v "$t" 2>/dev/null)"; then ln -s "$p" "$NOXZ/$t"; fi
done

# mount_intakefs VARIANT CACHE_DIR PHASE: mount the variant's catalog
mount_intakefs() {
	local envs=()
	[ "$1" != xz-go ] || envs=(PATH="$NOXZ")
	env "${envs[@]}" "$INTAKEFS" mount "$WORK/catalog-${EXT[$1]}.yaml" "$MNT" \
		--cache-dir "$2" --cache-max-size "$CACHE_MAX" --log-level warn >>"$WORK/intakefs.log" 2>&1 &
	IPID=$! IPHASE="$3"
	for _ in $(seq 1 300); do
		mountpoint -q "$MNT" && break
		if ! kill -0 "$IPID" 2>/dev/null; then
			tail -20 "$WORK/intakefs.log" >&2
			IPID=""
			die "intakefs exited before mounting"
		fi
		sleep 0.1
	done
	mountpoint -q "$MNT" || die "$MNT not mounted after 30 s"
	[ -f "$MNT/big.csv" ] || { cat "$MNT/.catalog/errors.txt" >&2; die "no big.csv in the mount"; }
}
size_of() { stat -c %s "$1" 2>/dev/null || echo "?"; }

declare -A TOOL=([gz]="gzip -dc" [zst]="zstd -dc" [xz]="xz -dc" [xz-go]="xz -dc")
LOAD_START="$(cut -d' ' -f1-3 /proc/loadavg)"
t_bench="$(now)"

# ================================================================ rounds
for r in $(seq 1 "$REPEAT"); do
	for v in "${VARIANTS[@]}"; do
		e="${EXT[$v]}"
		F="$ORIG.$e"
		detail "round $r, $v ($(basename "$F"), $(stat -c %s "$F") B)"
		cat "$F" >/dev/null # the compressed file warm in the page cache
		tk="tool_$v"
		[ "$v" != xz-go ] || tk=tool_xz
		if [ "$v" != xz-go ] || ! want xz; then
			# shellcheck disable=SC2086 # TOOL is a command with its options
			measure "$tk" "$BYTES" ${TOOL[$v]} "$F" || true
			[ "$tk" != tool_xz ] || measure tool_xz_t0 "$BYTES" xz -dc -T0 "$F" || true
		fi

		# cold: empty cache directory (kept for the warm re-read)
		rm -rf "$WORK/cache"
		mount_intakefs "$v" "$WORK/cache" "cold_$v"
		before="$(size_of "$MNT/big.csv")"
		cat "$F" >/dev/null
		measure "cold_$v" "$BYTES" cat "$MNT/big.csv" || true
		after="$(size_of "$MNT/big.csv")"
		# the spool is fsync(2)ed and renamed into place after the last byte
		# was read: wait for that, so that the remount finds it complete
		t0="$(now)"
		for _ in $(seq 1 "$((STEP_TIMEOUT * 10))"); do
			compgen -G "$WORK/cache/spool/*.partial-*" >/dev/null || break
			sleep 0.1
		done
		spool="$(find "$WORK/cache/spool" -name '*.spool' -printf '%s B, ' 2>/dev/null)complete $(awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }') s after the read"
		if timeout "$STEP_TIMEOUT" cmp -s "$MNT/big.csv" "$ORIG"; then same=yes; else same=NO; fi
		ONE["size_cold_$v"]="$before → $after"
		ONE["same_$v"]="${ONE["same_$v"]:-}$same "
		stop_intakefs
		read -r self kids <<<"${ONE["cpu_cold_$v"]:-? ?}"
		add "cold_${v}_dself" "$self"
		add "cold_${v}_dkids" "$kids"
		detail "    st_size before/after the read: $before / $after (original $BYTES); equal: $same; spool: $spool; daemon CPU s: $self self + $kids children; VmHWM $(mib "${ONE["hwm_cold_$v"]:-}")"

		# warm: remount on the same cache directory, page cache dropped
		if [ "$v" = xz-go ]; then
			rm -rf "$WORK/cache"
			continue # the same spool as xz's: nothing new to measure
		fi
		mount_intakefs "$v" "$WORK/cache" "warm_$v"
		drop_caches
		wbefore="$(size_of "$MNT/big.csv")"
		measure "warm_$v" "$BYTES" cat "$MNT/big.csv" || true
		ONE["size_warm_$v"]="$wbefore"
		if [ "$r" = "$REPEAT" ]; then
			if timeout "$STEP_TIMEOUT" cmp -s "$MNT/big.csv" "$ORIG"; then same=yes; else same=NO; fi
			ONE["same_$v"]+="$same "
		fi
		stop_intakefs
		rm -rf "$WORK/cache"
		drop_caches
		measure "local_$v" "$BYTES" cat "$ORIG" || true
		detail "    warm st_size before the read: $wbefore; VmHWM $(mib "${ONE["hwm_warm_$v"]:-}")"
	done
done
LOAD_END="$(cut -d' ' -f1-3 /proc/loadavg)"
BENCH_SECS="$(awk -v a="$t_bench" -v b="$(now)" 'BEGIN { printf "%.0f", b - a }')"
if grep -qi 'level=error\|panic' "$WORK/intakefs.log" 2>/dev/null; then
	detail "intakefs log has errors:"
	while IFS= read -r l; do detail "    $l"; done < <(grep -i 'level=error\|panic' "$WORK/intakefs.log" | head -5)
fi

# ================================================================ table
verdict() { if ge "$1" "$2"; then echo "**meets**"; else echo "**misses**"; fi; }
ROWS=()
for v in "${VARIANTS[@]}"; do
	tk="tool_$v"
	[ "$v" != xz-go ] || tk=tool_xz
	rc="$(ratio "$(med "cold_$v")" "$(med "$tk")")"
	if [ "$v" = xz-go ]; then
		warm="(same spool as xz)" rw="" vw=""
	else
		rw="$(ratio "$(med "warm_$v")" "$(med "local_$v")")"
		warm="$(fig "warm_$v") | $(fig "local_$v")"
		vw="${rw}× $(verdict "$rw" 0.9)"
	fi
	[ -n "$vw" ] || warm="$warm | —"
	name="$v"
	case "$v" in gz) name="gz (gzip -6)" ;; zst) name="zst (zstd -3)" ;; xz) name="xz (-6 -T0), external xz" ;; xz-go) name="xz (-6 -T0), Go decoder" ;; esac
	cs="$(stat -c %s "$ORIG.${EXT[$v]}")"
	ROWS+=("| $name | $(ratio "$BYTES" "$cs"):1 | ${TOOL[$v]} $(fig "$tk") (CPU $(cpu "${tk}_cpu") s) | $(fig "cold_$v") (CPU $(cpu "cold_${v}_dself")+$(cpu "cold_${v}_dkids") s) | ${rc}× $(verdict "$rc" 0.9) | $warm | ${vw:-—} | ${ONE["size_cold_$v"]:-?}; warm ${ONE["size_warm_$v"]:-—} | $(mib "${ONE["hwm_cold_$v"]:-}") / $(mib "${ONE["hwm_warm_$v"]:-}") | ${ONE["same_$v"]:-?}|")
done

ver() { "$@" 2>&1 | head -1 || true; }
{
	echo "intakefs issue 6 benchmark — $(date -u '+%Y-%m-%d %H:%M UTC'), $(uname -r), $(nproc) cores, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo) RAM"
	echo "intakefs: $INTAKEFS (git $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null)$(git -C "$ROOT" diff --quiet 2>/dev/null || echo '+dirty tree')); $(ver gzip --version); $(ver zstd --version | sed 's/^\*\** *//; s/ by .*//; s/,$//'); $(ver xz --version)"
	echo "file: $(basename "$ORIG"), $BYTES B, flights-3m rows repeated; in $DATA_DIR (made in $MAKE_SECS s this run)"
	echo "MB/s of decompressed bytes (MB = 10^6 B), median of $REPEAT run(s) (min–max); tool and cold: compressed file warm in the page cache; warm and local: page cache dropped first: $([ "$DROP_OK" = 1 ] && echo yes || echo 'NO (no permission)')"
	echo "load average at start $LOAD_START, at end $LOAD_END; the measuring took $BENCH_SECS s"
	echo
	echo "| format | ratio | tool MB/s (CPU s) | intakefs cold MB/s (daemon CPU s self+children) | cold / tool, goal ≥ 0.9× | intakefs warm MB/s | local cat MB/s | warm / local, goal ≥ 0.9× | st_size before → after cold read; before warm | VmHWM cold / warm | bytes equal (each cold read, last warm) |"
	echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
	printf '%s\n' "${ROWS[@]}"
	if want xz; then
		echo
		echo "reference: xz -dc -T0 (what intakefs runs for xz): $(fig tool_xz_t0) MB/s (CPU $(cpu tool_xz_t0_cpu) s); intakefs/xz -T0: $(ratio "$(med cold_xz)" "$(med tool_xz_t0)")×"
	fi
	echo "peak RSS of all daemons: $(mib "$PEAK_KB")"
	echo
	echo "details (single runs)"
	printf '  %s\n' "${DETAILS[@]}"
} >"$OUT"
echo
sed '/^details/,$d' "$OUT"
log "table and details saved to $OUT"
