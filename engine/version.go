package engine

import (
	"context"
	"time"
)

// viewVersion is when the newest of the catalogs a view depends on was
// loaded: its own file and every parent's, since a parent's entry gives
// the nested catalog its arguments and inherited parameters, which can
// change the names it lists.
func (f *FS) viewVersion(v *View) time.Time {
	t := f.Started
	for ; v != nil; v = v.Parent {
		if v.Cat != nil && v.Cat.Loaded.After(t) {
			t = v.Cat.Loaded
		}
	}
	return t
}

var _ Versioned = (*catalogDir)(nil)

// Version of a catalog directory: its listing changes only with a load.
func (d *catalogDir) Version(ctx context.Context) time.Time {
	v, err := d.view(ctx)
	if err != nil {
		// a view that fails to load lists nothing new until it loads
		return d.fs.Started
	}
	if v.Err != nil {
		return time.Now() // see KnownVersion
	}
	return d.fs.viewVersion(v)
}

func (d *catalogDir) KnownVersion() time.Time {
	if d.parent == nil {
		// the root has no parent listing it: only Version is asked
		return d.fs.Started
	}
	ident := d.parent.Ident + "/" + d.entry.Name + canonKVs(d.kvs)
	d.fs.mu.Lock()
	ve := d.fs.views[ident]
	d.fs.mu.Unlock()
	if ve == nil {
		return d.fs.Started // never loaded: the kernel holds no listing of it
	}
	if ve.parent != d.parent.Cat {
		// The parent catalog was loaded again since this one was: what
		// it lists may have changed with it (its arguments, inherited
		// parameters), and this lookup loads nothing to find out. The
		// current time makes the kernel drop the listing it keeps and
		// ask, which loads it.
		return time.Now()
	}
	if ve.view.Err != nil {
		// A catalog that failed to load has nothing inside to look up,
		// which is what would load it again: its directory says it
		// changes all the time, so the kernel never keeps its (empty)
		// listing and asks again, and a fixed catalog file shows.
		return time.Now()
	}
	return d.fs.viewVersion(ve.view)
}

var _ Versioned = (*metaDir)(nil)

func (d *metaDir) Version(ctx context.Context) time.Time { return d.fs.viewVersion(d.now(ctx).view) }
func (d *metaDir) KnownVersion() time.Time               { return d.fs.viewVersion(d.view) }

// A source's directory and a parts directory list a fixed set of names
// for the life of their inode: a new catalog load or a changed set of
// parts is a new inode number.
var (
	_ Versioned = (*sourceDir)(nil)
	_ Versioned = (*partsDir)(nil)
)

func (d *sourceDir) Version(ctx context.Context) time.Time { return d.fs.Started }
func (d *sourceDir) KnownVersion() time.Time               { return d.fs.Started }
func (d *partsDir) Version(ctx context.Context) time.Time  { return d.fs.Started }
func (d *partsDir) KnownVersion() time.Time                { return d.fs.Started }
