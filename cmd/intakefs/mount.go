package main

import (
	"errors"
	"fmt"
	"net/http"
	_ "net/http/pprof"
	"os"
	"os/exec"
	"os/signal"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	ifs "github.com/intakefs/intakefs/fs"
	"github.com/intakefs/intakefs/internal/metrics"
)

func newMountCmd(g *globalFlags) *cobra.Command {
	cfg := ifs.DefaultConfig()
	var debugFuse bool
	var metricsAddr string
	readOnly := true
	var cf cacheFlags
	c := &cobra.Command{
		Use:   "mount CATALOG MOUNTPOINT",
		Short: "Mount CATALOG at MOUNTPOINT (foreground; unmounts on SIGINT/SIGTERM)",
		Long: `Mount CATALOG (a YAML file, a directory of YAML files, or a glob) read-only at
MOUNTPOINT, in the foreground. Ctrl-C (SIGINT) or SIGTERM unmounts.

As root the filesystem is mounted directly; a normal user needs fusermount3
(Debian package fuse3).`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			catalog, mnt := args[0], args[1]
			if !readOnly {
				return errors.New("--read-only=false: intakefs mounts are always read-only")
			}
			for _, o := range cfg.Options {
				for _, one := range strings.Split(o, ",") {
					if strings.TrimSpace(one) == "rw" {
						return fmt.Errorf("-o %s: intakefs mounts are always read-only", o)
					}
				}
			}
			// Signals are ours from the start: one that arrives between
			// the mount appearing and here must unmount, not kill the
			// process and leave a dead mount behind.
			sigs := make(chan os.Signal, 2)
			signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
			ms, err := listenMetrics(metricsAddr)
			if err != nil {
				return err
			}
			var fuseMetrics *metrics.FUSE
			if ms != nil {
				defer ms.Close()
				fuseMetrics = metrics.NewFUSE()
				cfg.Observer = fuseMetrics
			}
			st, err := os.Stat(mnt)
			if errors.Is(err, syscall.ENOTCONN) {
				// a FUSE mount whose daemon died: clear it away first
				fmt.Fprintf(&logOut, "intakefs: %s is a dead mount; detaching it\n", mnt)
				lazyUnmount(mnt)
				st, err = os.Stat(mnt)
			}
			if err != nil {
				return fmt.Errorf("mountpoint %s: %w", mnt, unwrapPathErr(err))
			}
			if !st.IsDir() {
				return fmt.Errorf("mountpoint %s: not a directory", mnt)
			}
			if fstype, ok := fuseMountAt(mnt); ok {
				// mounting again would hide the first mount until this
				// one ends, with nothing to say so
				return fmt.Errorf("mountpoint %s: already a mount point (%s): unmount it first", mnt, fstype)
			}
			ch, err := cf.open(g)
			if err != nil {
				return lockedHint(err) // names the directory
			}
			defer ch.Close()
			tree, log, err := g.openWith(catalog, ch)
			if err != nil {
				return err
			}
			defer tree.Close()
			cfg.Log = log
			cfg.Debug = debugFuse
			srv, err := ifs.Mount(mnt, tree, cfg)
			if err != nil {
				return fmt.Errorf("mount %s: %w", mnt, err)
			}
			if addr := os.Getenv("INTAKEFS_PPROF"); addr != "" {
				// for developers: net/http/pprof on a loopback address
				go func() { log.Warn("pprof server", "err", http.ListenAndServe(addr, nil)) }()
			}
			if p := os.Getenv("INTAKEFS_CPUPROFILE"); p != "" {
				// for the benchmark scripts: profile the daemon while it serves
				stop, err := startCPUProfile(p)
				if err != nil {
					return err
				}
				defer stop()
			}
			// The kernel's readahead stays at FUSE's 128 KiB: it reads one
			// piece past each read, which a random reader of remote data
			// pays for (1 MiB made a Parquet column query fetch 2.8× its
			// bytes); sequential readers get the cache's own readahead, and
			// fully cached objects go through passthrough.
			fmt.Fprintf(&logOut, "mounted %s at %s\n", catalog, mnt)
			if g.logFile != "" {
				log.Info("mounted", "catalog", catalog, "mountpoint", mnt)
			}
			if ms != nil {
				ms.Serve(metrics.NewRegistry(statsReader(tree), fuseMetrics), log)
				// at info, which is the default: with port 0 this line is
				// the only way to learn the port
				log.Info("metrics at " + ms.URL())
			}
			notifyReady()
			forced := make(chan struct{})
			go func() {
				busy := false
				for range sigs {
					if busy {
						// Second signal while busy: a normal unmount if
						// the files were closed meanwhile, else detach
						// the mount (lazy unmount) and go; readers still
						// holding files get ENOTCONN, which they asked for.
						if srv.Unmount() == nil {
							return
						}
						log.Warn("detaching busy mount and exiting", "mountpoint", mnt)
						lazyUnmount(mnt)
						close(forced)
						return
					}
					// A busy mount refuses to unmount: say so and keep
					// serving, so readers are never cut off mid-read.
					if err := srv.Unmount(); err != nil {
						busy = true
						log.Warn("unmount failed; still serving (close the files using it, or signal again to detach)", "mountpoint", mnt, "err", oneLine(err))
						continue
					}
					return
				}
			}()
			done := make(chan struct{})
			go func() { srv.Wait(); close(done) }()
			select {
			case <-done:
				fmt.Fprintf(&logOut, "unmounted %s\n", mnt)
				if g.logFile != "" {
					log.Info("unmounted", "mountpoint", mnt)
				}
			case <-forced:
				fmt.Fprintf(&logOut, "detached %s\n", mnt)
				if g.logFile != "" {
					log.Info("detached", "mountpoint", mnt)
				}
			}
			if ms != nil {
				// before the cache and the tree it reads are closed
				ms.Close()
			}
			time.Sleep(10 * time.Millisecond)
			return nil
		},
	}
	cf.add(c)
	f := c.Flags()
	f.BoolVar(&cfg.AllowOther, "allow-other", false, "let other users read the mount (needs user_allow_other in /etc/fuse.conf for non-root)")
	f.StringArrayVarP(&cfg.Options, "option", "o", nil, "extra FUSE mount option (repeatable)")
	f.DurationVar(&cfg.EntryTimeout, "entry-timeout", cfg.EntryTimeout, "how long the kernel may cache a name")
	f.DurationVar(&cfg.AttrTimeout, "attr-timeout", cfg.AttrTimeout, "how long the kernel may cache attributes")
	f.DurationVar(&cfg.NegativeTimeout, "negative-timeout", cfg.NegativeTimeout, "how long the kernel may cache a missing name")
	f.BoolVar(&debugFuse, "debug-fuse", false, "log every FUSE request")
	// rclone mount's flag: a user's habit, or a script written for rclone,
	// passes it; it is what intakefs always does
	f.BoolVar(&readOnly, "read-only", true, "mount read-only (always; accepted as rclone mount takes it)")
	f.StringVar(&metricsAddr, "metrics-addr", "", "serve Prometheus metrics at http://HOST:PORT/metrics (port 0: a free port, logged at info level)")
	return c
}

func unwrapPathErr(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err
	}
	return err
}

func startCPUProfile(p string) (func(), error) {
	f, err := os.Create(p)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}

// lazyUnmount detaches mnt: the mount(2) way as root, fusermount3 -z
// otherwise.
func lazyUnmount(mnt string) {
	if err := syscall.Unmount(mnt, syscall.MNT_DETACH); err == nil {
		return
	}
	for _, prog := range []string{"fusermount3", "fusermount"} {
		if err := exec.Command(prog, "-u", "-z", mnt).Run(); err == nil {
			return
		}
	}
}
