package cache

// Readahead: each handle follows up to maxStreams sequential streams, so
// that a reader that interleaves a few sequential scans over one file
// descriptor (a Parquet reader fetching several column chunks) is still
// seen as sequential, and FUSE reads that arrive a little out of order
// (the kernel sends several at once) do not break a stream.
//
// A read belongs to a stream when it starts within one block behind or
// ahead of the furthest byte the stream has read. The first read of a
// stream never prefetches: random readers get exactly the blocks they
// touch. From the second read that moves a stream forward, the cache keeps
// [end, end+window) fetched or in flight, topping it up once less than
// half a window is left ahead. The window starts at ReadaheadMin and
// doubles each time the stream has consumed twice the window since it last
// grew, up to ReadaheadMax; so at any moment what was fetched ahead and not
// (yet) read is at most about half of what the stream has read, plus one
// block of rounding.

const maxStreams = 4

type stream struct {
	end    int64 // furthest byte read, exclusive
	raEnd  int64 // fetched or in flight up to here, exclusive
	window int64
	grown  int64 // bytes consumed since the window last changed
	reads  int   // reads that moved the stream forward
	used   uint64
}

type readahead struct {
	streams [maxStreams]stream
	n       int
	tick    uint64
}

// observe records a read of [off, off+n) and returns the range to
// prefetch (block-aligned; from >= to means none).
func (r *readahead) observe(off, n, size, bs, minW, maxW int64) (from, to int64, s *stream) {
	r.tick++
	end := off + n
	best := -1
	var bestDist int64
	for i := 0; i < r.n; i++ {
		st := &r.streams[i]
		if off < st.end-bs || off > st.end+bs {
			continue
		}
		d := off - st.end
		if d < 0 {
			d = -d
		}
		if best < 0 || d < bestDist {
			best, bestDist = i, d
		}
	}
	if best < 0 {
		// A new stream, in a free slot or the least recently used one.
		i := r.n
		if r.n < maxStreams {
			r.n++
		} else {
			i = 0
			for j := 1; j < maxStreams; j++ {
				if r.streams[j].used < r.streams[i].used {
					i = j
				}
			}
		}
		r.streams[i] = stream{end: end, window: minW, reads: 1, used: r.tick}
		return 0, 0, nil
	}
	s = &r.streams[best]
	s.used = r.tick
	if end > s.end {
		s.grown += end - s.end
		s.end = end
		s.reads++
		if s.grown >= 2*s.window && s.window < maxW {
			s.window *= 2
			if s.window > maxW {
				s.window = maxW
			}
			s.grown = 0
		}
	}
	if s.reads < 2 || s.raEnd-s.end >= s.window/2 {
		return 0, 0, nil
	}
	from = roundUp(s.end, bs)
	if s.raEnd > from {
		from = s.raEnd
	}
	to = roundUp(s.end+s.window, bs)
	if to > size {
		to = size
	}
	if from >= to {
		return 0, 0, nil
	}
	s.raEnd = to
	return from, to, s
}

func roundUp(x, bs int64) int64 { return (x + bs - 1) / bs * bs }
