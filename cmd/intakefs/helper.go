package main

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
)

// helperArgs recognises the mount-helper form "CATALOG MOUNTPOINT [-o
// OPTS]...", which mount(8) and mount.fuse3 use for fstab entries of type
// fuse.intakefs: two positional arguments where a command would be.
func helperArgs(root *cobra.Command, args []string) ([]string, bool) {
	if len(args) < 2 || strings.HasPrefix(args[0], "-") {
		return nil, false
	}
	for _, c := range root.Commands() {
		if c.Name() == args[0] || c.HasAlias(args[0]) {
			return nil, false
		}
	}
	if args[0] == "help" || args[0] == "completion" {
		return nil, false
	}
	return args, true
}

// ignoredOptions are mount(8)'s own options, which reach a helper but
// mean nothing to a FUSE file system.
var ignoredOptions = map[string]bool{
	"rw": true, "ro": true, "dev": true, "nodev": true, "suid": true, "nosuid": true, "exec": true,
	"noexec": true, "auto": true, "noauto": true, "user": true, "nouser": true, "users": true,
	"_netdev": true, "nofail": true, "defaults": true, "atime": true, "noatime": true, "relatime": true,
}

// helperMountArgs turns "CATALOG MOUNTPOINT -o a,b=c" into the arguments
// of "intakefs mount". Options of intakefs's own flags are spelled with
// underscores (allow_other, cache_dir=..., log_level=..., param.k=v); the
// rest go to FUSE as -o.
func helperMountArgs(args []string) ([]string, error) {
	var pos, opts []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "-o":
			if i+1 >= len(args) {
				return nil, errors.New("-o needs options")
			}
			opts = append(opts, strings.Split(args[i+1], ",")...)
			i++
		case strings.HasPrefix(a, "-o"):
			opts = append(opts, strings.Split(a[2:], ",")...)
		case a == "-n" || a == "-s" || a == "-f" || a == "-v":
			// mount(8)'s no-mtab / sloppy / fake / verbose flags
		default:
			pos = append(pos, a)
		}
	}
	if len(pos) != 2 {
		return nil, fmt.Errorf("usage as a mount helper: intakefs CATALOG MOUNTPOINT [-o options] (got %d arguments)", len(pos))
	}
	out := []string{"mount", pos[0], pos[1]}
	logFile := os.DevNull
	for _, o := range opts {
		k, v, hasV := strings.Cut(strings.TrimSpace(o), "=")
		switch {
		case k == "" || ignoredOptions[k] || strings.HasPrefix(k, "x-") || k == "comment":
		case strings.HasPrefix(k, "param."):
			out = append(out, "--param", strings.TrimPrefix(k, "param.")+"="+v)
		case k == "allow_other" || k == "allow_shell":
			out = append(out, "--"+strings.ReplaceAll(k, "_", "-"))
		case k == "log_file":
			logFile = v
		case k == "log_level" || k == "cache_dir" || k == "cache_max_size" || k == "cache_min_free" || k == "entry_timeout" || k == "attr_timeout" || k == "negative_timeout" || k == "metrics_addr" || k == "remote_recheck":
			if !hasV {
				return nil, fmt.Errorf("option %s needs a value", k)
			}
			out = append(out, "--"+strings.ReplaceAll(k, "_", "-"), v)
		default:
			out = append(out, "-o", o)
		}
	}
	return append(out, "--log-file", logFile), nil
}

// readyFDEnv names the descriptor a backgrounded mount reports on.
const readyFDEnv = "INTAKEFS_READY_FD"

// runHelper mounts in the background, as mount(8) expects of a helper: a
// child process serves the mount and this one exits 0 once it is mounted,
// or with the child's error if mounting fails.
func runHelper(args []string) error {
	margs, err := helperMountArgs(args)
	if err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	ready, readyW, err := os.Pipe()
	if err != nil {
		return err
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		return err
	}
	cmd := exec.Command(self, margs...)
	cmd.Env = append(os.Environ(), readyFDEnv+"=3")
	cmd.ExtraFiles = []*os.File{readyW}
	cmd.Stderr = errW
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return err
	}
	readyW.Close()
	errW.Close()
	var stderr strings.Builder
	errDone := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(errR)
		for sc.Scan() {
			stderr.WriteString(sc.Text() + "\n")
		}
		close(errDone)
	}()
	line, _ := bufio.NewReader(ready).ReadString('\n')
	if strings.TrimSpace(line) == "ready" {
		_ = cmd.Process.Release()
		return nil
	}
	waitErr := make(chan error, 1)
	go func() { waitErr <- cmd.Wait() }()
	select {
	case err = <-waitErr:
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		err = errors.New("the mount process neither mounted nor exited")
	}
	<-errDone
	msg := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(stderr.String()), "intakefs: "))
	if msg == "" {
		msg = fmt.Sprint(err)
	}
	code := 1
	var ee *exec.ExitError
	if errors.As(err, &ee) && ee.ExitCode() > 0 {
		code = ee.ExitCode()
	}
	return &exitError{msg: msg, code: code}
}

// exitError carries the mount process's exit status to the helper's.
type exitError struct {
	msg  string
	code int
}

func (e *exitError) Error() string { return e.msg }

// notifyReady tells a waiting mount helper that the mount is up, and
// stops writing to standard error, which was the helper's pipe.
func notifyReady() {
	fdStr := os.Getenv(readyFDEnv)
	if fdStr == "" {
		return
	}
	fd, err := strconv.Atoi(fdStr)
	if err != nil {
		return
	}
	f := os.NewFile(uintptr(fd), "ready")
	fmt.Fprintln(f, "ready")
	f.Close()
	logOut.detach()
	if devnull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0); err == nil {
		// a panic's trace must not hit a closed pipe (SIGPIPE)
		_ = syscall.Dup3(int(devnull.Fd()), 2, 0)
		devnull.Close()
	}
}
