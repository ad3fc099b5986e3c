package fs

import (
	"reflect"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hanwen/go-fuse/v2/fuse"
)

type seen struct {
	op    Op
	errno syscall.Errno
	took  time.Duration
}

type recorder struct {
	mu  sync.Mutex
	got []seen
}

func (r *recorder) Observe(op Op, errno syscall.Errno, took time.Duration) {
	r.mu.Lock()
	r.got = append(r.got, seen{op, errno, took})
	r.mu.Unlock()
}

// notRequests are the RawFileSystem methods that no request calls.
var notRequests = map[string]bool{"String": true, "SetDebug": true, "Init": true, "OnUnmount": true}

// TestObservedCountsEveryRequest calls every request method of a wrapped
// go-fuse default file system (ENOSYS to nearly all), and checks that
// each is counted once, under its own name, with the errno answered. A method
// added to go-fuse's RawFileSystem and not wrapped would go by uncounted
// (the embedded one would answer), which this catches.
func TestObservedCountsEveryRequest(t *testing.T) {
	rec := &recorder{}
	inner := fuse.NewDefaultRawFileSystem()
	var raw fuse.RawFileSystem = &observed{RawFileSystem: inner, obs: rec}
	it := reflect.TypeFor[fuse.RawFileSystem]()
	v := reflect.ValueOf(raw)
	names := map[string]string{} // op name → method
	for i := range it.NumMethod() {
		m := it.Method(i)
		if notRequests[m.Name] {
			continue
		}
		args := make([]reflect.Value, m.Type.NumIn())
		for j := range args {
			args[j] = reflect.Zero(m.Type.In(j))
		}
		var want syscall.Errno // no answer (Forget, Release): no error
		if out := reflect.ValueOf(inner).MethodByName(m.Name).Call(args); len(out) > 0 {
			want = syscall.Errno(out[len(out)-1].Interface().(fuse.Status))
		}
		rec.got = nil
		v.MethodByName(m.Name).Call(args)
		if m.Name == "Writev" {
			// ENOSYS from Writev makes go-fuse call Write for the same
			// request, which counts it
			if len(rec.got) != 0 {
				t.Errorf("Writev answered ENOSYS and was counted: %v", rec.got)
			}
			continue
		}
		if len(rec.got) != 1 {
			t.Fatalf("%s: observed %d times, want once", m.Name, len(rec.got))
		}
		g := rec.got[0]
		if prev, dup := names[g.op.String()]; dup {
			t.Errorf("%s and %s are both counted as %q", prev, m.Name, g.op)
		}
		names[g.op.String()] = m.Name
		if g.errno != want {
			t.Errorf("%s: errno %v, want %v", m.Name, g.errno, want)
		}
		if g.took < 0 {
			t.Errorf("%s: took %v", m.Name, g.took)
		}
	}
	if len(names) != int(NumOps) {
		t.Errorf("%d operations counted, NumOps is %d", len(names), NumOps)
	}
}

// slowRead takes a while to read, and fails.
type slowRead struct{ fuse.RawFileSystem }

func (slowRead) Read(<-chan struct{}, *fuse.ReadIn, []byte) (fuse.ReadResult, fuse.Status) {
	time.Sleep(20 * time.Millisecond)
	return nil, fuse.EIO
}

// The time observed is the inner call's: the start is taken before it.
func TestObservedTimesTheRequest(t *testing.T) {
	rec := &recorder{}
	o := &observed{RawFileSystem: slowRead{fuse.NewDefaultRawFileSystem()}, obs: rec}
	if _, st := o.Read(nil, &fuse.ReadIn{}, nil); st != fuse.EIO {
		t.Fatalf("status %v, want EIO passed through", st)
	}
	if len(rec.got) != 1 || rec.got[0].op.String() != "read" || rec.got[0].errno != syscall.EIO {
		t.Fatalf("observed %+v, want one read with EIO", rec.got)
	}
	if took := rec.got[0].took; took < 20*time.Millisecond {
		t.Errorf("took %v, want at least the 20ms the read slept", took)
	}
}

// negativeLookup answers every lookup as go-fuse answers a missing name
// when negative entries are cached: no error, node 0.
type negativeLookup struct{ fuse.RawFileSystem }

func (negativeLookup) Lookup(_ <-chan struct{}, _ *fuse.InHeader, name string, out *fuse.EntryOut) fuse.Status {
	if name == "there" {
		out.NodeId = 7
	}
	return fuse.OK
}

// A negative entry is what a caller gets ENOENT from, so it counts as one.
func TestObservedNegativeLookup(t *testing.T) {
	rec := &recorder{}
	o := &observed{RawFileSystem: negativeLookup{fuse.NewDefaultRawFileSystem()}, obs: rec}
	for _, name := range []string{"missing", "there"} {
		if st := o.Lookup(nil, &fuse.InHeader{}, name, &fuse.EntryOut{}); st != fuse.OK {
			t.Fatalf("lookup %s: status %v, want OK passed to the kernel", name, st)
		}
	}
	if len(rec.got) != 2 || rec.got[0].errno != syscall.ENOENT || rec.got[1].errno != 0 {
		t.Errorf("observed %+v, want ENOENT for the negative entry, then success", rec.got)
	}
}
