package cache

// Readahead: each handle follows up to maxStreams sequential streams, so
// that a reader that interleaves a few sequential scans over one file
// descriptor (a Parquet reader fetching several column chunks) is still
// seen as sequential, and FUSE reads that arrive a little out of order
// (the kernel sends several at once) do not break a stream.
//
// A read belongs to a stream when it starts within one block or one
// ReadaheadMin (whichever is larger: the kernel has a few reads of up to
// 1 MiB out at once) behind or ahead of the furthest byte the stream has
// read. A stream prefetches
// nothing until it has read seqStart windows (2 × ReadaheadMin, 2 MiB by
// default) in order: random readers get exactly the blocks they touch,
// also when one of their reads reaches us as several (the kernel cuts a
// read into pieces of its own readahead size, 128 KiB, and reads on one
// piece past its end, so that a Parquet reader's 1.1 MB column chunk
// arrives as a stream of 1.2 MB that would otherwise set off a window).
// Two windows rather than more because until then a sequential reader
// waits for each of its reads in turn. From then on, the
// cache keeps [end, end+window) fetched or in flight, topping it up once
// less than half a window is left ahead. The window starts at ReadaheadMin
// and doubles each time the stream has consumed twice the window since it
// last grew, up to ReadaheadMax; so at any moment what was fetched ahead
// and not (yet) read is at most about half of what the stream has read,
// plus one block of rounding.

const maxStreams = 4

// seqStart is the length, in ReadaheadMin windows, that a stream must
// have read before it prefetches.
const seqStart = 2

type stream struct {
	start  int64 // where the stream began
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
	slack := max(bs, minW)
	best := -1
	var bestDist int64
	for i := 0; i < r.n; i++ {
		st := &r.streams[i]
		if off < st.end-slack || off > st.end+slack {
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
		r.streams[i] = stream{start: off, end: end, window: minW, reads: 1, used: r.tick}
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
	if s.reads < 2 || s.end-s.start < seqStart*minW || s.raEnd-s.end >= s.window/2 {
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
