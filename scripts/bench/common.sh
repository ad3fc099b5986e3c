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
