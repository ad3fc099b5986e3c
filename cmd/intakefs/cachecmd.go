package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/intakefs/intakefs/cache"
	"github.com/intakefs/intakefs/engine"
)

// cacheFlags are shared by mount and the cache commands.
type cacheFlags struct {
	dir      string
	maxSize  string
	minFree  string
	noCache  bool
	resolved string
}

func (c *cacheFlags) add(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&c.dir, "cache-dir", "", "cache directory (default $INTAKE_CACHE_DIR, else $XDG_CACHE_HOME/intakefs, else ~/.cache/intakefs)")
	f.StringVar(&c.maxSize, "cache-max-size", "10G", "most the cache may hold (e.g. 500M, 10G, 1T)")
	f.StringVar(&c.minFree, "cache-min-free", "1G", "free space the cache leaves on its disk")
}

// open opens the on-disk cache. Only one process may hold a cache
// directory; ErrLocked tells the caller another one does.
func (c *cacheFlags) open(g *globalFlags) (*cache.Cache, error) {
	dir, err := cache.ResolveDir(c.dir)
	if err != nil {
		return nil, err
	}
	c.resolved = dir
	max, err := parseSize(c.maxSize)
	if err != nil {
		return nil, fmt.Errorf("--cache-max-size: %w", err)
	}
	min, err := parseSize(c.minFree)
	if err != nil {
		return nil, fmt.Errorf("--cache-min-free: %w", err)
	}
	if min == 0 {
		min = -1
	}
	log, err := g.logger()
	if err != nil {
		return nil, err
	}
	return cache.New(cache.Options{Dir: dir, MaxBytes: max, MinFreeBytes: min, Log: log})
}

// parseSize reads 1024, 500K, 500M, 10G, 1T, 10GiB, 1.5G.
func parseSize(s string) (int64, error) {
	t := strings.TrimSpace(strings.ToUpper(s))
	t = strings.TrimSuffix(strings.TrimSuffix(t, "IB"), "B")
	mult := int64(1)
	if n := len(t); n > 0 {
		switch t[n-1] {
		case 'K':
			mult = 1 << 10
		case 'M':
			mult = 1 << 20
		case 'G':
			mult = 1 << 30
		case 'T':
			mult = 1 << 40
		}
		if mult > 1 {
			t = t[:n-1]
		}
	}
	f, err := strconv.ParseFloat(t, 64)
	if err != nil || f < 0 {
		return 0, fmt.Errorf("%q is not a size like 500M or 10G", s)
	}
	return int64(f * float64(mult)), nil
}

func newCacheCmd(g *globalFlags) *cobra.Command {
	c := &cobra.Command{
		Use:   "cache",
		Short: "Show, warm and clear the on-disk cache of remote data",
	}
	var lsFlags, clearFlags, warmFlags cacheFlags
	ls := &cobra.Command{
		Use:   "ls",
		Short: "List the cached objects (works while a mount is running)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			dir, err := cache.ResolveDir(lsFlags.dir)
			if err != nil {
				return err
			}
			ents, err := cache.ListDir(dir)
			if err != nil {
				return err
			}
			w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "CACHED\tSIZE\tLAST USE\tURL")
			var total int64
			for _, e := range ents {
				total += e.CachedBytes
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", human(e.CachedBytes), human(e.Size), e.LastUse.Local().Format(time.DateTime), e.URL)
			}
			fmt.Fprintf(w, "%s\t\t\t%s in %s\n", human(total), count(len(ents), "object"), dir)
			if n, bytes := spoolFiles(dir, false); n > 0 {
				fmt.Fprintf(w, "%s\t\t\t%s in %s\n", human(bytes), count(n, "decompressed file"), filepath.Join(dir, "spool"))
			}
			return w.Flush()
		},
	}
	lsFlags.add(ls)
	clear := &cobra.Command{
		Use:   "clear [URL]",
		Short: "Remove everything from the cache, or one object's versions",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ch, err := clearFlags.open(g)
			if err != nil {
				return lockedHint(err)
			}
			defer ch.Close()
			url := ""
			if len(args) == 1 {
				url = args[0]
			}
			freed, err := ch.Clear(url)
			if err != nil {
				return err
			}
			if url == "" {
				// the decompressed spools too: only this process holds
				// the cache directory now
				_, b := spoolFiles(ch.Dir(), true)
				freed += b
			}
			fmt.Printf("freed %s in %s\n", human(freed), ch.Dir())
			return nil
		},
	}
	clearFlags.add(clear)
	warm := &cobra.Command{
		Use:   "warm CATALOG PATH...",
		Short: "Fetch the data behind paths of the catalog tree into the cache",
		Long: `Fetch the whole data of the given paths (files, multi-part directories or
whole catalog directories) into the cache, with a progress bar on a terminal.
A mount that is running holds the cache: warm before mounting, or read the
files through the mount.`,
		Args: cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ch, err := warmFlags.open(g)
			if err != nil {
				return lockedHint(err)
			}
			defer ch.Close()
			tree, _, err := g.openWith(args[0], ch)
			if err != nil {
				return err
			}
			defer tree.Close()
			ctx := context.Background()
			var refs []engine.ObjectRef
			for _, p := range args[1:] {
				r, err := tree.Objects(ctx, p)
				if err != nil {
					return err
				}
				refs = append(refs, r...)
			}
			// local files are read in place, never cached: say so, and
			// count only what is fetched
			var total int64
			remoteRefs := refs[:0:0]
			for _, r := range refs {
				if !ch.Caches(r.Store) {
					fmt.Fprintf(os.Stderr, "not cached (a local file, read in place): %s\n", r.Info.URL)
					continue
				}
				remoteRefs = append(remoteRefs, r)
				total += r.Info.Size
			}
			refs = remoteRefs
			tty := term.IsTerminal(int(os.Stderr.Fd()))
			var bar *progressbar.ProgressBar
			if tty {
				bar = progressbar.DefaultBytes(total, "warming")
			}
			var done int64
			for _, r := range refs {
				base := done
				err := ch.Warm(ctx, r.Store, r.Info, func(d, _ int64) {
					if bar != nil {
						_ = bar.Set64(base + d)
					}
				})
				if err != nil {
					return err
				}
				done += r.Info.Size
				if bar == nil {
					fmt.Fprintf(os.Stderr, "warmed %s (%s)\n", r.Info.URL, human(r.Info.Size))
				}
			}
			if bar != nil {
				_ = bar.Finish()
				fmt.Fprintln(os.Stderr)
			}
			fmt.Printf("%s, %s in %s\n", count(len(refs), "object"), human(total), ch.Dir())
			return nil
		},
	}
	warmFlags.add(warm)
	c.AddCommand(ls, clear, warm)
	return c
}

func lockedHint(err error) error {
	if errors.Is(err, cache.ErrLocked) {
		return fmt.Errorf("%w (a mount is using this cache: unmount it first, or read the files through the mount)", err)
	}
	return err
}

func human(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// spoolFiles counts the complete decompressed spools the mounts keep in
// the cache directory (engine: DIR/spool/*.spool), removing them if asked.
func spoolFiles(dir string, remove bool) (n int, bytes int64) {
	paths, _ := filepath.Glob(filepath.Join(dir, "spool", "*.spool"))
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			continue
		}
		if remove && os.Remove(p) != nil {
			continue
		}
		n++
		bytes += fi.Size()
	}
	return n, bytes
}

// count is "1 object", "2 objects".
func count(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}
