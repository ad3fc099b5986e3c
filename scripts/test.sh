#!/usr/bin/env bash
# The project's test command: prepare the machine (scripts/setup.sh), then
# vet and run every Go test, the FUSE integration tests in ./itest included.
#
#   bash scripts/test.sh               # everything
#   bash scripts/test.sh -run TestX    # extra flags go to go test
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

# A bare environment (cron, CI) may lack HOME, which npm and go need, or
# the Go toolchain's directory on PATH.
if [ -z "${HOME:-}" ]; then
	HOME="$(getent passwd "$(id -u)" | cut -d: -f6)"
	export HOME="${HOME:-/root}"
fi
command -v go >/dev/null 2>&1 || export PATH="$PATH:/usr/local/go/bin"

bash scripts/setup.sh

# Tests talk to loopback servers only: keep the AWS and Google SDKs from
# probing the cloud metadata address for credentials.
export AWS_EC2_METADATA_DISABLED=true
export NO_GCE_CHECK=true
export PATH="$PATH:$(go env GOPATH)/bin"

echo "test: go vet ./..." >&2
go vet ./...

echo "test: go test -race -count=1 -timeout 30m ./... $*" >&2
go test -race -count=1 -timeout 30m ./... "$@"

# Each fuzz target for a short while from its seed corpus: no panic, and
# the round-trip properties hold.
for pt in engine:FuzzNameGrammar engine:FuzzRender engine:FuzzParseLiteral engine:FuzzFromPath \
	engine:FuzzEncodeYAML cache/decomp:FuzzZstd; do
	pkg="./${pt%%:*}" target="${pt#*:}"
	echo "test: go test $pkg -run '^\$' -fuzz '^$target\$' -fuzztime 10s" >&2
	go test "$pkg" -run '^$' -fuzz "^$target\$" -fuzztime 10s
done
