// Package itest holds intakefs's integration tests: each test builds the
// intakefs binary, mounts a catalog with `intakefs mount` in a separate
// process on a temporary mount point, and reads the mounted files with
// ordinary tools (the Go standard library, pandas, Intake, DuckDB),
// comparing what they see with the original files.
//
// Run with `go test -count=1 ./itest/` (scripts/setup.sh prepares the data
// and tools). Where FUSE, the data or a tool is missing, a test is skipped
// with the reason, unless CI is set in the environment: then it fails.
//
// TestMain builds ../cmd/intakefs (with -race when the tests are); set
// INTAKEFS_BIN to test a binary built elsewhere instead.
package itest
