// Command intakefs mounts an Intake catalog as a read-only filesystem.
package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"

	"github.com/intakefs/intakefs/engine"
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
	switch {
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
}

func newRootCmd() *cobra.Command {
	g := &globalFlags{}
	root := &cobra.Command{
		Use:   "intakefs",
		Short: "Mount an Intake data catalog as a read-only filesystem",
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
	root.AddCommand(newMountCmd(g), newLsCmd(g), newDescribeCmd(g), newCatCmd(g))
	return root
}
