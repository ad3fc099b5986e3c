#!/usr/bin/env bash
# Prepare a machine (a developer's, or a fresh CI one) for intakefs's demo
# and tests. Idempotent: a re-run on a ready machine only checks and rebuilds.
#
#   - Debian packages: python3-intake and python3-pandas (the reference
#     implementation, run with /usr/bin/python3), fuse3 (fusermount3) and
#     gcc (cgo: libzstd is built into the daemon, and -race needs it);
#     apt is skipped when they are all installed already;
#   - testdata/vega/: the vega-datasets npm package, unpacked (not committed);
#   - testdata/vega/parts/: seattle-weather.csv split into three part files,
#     each with the header row (derived data for the multi-file CSV source);
#   - scripts/node/node_modules: DuckDB for node, from the committed lock file;
#   - bin/intakefs, built from ./cmd/intakefs once that has Go files.
#
# Works as root with no terminal and no stdin (CI=true); as another user it
# uses sudo for apt-get. `setup.sh --demo` (what scripts/demo.sh runs)
# leaves out versitygw, the S3 server only the tests use.
set -euo pipefail
FOR_DEMO=0
[ "${1:-}" != "--demo" ] || FOR_DEMO=1

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

VEGA_VERSION=3.2.1

# A bare environment (cron, CI) may lack HOME, which npm and go need, or
# the Go toolchain's directory on PATH.
if [ -z "${HOME:-}" ]; then
	HOME="$(getent passwd "$(id -u)" | cut -d: -f6)"
	export HOME="${HOME:-/root}"
fi
command -v go >/dev/null 2>&1 || export PATH="$PATH:/usr/local/go/bin"

VEGA_DIR="$ROOT/testdata/vega"
NODE_DIR="$ROOT/scripts/node"

log() { printf 'setup: %s\n' "$*" >&2; }
die() { printf 'setup: error: %s\n' "$*" >&2; exit 1; }

as_root() {
	if [ "$(id -u)" -eq 0 ]; then
		"$@"
	elif command -v sudo >/dev/null 2>&1; then
		sudo -n "$@"
	else
		die "need root (or sudo) to run: $*"
	fi
}

# ---------------------------------------------------------------- apt
# The decompression tests make their inputs with the standard tools; the
# remote benchmark (scripts/bench_issue5.sh) installs rclone and s3fs itself.
APT_PACKAGES=(python3-intake python3-pandas fuse3 gcc gzip bzip2 xz-utils zstd lz4 zip tar util-linux)
# node and npm come with the machine; install Debian's only if missing.
command -v npm >/dev/null 2>&1 || APT_PACKAGES+=(nodejs npm)

missing=()
for p in "${APT_PACKAGES[@]}"; do
	status="$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)"
	[ "$status" = "install ok installed" ] || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
	log "installing Debian packages: ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	as_root apt-get update -qq </dev/null
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
		-o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
		"${missing[@]}" </dev/null >/dev/null
else
	log "Debian packages present: ${APT_PACKAGES[*]}"
fi
/usr/bin/python3 -c 'import intake, pandas' ||
	die "/usr/bin/python3 cannot import intake and pandas"
command -v fusermount3 >/dev/null 2>&1 || die "fusermount3 not found after installing fuse3"
[ -e /dev/fuse ] || log "warning: /dev/fuse is missing: mounting will not work on this machine"

# ---------------------------------------------------------------- vega-datasets
if [ -f "$VEGA_DIR/datapackage.json" ] && [ -f "$VEGA_DIR/data/flights-3m.parquet" ] &&
	grep -q "\"version\": \"$VEGA_VERSION\"" "$VEGA_DIR/package.json" 2>/dev/null; then
	log "testdata/vega present (vega-datasets $VEGA_VERSION)"
else
	log "fetching vega-datasets@$VEGA_VERSION into testdata/vega"
	tmp="$(mktemp -d)"
	trap 'rm -rf "$tmp"' EXIT
	(cd "$tmp" && npm pack --silent "vega-datasets@$VEGA_VERSION" </dev/null >/dev/null)
	tgz="$(ls "$tmp"/vega-datasets-*.tgz)"
	mkdir -p "$tmp/x"
	tar -xzf "$tgz" -C "$tmp/x"
	[ -f "$tmp/x/package/datapackage.json" ] || die "unexpected layout in $tgz"
	rm -rf "$VEGA_DIR"
	mkdir -p "$(dirname "$VEGA_DIR")"
	mv "$tmp/x/package" "$VEGA_DIR"
	rm -rf "$tmp"
	trap - EXIT
fi

# ---------------------------------------------------------------- derived parts
# No two CSV files of vega-datasets share a header, so the multi-file CSV
# source reads seattle-weather.csv cut into three parts (1461 data rows =
# 3 x 487), each part starting with the header row. Concatenated with the
# header kept once, the parts give back the original file byte for byte.
PARTS_DIR="$VEGA_DIR/parts"
if [ -f "$PARTS_DIR/seattle-weather-part3.csv" ]; then
	log "testdata/vega/parts present"
else
	log "deriving testdata/vega/parts from seattle-weather.csv"
	src="$VEGA_DIR/data/seattle-weather.csv"
	rows=$(($(wc -l <"$src") - 1))
	per=$(((rows + 2) / 3))
	rm -rf "$PARTS_DIR.tmp"
	mkdir -p "$PARTS_DIR.tmp"
	awk -v per="$per" -v dir="$PARTS_DIR.tmp" '
		NR == 1 { header = $0; next }
		{
			part = int((NR - 2) / per) + 1
			out = dir "/seattle-weather-part" part ".csv"
			if (!(out in seen)) { seen[out] = 1; print header > out }
			print > out
		}' "$src"
	cat >"$PARTS_DIR.tmp/README" <<-EOF
		Derived by scripts/setup.sh from ../data/seattle-weather.csv
		(vega-datasets $VEGA_VERSION): its $rows data rows in three parts of
		at most $per rows, each part beginning with the same header row.
	EOF
	rm -rf "$PARTS_DIR"
	mv "$PARTS_DIR.tmp" "$PARTS_DIR"
fi

# ---------------------------------------------------------------- node modules
stamp="$NODE_DIR/node_modules/.package-lock.json"
if [ -f "$stamp" ] && [ -d "$NODE_DIR/node_modules/@duckdb/node-api" ] &&
	[ ! "$NODE_DIR/package-lock.json" -nt "$stamp" ]; then
	log "scripts/node/node_modules up to date"
else
	log "npm ci in scripts/node"
	(cd "$NODE_DIR" && npm ci --silent --no-audit --no-fund </dev/null)
fi

# ---------------------------------------------------------------- test servers
# versitygw is the S3 server the remote/ and itest/ tests start on loopback.
VERSITYGW_VERSION=v1.8.0
GOBIN_DIR="$(go env GOPATH)/bin"
if [ "$FOR_DEMO" = 1 ]; then
	log "versitygw left out (only the tests need it)"
elif [ -x "$GOBIN_DIR/versitygw" ] && go version -m "$GOBIN_DIR/versitygw" 2>/dev/null | grep -Eq "^[[:space:]]+mod[[:space:]]+github.com/versity/versitygw[[:space:]]+$VERSITYGW_VERSION"; then
	log "versitygw $VERSITYGW_VERSION present"
else
	log "go install versitygw@$VERSITYGW_VERSION (a few minutes the first time)"
	go install "github.com/versity/versitygw/cmd/versitygw@$VERSITYGW_VERSION"
fi

# ---------------------------------------------------------------- build
if compgen -G "$ROOT/cmd/intakefs/*.go" >/dev/null; then
	log "building bin/intakefs"
	mkdir -p "$ROOT/bin"
	go build -buildvcs=auto -o "$ROOT/bin/intakefs" ./cmd/intakefs # the commit, for --version
else
	log "cmd/intakefs has no Go files yet: not building bin/intakefs"
fi
log "ready"
