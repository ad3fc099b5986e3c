package decomp

import (
	"os"

	"golang.org/x/sys/unix"
)

// widenPipe asks for a 1 MiB pipe buffer (the default most a user may
// set, /proc/sys/fs/pipe-max-size); failing that the pipe stays as it is.
func widenPipe(f *os.File) {
	unix.FcntlInt(f.Fd(), unix.F_SETPIPE_SZ, 1<<20)
}
