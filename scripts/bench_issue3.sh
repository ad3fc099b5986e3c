#!/usr/bin/env bash
# Benchmark for issue 3: resolving parameterised names through a real mount.
#
# A catalog with one source taking two parameters, n (int) and region (str,
# allowed eu/us), whose path template picks one of 20 small generated CSV
# files ('{{ region }}-{{ n % 10 }}.csv'), is mounted; then N distinct
# names src@n=<i>@region=<eu|us>.csv are stat()ed (each one a FUSE
# LOOKUP: parse the name, coerce and validate the values, render the
# arguments, stat the data file), first from one thread, then from
# THREADS threads with another N names. Reported: lookups per second, the
# daemon's RSS and Go heap after each round, and the number of go-fuse
# inodes the daemon holds (from a heap profile: live objects allocated by
# go-fuse's newInode), before and after `echo 2 > /proc/sys/vm/drop_caches`
# makes the kernel forget its dentries and inodes (and send FORGET). The
# inode table must shrink back after the drop, and a second round of N
# other names must not leave the daemon larger than the first did.
#
#   bash scripts/bench_issue3.sh            # uses bin/intakefs, builds it if missing
#   N=20000 THREADS=8 bash scripts/bench_issue3.sh
#   INTAKEFS=/path/to/intakefs bash scripts/bench_issue3.sh
#
# Needs /dev/fuse (root, or fusermount3), python3 (any) for the stat loop,
# and `go tool pprof` for the inode count (skipped without Go). Dropping the
# kernel's caches needs root; without it that step is reported as skipped.
# Everything is generated under a temporary directory, removed at the end.
set -euo pipefail

# shellcheck source=scripts/bench/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/bench/common.sh"
PY="$(command -v python3 || true)"
[ -n "$PY" ] || { echo "bench: python3 is needed for the stat loop" >&2; exit 1; }

N="${N:-100000}"
THREADS="${THREADS:-4}"
PPROF_ADDR="${PPROF_ADDR:-127.0.0.1:6063}"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/intakefs-bench3.XXXXXX")"
PID=""
MNT=""

cleanup() {
	local rc=$?
	set +e
	if [ -n "$PID" ] && kill -0 "$PID" 2>/dev/null; then
		kill -INT "$PID" 2>/dev/null
		for _ in $(seq 1 100); do
			kill -0 "$PID" 2>/dev/null || break
			sleep 0.1
		done
		kill -0 "$PID" 2>/dev/null && kill -KILL "$PID" 2>/dev/null
		wait "$PID" 2>/dev/null
	fi
	if [ -n "$MNT" ] && mountpoint -q "$MNT" 2>/dev/null; then
		fusermount3 -u "$MNT" 2>/dev/null || umount -l "$MNT" 2>/dev/null
	fi
	rm -rf "$WORK"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

mkdir -p "$WORK/data" "$WORK/mnt"
cat >"$WORK/catalog.yaml" <<'EOF'
metadata:
  version: 1
sources:
  src:
    description: one source, many parameter values
    driver: csv
    parameters:
      n: {description: a number, type: int, default: 0, min: 0}
      region: {description: a region, type: str, default: eu, allowed: [eu, us]}
    args:
      urlpath: '{{ CATALOG_DIR }}/data/{{ region }}-{{ n % 10 }}.csv'
EOF
for r in eu us; do
	for i in 0 1 2 3 4 5 6 7 8 9; do
		printf 'region,part\n%s,%s\n' "$r" "$i" >"$WORK/data/$r-$i.csv"
	done
done

# mount_daemon [ENV=VALUE...]: start the daemon (with those environment
# variables), wait for the mount; sets PID.
mount_daemon() {
	env INTAKEFS_PPROF="$PPROF_ADDR" "$@" "$INTAKEFS" mount "$WORK/catalog.yaml" "$MNT" --log-level warn >"$WORK/daemon.log" 2>&1 &
	PID=$!
	for _ in $(seq 1 300); do
		mountpoint -q "$MNT" && break
		if ! kill -0 "$PID" 2>/dev/null; then
			echo "bench: intakefs exited before mounting:" >&2
			cat "$WORK/daemon.log" >&2
			PID=""
			exit 1
		fi
		sleep 0.1
	done
	mountpoint -q "$MNT" || { echo "bench: $MNT not mounted after 30 s" >&2; exit 1; }
	# the pprof listener starts just after the mount
	for _ in $(seq 1 50); do
		"$PY" -c "import urllib.request,sys; urllib.request.urlopen('http://%s/debug/pprof/' % sys.argv[1], timeout=1)" "$PPROF_ADDR" 2>/dev/null && break
		sleep 0.1
	done
}

unmount_daemon() {
	kill -INT "$PID"
	for _ in $(seq 1 100); do
		kill -0 "$PID" 2>/dev/null || break
		sleep 0.1
	done
	wait "$PID" 2>/dev/null || true
	PID=""
}

MNT="$WORK/mnt"

ROWS=()
row() { ROWS+=("$(printf '%-52s %s' "$1" "$2")"); }

rss() { awk '$1 == "VmRSS:" { printf "%.1f MiB", $2 / 1024 }' "/proc/$PID/status"; }

# heap: the Go heap in use after a GC, from the daemon's pprof endpoint
heap() {
	"$PY" - "$PPROF_ADDR" <<'PYEOF'
import sys, urllib.request
try:
    t = urllib.request.urlopen("http://%s/debug/pprof/heap?gc=1&debug=1" % sys.argv[1], timeout=30).read().decode()
except Exception as e:
    print("n/a (%s)" % e); sys.exit()
for line in t.splitlines():
    if line.startswith("# HeapInuse = "):
        print("%.1f MiB" % (int(line.split("=")[1]) / 2**20)); break
else:
    print("n/a")
PYEOF
}

# inodes: live go-fuse inodes, counted as the live node objects intakefs's
# FUSE layer allocates for them (fs.(*dirNode).Lookup makes one per inode
# go-fuse keeps; a duplicate is dropped at once). Exact only in the counting
# pass, where the daemon records every allocation (GODEBUG=memprofilerate=1).
inodes() {
	if ! command -v go >/dev/null; then
		echo "n/a (no go tool pprof)"
		return
	fi
	local prof="$WORK/heap.pb.gz"
	"$PY" -c "import urllib.request,sys; open(sys.argv[2],'wb').write(urllib.request.urlopen('http://%s/debug/pprof/heap?gc=1' % sys.argv[1], timeout=60).read())" "$PPROF_ADDR" "$prof" 2>/dev/null || { echo "n/a"; return; }
	go tool pprof -sample_index=inuse_objects -top -nodecount=100000 "$prof" 2>/dev/null |
		awk '$NF ~ /intakefs\/fs\.\(\*dirNode\)\.Lookup$/ { n = $1 } END { print (n == "" ? 0 : n) }'
}

# lookups FIRST THREADS: stat N names src@n=FIRST..FIRST+N-1, in THREADS threads
lookups() {
	"$PY" - "$MNT" "$1" "$N" "$2" <<'PYEOF'
import os, sys, threading, time
mnt, first, n, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
names = ["%s/src@n=%d@region=%s.csv" % (mnt, i, "eu" if i % 2 else "us") for i in range(first, first + n)]
errors = []
def work(part):
    for p in part:
        try:
            os.stat(p)
        except OSError as e:
            errors.append((p, e))
chunks = [names[i::threads] for i in range(threads)]
ts = [threading.Thread(target=work, args=(c,)) for c in chunks]
t0 = time.perf_counter()
for t in ts: t.start()
for t in ts: t.join()
d = time.perf_counter() - t0
if errors:
    print("%d lookups failed, e.g. %s: %s" % (len(errors), errors[0][0], errors[0][1]))
    sys.exit(1)
print("%d lookups in %.2f s: %.0f lookups/s" % (n, d, n / d))
PYEOF
}

drop() {
	sync
	if (echo 2 >/proc/sys/vm/drop_caches) 2>/dev/null; then
		sleep 5 # let the kernel's FORGETs arrive
		echo "dropped"
	else
		echo "skipped (needs root)"
	fi
}

# settled_inodes: the inode count once it stops changing (the kernel sends
# its FORGETs in batches after a drop), at most ~60 s
settled_inodes() {
	local prev="" cur
	for _ in $(seq 1 20); do
		cur="$(inodes)"
		[ "$cur" = "$prev" ] && break
		prev="$cur"
		sleep 3
	done
	echo "$cur"
}


# ---- pass 1: speed and memory
mount_daemon
echo "bench: pass 1 (speed, memory): mounted" >&2
row "daemon VmRSS / Go heap after mount" "$(rss) / $(heap)"
echo "bench: round 1, $N names, 1 thread" >&2
row "round 1: $N distinct names, 1 thread" "$(lookups 0 1)"
row "round 1: daemon VmRSS / Go heap" "$(rss) / $(heap)"
row "drop_caches (echo 2)" "$(drop)"
row "after drop: daemon VmRSS / Go heap" "$(rss) / $(heap)"
echo "bench: round 2, $N other names, $THREADS threads" >&2
row "round 2: $N other names, $THREADS threads" "$(lookups "$N" "$THREADS")"
row "round 2: daemon VmRSS / Go heap" "$(rss) / $(heap)"
row "drop_caches (echo 2)" "$(drop)"
row "after drop: daemon VmRSS / Go heap" "$(rss) / $(heap)"
row "daemon VmHWM (peak RSS)" "$(awk '$1 == "VmHWM:" { printf "%.1f MiB", $2 / 1024 }' "/proc/$PID/status")"
unmount_daemon

# ---- pass 2: exact inode counts (every allocation profiled: slower)
drop >/dev/null
mount_daemon GODEBUG=memprofilerate=1
echo "bench: pass 2 (inode counts): mounted with GODEBUG=memprofilerate=1" >&2
row "count pass: go-fuse inodes after mount" "$(inodes)"
lookups 0 1 >/dev/null
row "count pass: inodes after $N names" "$(inodes)"
row "count pass: drop_caches (echo 2)" "$(drop)"
row "count pass: inodes after the drop" "$(settled_inodes)"
lookups "$N" "$THREADS" >/dev/null
row "count pass: inodes after $N other names" "$(inodes)"
drop >/dev/null
row "count pass: inodes after a second drop" "$(settled_inodes)"
unmount_daemon

echo
echo "intakefs issue 3 benchmark: parameterised lookups through a mount ($(uname -r), $(nproc) CPUs)"
printf '%s\n' "${ROWS[@]}"
