package cache

// The on-disk format of the block cache.
//
//	DIR/v1/lock                       flock(2)ed by the daemon that owns DIR; holds its pid
//	DIR/v1/trash/                     objects being deleted (emptied at start)
//	DIR/v1/objects/<kk>/<key>/        one object version; key = keyOf(URL, identity, size)
//	    meta.json                     URL, identity, size, block size; written tmp+rename
//	    data                          sparse file, the object's bytes at their own offsets
//	    index                         16 bytes per block: magic, length, crc32c, check
//
// A block is present when its index record is valid (magic and its own
// check sum match) and its length is the block's. Its bytes are verified
// against the record's crc32c the first time it is read after a start, so
// that neither a torn record, nor data that never reached the disk (no
// fsync is ever done), nor a truncated or edited data file is served. See
// the package documentation in blockcache.go for the full argument.

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/intakefs/intakefs/remote"
)

const (
	formatDir   = "v1"
	formatVer   = 1
	recordSize  = 16
	recordMagic = 0x31424349 // "ICB1" little-endian
	metaName    = "meta.json"
	dataName    = "data"
	indexName   = "index"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func checksum(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }

// keyOf names one version of one object: URL, identity (ETag, generation
// or size+mtime) and size. 128 bits of SHA-256 in hex.
func keyOf(url, identity string, size int64) string {
	h := sha256.New()
	h.Write([]byte("intakefs-cache/v1\x00"))
	h.Write([]byte(url))
	h.Write([]byte{0})
	h.Write([]byte(identity))
	h.Write([]byte{0})
	h.Write([]byte(strconv.FormatInt(size, 10)))
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// metaFile is meta.json.
type metaFile struct {
	Format    int       `json:"format"`
	URL       string    `json:"url"`
	Identity  string    `json:"identity"`
	Size      int64     `json:"size"`
	ETag      string    `json:"etag,omitempty"`
	ModTime   time.Time `json:"mtime"`
	BlockSize int64     `json:"block_size"`
	Created   time.Time `json:"created"`
}

func (m *metaFile) info() remote.ObjectInfo {
	return remote.ObjectInfo{URL: m.URL, Size: m.Size, ModTime: m.ModTime, ETag: m.ETag}
}

// writeMeta writes dir/meta.json through a temporary file and a rename, so
// that meta.json is either absent or complete.
func writeMeta(dir string, m *metaFile) error {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	tmp := filepath.Join(dir, metaName+".tmp")
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(dir, metaName))
}

func readMeta(dir string) (*metaFile, error) {
	b, err := os.ReadFile(filepath.Join(dir, metaName))
	if err != nil {
		return nil, err
	}
	var m metaFile
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%s: %w", metaName, err)
	}
	if m.Format != formatVer {
		return nil, fmt.Errorf("%s: format %d, want %d", metaName, m.Format, formatVer)
	}
	return &m, nil
}

// encodeRecord is the index record of block idx.
func encodeRecord(idx int64, n int, crc uint32) [recordSize]byte {
	var r [recordSize]byte
	binary.LittleEndian.PutUint32(r[0:], recordMagic)
	binary.LittleEndian.PutUint32(r[4:], uint32(n))
	binary.LittleEndian.PutUint32(r[8:], crc)
	binary.LittleEndian.PutUint32(r[12:], recordCheck(r[:12], idx))
	return r
}

// recordCheck covers the record's own fields and the block number, so that
// a torn or misplaced record never reads as valid.
func recordCheck(head []byte, idx int64) uint32 {
	var b [20]byte
	copy(b[:12], head)
	binary.LittleEndian.PutUint64(b[12:], uint64(idx))
	return checksum(b[:])
}

// decodeRecord returns the length and crc of a valid record.
func decodeRecord(r []byte, idx int64) (n int, crc uint32, ok bool) {
	if len(r) < recordSize || binary.LittleEndian.Uint32(r[0:]) != recordMagic {
		return 0, 0, false
	}
	if binary.LittleEndian.Uint32(r[12:]) != recordCheck(r[:12], idx) {
		return 0, 0, false
	}
	return int(binary.LittleEndian.Uint32(r[4:])), binary.LittleEndian.Uint32(r[8:]), true
}

func writeRecord(f *os.File, idx int64, n int, crc uint32) error {
	r := encodeRecord(idx, n, crc)
	_, err := f.WriteAt(r[:], idx*recordSize)
	return err
}

func clearRecord(f *os.File, idx int64) error {
	var zero [recordSize]byte
	_, err := f.WriteAt(zero[:], idx*recordSize)
	return err
}

// scanned is one object directory as found on disk.
type scanned struct {
	key     string
	dir     string
	meta    *metaFile
	blocks  map[int64]uint32 // present block → crc
	bytes   int64
	lastUse time.Time
}

var errInvalid = errors.New("invalid cache entry")

// scanObject reads one object directory. With fix set it also repairs what
// a crash can leave behind: a data file shorter than the object, a data
// file that is missing while records exist, and space held by blocks
// without a record (punched out when it is more than a little).
func scanObject(dir, key string, bs int64, fix bool) (*scanned, error) {
	m, err := readMeta(dir)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errInvalid, err)
	}
	if bs == 0 && m.BlockSize >= 4096 {
		bs = m.BlockSize // listing someone else's cache: take its block size
	}
	if m.BlockSize != bs {
		return nil, fmt.Errorf("%w: block size %d, this cache uses %d", errInvalid, m.BlockSize, bs)
	}
	if m.Size < 0 || keyOf(m.URL, m.Identity, m.Size) != key {
		return nil, fmt.Errorf("%w: meta.json does not match its directory name", errInvalid)
	}
	if fix {
		os.Remove(filepath.Join(dir, metaName+".tmp"))
	}
	s := &scanned{key: key, dir: dir, meta: m, blocks: map[int64]uint32{}}
	if fi, err := os.Stat(filepath.Join(dir, metaName)); err == nil {
		s.lastUse = fi.ModTime()
	}
	nblocks := (m.Size + bs - 1) / bs
	dataPath := filepath.Join(dir, dataName)
	dfi, derr := os.Stat(dataPath)
	recs, rerr := os.ReadFile(filepath.Join(dir, indexName))
	if rerr == nil {
		if fi, err := os.Stat(filepath.Join(dir, indexName)); err == nil && fi.ModTime().After(s.lastUse) {
			s.lastUse = fi.ModTime()
		}
	}
	if derr != nil {
		// No data: whatever the index says is not there.
		if fix && rerr == nil && len(recs) > 0 {
			os.Truncate(filepath.Join(dir, indexName), 0)
		}
		return s, nil
	}
	for i := int64(0); i < nblocks && (i+1)*recordSize <= int64(len(recs)); i++ {
		n, crc, ok := decodeRecord(recs[i*recordSize:], i)
		if !ok || int64(n) != blockLen(m.Size, bs, i) {
			continue
		}
		s.blocks[i] = crc
		s.bytes += int64(n)
	}
	if !fix {
		return s, nil
	}
	if dfi.Size() < m.Size {
		// Truncated: the blocks past the end read as zeros and fail their
		// checksums; the file gets its size back so offsets stay valid.
		os.Truncate(dataPath, m.Size)
	}
	if alloc := allocatedBytes(dfi); alloc > s.bytes+2*bs {
		// Blocks written without their record reaching the index, or
		// records cleared before their hole was punched: give the space
		// back. (Punching a hole that is already one costs nothing.)
		if f, err := os.OpenFile(dataPath, os.O_RDWR, 0); err == nil {
			for i := int64(0); i < nblocks; {
				if _, ok := s.blocks[i]; ok {
					i++
					continue
				}
				j := i
				for j < nblocks {
					if _, ok := s.blocks[j]; ok {
						break
					}
					j++
				}
				end := j * bs
				if end > m.Size {
					end = m.Size
				}
				punchHole(f, i*bs, end-i*bs)
				i = j
			}
			f.Close()
		}
	}
	return s, nil
}

// blockLen is the length of block i of an object of the given size.
func blockLen(size, bs, i int64) int64 {
	n := size - i*bs
	if n > bs {
		n = bs
	}
	if n < 0 {
		n = 0
	}
	return n
}

// scanDir lists every valid object under root (DIR/v1). With fix set,
// invalid entries are deleted and crash leftovers repaired.
func scanDir(root string, bs int64, fix bool, warn func(string, error)) ([]*scanned, error) {
	objRoot := filepath.Join(root, "objects")
	shards, err := os.ReadDir(objRoot)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []*scanned
	for _, sh := range shards {
		if !sh.IsDir() {
			if fix {
				os.Remove(filepath.Join(objRoot, sh.Name()))
			}
			continue
		}
		ents, err := os.ReadDir(filepath.Join(objRoot, sh.Name()))
		if err != nil {
			continue
		}
		for _, e := range ents {
			dir := filepath.Join(objRoot, sh.Name(), e.Name())
			if !e.IsDir() {
				if fix {
					os.Remove(dir)
				}
				continue
			}
			s, err := scanObject(dir, e.Name(), bs, fix)
			if err != nil {
				if warn != nil {
					warn(dir, err)
				}
				if fix {
					os.RemoveAll(dir)
				}
				continue
			}
			out = append(out, s)
		}
	}
	return out, nil
}

func objectDir(root, key string) string {
	return filepath.Join(root, "objects", key[:2], key)
}
