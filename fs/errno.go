package fs

import (
	"context"
	"errors"
	iofs "io/fs"
	"log/slog"
	"syscall"

	"github.com/intakefs/intakefs/engine"
	"github.com/intakefs/intakefs/remote"
)

// toErrno is the one place engine, cache and remote errors become errno
// values. Matching is by errors.Is/As so wrapping never changes the
// answer; anything unrecognised is EIO and logged, because a reader must
// get a clear failure, never a guess.
func toErrno(log *slog.Logger, op, name string, err error) syscall.Errno {
	if err == nil {
		return 0
	}
	var pe *engine.ParamError
	var errno syscall.Errno
	switch {
	case errors.As(err, &pe):
		log.Warn("invalid parameters", "op", op, "name", name, "reason", err.Error())
		return syscall.EINVAL
	case errors.Is(err, iofs.ErrNotExist):
		log.Debug("not found", "op", op, "name", name, "reason", err.Error())
		return syscall.ENOENT
	case errors.Is(err, engine.ErrStale), errors.Is(err, remote.ErrChanged):
		log.Info("data changed since lookup", "op", op, "name", name, "reason", err.Error())
		return syscall.ESTALE
	case errors.Is(err, remote.ErrNotSupported):
		log.Warn("not supported", "op", op, "name", name, "reason", err.Error())
		return syscall.EOPNOTSUPP
	case errors.Is(err, engine.ErrNoData):
		return syscall.ENOENT
	case errors.Is(err, iofs.ErrPermission), errors.Is(err, engine.ErrShellDisabled):
		log.Warn("permission denied", "op", op, "name", name, "reason", err.Error())
		return syscall.EACCES
	case errors.Is(err, context.Canceled):
		return syscall.EINTR
	case errors.Is(err, remote.ErrUnavailable):
		// before the errno case: a refused connection wraps ECONNREFUSED,
		// but a reader is owed EIO (SPEC §4)
		log.Error("remote unavailable", "op", op, "name", name, "reason", err.Error())
		return syscall.EIO
	case errors.As(err, &errno):
		log.Warn("system error", "op", op, "name", name, "reason", err.Error())
		return errno
	}
	log.Error("I/O error", "op", op, "name", name, "reason", err.Error())
	return syscall.EIO
}
