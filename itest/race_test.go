//go:build race

package itest

// raceEnabled: this test binary was built with -race, so the daemon under
// test is built with it too.
const raceEnabled = true
