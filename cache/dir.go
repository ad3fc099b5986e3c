package cache

import (
	"errors"
	"os"
	"path/filepath"
)

// EnvCacheDir names the environment variable that sets the cache
// directory when --cache-dir is not given.
const EnvCacheDir = "INTAKE_CACHE_DIR"

// ResolveDir is the cache directory the CLI uses, in this order of
// precedence:
//
//  1. flag, the value of --cache-dir, when not empty;
//  2. $INTAKE_CACHE_DIR, when set and not empty;
//  3. $XDG_CACHE_HOME/intakefs, when XDG_CACHE_HOME is an absolute path
//     (the XDG Base Directory rule: a relative value is ignored);
//  4. ~/.cache/intakefs.
//
// A relative flag or INTAKE_CACHE_DIR is made absolute against the working
// directory, so that the daemon's directory does not move if it changes
// directory later.
func ResolveDir(flag string) (string, error) {
	return resolveDir(flag, os.Getenv, os.UserHomeDir)
}

func resolveDir(flag string, getenv func(string) string, home func() (string, error)) (string, error) {
	if flag != "" {
		return filepath.Abs(flag)
	}
	if d := getenv(EnvCacheDir); d != "" {
		return filepath.Abs(d)
	}
	if x := getenv("XDG_CACHE_HOME"); x != "" && filepath.IsAbs(x) {
		return filepath.Join(x, "intakefs"), nil
	}
	h, err := home()
	if err != nil || h == "" {
		return "", errors.New("no cache directory: give --cache-dir or set " + EnvCacheDir + " (no home directory to default to)")
	}
	return filepath.Join(h, ".cache", "intakefs"), nil
}
