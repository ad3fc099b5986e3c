#!/usr/bin/env bash
# Benchmark for issue 5 ("Proof"): the remote read path — block cache,
# readahead, kernel caching — measured side by side with a direct signed
# GET, rclone mount and s3fs, all against one versitygw S3 server on
# 127.0.0.1, in one run:
#
#   (1) cold sequential read of a 1 GiB object, `cat > /dev/null`, cache
#       empty, page cache dropped: intakefs vs `curl --aws-sigv4` vs
#       rclone mount (--vfs-cache-mode off, and full) vs s3fs;
#       goal: intakefs >= 0.8x the direct GET, ahead of rclone and s3fs;
#   (2) warm re-read after a remount on the same (full) cache directory,
#       page cache dropped, vs `cat` of a local copy; goal >= 0.8x;
#   (3) DuckDB `SELECT avg(COL) FROM read_parquet(MOUNTED)` over a Parquet
#       file of >= 100 MB generated from vega-datasets flights-3m.parquet:
#       bytes fetched from the server with the cache empty (intakefs's
#       RemoteBytes, and the bytes a counting TCP proxy in front of the
#       server saw) vs the bytes of COL's column chunks + the footer,
#       goal <= 1.5x; query time once warm vs the same query on a local
#       copy, goal <= 1.5x;
#   (4) 32 concurrent readers of 32 different 32 MiB objects, cold:
#       aggregate MB/s through intakefs vs rclone (and s3fs, and 32
#       parallel direct GETs for reference);
#   (5) the peak RSS (VmHWM) of the intakefs daemons of all of the above.
#
# Each timed figure is the median of REPEAT runs (min-max shown), the tools
# interleaved run by run so that a change in the machine's load hits them
# alike. MB = 10^6 bytes. The table is printed and saved to OUT (with the
# single runs and the daemon counters below it).
#
#   bash scripts/bench_issue5.sh
#   REPEAT=5 OUT=/tmp/bench5.txt bash scripts/bench_issue5.sh
#   PROFILE_DIR=/tmp/prof bash scripts/bench_issue5.sh   # keep a CPU profile of
#       every intakefs daemon (INTAKEFS_CPUPROFILE); go tool pprof -top FILE
#
# Also shown: the CPU seconds versitygw and each client daemon spent per
# test (request count matters to both), intakefs's cache counters per run.
#
# Knobs (environment): REPEAT (3), OUT (${TMPDIR:-/tmp}/intakefs-bench5-results.txt), BIG_MIB (1024), PARTS (32),
# PART_MIB (32), FUSE_RA_KB (the intakefs mount's kernel readahead in KiB,
# written to its bdi after mounting; default: what intakefs sets), PARQUET_MIN_MB (100), PARQUET_RG_ROWS (1048576, pyarrow's
# default row group length), COL (delay), QUERY_RUNS (5), STEP_TIMEOUT
# (300 s for any one step), INTAKEFS (bin/intakefs), SKIP_SETUP=1 (do not
# run apt-get / scripts/setup.sh), ONLY (a comma-separated subset of
# cold,warm,parquet,concurrent to run, for working on one of them; warm
# needs cold; the table then shows the rest as not measured).
#
# Needs root (apt-get, mount, dropping the page cache; without the latter
# the cold figures are marked as such), /dev/fuse, and about 8 GiB free
# under TMPDIR. Everything lives in a temporary directory, removed at the
# end with every server and mount, also on failure or Ctrl-C.
set -euo pipefail

# shellcheck source=scripts/bench/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/bench/common.sh" # cd ROOT; INTAKEFS; now(); figures

REPEAT="${REPEAT:-3}"
OUT="${OUT:-${TMPDIR:-/tmp}/intakefs-bench5-results.txt}"
BIG_MIB="${BIG_MIB:-1024}"
PARTS="${PARTS:-32}"
PART_MIB="${PART_MIB:-32}"
PARQUET_MIN_MB="${PARQUET_MIN_MB:-100}"
PARQUET_RG_ROWS="${PARQUET_RG_ROWS:-1048576}"
COL="${COL:-delay}"
QUERY_RUNS="${QUERY_RUNS:-5}"
STEP_TIMEOUT="${STEP_TIMEOUT:-300}"
ONLY="${ONLY:-cold,warm,parquet,concurrent}"
CACHE_MAX=10G
BUCKET=bench
KEY=AKIABENCH5INTAKEFS00
SECRET=bench5-secret-5d1c7e9a3f

want() { case ",$ONLY," in *",$1,"*) return 0 ;; *) return 1 ;; esac; }
log() { printf 'bench5: %s\n' "$*" >&2; }
die() { printf 'bench5: error: %s\n' "$*" >&2; exit 1; }

as_root() {
	if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null 2>&1; then sudo -n "$@"; else return 1; fi
}

# ================================================================ 1. tools
if [ -z "${HOME:-}" ]; then
	HOME="$(getent passwd "$(id -u)" | cut -d: -f6)"
	export HOME="${HOME:-/root}"
fi
command -v go >/dev/null 2>&1 || export PATH="$PATH:/usr/local/go/bin"

if [ "${SKIP_SETUP:-0}" != 1 ]; then
	want=()
	command -v rclone >/dev/null 2>&1 || want+=(rclone)
	command -v s3fs >/dev/null 2>&1 || want+=(s3fs)
	command -v curl >/dev/null 2>&1 || want+=(curl)
	command -v fusermount3 >/dev/null 2>&1 || want+=(fuse3)
	if [ "${#want[@]}" -gt 0 ]; then
		log "installing Debian packages: ${want[*]}"
		as_root timeout 600 apt-get update -qq </dev/null || log "apt-get update failed"
		as_root env DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y -qq \
			-o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
			"${want[@]}" </dev/null >/dev/null || log "apt-get install ${want[*]} failed: going on without"
	fi
	log "scripts/setup.sh (versitygw, DuckDB for node, bin/intakefs)"
	timeout 1800 bash scripts/setup.sh </dev/null || die "scripts/setup.sh failed"
fi
command -v curl >/dev/null 2>&1 || die "curl is needed"
VGW="$(command -v versitygw || echo "$(go env GOPATH)/bin/versitygw")"
[ -x "$VGW" ] || die "versitygw not found (scripts/setup.sh installs it)"
[ -d scripts/node/node_modules/@duckdb/node-api ] || die "DuckDB for node missing (run scripts/setup.sh)"
FLIGHTS="$ROOT/testdata/vega/data/flights-3m.parquet"
[ -f "$FLIGHTS" ] || die "$FLIGHTS missing (run scripts/setup.sh)"
HAVE_RCLONE=0; command -v rclone >/dev/null 2>&1 && HAVE_RCLONE=1
HAVE_S3FS=0; command -v s3fs >/dev/null 2>&1 && HAVE_S3FS=1
[ "$HAVE_RCLONE" = 1 ] || log "rclone not installed: its rows are left out"
[ "$HAVE_S3FS" = 1 ] || log "s3fs not installed: its rows are left out"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/intakefs-bench5.XXXXXX")"
avail_kb="$(df -Pk "$WORK" | awk 'NR == 2 { print $4 }')"
need_kb=$(((BIG_MIB * 3 + PARTS * PART_MIB * 3 + 1024 + 2048) * 1024))
if [ "$avail_kb" -lt "$need_kb" ]; then
	rm -rf "$WORK"
	die "need about $((need_kb / 1048576)) GiB free under ${TMPDIR:-/tmp}, have $((avail_kb / 1048576)) GiB"
fi
[ -z "${PROFILE_DIR:-}" ] || mkdir -p "$PROFILE_DIR"

# ================================================================ cleanup
GW_PID="" PROXY_PID="" IPID="" RPID="" SPID=""
IMNT="$WORK/mnt-intakefs" RMNT="$WORK/mnt-rclone" SMNT="$WORK/mnt-s3fs"
mkdir -p "$IMNT" "$RMNT" "$SMNT"

stop_pid() { # stop_pid PID: SIGTERM (SIGINT for intakefs), then SIGKILL after 15 s
	local pid="$1" sig="${2:-TERM}"
	[ -n "$pid" ] || return 0
	if kill -0 "$pid" 2>/dev/null; then
		kill "-$sig" "$pid" 2>/dev/null || true
		for _ in $(seq 1 150); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
	fi
	wait "$pid" 2>/dev/null || true
}

unmount_dir() {
	if mountpoint -q "$1" 2>/dev/null; then
		fusermount3 -u "$1" 2>/dev/null || umount "$1" 2>/dev/null || umount -l "$1" 2>/dev/null || true
	fi
}

declare -A HWM=()
PEAK_KB=0 PEAK_PHASE=""
IPHASE=""

stop_intakefs() {
	[ -n "$IPID" ] || return 0
	local hwm
	hwm="$(awk '$1 == "VmHWM:" { print $2 }' "/proc/$IPID/status" 2>/dev/null || true)"
	if [ -n "$hwm" ]; then
		HWM[$IPHASE]="$hwm"
		if [ "$hwm" -gt "$PEAK_KB" ]; then PEAK_KB="$hwm" PEAK_PHASE="$IPHASE"; fi
	fi
	stop_pid "$IPID" INT
	IPID=""
	unmount_dir "$IMNT"
}
stop_rclone() {
	[ -n "$RPID" ] || return 0
	unmount_dir "$RMNT"
	stop_pid "$RPID"
	RPID=""
	unmount_dir "$RMNT"
}
stop_s3fs() {
	[ -n "$SPID" ] || return 0
	unmount_dir "$SMNT"
	stop_pid "$SPID"
	SPID=""
	unmount_dir "$SMNT"
}

cleanup() {
	local rc=$?
	set +e
	stop_intakefs
	stop_rclone
	stop_s3fs
	stop_pid "$PROXY_PID"
	stop_pid "$GW_PID"
	unmount_dir "$IMNT"
	unmount_dir "$RMNT"
	unmount_dir "$SMNT"
	rm -rf "$WORK"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ================================================================ helpers
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.3f", b - a }'; }
le() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a != "n/a" && a != "" && a + 0 <= b + 0) }'; }
mib() { awk -v k="$1" 'BEGIN { printf "%.0f MiB", k / 1024 }'; }
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
jget() { python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2"; }
cpu_of() { # cpu_of PID: user+system CPU seconds of PID so far ("" if gone)
	[ -n "$1" ] && awk -v t="$TICK" '{ printf "%.2f", ($14 + $15) / t }' "/proc/$1/stat" 2>/dev/null || true
}
cpu_delta() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "") print "n/a"; else printf "%.2f", b - a }'; }
stat_of() { sed -n "s/^ *\"$2\": *\(-\{0,1\}[0-9]*\).*/\1/p" "$1"; } # stat_of stats.json FIELD

# timed CMD...: run CMD; T_SECS is its time. CMD bounds itself (timeout,
# curl --max-time).
T_SECS=""
timed() {
	local t0 rc=0
	t0="$(now)"
	"$@" || rc=$?
	if [ "$rc" -eq 0 ]; then
		T_SECS="$(since "$t0")"
		return 0
	fi
	T_SECS=""
	log "failed (exit $rc$([ "$rc" -eq 124 ] && echo ", timed out after ${STEP_TIMEOUT}s")): $*"
	return 1
}
bounded() { timeout -k 10 "$STEP_TIMEOUT" "$@"; }

wait_mounted() { # wait_mounted DIR PID LOG
	for _ in $(seq 1 300); do
		mountpoint -q "$1" && return 0
		if ! kill -0 "$2" 2>/dev/null; then
			log "the daemon for $1 exited before mounting:"
			tail -20 "$3" >&2
			return 1
		fi
		sleep 0.1
	done
	log "$1 not mounted after 30 s"
	return 1
}

s3curl() { curl -sS --fail --max-time "$STEP_TIMEOUT" --aws-sigv4 "aws:amz:us-east-1:s3" --user "$KEY:$SECRET" -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" "$@"; }
put() { s3curl -T "$1" "$EP/$BUCKET/$2" -o /dev/null; } # put FILE KEY

# ================================================================ 2. server and data
mkdir -p "$WORK/gw/$BUCKET"
LOCAL="$WORK/gw/$BUCKET" # versitygw's posix backend: the objects as local files
for try in 1 2 3; do
	GW_PORT="$(free_port)"
	EP="http://127.0.0.1:$GW_PORT"
	# --keep-alive: reuse connections, as S3 does (versitygw closes each one by default)
	"$VGW" --access "$KEY" --secret "$SECRET" --port "127.0.0.1:$GW_PORT" --keep-alive -q \
		posix "$WORK/gw" >"$WORK/versitygw.log" 2>&1 &
	GW_PID=$!
	up=0
	for _ in $(seq 1 150); do
		kill -0 "$GW_PID" 2>/dev/null || break
		if curl -s -o /dev/null "$EP/"; then up=1; break; fi
		sleep 0.1
	done
	[ "$up" = 1 ] && break
	stop_pid "$GW_PID"
	GW_PID=""
done
[ -n "$GW_PID" ] || { cat "$WORK/versitygw.log" >&2; die "versitygw did not start"; }
log "versitygw on $EP (bucket $BUCKET in $WORK/gw)"

BIG_BYTES=$((BIG_MIB * 1048576))
PART_BYTES=$((PART_MIB * 1048576))
log "creating the ${BIG_MIB} MiB object big.bin"
timeout "$STEP_TIMEOUT" head -c "$BIG_BYTES" /dev/urandom >"$WORK/upload.tmp"
put "$WORK/upload.tmp" big.bin
rm -f "$WORK/upload.tmp"
[ "$(stat -c %s "$LOCAL/big.bin")" = "$BIG_BYTES" ] || die "big.bin did not arrive whole"

log "creating $PARTS objects of $PART_MIB MiB"
PART_NAMES=()
for i in $(seq 0 $((PARTS - 1))); do
	name="$(printf 'part%02d.bin' "$i")"
	PART_NAMES+=("$name")
	timeout "$STEP_TIMEOUT" head -c "$PART_BYTES" /dev/urandom >"$WORK/upload.tmp"
	put "$WORK/upload.tmp" "$name"
done
rm -f "$WORK/upload.tmp"

log "generating a Parquet file of >= ${PARQUET_MIN_MB} MB from flights-3m.parquet (row groups of $PARQUET_RG_ROWS rows)"
timeout "$STEP_TIMEOUT" node scripts/bench/parquet.mjs make "$FLIGHTS" "$WORK/upload.parquet" \
	"$((PARQUET_MIN_MB * 1000000))" "$PARQUET_RG_ROWS" >"$WORK/make.json"
put "$WORK/upload.parquet" flights.parquet
rm -f "$WORK/upload.parquet"
PQ_LOCAL="$LOCAL/flights.parquet"
PQ_BYTES="$(jget "$WORK/make.json" bytes)"
PQ_ROWS="$(jget "$WORK/make.json" rows)"
PQ_RG="$(jget "$WORK/make.json" row_groups)"

{
	echo "metadata: {version: 1}"
	echo "sources:"
	echo "  big: {driver: textfiles, args: {urlpath: '{{ CATALOG_DIR }}/big.bin'}}"
	echo "  flights: {driver: parquet, args: {urlpath: '{{ CATALOG_DIR }}/flights.parquet'}}"
	for n in "${PART_NAMES[@]}"; do
		echo "  ${n%.bin}: {driver: textfiles, args: {urlpath: '{{ CATALOG_DIR }}/$n'}}"
	done
} >"$WORK/catalog.yaml"
put "$WORK/catalog.yaml" catalog.yaml

cat >"$WORK/rclone.conf" <<EOF
[bench]
type = s3
provider = Other
access_key_id = $KEY
secret_access_key = $SECRET
endpoint = $EP
region = us-east-1
EOF
printf '%s:%s\n' "$KEY" "$SECRET" >"$WORK/s3fs.passwd"
chmod 600 "$WORK/s3fs.passwd" "$WORK/rclone.conf"

# ================================================================ mounts
# mount_intakefs CACHE_DIR ENDPOINT PHASE
mount_intakefs() {
	local envs=()
	[ -z "${PROFILE_DIR:-}" ] || envs=("INTAKEFS_CPUPROFILE=$PROFILE_DIR/$3.cpu")
	env "${envs[@]}" "$INTAKEFS" mount "s3://$BUCKET/catalog.yaml" "$IMNT" \
		--cache-dir "$1" --cache-max-size "$CACHE_MAX" \
		--storage-option "key=$KEY" --storage-option "secret=$SECRET" \
		--storage-option "client_kwargs.endpoint_url=$2" \
		--log-level warn >>"$WORK/intakefs.log" 2>&1 &
	IPID=$! IPHASE="$3"
	wait_mounted "$IMNT" "$IPID" "$WORK/intakefs.log" || return 1
	if [ -n "${FUSE_RA_KB:-}" ]; then
		echo "$FUSE_RA_KB" >"/sys/class/bdi/$(mountpoint -d "$IMNT")/read_ahead_kb" || log "cannot set the mount's read_ahead_kb"
	fi
	timeout 60 ls "$IMNT" >/dev/null
	[ -f "$IMNT/big.bin" ] || { log "no big.bin in the intakefs mount:"; cat "$IMNT/.catalog/errors.txt" >&2; return 1; }
}
# mount_rclone MODE: a fresh rclone mount (fresh VFS cache directory)
mount_rclone() {
	rm -rf "$WORK/rclone-cache"
	# rclone cannot use the AWS_CA_BUNDLE some machines set ("HTTPClient's
	# transport unsupported type"); the endpoint is plain HTTP anyway.
	env -u AWS_CA_BUNDLE rclone --config "$WORK/rclone.conf" mount "bench:$BUCKET" "$RMNT" \
		--read-only --vfs-cache-mode "$1" --cache-dir "$WORK/rclone-cache" \
		--log-level NOTICE >>"$WORK/rclone.log" 2>&1 &
	RPID=$!
	wait_mounted "$RMNT" "$RPID" "$WORK/rclone.log" || return 1
	timeout 60 ls "$RMNT" >/dev/null
	[ -f "$RMNT/big.bin" ] || { log "no big.bin in the rclone mount"; return 1; }
}
mount_s3fs() {
	s3fs "$BUCKET" "$SMNT" -f -o "ro,url=$EP,use_path_request_style,passwd_file=$WORK/s3fs.passwd,dbglevel=err" \
		>>"$WORK/s3fs.log" 2>&1 &
	SPID=$!
	wait_mounted "$SMNT" "$SPID" "$WORK/s3fs.log" || return 1
	timeout 60 ls "$SMNT" >/dev/null
	[ -f "$SMNT/big.bin" ] || { log "no big.bin in the s3fs mount"; return 1; }
}

save_stats() { # save_stats NAME: keep intakefs's counters now
	cp "$IMNT/.catalog/stats.json" "$WORK/stats-$1.json" 2>/dev/null || echo '{}' >"$WORK/stats-$1.json"
}
stats_line() { # stats_line NAME: the interesting counters
	local f="$WORK/stats-$1.json" k out=""
	for k in RemoteBytes RemoteRequests PrefetchBytes PrefetchSkipped HitBytes MissBytes FetchMemoryPeak CachedBytes; do
		out+="$k=$(stat_of "$f" "$k") "
	done
	echo "$out"
}

# measure KEY BYTES CLIENT_PID CMD...: time CMD, record its MB/s under KEY,
# and the CPU seconds versitygw (KEY_srvcpu) and the client daemon
# (KEY_clicpu; CLIENT_PID may be "") spent meanwhile.
measure() {
	local key="$1" bytes="$2" cpid="$3" g0 c0 g1 c1
	shift 3
	g0="$(cpu_of "$GW_PID")" c0="$(cpu_of "$cpid")"
	timed "$@" >/dev/null || return 1
	g1="$(cpu_of "$GW_PID")" c1="$(cpu_of "$cpid")"
	add "$key" "$(mbps "$bytes" "$T_SECS")"
	add "${key}_srvcpu" "$(cpu_delta "$g0" "$g1")"
	[ -z "$cpid" ] || add "${key}_clicpu" "$(cpu_delta "$c0" "$c1")"
	detail "  $key: $T_SECS s, $(mbps "$bytes" "$T_SECS") MB/s; CPU s: versitygw $(cpu_delta "$g0" "$g1"), client daemon $(if [ -n "$cpid" ]; then cpu_delta "$c0" "$c1"; else echo n/a; fi)"
}
# cat_rate KEY FILE BYTES CLIENT_PID: cat FILE > /dev/null
cat_rate() { measure "$1" "$3" "$4" bounded cat "$2"; }
# par_rate KEY DIR CLIENT_PID: cat the parts in DIR all at once
par_rate() {
	local files=() n
	for n in "${PART_NAMES[@]}"; do files+=("$2/$n"); done
	measure "$1" $((PARTS * PART_BYTES)) "$3" bounded bash -c \
		'for f in "$@"; do cat "$f" >/dev/null & done; rc=0; for j in $(jobs -p); do wait "$j" || rc=1; done; exit $rc' _ "${files[@]}"
}

LOAD_START="$(cut -d' ' -f1-3 /proc/loadavg)"

# ================================================================ 3. cold sequential
COLD_REMOTE="" COLD_REQS="" WARM_REMOTE="" SAME="not checked"
want cold && log "(1) cold sequential read of big.bin ($BIG_MIB MiB), $REPEAT rounds"
want cold && for r in $(seq 1 "$REPEAT"); do
	detail "cold sequential, round $r"
	# intakefs: empty cache directory (the last round's is kept for (2))
	rm -rf "$WORK/cache-big"
	mount_intakefs "$WORK/cache-big" "$EP" "cold-$r"
	drop_caches
	cat_rate cold_intakefs "$IMNT/big.bin" "$BIG_BYTES" "$IPID" || true
	save_stats "cold-$r"
	detail "    intakefs counters: $(stats_line "cold-$r")"
	stop_intakefs

	drop_caches
	measure cold_direct "$BIG_BYTES" "" s3curl "$EP/$BUCKET/big.bin" -o /dev/null || true

	if [ "$HAVE_RCLONE" = 1 ]; then
		for mode in off full; do
			if mount_rclone "$mode"; then
				drop_caches
				cat_rate "cold_rclone_$mode" "$RMNT/big.bin" "$BIG_BYTES" "$RPID" || true
			fi
			stop_rclone
		done
	fi
	if [ "$HAVE_S3FS" = 1 ]; then
		if mount_s3fs; then
			drop_caches
			cat_rate cold_s3fs "$SMNT/big.bin" "$BIG_BYTES" "$SPID" || true
		fi
		stop_s3fs
	fi
done
if want cold; then
	COLD_REMOTE="$(stat_of "$WORK/stats-cold-$REPEAT.json" RemoteBytes)"
	COLD_REQS="$(stat_of "$WORK/stats-cold-$REPEAT.json" RemoteRequests)"
fi

# ================================================================ 4. warm re-read
want cold && want warm && log "(2) warm re-read after remount (cache full), $REPEAT rounds"
if want cold && want warm && command -v filefrag >/dev/null; then
	# how the data lies on disk: a warm read is a read of these files
	CDATA="$(find "$WORK/cache-big" -name data -type f -size +1M | head -n 1)"
	[ -n "$CDATA" ] && detail "extents on disk: cache data file $(filefrag "$CDATA" | sed 's/.*: //'), local copy $(filefrag "$LOCAL/big.bin" | sed 's/.*: //')"
fi
want cold && want warm && for r in $(seq 1 "$REPEAT"); do
	detail "warm re-read, round $r"
	# Whichever of the two is read first after the step before reads
	# slower on this VM's disk (measured with the order swapped: the
	# local copy then loses), so the rounds take turns going first.
	if [ $((r % 2)) = 0 ]; then
		drop_caches
		cat_rate warm_local "$LOCAL/big.bin" "$BIG_BYTES" "" || true
	fi
	mount_intakefs "$WORK/cache-big" "$EP" "warm-$r"
	drop_caches
	cat_rate warm_intakefs "$IMNT/big.bin" "$BIG_BYTES" "$IPID" || true
	save_stats "warm-$r"
	detail "    intakefs counters: $(stats_line "warm-$r")"
	if [ "$r" = "$REPEAT" ]; then
		if timeout "$STEP_TIMEOUT" cmp -s "$IMNT/big.bin" "$LOCAL/big.bin"; then SAME=yes; else SAME=NO; fi
	fi
	stop_intakefs
	if [ $((r % 2)) = 1 ]; then
		drop_caches
		cat_rate warm_local "$LOCAL/big.bin" "$BIG_BYTES" "" || true
	fi
done
want cold && want warm && WARM_REMOTE="$(stat_of "$WORK/stats-warm-$REPEAT.json" RemoteBytes)"
rm -rf "$WORK/cache-big"

# ================================================================ 5. Parquet
NEEDED="" BLOCKS_NEEDED="" BLOCK="" CHUNKS="" FOOTER="" PQ_REMOTE="" PQ_REQS="" PQ_WIRE="" PQ_COLD_MS=""
PQ_VALUE="" LOCAL_VALUE="" PQ_PREFETCH="" PQ_WARM_REMOTE=""
if want parquet; then
# the cache's block size, from a daemon's counters
rm -rf "$WORK/cache-bs"
mount_intakefs "$WORK/cache-bs" "$EP" block-size
save_stats block-size
BLOCK_SIZE="$(stat_of "$WORK/stats-block-size.json" BlockSize)"
stop_intakefs
rm -rf "$WORK/cache-bs"
log "(3) DuckDB avg($COL) over flights.parquet ($PQ_BYTES bytes)"
node scripts/bench/parquet.mjs colbytes "$PQ_LOCAL" "$COL" "$BLOCK_SIZE" >"$WORK/colbytes.json"
NEEDED="$(jget "$WORK/colbytes.json" needed_bytes)"
BLOCKS_NEEDED="$(jget "$WORK/colbytes.json" block_bytes)"
BLOCK="$(jget "$WORK/colbytes.json" block)"
CHUNKS="$(jget "$WORK/colbytes.json" chunk_bytes)"
FOOTER="$(jget "$WORK/colbytes.json" footer_bytes)"

PROXY_PORT="$(free_port)"
node scripts/bench/countproxy.mjs "$PROXY_PORT" "$GW_PORT" "$WORK/count.json" >"$WORK/proxy.out" 2>&1 &
PROXY_PID=$!
for _ in $(seq 1 100); do grep -q listening "$WORK/proxy.out" 2>/dev/null && break; sleep 0.1; done
grep -q listening "$WORK/proxy.out" || die "the counting proxy did not start: $(cat "$WORK/proxy.out")"
PEP="http://127.0.0.1:$PROXY_PORT"

rm -rf "$WORK/cache-pq"
mount_intakefs "$WORK/cache-pq" "$PEP" parquet-cold
drop_caches
save_stats pq-before
sleep 0.3
down0="$(jget "$WORK/count.json" down)"
timeout "$STEP_TIMEOUT" node scripts/bench/parquet.mjs time "$IMNT/flights.parquet" "$COL" 1 0 >"$WORK/q-cold.json"
sleep 0.3
save_stats pq-after
down1="$(jget "$WORK/count.json" down)"
PQ_REMOTE=$(($(stat_of "$WORK/stats-pq-after.json" RemoteBytes) - $(stat_of "$WORK/stats-pq-before.json" RemoteBytes)))
PQ_REQS=$(($(stat_of "$WORK/stats-pq-after.json" RemoteRequests) - $(stat_of "$WORK/stats-pq-before.json" RemoteRequests)))
PQ_WIRE=$((down1 - down0))
PQ_COLD_MS="$(jget "$WORK/q-cold.json" median_ms)"
PQ_VALUE="$(jget "$WORK/q-cold.json" value)"
PQ_PREFETCH=$(($(stat_of "$WORK/stats-pq-after.json" PrefetchBytes) - $(stat_of "$WORK/stats-pq-before.json" PrefetchBytes)))
detail "parquet cold: RemoteBytes +$PQ_REMOTE in $PQ_REQS requests (readahead's share $PQ_PREFETCH), server sent $PQ_WIRE bytes (proxy), query $PQ_COLD_MS ms, avg=$PQ_VALUE"

# warm: disk cache full and page cache warm, both sides warmed up once first
qtimes() { # qtimes KEY FILE WARMUP
	timeout "$STEP_TIMEOUT" node scripts/bench/parquet.mjs time "$2" "$COL" "$QUERY_RUNS" "$3" >"$WORK/q.json" || return 1
	local t
	for t in $(python3 -c 'import json, sys; print(" ".join(str(x) for x in json.load(open(sys.argv[1]))["runs_ms"]))' "$WORK/q.json"); do
		add "$1" "$t"
	done
	detail "  $1: $(jget "$WORK/q.json" runs_ms) ms, avg=$(jget "$WORK/q.json" value)"
}
for w in 1 0; do
	qtimes pq_warm_intakefs "$IMNT/flights.parquet" "$w" || true
	qtimes pq_warm_local "$PQ_LOCAL" "$w" || true
done
LOCAL_VALUE="$(jget "$WORK/q.json" value)"
save_stats pq-warm
PQ_WARM_REMOTE=$(($(stat_of "$WORK/stats-pq-warm.json" RemoteBytes) - $(stat_of "$WORK/stats-pq-after.json" RemoteBytes)))
stop_intakefs

# after a remount, with the page cache dropped: the disk cache vs local disk
for r in $(seq 1 "$REPEAT"); do
	mount_intakefs "$WORK/cache-pq" "$PEP" "parquet-remount-$r"
	drop_caches
	qtimes pq_remount_intakefs "$IMNT/flights.parquet" 0 || true
	stop_intakefs
	drop_caches
	qtimes pq_remount_local "$PQ_LOCAL" 0 || true
done
stop_pid "$PROXY_PID"
PROXY_PID=""
rm -rf "$WORK/cache-pq"
fi

# ================================================================ 6. concurrent
if want concurrent; then
log "(4) $PARTS concurrent readers of $PARTS x $PART_MIB MiB, cold, $REPEAT rounds"
PAR_BYTES=$((PARTS * PART_BYTES))
direct_par() {
	local n pids=() rc=0
	for n in "${PART_NAMES[@]}"; do
		s3curl "$EP/$BUCKET/$n" -o /dev/null &
		pids+=($!)
	done
	for n in "${pids[@]}"; do wait "$n" || rc=1; done
	return $rc
}
for r in $(seq 1 "$REPEAT"); do
	detail "concurrent, round $r"
	rm -rf "$WORK/cache-par"
	mount_intakefs "$WORK/cache-par" "$EP" "concurrent-$r"
	drop_caches
	par_rate par_intakefs "$IMNT" "$IPID" || true
	save_stats "par-$r"
	detail "    intakefs counters: $(stats_line "par-$r")"
	stop_intakefs
	rm -rf "$WORK/cache-par"

	drop_caches
	measure par_direct "$PAR_BYTES" "" direct_par || true
	if [ "$HAVE_RCLONE" = 1 ]; then
		for mode in off full; do
			if mount_rclone "$mode"; then
				drop_caches
				par_rate "par_rclone_$mode" "$RMNT" "$RPID" || true
			fi
			stop_rclone
		done
	fi
	if [ "$HAVE_S3FS" = 1 ]; then
		if mount_s3fs; then
			drop_caches
			par_rate par_s3fs "$SMNT" "$SPID" || true
		fi
		stop_s3fs
	fi
done
fi
LOAD_END="$(cut -d' ' -f1-3 /proc/loadavg)"

# ================================================================ table
fig() { # fig KEY UNIT: "median UNIT (min-max)"
	local s m lo hi
	s="$(summary "$1")"
	[ -n "$s" ] || { echo "not measured"; return; }
	read -r m lo hi <<<"$s"
	m="$(printf '%.1f' "$m")" lo="$(printf '%.1f' "$lo")" hi="$(printf '%.1f' "$hi")"
	if [ "$lo" = "$hi" ]; then printf '%s %s' "$m" "$2"; else printf '%s %s (%s–%s)' "$m" "$2" "$lo" "$hi"; fi
}
verdict() { if "$@"; then echo "**meets**"; else echo "**misses**"; fi; }

ROWS=()
row() { ROWS+=("| $1 | $2 | $3 | $4 |"); }

C_I="$(med cold_intakefs)" C_D="$(med cold_direct)"
C_RO="$(med cold_rclone_off)" C_RF="$(med cold_rclone_full)" C_S="$(med cold_s3fs)"
R_CD="$(ratio "$C_I" "$C_D")"
ahead() {
	local x
	for x in "$C_RO" "$C_RF" "$C_S"; do
		[ -z "$x" ] || awk -v a="$C_I" -v b="$x" 'BEGIN { exit !(a + 0 > b + 0) }' || return 1
	done
	[ -n "$C_I" ]
}
row "cold $BIG_MIB MiB: direct signed GET (curl --aws-sigv4)" "$(fig cold_direct MB/s)" "reference" ""
row "cold $BIG_MIB MiB: **intakefs**" "$(fig cold_intakefs MB/s)" "≥ 0.8× direct; ahead of rclone and s3fs" "$(verdict ahead)"
row "cold $BIG_MIB MiB: intakefs / direct" "${R_CD}×" "≥ 0.80×" "$(verdict ge "$R_CD" 0.8)"
if [ "$HAVE_RCLONE" = 1 ]; then
	row "cold $BIG_MIB MiB: rclone mount --vfs-cache-mode off" "$(fig cold_rclone_off MB/s)" "intakefs ahead" "intakefs/rclone $(ratio "$C_I" "$C_RO")×"
	row "cold $BIG_MIB MiB: rclone mount --vfs-cache-mode full" "$(fig cold_rclone_full MB/s)" "intakefs ahead" "intakefs/rclone $(ratio "$C_I" "$C_RF")×"
else
	row "cold $BIG_MIB MiB: rclone mount" "rclone not installable" "intakefs ahead" ""
fi
if [ "$HAVE_S3FS" = 1 ]; then
	row "cold $BIG_MIB MiB: s3fs" "$(fig cold_s3fs MB/s)" "intakefs ahead" "intakefs/s3fs $(ratio "$C_I" "$C_S")×"
else
	row "cold $BIG_MIB MiB: s3fs" "s3fs not installable" "intakefs ahead" ""
fi
row "cold $BIG_MIB MiB: intakefs fetched from the server" "$COLD_REMOTE B in $COLD_REQS requests (last round)" "= object size" ""
cpus() { # cpus PREFIX: "tool server/client" CPU seconds (medians) of a test
	local out="" t k
	for t in direct intakefs rclone_off rclone_full s3fs; do
		k="${1}_$t"
		[ -n "$(med "${k}_srvcpu")" ] || continue
		out+="$t $(med "${k}_srvcpu")"
		[ -z "$(med "${k}_clicpu")" ] || out+="/$(med "${k}_clicpu")"
		out+="; "
	done
	echo "${out%; }"
}
row "cold $BIG_MIB MiB: CPU s, versitygw/client daemon (median)" "$(cpus cold)" "(information)" ""
W_I="$(med warm_intakefs)" W_L="$(med warm_local)"
R_W="$(ratio "$W_I" "$W_L")"
row "warm (remount, cache full, page cache dropped): intakefs" "$(fig warm_intakefs MB/s)" "" ""
row "warm: cat of the local copy (page cache dropped)" "$(fig warm_local MB/s)" "reference" ""
row "warm: intakefs / local" "${R_W}×" "≥ 0.80×" "$(verdict ge "$R_W" 0.8)"
row "warm: fetched from the server during the re-read" "$WARM_REMOTE B (last round); content equals the object: $SAME" "0" ""
R_PB="$(ratio "$PQ_REMOTE" "$NEEDED")" R_PW="$(ratio "$PQ_WIRE" "$NEEDED")"
row "Parquet file" "$PQ_BYTES B, $PQ_ROWS rows, $PQ_RG row groups; column $COL: chunks $CHUNKS B + footer $FOOTER B = $NEEDED B" "" ""
row "Parquet: the same ranges rounded out to whole cache blocks ($BLOCK B)" "$BLOCKS_NEEDED B = $(ratio "$BLOCKS_NEEDED" "$NEEDED")× needed" "(the floor for $BLOCK-byte blocks)" ""
row "Parquet cold: fetched by intakefs (RemoteBytes)" "$PQ_REMOTE B in $PQ_REQS requests (readahead: $PQ_PREFETCH B) = ${R_PB}× needed" "≤ 1.5×" "$(verdict le "$R_PB" 1.5)"
row "Parquet cold: sent by the server (TCP proxy, headers incl.)" "$PQ_WIRE B = ${R_PW}× needed" "≤ 1.5×" "$(verdict le "$R_PW" 1.5)"
row "Parquet cold: query time through intakefs" "$PQ_COLD_MS ms" "" ""
Q_I="$(med pq_warm_intakefs)" Q_L="$(med pq_warm_local)"
R_Q="$(ratio "$Q_I" "$Q_L")"
row "Parquet warm: query time through intakefs" "$(fig pq_warm_intakefs ms)" "" ""
row "Parquet warm: query time on the local copy" "$(fig pq_warm_local ms)" "reference" ""
row "Parquet warm: intakefs / local" "${R_Q}×; fetched meanwhile: $PQ_WARM_REMOTE B" "≤ 1.5×" "$(verdict le "$R_Q" 1.5)"
Q_RI="$(med pq_remount_intakefs)" Q_RL="$(med pq_remount_local)"
row "Parquet after remount, page cache dropped: intakefs / local" "$(fig pq_remount_intakefs ms) / $(fig pq_remount_local ms) = $(ratio "$Q_RI" "$Q_RL")×" "(information)" ""
row "Parquet: same avg through intakefs and locally" "$PQ_VALUE / $LOCAL_VALUE" "equal" "$([ "$PQ_VALUE" = "$LOCAL_VALUE" ] && echo yes || echo NO)"
P_I="$(med par_intakefs)" P_RO="$(med par_rclone_off)" P_RF="$(med par_rclone_full)"
row "$PARTS×$PART_MIB MiB concurrent cold: direct GETs ($PARTS curl)" "$(fig par_direct MB/s)" "reference" ""
row "$PARTS×$PART_MIB MiB concurrent cold: **intakefs**" "$(fig par_intakefs MB/s)" "ahead of rclone" "$(verdict awk -v a="$P_I" -v b="$P_RO" -v c="$P_RF" 'BEGIN { exit !(a != "" && a + 0 > b + 0 && a + 0 > c + 0) }')"
if [ "$HAVE_RCLONE" = 1 ]; then
	row "$PARTS×$PART_MIB MiB concurrent cold: rclone --vfs-cache-mode off" "$(fig par_rclone_off MB/s)" "" "intakefs/rclone $(ratio "$P_I" "$P_RO")×"
	row "$PARTS×$PART_MIB MiB concurrent cold: rclone --vfs-cache-mode full" "$(fig par_rclone_full MB/s)" "" "intakefs/rclone $(ratio "$P_I" "$P_RF")×"
fi
[ "$HAVE_S3FS" = 1 ] && row "$PARTS×$PART_MIB MiB concurrent cold: s3fs" "$(fig par_s3fs MB/s)" "" "intakefs/s3fs $(ratio "$P_I" "$(med par_s3fs)")×"
row "$PARTS×$PART_MIB MiB concurrent: CPU s, versitygw/client daemon (median)" "$(cpus par)" "(information)" ""
hwms=""
for ph in "${!HWM[@]}"; do hwms+="$ph=$(mib "${HWM[$ph]}") "; done
row "intakefs peak RSS (VmHWM), all daemons" "$(mib "$PEAK_KB") (in $PEAK_PHASE)" "(report)" ""

ver() { "$@" 2>/dev/null | head -1 || true; }
{
	echo "intakefs issue 5 benchmark — $(date -u '+%Y-%m-%d %H:%M UTC'), $(uname -r), $(nproc) cores, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo) RAM"
	echo "versitygw $(go version -m "$VGW" 2>/dev/null | awk '$1 == "mod" { print $3; exit }') (posix, --keep-alive) on 127.0.0.1; $(ver rclone version); $(ver s3fs --version | sed 's/ (commit.*//'); $(ver curl --version | cut -d' ' -f1-2)"
	echo "intakefs: $INTAKEFS (git $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null)$(git -C "$ROOT" diff --quiet 2>/dev/null || echo '+dirty tree')), --cache-max-size $CACHE_MAX, defaults otherwise"
	echo "median of $REPEAT runs (min–max); MB = 10^6 B; page cache dropped before each cold/warm read: $([ "$DROP_OK" = 1 ] && echo yes || echo 'NO (no permission): cold figures may be warm')"
	echo "load average at start $LOAD_START, at end $LOAD_END"
	echo
	echo "| measure | result | goal | verdict |"
	echo "| --- | --- | --- | --- |"
	printf '%s\n' "${ROWS[@]}"
	echo
	echo "details (single runs; intakefs counters from MNT/.catalog/stats.json)"
	printf '  %s\n' "${DETAILS[@]}"
	echo "  VmHWM per daemon: $hwms"
} >"$OUT"
echo
cat "$OUT" | sed '/^details/,$d'
echo "bench5: table and details saved to $OUT" >&2
