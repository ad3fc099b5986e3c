#!/usr/bin/env bash
# Benchmarks for issue 2: how intakefs copes with a large catalog, and how
# fast it reads a large file, measured on generated local data.
#
#   (a) a root catalog of 100 nested catalogs (yaml_file_cat) of 100 CSV
#       sources each (10,000 sources, each a small generated CSV file):
#       time to mount, `find MOUNT | wc -l`, `ls -lR MOUNT`, and the daemon's
#       memory (VmRSS, VmHWM);
#   (b) one source over a generated 100 MB CSV file: MB/s of
#       `cat FILE > /dev/null` for the original and the mounted file, twice
#       each, the original first.
#
#   bash scripts/bench_issue2.sh            # uses bin/intakefs, builds it if missing
#   INTAKEFS=/path/to/intakefs bash scripts/bench_issue2.sh
#   BENCH_MB=200 bash scripts/bench_issue2.sh   # size of the file in (b)
#
# Everything is generated under a temporary directory and removed at the
# end, mounts included, also on failure or Ctrl-C.
set -euo pipefail

# shellcheck source=scripts/bench/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/bench/common.sh"

N_CATS=100
N_SOURCES=100
BENCH_MB="${BENCH_MB:-100}"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/intakefs-bench.XXXXXX")"
PID=""
MNT=""

unmount_current() {
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
	PID=""
	if [ -n "$MNT" ] && mountpoint -q "$MNT" 2>/dev/null; then
		fusermount3 -u "$MNT" 2>/dev/null || umount -l "$MNT" 2>/dev/null
	fi
	MNT=""
	set -e
}

cleanup() {
	local rc=$?
	unmount_current
	rm -rf "$WORK"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }

CACHE_FLAG=()
if "$INTAKEFS" mount --help 2>&1 | grep -q -- '--cache-dir'; then
	CACHE_FLAG=(--cache-dir "$WORK/cache")
fi

# mount_catalog CATALOG MOUNTPOINT: start the daemon, wait (at most 300 s)
# for the mount; sets PID, MNT and MOUNT_SECONDS.
mount_catalog() {
	MNT="$2"
	mkdir -p "$MNT"
	local t0
	t0="$(now)"
	"$INTAKEFS" mount "$1" "$MNT" "${CACHE_FLAG[@]}" --log-level warn >"$WORK/daemon.log" 2>&1 &
	PID=$!
	for _ in $(seq 1 3000); do
		mountpoint -q "$MNT" && break
		if ! kill -0 "$PID" 2>/dev/null; then
			echo "bench: intakefs exited before mounting:" >&2
			cat "$WORK/daemon.log" >&2
			PID=""
			exit 1
		fi
		sleep 0.1
	done
	mountpoint -q "$MNT" || { echo "bench: $MNT not mounted after 300 s" >&2; exit 1; }
	MOUNT_SECONDS="$(elapsed "$t0" "$(now)")"
}

mem() { # mem FIELD: a /proc/PID/status field of the daemon, in MiB
	awk -v f="$1:" '$1 == f { printf "%.1f MiB", $2 / 1024 }' "/proc/$PID/status"
}

ROWS=()
row() { ROWS+=("$(printf '%-46s %s' "$1" "$2")"); }

# ------------------------------------------------------------------ (a)
echo "bench: (a) generating $N_CATS catalogs x $N_SOURCES sources in $WORK/big" >&2
BIG="$WORK/big"
mkdir -p "$BIG/cats"
awk -v ncats="$N_CATS" -v nsrc="$N_SOURCES" -v dir="$BIG" 'BEGIN {
	root = dir "/catalog.yaml"
	print "metadata:\n  version: 1\nsources:" > root
	for (c = 0; c < ncats; c++) {
		cname = sprintf("cat%03d", c)
		printf "  %s:\n    description: nested catalog %d\n    driver: yaml_file_cat\n    args:\n      path: \x27{{ CATALOG_DIR }}/cats/%s.yaml\x27\n", cname, c, cname > root
		cfile = dir "/cats/" cname ".yaml"
		system("mkdir -p " dir "/data/" cname)
		print "metadata:\n  version: 1\nsources:" > cfile
		for (s = 0; s < nsrc; s++) {
			sname = sprintf("src%03d", s)
			printf "  %s:\n    description: small CSV %d of catalog %d\n    driver: csv\n    args:\n      urlpath: \x27{{ CATALOG_DIR }}/../data/%s/%s.csv\x27\n    metadata:\n      n: %d\n", sname, s, c, cname, sname, c * nsrc + s > cfile
			data = dir "/data/" cname "/" sname ".csv"
			printf "id,catalog,source\n%d,%d,%d\n", c * nsrc + s, c, s > data
			close(data)
		}
		close(cfile)
	}
	close(root)
}'

mount_catalog "$BIG/catalog.yaml" "$WORK/mnt-big"
row "(a) sources" "$((N_CATS * N_SOURCES)) in $N_CATS nested catalogs"
row "(a) mount until mounted" "${MOUNT_SECONDS} s"
row "(a) daemon VmRSS after mount" "$(mem VmRSS)"

t0="$(now)"
entries="$(find "$MNT" | wc -l)"
t1="$(now)"
row "(a) find MOUNT | wc -l (first walk)" "$(elapsed "$t0" "$t1") s, $entries entries"
row "(a) daemon VmRSS after find" "$(mem VmRSS)"

t0="$(now)"
ls -lR "$MNT" >/dev/null
t1="$(now)"
row "(a) ls -lR MOUNT > /dev/null" "$(elapsed "$t0" "$t1") s"

t0="$(now)"
find "$MNT" | wc -l >/dev/null
t1="$(now)"
row "(a) find MOUNT | wc -l (again)" "$(elapsed "$t0" "$t1") s"
row "(a) daemon VmRSS / VmHWM at the end" "$(mem VmRSS) / $(mem VmHWM)"
unmount_current

# The floor: the same tree shape served from memory by go-fuse's own
# nodes (scripts/bench/fusefloor), no catalogs at all; each walk on a
# fresh mount. "like-for-like" refuses OPENDIR as intakefs does, so the
# kernel makes the same requests (two READDIRPLUS per directory and
# nothing else); "go-fuse defaults" also has OPENDIR and RELEASEDIR.
# PIN="taskset -c 0" runs the server and the walk on one CPU: the
# difference to the unpinned walk is what waking the other CPU costs at
# each round trip (a VM's idle vCPU halts, and waking it takes a trip
# through the hypervisor).
floor_walk() { # floor_walk LABEL FLAGS CMD...: time CMD on a fresh fusefloor mount
	local label="$1" flags="$2" fpid t0 t1
	shift 2
	mkdir -p "$WORK/mnt-floor"
	# shellcheck disable=SC2086 # FLAGS is empty or one flag, PIN a prefix
	${PIN:-} "$WORK/fusefloor" $flags "$WORK/mnt-floor" >>"$WORK/floor.log" 2>&1 &
	fpid=$!
	for _ in $(seq 1 300); do mountpoint -q "$WORK/mnt-floor" && break; sleep 0.1; done
	t0="$(now)"
	${PIN:-} "$@" "$WORK/mnt-floor" >/dev/null
	t1="$(now)"
	row "$label" "$(elapsed "$t0" "$t1") s"
	kill -INT "$fpid"
	wait "$fpid" 2>/dev/null || true
}
if (cd "$ROOT" && go build -o "$WORK/fusefloor" ./scripts/bench/fusefloor); then
	floor_walk "(a0) floor, like-for-like: find, first walk" -noopendir find
	floor_walk "(a0) floor, like-for-like: ls -lR, first walk" -noopendir ls -lR
	floor_walk "(a0) floor, go-fuse defaults: find, first walk" "" find
	floor_walk "(a0) floor, go-fuse defaults: ls -lR, first walk" "" ls -lR
	if command -v taskset >/dev/null; then
		PIN="taskset -c 0" floor_walk "(a0) floor, like-for-like, on one CPU: find" -noopendir find
	fi
else
	row "(a0) go-fuse floor" "not built"
fi

# ls -lR as the first walk of a fresh mount (above it follows find, whose
# listings and attributes the kernel still holds)
mount_catalog "$BIG/catalog.yaml" "$WORK/mnt-big"
t0="$(now)"
ls -lR "$MNT" >/dev/null
t1="$(now)"
row "(a) ls -lR MOUNT, first walk of a new mount" "$(elapsed "$t0" "$t1") s"
row "(a) daemon VmRSS / VmHWM after it" "$(mem VmRSS) / $(mem VmHWM)"
unmount_current
rm -rf "$BIG" "$WORK/cache"

# ------------------------------------------------------------------ (b)
echo "bench: (b) generating a ${BENCH_MB} MB CSV file" >&2
LARGE="$WORK/large"
mkdir -p "$LARGE"
awk -v limit="$((BENCH_MB * 1000 * 1000))" 'BEGIN {
	srand(2)
	print "id,when,station,value,flag"
	size = 30
	for (i = 0; size < limit; i++) {
		line = sprintf("%d,2024-%02d-%02dT%02d:%02d:00,ST%04d,%.4f,%s", i, i % 12 + 1, i % 28 + 1,
			i % 24, i % 60, i % 5000, rand() * 1000, (i % 7 == 0) ? "true" : "false")
		print line
		size += length(line) + 1
	}
}' >"$LARGE/large.csv"
BYTES="$(stat -c %s "$LARGE/large.csv")"
cat >"$LARGE/catalog.yaml" <<'EOF'
metadata:
  version: 1
sources:
  large:
    description: a generated CSV file for the read benchmark
    driver: csv
    args:
      urlpath: '{{ CATALOG_DIR }}/large.csv'
EOF

mount_catalog "$LARGE/catalog.yaml" "$WORK/mnt-large"
sync
if (echo 3 >/proc/sys/vm/drop_caches) 2>/dev/null; then
	first="cold: page cache dropped"
else
	first="page cache NOT dropped (no permission): may be warm"
fi

rate() { # rate FILE: MB/s of cat FILE > /dev/null
	local t0 t1
	t0="$(now)"
	cat "$1" >/dev/null
	t1="$(now)"
	awk -v b="$BYTES" -v a="$t0" -v c="$t1" 'BEGIN { d = c - a; if (d <= 0) d = 1e-6; printf "%8.1f MB/s  (%.3f s)", b / 1e6 / d, d }'
}

row "(b) file size" "$BYTES bytes"
row "(b) run 1, original ($first)" "$(rate "$LARGE/large.csv")"
row "(b) run 1, mounted (first read via intakefs)" "$(rate "$MNT/large.csv")"
row "(b) run 2, original (warm)" "$(rate "$LARGE/large.csv")"
row "(b) run 2, mounted (warm: read before)" "$(rate "$MNT/large.csv")"
if cmp -s "$LARGE/large.csv" "$MNT/large.csv"; then
	row "(b) mounted file equals the original" "yes"
else
	row "(b) mounted file equals the original" "NO"
fi
row "(b) daemon VmRSS / VmHWM" "$(mem VmRSS) / $(mem VmHWM)"
unmount_current

ver="$("$INTAKEFS" --version 2>/dev/null | head -1 || true)"
printf '\nintakefs benchmark (issue 2), %s, %s cores\n' "${ver:-$INTAKEFS}" "$(nproc)"
printf '%-46s %s\n' "measure" "result"
printf '%-46s %s\n' "-------" "------"
printf '%s\n' "${ROWS[@]}"
