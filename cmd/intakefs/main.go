// Command intakefs mounts an Intake catalog as a read-only filesystem.
package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"runtime/debug"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/intakefs/intakefs/engine"
	"github.com/intakefs/intakefs/remote"
)

func main() {
	if os.Getenv("GOGC") == "" {
		// A mount holds many small long-lived objects and makes much
		// short-lived garbage while listing; collecting at 50% growth
		// instead of 100% keeps a 10,000-source tree well under 200 MiB.
		debug.SetGCPercent(50)
	}
	root := newRootCmd()
	if args, ok := helperArgs(root, os.Args[1:]); ok {
		// invoked as a mount helper: mount.fuse3 runs
		// "intakefs CATALOG MOUNTPOINT -o OPTIONS"
		if err := runHelper(args); err != nil {
			fmt.Fprintln(os.Stderr, "intakefs: "+oneLine(err))
			os.Exit(exitCode(err))
		}
		return
	}
	if err := root.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "intakefs: "+oneLine(err))
		os.Exit(exitCode(err))
	}
}

func exitCode(err error) int {
	var pe *engine.ParamError
	var ee *exitError
	switch {
	case errors.As(err, &ee):
		return ee.code
	case errors.As(err, &pe):
		return 2
	case errors.Is(err, fs.ErrNotExist):
		return 3
	}
	return 1
}

func oneLine(err error) string { return strings.ReplaceAll(err.Error(), "\n", " ") }

type globalFlags struct {
	logLevel   string
	logFile    string
	params     []string
	allowShell bool
	storageOpt []string
	retry      remote.RetryPolicy
	timeouts   remote.Timeouts
	// remoteRecheck: how often remote catalogs are checked again
	remoteRecheck time.Duration
}

func newRootCmd() *cobra.Command {
	g := &globalFlags{}
	root := &cobra.Command{
		Version: version(),
		Use:     "intakefs",
		Short:   "Mount an Intake data catalog as a read-only filesystem",
		Long: `intakefs serves an Intake catalog (YAML) as a read-only filesystem: catalogs are
directories, data sources are files holding their data, and parameters ride in
the path (flights@size=10k.json). ls, describe and cat give the same views
without a mount.

Examples:
  intakefs mount catalog.yaml /mnt/data
  intakefs ls catalog.yaml flights
  intakefs cat catalog.yaml 'flights/flights@size=5k.json' | head
  intakefs describe catalog.yaml flights/flights`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	pf := root.PersistentFlags()
	pf.StringVar(&g.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	pf.StringVar(&g.logFile, "log-file", "", "append the log to this file instead of standard error")
	pf.StringArrayVar(&g.params, "param", nil, "set a root catalog parameter, k=v (repeatable)")
	pf.BoolVar(&g.allowShell, engine.ShellFlag[2:], false, "allow shell() and client_shell() in catalog defaults and templates")
	pf.StringArrayVar(&g.storageOpt, "storage-option", nil, "storage_options for a remote CATALOG, key=value (repeatable; dotted keys nest: client_kwargs.endpoint_url=...; values are YAML: true, 3, text)")
	g.retry = remote.DefaultRetryPolicy
	g.timeouts = remote.DefaultTimeouts
	pf.IntVar(&g.retry.MaxAttempts, "retries", g.retry.MaxAttempts, "attempts per remote request, the first included")
	pf.DurationVar(&g.retry.MaxElapsed, "retry-max-time", g.retry.MaxElapsed, "the longest one remote request may take, retries included, before it fails (EIO); a ranged read fails when it delivers less than 64 KiB in that time")
	pf.DurationVar(&g.timeouts.Connect, "connect-timeout", g.timeouts.Connect, "time to connect to a remote server")
	pf.DurationVar(&g.timeouts.Request, "request-timeout", g.timeouts.Request, "time for a remote server to start answering")
	pf.DurationVar(&g.timeouts.Idle, "idle-timeout", g.timeouts.Idle, "longest pause in a remote response body while it is being read")
	pf.DurationVar(&g.remoteRecheck, "remote-recheck", engine.DefaultRemoteRecheck, "how often a remote catalog is checked for changes (in the background), and how long a listing of remote data is reused")
	root.AddCommand(newMountCmd(g), newLsCmd(g), newDescribeCmd(g), newCatCmd(g), newCacheCmd(g))
	return root
}

// version is the module version, or the commit it was built from (go
// build in a clone records it), for --version.
func version() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	v := bi.Main.Version
	var rev, dirty string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = ", modified"
			}
		}
	}
	if rev != "" {
		if len(rev) > 12 {
			rev = rev[:12]
		}
		return fmt.Sprintf("%s (commit %s%s)", v, rev, dirty)
	}
	return v
}
