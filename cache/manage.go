package cache

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/intakefs/intakefs/remote"
)

// Entry is one cached object version, for `intakefs cache ls`.
type Entry struct {
	URL      string
	Identity string // what the version is keyed on: "etag:…" or "st:size:mtime"
	Size     int64
	ModTime  time.Time
	// CachedBytes and CachedBlocks are what is on disk, of Blocks blocks.
	CachedBytes  int64
	CachedBlocks int64
	Blocks       int64
	LastUse      time.Time
	OpenHandles  int    // 0 in ListDir
	Dir          string // the entry's directory
}

// List returns the cached object versions, sorted by URL and identity.
// URLs are as the stores gave them: redact them before showing them.
func (c *Cache) List() []Entry {
	c.mu.Lock()
	out := make([]Entry, 0, len(c.objects))
	for _, o := range c.objects {
		if o.cached == 0 && o.handles == 0 {
			continue
		}
		n := int64(0)
		for _, b := range o.blocks {
			if b.state == stPresent {
				n++
			}
		}
		out = append(out, Entry{URL: o.info.URL, Identity: o.ident, Size: o.info.Size, ModTime: o.info.ModTime,
			CachedBytes: o.cached, CachedBlocks: n, Blocks: o.nblocks, LastUse: o.lastUse,
			OpenHandles: o.handles, Dir: o.dir})
	}
	c.mu.Unlock()
	sortEntries(out)
	return out
}

func sortEntries(es []Entry) {
	sort.Slice(es, func(i, j int) bool {
		if es[i].URL != es[j].URL {
			return es[i].URL < es[j].URL
		}
		return es[i].Identity < es[j].Identity
	})
}

// ListDir lists the cache in dir without opening it: no lock is taken
// and nothing is changed, so it works while a mount uses the directory
// (its view is then a moment old, and blocks not yet checked are counted
// as cached).
func ListDir(dir string) ([]Entry, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	found, err := scanDir(filepath.Join(dir, formatDir), 0, false, nil)
	if err != nil {
		return nil, fmt.Errorf("cache: %w", err)
	}
	out := make([]Entry, 0, len(found))
	for _, s := range found {
		m := s.meta
		out = append(out, Entry{URL: m.URL, Identity: m.Identity, Size: m.Size, ModTime: m.ModTime,
			CachedBytes: s.bytes, CachedBlocks: int64(len(s.blocks)), Blocks: (m.Size + m.BlockSize - 1) / m.BlockSize,
			LastUse: s.lastUse, Dir: s.dir})
	}
	sortEntries(out)
	return out, nil
}

// Clear deletes the cached versions of url, or everything when url is "",
// and returns the bytes freed. Versions open at the moment lose all their
// blocks not being read right now, and are deleted when their last handle
// closes.
func (c *Cache) Clear(url string) (int64, error) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return 0, ErrClosed
	}
	var targets []*object
	if url == "" {
		for _, o := range c.objects {
			targets = append(targets, o)
		}
	} else {
		for o := range c.byURL[url] {
			targets = append(targets, o)
		}
	}
	var freed int64
	var trash []string
	var victims []*block
	for _, o := range targets {
		if o.users == 0 {
			freed += o.cached
			if t := c.detachLocked(o); t != "" {
				trash = append(trash, t)
			}
			continue
		}
		o.doomed = true
		for _, b := range o.blocks {
			if b.state == stPresent && b.pins == 0 {
				freed += b.n
				c.evictLocked(b)
				victims = append(victims, b)
			}
		}
	}
	c.mu.Unlock()
	c.dropBlocks(victims)
	for _, t := range trash {
		os.RemoveAll(t)
	}
	return freed, nil
}

// Caches says whether the cache keeps objects of s: not local files
// (unless Options.CacheLocal), which are read in place.
func (c *Cache) Caches(s remote.Store) bool {
	_, local := s.(remote.ReaderAtOpener)
	return !local || c.opt.CacheLocal
}

// Warm fetches the whole of obj's version into the cache, several blocks
// at a time, calling progress (if not nil) with the bytes cached so far and
// the total, from one goroutine at a time. Blocks already cached count at
// once. It fails when obj is larger than the cache's limit, when a fetch
// fails, or when some blocks could not be kept (the cache is full of data
// being read, or the disk is at its free-space floor). Local files are not
// cached (unless Options.CacheLocal): Warm reports them complete.
func (c *Cache) Warm(ctx context.Context, s remote.Store, obj remote.ObjectInfo, progress func(done, total int64)) error {
	total := obj.Size
	var pmu sync.Mutex
	var done int64
	report := func(n int64) {
		pmu.Lock()
		done += n
		if progress != nil {
			progress(done, total)
		}
		pmu.Unlock()
	}
	if !c.Caches(s) {
		report(total)
		return nil
	}
	if obj.IsDir || obj.Size < 0 {
		return fmt.Errorf("%s: a directory, or of unknown size", obj.URL)
	}
	if c.opt.MaxBytes >= 0 && total > c.opt.MaxBytes {
		return fmt.Errorf("%s: %d bytes do not fit in the cache's limit of %d bytes", obj.URL, total, c.opt.MaxBytes)
	}
	o, err := c.acquireObject(obj, false)
	if err != nil {
		return err
	}
	defer c.release(o)
	if progress != nil {
		report(0)
	}

	// A few requests of up to FetchMax at once: each holds one block's
	// buffer, and a few are enough to keep a link busy.
	const par = 4
	slots := make(chan struct{}, par)
	var wg sync.WaitGroup
	var emu sync.Mutex
	var firstErr error
	setErr := func(err error) {
		emu.Lock()
		if firstErr == nil {
			firstErr = err
		}
		emu.Unlock()
	}
	failed := func() bool {
		emu.Lock()
		defer emu.Unlock()
		return firstErr != nil
	}
loop:
	for i := int64(0); i < o.nblocks; i += c.runBlocks {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			setErr(ctx.Err())
			break loop
		}
		if failed() {
			<-slots
			break
		}
		c.mu.Lock()
		if c.closed {
			c.mu.Unlock()
			<-slots
			setErr(ErrClosed)
			break
		}
		var wait, created []*flight
		var have int64
		for k := i; k < min(i+c.runBlocks, o.nblocks); k++ {
			if b := o.blocks[k]; b != nil && b.state == stPresent {
				c.lruTouch(b)
				have += b.n
				continue
			}
			f := c.flights[flightKey{o, k}]
			if f == nil {
				f = c.newFlightLocked(o, k)
				created = append(created, f)
			}
			f.keep++
			wait = append(wait, f)
		}
		runs := c.startRunsLocked(s, o, created, false)
		c.mu.Unlock()
		for _, r := range runs {
			go c.run(r)
		}
		report(have)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			for _, f := range wait {
				select {
				case <-f.done:
				case <-ctx.Done():
				}
				c.mu.Lock()
				f.keep--
				c.maybeCancelLocked(f)
				c.mu.Unlock()
				select {
				case <-f.done:
				default:
					setErr(ctx.Err())
					continue
				}
				if f.err != nil {
					setErr(f.err)
					continue
				}
				report(f.n)
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	c.mu.Lock()
	var missing int64
	for i := int64(0); i < o.nblocks; i++ {
		if b := o.blocks[i]; b == nil || b.state != stPresent {
			missing += blockLen(o.info.Size, c.bs, i)
		}
	}
	c.mu.Unlock()
	if missing > 0 {
		return fmt.Errorf("%s: %d of %d bytes could not be kept in the cache (it is full of data being read, or the disk is at its free-space floor)",
			obj.URL, missing, total)
	}
	return nil
}
