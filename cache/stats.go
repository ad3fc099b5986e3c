package cache

import "sync/atomic"

// Stats is a snapshot of a Cache's counters (since New) and state.
type Stats struct {
	// Reads and ReadBytes count ReadAt calls on cache handles and the
	// bytes they returned.
	Reads     int64
	ReadBytes int64
	// HitBlocks/HitBytes: pieces of blocks served from the disk cache;
	// MissBlocks/MissBytes: pieces that had to wait for a remote fetch
	// (their own, or one already in flight). A read of n blocks counts n.
	HitBlocks  int64
	HitBytes   int64
	MissBlocks int64
	MissBytes  int64
	// RemoteRequests and RemoteBytes count the ranged reads made of the
	// stores and the bytes they delivered, prefetches and warming included;
	// PrefetchRequests and PrefetchBytes are the readahead's share.
	RemoteRequests   int64
	RemoteBytes      int64
	RemoteErrors     int64
	PrefetchRequests int64
	PrefetchBytes    int64
	// PrefetchSkipped counts blocks readahead did not fetch because the
	// memory budget was in use.
	PrefetchSkipped int64
	// Evictions and EvictedBytes count blocks evicted to stay under the
	// limits.
	Evictions    int64
	EvictedBytes int64
	// CorruptBlocks counts blocks on disk that failed their checksum (or
	// could not be read back) and were fetched again.
	CorruptBlocks int64
	// NotStored counts fetched blocks served without being kept, because
	// nothing could be evicted to make room; WriteErrors, blocks the disk
	// refused.
	NotStored   int64
	WriteErrors int64

	// PassthroughOpens counts handles that handed the kernel the cache's
	// data file of a fully cached object (LocalFile): their reads do not
	// reach the cache and are not counted above.
	PassthroughOpens int64

	// State now.
	CachedBytes int64
	Objects     int
	OpenHandles int
	Fetching    int   // blocks being fetched, plus the requests fetching them
	FetchMemory int64 // bytes of fetch buffers in use
	// FetchMemoryPeak is the most FetchMemory has been.
	FetchMemoryPeak int64

	// Configuration.
	MaxBytes     int64
	MinFreeBytes int64
	MemoryBytes  int64
	BlockSize    int64
}

type counters struct {
	reads, readBytes                    atomic.Int64
	hitBlocks, hitBytes                 atomic.Int64
	missBlocks, missBytes               atomic.Int64
	remoteRequests, remoteBytes         atomic.Int64
	remoteErrors                        atomic.Int64
	prefetchRequests, prefetchBytes     atomic.Int64
	prefetchSkipped                     atomic.Int64
	evictions, evictedBytes             atomic.Int64
	corruptBlocks, notStored, writeErrs atomic.Int64
	mem, memPeak                        atomic.Int64
	running                             atomic.Int64
	passthroughOpens                    atomic.Int64
}

func (k *counters) memAdd(n int64) {
	v := k.mem.Add(n)
	for {
		p := k.memPeak.Load()
		if v <= p || k.memPeak.CompareAndSwap(p, v) {
			return
		}
	}
}

// Stats returns a snapshot of the counters.
func (c *Cache) Stats() Stats {
	k := &c.st
	s := Stats{
		Reads: k.reads.Load(), ReadBytes: k.readBytes.Load(),
		HitBlocks: k.hitBlocks.Load(), HitBytes: k.hitBytes.Load(),
		MissBlocks: k.missBlocks.Load(), MissBytes: k.missBytes.Load(),
		RemoteRequests: k.remoteRequests.Load(), RemoteBytes: k.remoteBytes.Load(),
		RemoteErrors:     k.remoteErrors.Load(),
		PrefetchRequests: k.prefetchRequests.Load(), PrefetchBytes: k.prefetchBytes.Load(),
		PrefetchSkipped: k.prefetchSkipped.Load(),
		Evictions:       k.evictions.Load(), EvictedBytes: k.evictedBytes.Load(),
		CorruptBlocks: k.corruptBlocks.Load(), NotStored: k.notStored.Load(), WriteErrors: k.writeErrs.Load(),
		PassthroughOpens: k.passthroughOpens.Load(),
		Fetching:         int(k.running.Load()), FetchMemory: k.mem.Load(), FetchMemoryPeak: k.memPeak.Load(),
		MaxBytes: c.opt.MaxBytes, MinFreeBytes: c.opt.MinFreeBytes, MemoryBytes: c.opt.MemoryBytes, BlockSize: c.bs,
	}
	c.mu.Lock()
	for _, o := range c.objects {
		s.CachedBytes += o.cached
	}
	s.Objects = len(c.objects)
	s.OpenHandles = c.handles
	c.mu.Unlock()
	return s
}
