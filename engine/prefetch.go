package engine

import (
	"context"
	"errors"
	"sync"
	"time"
)

// Listing readahead. A tree walk (find, ls -R, du, a script globbing
// */*.csv) reads one directory at a time, and each round trip through the
// kernel waits for the listing it asks for: building the listing of a
// nested catalog (loading its YAML, rendering and planning its sources)
// sat on that path, one directory after another. So when a reader lists a
// catalog, the nested catalogs one level below it are built in the
// background, in order, at most prefetchAhead ahead of use; a reader that
// gets to one first joins the build in progress (the same singleflight
// key), so nothing is built twice.
//
// Only what costs nothing but local reads and CPU is built ahead: a
// nested catalog whose file and whose sources' data are local and plain.
// A build that meets a remote URL (a request per source) or data that must
// be decompressed to be listed (a compressed file, an archive) stops and
// keeps nothing: that is spent only for a reader who asks. Nothing is
// built ahead when shell() is allowed: a command in a catalog nobody
// opened must not run.
//
// A listing built ahead waits prefetchFresh for its reader. When none of
// them is used in that time, nobody is walking: the worker drops its queue
// and stops, and listing the same catalogs again starts nothing for
// prefetchBackoff. So one `ls` of a root with thousands of nested catalogs
// costs at most prefetchAhead builds.

const (
	// prefetchAhead bounds the listings built ahead and not used yet.
	prefetchAhead = 64
	// prefetchQueue bounds the directories waiting to be built ahead;
	// more are dropped (a reader gets them built on demand, as before).
	prefetchQueue = 4096
)

// The times are variables for the tests.
var (
	// prefetchFresh is how long a listing built ahead waits for its first
	// reader, from which on it counts as built (FS.TTL). The kernel
	// keeps names and attributes 5 s by default: a reader could already
	// see data that old.
	prefetchFresh = 5 * time.Second
	// prefetchBackoff is how long building ahead stays off after nothing
	// built ahead was used.
	prefetchBackoff = time.Minute
)

// errNotAhead is what a plan made ahead of use gives for data that only a
// reader may pay for (a decompression). It is never cached as the plan.
var errNotAhead = errors.New("not built ahead of use")

// prefetcher is the queue of catalog directories to build ahead, and its
// worker (one goroutine at a time, started when there is work).
//
// Lock order: FS.mu before prefetcher.mu (the counts change as FS.listings
// does).
type prefetcher struct {
	mu sync.Mutex // guards every field below; never held while building
	// queue is first in, first out; queued holds the idents in it, so
	// that a directory listed twice is queued once.
	queue   []*catalogDir
	queued  map[string]bool
	running bool // a worker is draining the queue
	// unused counts the listings built ahead that no reader has used;
	// room gets a token (if it has none) when one is used or replaced.
	unused int
	room   chan struct{}
	// idleUntil: nothing built ahead was used; until then nothing is
	// queued.
	idleUntil time.Time
	// stop is closed by FS.Close; the worker leaves at once (after the
	// build in progress, whose context it cancels) and none starts again.
	stop    chan struct{}
	stopped bool
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

type prefetchKey struct{}

// isPrefetch: ctx is a build ahead of use, which must make no requests
// and decompress nothing.
func isPrefetch(ctx context.Context) bool { return ctx.Value(prefetchKey{}) != nil }

// notAhead: ctx is a build ahead of use, and r's data may not be planned
// in it: its location is remote, or planning it needs a decompression. The
// plan made to find out is kept (it is the one a reader gets).
func (f *FS) notAhead(ctx context.Context, r *Rendered) bool {
	if !isPrefetch(ctx) {
		return false
	}
	urls, _, _ := urlArg(r)
	for _, u := range urls {
		if isRemote(u) {
			return true
		}
	}
	_, err := f.plan(ctx, r)
	return errors.Is(err, errNotAhead)
}

// init makes the channels and maps; p.mu held.
func (p *prefetcher) init() {
	if p.queued == nil {
		p.queued = map[string]bool{}
		p.room = make(chan struct{}, 1)
		p.stop = make(chan struct{})
		p.ctx, p.cancel = context.WithCancel(context.WithValue(context.Background(), prefetchKey{}, true))
	}
}

// close stops the worker and waits for it.
func (p *prefetcher) close() {
	p.mu.Lock()
	p.init()
	if !p.stopped {
		p.stopped = true
		close(p.stop)
		p.cancel()
		p.queue, p.queued = nil, map[string]bool{}
	}
	p.mu.Unlock()
	p.wg.Wait()
}

// Close stops the work this FS does in the background (building
// listings ahead of a walk, checking remote catalogs) and waits for it to
// end. Reads go on working, doing in the foreground what is due.
func (f *FS) Close() {
	f.prefetch.close()
	f.Loader.Close()
}

// built counts a listing built ahead.
func (p *prefetcher) built() {
	p.mu.Lock()
	p.unused++
	p.mu.Unlock()
}

// used counts a listing built ahead as used, or replaced.
func (p *prefetcher) used() {
	p.mu.Lock()
	p.init()
	if p.unused > 0 {
		p.unused--
	}
	p.mu.Unlock()
	select {
	case p.room <- struct{}{}:
	default:
	}
}

// forgetUnused: the listings built ahead are gone (FS.listings was
// emptied).
func (p *prefetcher) forgetUnused() {
	p.mu.Lock()
	p.unused = 0
	p.mu.Unlock()
}

// prefetchChildren queues the nested catalogs listed in l (those shown
// with their default values) to be built ahead.
func (f *FS) prefetchChildren(l *listing) {
	p := &f.prefetch
	p.mu.Lock()
	defer p.mu.Unlock()
	p.init()
	if p.stopped || f.Env.AllowShell || time.Now().Before(p.idleUntil) {
		return
	}
	added := false
	for _, n := range l.order {
		d, ok := n.(*catalogDir)
		if !ok || len(d.kvs) > 0 || p.queued[d.ident] || len(p.queue) >= prefetchQueue {
			continue
		}
		p.queue = append(p.queue, d)
		p.queued[d.ident] = true
		added = true
	}
	if added && !p.running {
		p.running = true
		p.wg.Add(1)
		go f.prefetchLoop()
	}
}

// prefetchLoop builds the queued listings until the queue is empty,
// pausing while prefetchAhead of them wait for a reader.
func (f *FS) prefetchLoop() {
	p := &f.prefetch
	defer p.wg.Done()
	for {
		p.mu.Lock()
		for p.unused >= prefetchAhead && !p.stopped {
			p.mu.Unlock()
			idle := false
			select {
			case <-p.room:
			case <-p.stop:
			case <-time.After(prefetchFresh):
				idle = true
			}
			p.mu.Lock()
			if idle && p.unused >= prefetchAhead {
				// none was used: nobody is walking; what was built
				// ahead no longer counts (it is stale, and rebuilt
				// for a reader)
				p.queue, p.queued = nil, map[string]bool{}
				p.unused = 0
				p.idleUntil = time.Now().Add(prefetchBackoff)
			}
		}
		if len(p.queue) == 0 || p.stopped {
			p.running = false
			p.mu.Unlock()
			return
		}
		d := p.queue[0]
		p.queue[0] = nil
		p.queue = p.queue[1:]
		delete(p.queued, d.ident)
		ctx := p.ctx
		p.mu.Unlock()
		f.prefetchOne(ctx, d)
	}
}

// prefetchOne builds d's listing ahead, unless its catalog file is remote
// (then its listing is a request for the file and one per source).
func (f *FS) prefetchOne(ctx context.Context, d *catalogDir) {
	r, err := f.Env.Render(d.parent, d.entry, nil)
	if err != nil {
		return
	}
	var p any = r.Args["path"]
	if p == nil {
		p = r.Args["urlpath"]
	}
	switch x := p.(type) {
	case string:
		if isRemote(x) {
			return
		}
	case []any:
		for _, e := range x {
			if s, ok := e.(string); !ok || isRemote(s) {
				return
			}
		}
	default:
		return
	}
	_, _, _ = d.listing(ctx)
}
