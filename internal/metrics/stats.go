package metrics

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// statMetric exports one field of stats.json.
type statMetric struct {
	key  string // the field's name in stats.json
	name string
	kind prometheus.ValueType
	help string
	desc *prometheus.Desc
}

const (
	counter = prometheus.CounterValue
	gauge   = prometheus.GaugeValue
)

// statMetrics are the fields of stats.json (cache.Stats, and the spools
// the engine adds). Counters count since the mount started.
var statMetrics = []*statMetric{
	{key: "Reads", name: "intakefs_cache_reads_total", kind: counter,
		help: "Reads of data through the block cache (reads of passthrough files excluded)."},
	{key: "ReadBytes", name: "intakefs_cache_read_bytes_total", kind: counter,
		help: "Bytes those reads returned."},
	{key: "HitBlocks", name: "intakefs_cache_hit_blocks_total", kind: counter,
		help: "Pieces of blocks read from the disk cache; a read of n blocks counts n."},
	{key: "HitBytes", name: "intakefs_cache_hit_bytes_total", kind: counter,
		help: "Bytes read from the disk cache."},
	{key: "MissBlocks", name: "intakefs_cache_miss_blocks_total", kind: counter,
		help: "Pieces of blocks that had to wait for a remote fetch (their own, or one in flight)."},
	{key: "MissBytes", name: "intakefs_cache_miss_bytes_total", kind: counter,
		help: "Bytes that had to wait for a remote fetch."},
	{key: "RemoteRequests", name: "intakefs_remote_requests_total", kind: counter,
		help: "Ranged reads made of remote stores, readahead and cache warming included."},
	{key: "RemoteBytes", name: "intakefs_remote_bytes_total", kind: counter,
		help: "Bytes delivered by ranged reads of remote stores."},
	{key: "RemoteErrors", name: "intakefs_remote_errors_total", kind: counter,
		help: "Ranged reads of remote stores that failed."},
	{key: "PrefetchRequests", name: "intakefs_readahead_requests_total", kind: counter,
		help: "Ranged reads made by readahead (part of intakefs_remote_requests_total)."},
	{key: "PrefetchBytes", name: "intakefs_readahead_bytes_total", kind: counter,
		help: "Bytes fetched by readahead (part of intakefs_remote_bytes_total)."},
	{key: "PrefetchSkipped", name: "intakefs_readahead_skipped_blocks_total", kind: counter,
		help: "Blocks readahead did not fetch because the fetch memory was in use."},
	{key: "Evictions", name: "intakefs_cache_evicted_blocks_total", kind: counter,
		help: "Blocks evicted from the disk cache to stay under its limits."},
	{key: "EvictedBytes", name: "intakefs_cache_evicted_bytes_total", kind: counter,
		help: "Bytes evicted from the disk cache to stay under its limits."},
	{key: "CorruptBlocks", name: "intakefs_cache_corrupt_blocks_total", kind: counter,
		help: "Cached blocks that failed their checksum or could not be read back, and were fetched again."},
	{key: "NotStored", name: "intakefs_cache_not_stored_blocks_total", kind: counter,
		help: "Fetched blocks served without being kept, because nothing could be evicted to make room."},
	{key: "WriteErrors", name: "intakefs_cache_write_errors_total", kind: counter,
		help: "Blocks the cache's disk refused to store."},
	{key: "PassthroughOpens", name: "intakefs_passthrough_opens_total", kind: counter,
		help: "Opens that gave the kernel the cache's file of a fully cached object: their reads bypass the daemon."},
	{key: "CachedBytes", name: "intakefs_cache_bytes", kind: gauge,
		help: "Bytes of blocks in the disk cache."},
	{key: "Objects", name: "intakefs_cache_objects", kind: gauge,
		help: "Object versions the disk cache holds blocks of."},
	{key: "OpenHandles", name: "intakefs_cache_open_handles", kind: gauge,
		help: "Open handles on cached objects."},
	{key: "Fetching", name: "intakefs_cache_fetching", kind: gauge,
		help: "Blocks being fetched, plus the requests fetching them."},
	{key: "FetchMemory", name: "intakefs_fetch_memory_bytes", kind: gauge,
		help: "Bytes of fetch buffers in use."},
	{key: "FetchMemoryPeak", name: "intakefs_fetch_memory_peak_bytes", kind: gauge,
		help: "The most bytes of fetch buffers in use at once since the mount started."},
	{key: "MaxBytes", name: "intakefs_cache_max_bytes", kind: gauge,
		help: "The cache's size limit, --cache-max-size (negative: none)."},
	{key: "MinFreeBytes", name: "intakefs_cache_min_free_bytes", kind: gauge,
		help: "Free space the cache leaves on its disk, --cache-min-free (negative: none)."},
	{key: "MemoryBytes", name: "intakefs_fetch_memory_limit_bytes", kind: gauge,
		help: "The most bytes of fetch buffers that may be in use at once."},
	{key: "BlockSize", name: "intakefs_cache_block_size_bytes", kind: gauge,
		help: "The unit in which remote data is fetched and cached."},
	{key: "SpoolBytes", name: "intakefs_spool_bytes", kind: gauge,
		help: "Bytes of complete decompressed spools on disk; they share --cache-max-size with the blocks."},
}

func init() {
	for _, m := range statMetrics {
		m.desc = prometheus.NewDesc(m.name, m.help+" (stats.json: "+m.key+")", nil, nil)
	}
}

// Stats exports stats.json, read at each scrape: the metrics are the
// file's numbers by construction, with no counters of their own to drift
// from it.
type Stats struct {
	read func() ([]byte, error)
}

// NewStats reads stats.json's contents with read at each scrape.
func NewStats(read func() ([]byte, error)) *Stats { return &Stats{read: read} }

func (s *Stats) Describe(ch chan<- *prometheus.Desc) {
	for _, m := range statMetrics {
		ch <- m.desc
	}
}

// Collect sends the fields stats.json has: a mount whose stats lack one
// (no spools without decompression) leaves its metric out rather than
// show a zero it does not know.
func (s *Stats) Collect(ch chan<- prometheus.Metric) {
	vals, err := s.values()
	if err != nil {
		ch <- prometheus.NewInvalidMetric(statMetrics[0].desc, err)
		return
	}
	for _, m := range statMetrics {
		if v, ok := vals[m.key]; ok {
			ch <- prometheus.MustNewConstMetric(m.desc, m.kind, v)
		}
	}
}

func (s *Stats) values() (map[string]float64, error) {
	b, err := s.read()
	if err != nil {
		return nil, fmt.Errorf("reading stats.json: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var raw map[string]any
	if err := dec.Decode(&raw); err != nil {
		return nil, fmt.Errorf("stats.json: %w", err)
	}
	out := make(map[string]float64, len(raw))
	for k, v := range raw {
		if n, ok := v.(json.Number); ok {
			if f, err := n.Float64(); err == nil {
				out[k] = f
			}
		}
	}
	return out, nil
}
