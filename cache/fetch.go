package cache

// Fetching: flights and runs.
//
// A flight is the fetch of one block: readers join it per block (and
// leave it per block), so that two readers of one block share one fetch
// whatever ranges they asked for. A run is one ranged request that feeds
// the flights of consecutive blocks in order: a sequential reader's
// readahead asks for up to Options.FetchMax bytes at a time (1,024
// requests per GiB with 1 MiB requests cost the server and the client more
// CPU than the bytes themselves on loopback), while a random reader's run
// covers exactly the blocks its read touches.
//
// A run streams: each block is handed to the readers waiting for it as
// soon as its bytes have arrived (copied into their buffers), then written
// to disk, then the next block is read from the body. So a run holds one
// block's buffer, whatever its length, and that is what it takes from the
// daemon-wide memory budget. The request is cancelled once every flight it
// still has to deliver has been cancelled (no reader, readahead or Warm
// wants it any more); flights a run delivers that were cancelled on the
// way are still stored, since their bytes were paid for.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/intakefs/intakefs/remote"
)

// run is one ranged request for consecutive blocks of one object.
type run struct {
	s        remote.Store
	o        *object
	flights  []*flight // consecutive blocks, in order
	prefetch bool
	ctx      context.Context
	cancel   context.CancelFunc
	budget   int64 // memory already taken from Cache.sem (readahead), else 0

	live int // guarded by Cache.mu: flights neither delivered nor cancelled
}

// bufLen is the buffer a run needs: its longest block (only an object's
// last block is shorter than the block size).
func (r *run) bufLen() int64 { return r.flights[0].n }

// newFlightLocked makes the flight for block idx of o and enters it in
// c.flights; the caller puts it in a run (startRunsLocked) before it
// unlocks.
func (c *Cache) newFlightLocked(o *object, idx int64) *flight {
	f := &flight{key: flightKey{o, idx}, n: blockLen(o.info.Size, c.bs, idx), done: make(chan struct{})}
	c.flights[f.key] = f
	c.st.running.Add(1)
	return f
}

// startRunsLocked groups new flights of o (in block order) into runs of
// consecutive blocks, at most c.runBlocks long; each returned run must be
// started with go c.run(r) after unlocking.
func (c *Cache) startRunsLocked(s remote.Store, o *object, fl []*flight, prefetch bool) []*run {
	var runs []*run
	for i := 0; i < len(fl); {
		j := i + 1
		for j < len(fl) && j-i < int(c.runBlocks) && fl[j].key.idx == fl[j-1].key.idx+1 {
			j++
		}
		runs = append(runs, c.newRunLocked(s, o, fl[i:j:j], prefetch))
		i = j
	}
	return runs
}

func (c *Cache) newRunLocked(s remote.Store, o *object, fl []*flight, prefetch bool) *run {
	r := &run{s: s, o: o, flights: fl, prefetch: prefetch, live: len(fl)}
	// One time bound for the run's request and its resumptions: a server
	// that breaks off and drips on each resumption must not make a reader
	// wait a bound per resumption.
	r.ctx, r.cancel = context.WithCancel(remote.WithReadBound(c.ctx))
	for _, f := range fl {
		f.r = r
	}
	o.users++
	c.wg.Add(1)
	// Counted as fetching until it has let go of o, so that an idle cache
	// (Stats().Fetching == 0) holds no object for a run.
	c.st.running.Add(1)
	return r
}

// joinLocked registers w (if not nil) and/or a keep reference with the
// flight for block idx of o, making one (in a run of its own, returned in
// r, to be started with go c.run(r) after unlocking) when there is none. A
// flight that has already delivered its bytes (and is writing them to
// disk) takes no more waiters: w is not registered and late is set; wait
// for f.done and look again.
func (c *Cache) joinLocked(s remote.Store, o *object, idx int64, w *waiter, keep bool) (f *flight, r *run, late bool) {
	k := flightKey{o, idx}
	if f = c.flights[k]; f == nil {
		f = c.newFlightLocked(o, idx)
		r = c.newRunLocked(s, o, []*flight{f}, false)
	}
	if w != nil {
		if f.delivered {
			late = true
		} else {
			f.waiters = append(f.waiters, w)
		}
	}
	if keep {
		f.keep++
	}
	return f, r, late
}

// maybeCancelLocked cancels a flight no one waits for any more, and takes
// it out of the map so that a later reader starts afresh; the run's
// request is cancelled when none of its flights is wanted.
func (c *Cache) maybeCancelLocked(f *flight) {
	if len(f.waiters) > 0 || f.keep > 0 || f.delivered || f.cancelled {
		return
	}
	f.cancelled = true
	if c.flights[f.key] == f {
		delete(c.flights, f.key)
	}
	f.r.live--
	if f.r.live == 0 {
		f.r.cancel()
	}
}

// run makes a run's request and delivers and stores its blocks in order.
func (c *Cache) run(r *run) {
	defer c.wg.Done()
	defer c.st.running.Add(-1)
	defer c.release(r.o)
	defer r.cancel()
	n := r.bufLen()
	if r.budget == 0 {
		if err := c.sem.Acquire(r.ctx, n); err != nil {
			c.failFrom(r, 0, err)
			return
		}
		r.budget = n
	}
	defer c.sem.Release(r.budget)
	c.st.memAdd(n)
	defer c.st.memAdd(-n)
	bp := c.bufs.Get().(*[]byte)
	defer c.bufs.Put(bp)

	k := 0      // next flight to deliver
	got := 0    // bytes of flight k already in the buffer
	broken := 0 // bodies that broke off after making progress
	for k < len(r.flights) {
		if c.unwanted(r, k) {
			c.failFrom(r, k, context.Canceled)
			return
		}
		first := r.flights[k]
		off := first.key.idx*c.bs + int64(got)
		last := r.flights[len(r.flights)-1]
		rc, err := c.open(r, off, last.key.idx*c.bs+last.n-off)
		if err != nil {
			if r.ctx.Err() == nil {
				c.st.remoteErrors.Add(1)
			}
			c.failFrom(r, k, err)
			return
		}
		progress := false
		for k < len(r.flights) {
			f := r.flights[k]
			buf := (*bp)[:f.n]
			var m int
			m, err = io.ReadFull(rc, buf[got:])
			got += m
			c.st.remoteBytes.Add(int64(m))
			if r.prefetch {
				c.st.prefetchBytes.Add(int64(m))
			}
			progress = progress || m > 0
			if err != nil {
				break
			}
			// Readers first, then the disk: a reader never waits for the write.
			c.deliver(f, buf, nil)
			c.commit(r.o, f.key.idx, buf)
			c.finish(f)
			k++
			got = 0
			if k < len(r.flights) && c.unwanted(r, k) {
				err = context.Canceled
				break
			}
		}
		rc.Close()
		if k == len(r.flights) {
			return
		}
		switch {
		case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
			err = fmt.Errorf("read %s: %w: the object ended at %d, before its size %d (changed since it was opened?)",
				r.o.info.URL, io.ErrUnexpectedEOF, r.flights[k].key.idx*c.bs+int64(got), r.o.info.Size)
		case r.ctx.Err() != nil:
			err = r.ctx.Err()
		case errors.Is(err, remote.ErrTimeBound):
			// Resuming would fail at once: the bound is the run's.
		case progress && broken < 2:
			// A body that broke off after delivering bytes: ask for the rest.
			broken++
			continue
		}
		if r.ctx.Err() == nil && !errors.Is(err, context.Canceled) {
			c.st.remoteErrors.Add(1)
		}
		c.failFrom(r, k, err)
		return
	}
}

// open makes a run's ranged request of [off, off+n): by version where the
// store can, so that a rewritten object gives an error, not new bytes.
func (c *Cache) open(r *run, off, n int64) (io.ReadCloser, error) {
	c.st.remoteRequests.Add(1)
	if r.prefetch {
		c.st.prefetchRequests.Add(1)
	}
	if vr, ok := r.s.(versionReader); ok {
		return vr.ReadVersion(r.ctx, r.o.info, off, n)
	}
	return r.s.ReadRange(r.ctx, r.o.info.URL, off, n)
}

// unwanted reports whether no flight from k on is wanted any more.
func (c *Cache) unwanted(r *run, k int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return r.live == 0 && !r.flights[k].delivered
}

// failFrom ends flights k and after with err. Blocks whose fetch ran out
// its time bound are refused for a while (c.failedFor): asked again at
// once, they would only keep a reader waiting another bound.
func (c *Cache) failFrom(r *run, k int, err error) {
	if errors.Is(err, remote.ErrTimeBound) && c.failedFor > 0 {
		until := time.Now().Add(c.failedFor)
		c.mu.Lock()
		if r.o.failed == nil {
			r.o.failed = map[int64]blockFailure{}
		}
		for _, f := range r.flights[k:] {
			r.o.failed[f.key.idx] = blockFailure{err: err, until: until}
		}
		c.mu.Unlock()
	}
	for _, f := range r.flights[k:] {
		c.deliver(f, nil, err)
		c.finish(f)
	}
}

// commit stores a fetched block, evicting to make room; a block that does
// not fit is simply not kept.
func (c *Cache) commit(o *object, idx int64, buf []byte) {
	n := int64(len(buf))
	crc := checksum(buf)
	c.refreshFree(false)
	c.mu.Lock()
	if c.closed || o.gone || o.doomed || o.blocks[idx] != nil {
		c.mu.Unlock()
		return
	}
	victims, ok := c.makeRoomLocked(n, false)
	if !ok {
		c.mu.Unlock()
		c.st.notStored.Add(1)
		return
	}
	b := &block{o: o, idx: idx, n: n, state: stWriting}
	o.blocks[idx] = b
	c.used += n
	c.freeDelta += n
	o.wrote = true
	c.mu.Unlock()
	c.dropBlocks(victims)

	data, index, err := c.files(o, true)
	if err == nil {
		_, err = data.WriteAt(buf, idx*c.bs)
	}
	if err == nil {
		err = writeRecord(index, idx, int(n), crc)
	}
	c.mu.Lock()
	if err != nil {
		c.evictLocked(b)
		c.mu.Unlock()
		c.st.writeErrs.Add(1)
		c.log.Warn("cache: cannot store a block", "url", o.info.URL, "dir", o.dir, "err", err)
		c.dropBlocks([]*block{b})
		return
	}
	b.state = stPresent
	b.crc = crc
	b.verified.Store(true)
	o.cached += n
	c.lruPushFront(b)
	c.mu.Unlock()
}

// deliver hands the block (or the error) to the flight's waiters.
func (c *Cache) deliver(f *flight, buf []byte, err error) {
	c.mu.Lock()
	f.delivered = true
	f.err = err
	if !f.cancelled {
		f.r.live--
	}
	ws := f.waiters
	f.waiters = nil
	c.mu.Unlock()
	for _, w := range ws {
		if err == nil {
			copy(w.dst, buf[w.within:])
		}
		w.err = err
		close(w.done)
	}
}

// finish ends a flight once its block is stored (or not): later readers
// find the block on disk, or make a new flight.
func (c *Cache) finish(f *flight) {
	c.mu.Lock()
	if c.flights[f.key] == f {
		delete(c.flights, f.key)
	}
	c.mu.Unlock()
	c.st.running.Add(-1)
	close(f.done)
}
