package cache

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/intakefs/intakefs/remote"
)

// crashObjects are the objects the crash test's child reads: the same
// bytes in parent and child.
func crashObjects(f *fakeStore) ([]remote.ObjectInfo, [][]byte) {
	var infos []remote.ObjectInfo
	var datas [][]byte
	for i := 0; i < 4; i++ {
		d := randBytes(uint64(500+i), 40*16*kib+i*1111)
		datas = append(datas, d)
		infos = append(infos, f.put("mem://crash"+strconv.Itoa(i), d, "e"+strconv.Itoa(i)))
	}
	return infos, datas
}

// TestCrashChild is the process the crash test kills: it reads, evicts and
// clears as fast as it can until it is killed.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv("INTAKEFS_CACHE_CRASH_DIR")
	if dir == "" {
		t.Skip("run by TestKilledMidWrite")
	}
	f := newFake()
	infos, _ := crashObjects(f)
	c, err := New(Options{Dir: dir, BlockSize: 16 * kib, MaxBytes: 100 * 16 * kib, MinFreeBytes: -1,
		ReadaheadMin: 16 * kib, ReadaheadMax: 8 * 16 * kib})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(g), uint64(time.Now().UnixNano())))
			for {
				info := infos[r.IntN(len(infos))]
				h, _ := c.Open(context.Background(), f, info)
				buf := make([]byte, 7000)
				for k := 0; k < 50; k++ {
					h.ReadAt(buf, r.Int64N(info.Size))
				}
				h.Close()
				if r.IntN(20) == 0 {
					c.Clear(info.URL)
				}
			}
		}(g)
	}
	wg.Wait()
}

func TestKilledMidWrite(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	dir := t.TempDir()
	f := newFake()
	infos, datas := crashObjects(f)
	for round := 0; round < 5; round++ {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), "INTAKEFS_CACHE_CRASH_DIR="+dir)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(200+rand.IntN(300)) * time.Millisecond)
		cmd.Process.Kill()
		cmd.Wait()

		// The child took the clean file the last round's Close left: a
		// kill must not leave one to vouch for its unsynced blocks.
		if _, err := os.Stat(filepath.Join(dir, formatDir, cleanName)); !os.IsNotExist(err) {
			t.Fatalf("round %d: a clean file after a kill (%v)", round, err)
		}
		f.resetLog()
		c, err := New(Options{Dir: dir, BlockSize: 16 * kib, MaxBytes: 100 * 16 * kib, MinFreeBytes: -1})
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		cached := c.Stats().CachedBytes
		for i, info := range infos {
			h := openT(t, c, plainStore{f}, info)
			if got := readAll(t, h, info.Size, 5000); !bytes.Equal(got, datas[i]) {
				t.Fatalf("round %d: object %d differs after a kill", round, i)
			}
			h.Close()
		}
		waitIdle(t, c)
		s := c.Stats()
		t.Logf("round %d: %d bytes were cached after the kill, %d corrupt blocks, %d refetched", round, cached, s.CorruptBlocks, s.RemoteBytes)
		c.Close()
		if _, err := os.Stat(filepath.Join(dir, formatDir, "lock")); err != nil {
			t.Fatal(err)
		}
	}
}

func TestStressClearWarmRead(t *testing.T) {
	bs := int64(16 * kib)
	f := newFake()
	c := newTestCache(t, Options{BlockSize: bs, MaxBytes: 24 * bs, MemoryBytes: 6 * bs, ReadaheadMin: bs, ReadaheadMax: 8 * bs})
	var infos []remote.ObjectInfo
	var datas [][]byte
	for i := 0; i < 5; i++ {
		d := randBytes(uint64(600+i), int(12*bs)+i*333)
		datas = append(datas, d)
		infos = append(infos, f.put(fmt.Sprintf("mem://st%d", i), d, "v"))
	}
	stop := make(chan struct{})
	var bg sync.WaitGroup
	bg.Add(2)
	go func() { // clear now and then
		defer bg.Done()
		r := rand.New(rand.NewPCG(9, 9))
		for {
			select {
			case <-stop:
				return
			case <-time.After(time.Millisecond):
			}
			if r.IntN(3) == 0 {
				c.Clear("")
			} else {
				c.Clear(infos[r.IntN(len(infos))].URL)
			}
		}
	}()
	go func() { // warm now and then
		defer bg.Done()
		r := rand.New(rand.NewPCG(8, 8))
		for {
			select {
			case <-stop:
				return
			default:
			}
			c.Warm(context.Background(), f, infos[r.IntN(len(infos))], nil)
		}
	}()
	var wg sync.WaitGroup
	for g := 0; g < 6; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(g), 2))
			for round := 0; round < 15; round++ {
				i := r.IntN(len(infos))
				h := openT(t, c, f, infos[i])
				for k := 0; k < 30; k++ {
					off := r.Int64N(infos[i].Size)
					buf := make([]byte, r.IntN(int(3*bs))+1)
					n, err := h.ReadAt(buf, off)
					if err != nil && n < len(buf) && off+int64(n) != infos[i].Size {
						t.Errorf("read: %v", err)
					}
					if !bytes.Equal(buf[:n], datas[i][off:off+int64(n)]) {
						t.Errorf("object %d at %d differs", i, off)
					}
				}
				h.Close()
			}
		}(g)
	}
	wg.Wait()
	close(stop)
	bg.Wait()
	waitIdle(t, c)
	c.mu.Lock()
	used, handles := c.used, c.handles
	var sum int64
	for _, o := range c.objects {
		sum += o.cached
		if o.users != 0 {
			t.Errorf("object %s still has %d users", o.info.URL, o.users)
		}
	}
	c.mu.Unlock()
	if used != sum || handles != 0 || used > 24*bs {
		t.Errorf("accounting: used %d, sum of objects %d, handles %d", used, sum, handles)
	}
	if s := c.Stats(); s.FetchMemory != 0 {
		t.Errorf("fetch memory not returned: %+v", s)
	}
}
