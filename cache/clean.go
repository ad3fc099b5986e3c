package cache

// Trust across a clean restart.
//
// Blocks found on disk at start are checked against their crc32c before
// their first use, because nothing is fsynced while the daemon runs (see
// blockcache.go). That check costs a read of each block, and it rules out
// handing a fully cached object to the kernel (FUSE passthrough), which
// reads the data file without us. So Close, after a clean run, makes the
// blocks durable and says so: it fsyncs the files it wrote, then writes
// DIR/v1/clean (tmp, fsync, rename, fsync of the directory) naming each
// object whose every block is verified, with the state (device, inode,
// size, mtime, ctime) of its data and index files. The next New reads
// and deletes it (and fsyncs the deletion) before it writes anything, and
// trusts the blocks of an object whose files are still in exactly that
// state. So:
//   - a crash or SIGKILL leaves no clean file (it was deleted, durably,
//     at start): every block is checked, as before;
//   - a power cut after a clean Close finds the blocks durable, since they
//     were fsynced before the clean file was written;
//   - a file changed between runs, by us (a repair at start) or anyone
//     else, has another ctime (which no program can set back): its blocks
//     are checked.

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
)

const cleanName = "clean"

// fileState is what a clean Close records of a data or index file.
type fileState struct {
	Dev, Ino     uint64
	Size         int64
	Mtime, Ctime int64 // ns
}

type cleanObject struct {
	Data  fileState `json:"data"`
	Index fileState `json:"index"`
}

type cleanFile struct {
	Format  int                    `json:"format"`
	Objects map[string]cleanObject `json:"objects"`
}

func stateOf(path string) (fileState, bool) {
	fi, err := os.Stat(path)
	if err != nil {
		return fileState{}, false
	}
	return fileStateOf(fi)
}

// takeClean reads and deletes the clean file; the deletion is made durable
// before the cache writes anything, so that a crash in this run cannot
// leave the file behind to vouch for blocks written after it.
func takeClean(root string) map[string]cleanObject {
	p := filepath.Join(root, cleanName)
	b, err := os.ReadFile(p)
	os.Remove(filepath.Join(root, cleanName+".tmp"))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err := os.Remove(p); err != nil || syncDir(root) != nil {
		return nil
	}
	var cf cleanFile
	if err != nil || json.Unmarshal(b, &cf) != nil || cf.Format != formatVer {
		return nil
	}
	return cf.Objects
}

// trusted reports whether the object in dir is in the state a clean Close
// recorded.
func trusted(clean map[string]cleanObject, key, dir string) bool {
	want, ok := clean[key]
	if !ok {
		return false
	}
	d, ok1 := stateOf(filepath.Join(dir, dataName))
	i, ok2 := stateOf(filepath.Join(dir, indexName))
	return ok1 && ok2 && d == want.Data && i == want.Index
}

// writeClean records the objects whose blocks are all verified, after
// making their files durable; called by Close once nothing writes.
func (c *Cache) writeClean(objs []*object) {
	cf := cleanFile{Format: formatVer, Objects: map[string]cleanObject{}}
	for _, o := range objs {
		c.mu.Lock()
		ok := !o.gone && o.onDisk.Load() && len(o.blocks) > 0
		for _, b := range o.blocks {
			if !ok {
				break
			}
			ok = b.state == stPresent && b.verified.Load()
		}
		wrote := o.wrote
		c.mu.Unlock()
		if !ok {
			continue
		}
		dp, ip := filepath.Join(o.dir, dataName), filepath.Join(o.dir, indexName)
		if wrote && (syncFile(dp) != nil || syncFile(ip) != nil) {
			continue
		}
		d, ok1 := stateOf(dp)
		i, ok2 := stateOf(ip)
		if ok1 && ok2 {
			cf.Objects[o.key] = cleanObject{Data: d, Index: i}
		}
	}
	if len(cf.Objects) == 0 {
		return
	}
	b, err := json.Marshal(&cf)
	if err != nil {
		return
	}
	tmp := filepath.Join(c.root, cleanName+".tmp")
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(c.root, cleanName))
	}
	if err == nil {
		err = syncDir(c.root)
	}
	if err != nil {
		os.Remove(tmp)
		c.log.Warn("cache: cannot record a clean shutdown; blocks will be checked at the next start", "err", err)
	}
}

func syncFile(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = f.Sync()
	f.Close()
	return err
}
