package main

import (
	"path/filepath"
	"strings"

	"github.com/intakefs/intakefs/internal/mountinfo"
)

// fuseMountAt says whether dir is the mount point of a FUSE filesystem
// now, and its type. Anything that cannot be read says no: the mount
// itself then decides.
func fuseMountAt(dir string) (string, bool) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", false
	}
	if p, err := filepath.EvalSymlinks(abs); err == nil {
		abs = p
	}
	for _, m := range mountinfo.Read() {
		if m.Point == abs && (m.FSType == "fuse" || m.FSType == "fuseblk" || strings.HasPrefix(m.FSType, "fuse.")) {
			return m.FSType, true
		}
	}
	return "", false
}
