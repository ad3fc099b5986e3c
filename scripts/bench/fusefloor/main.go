// Command fusefloor mounts the tree shape of bench_issue2.sh (100
// directories of 100 files and 100 directories of two files) from memory
// with go-fuse's own nodes, and nothing else: no catalogs, no rendering.
// Its walk times are what go-fuse and the kernel cost on this machine, the
// floor intakefs's own walk times are compared with.
//
// By default it serves go-fuse's defaults (OPENDIR served, READDIRPLUS).
// With -noopendir it refuses OPENDIR the way intakefs does
// (fs.WithoutOpendir), so the kernel makes the same requests for a walk
// as it does of intakefs: that is the like-for-like floor.
//
//	go run ./scripts/bench/fusefloor [-noopendir] MOUNTPOINT   # Ctrl-C unmounts
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	ifs "github.com/intakefs/intakefs/fs"
)

type root struct{ fs.Inode }

func (r *root) OnAdd(ctx context.Context) {
	for c := 0; c < 100; c++ {
		cd := r.NewPersistentInode(ctx, &fs.Inode{}, fs.StableAttr{Mode: fuse.S_IFDIR})
		r.AddChild(fmt.Sprintf("cat%03d", c), cd, false)
		for s := 0; s < 100; s++ {
			f := cd.NewPersistentInode(ctx, &fs.MemRegularFile{Data: []byte("id,a\n1,2\n"), Attr: fuse.Attr{Mode: 0444}}, fs.StableAttr{})
			cd.AddChild(fmt.Sprintf("src%03d.csv", s), f, false)
			sd := cd.NewPersistentInode(ctx, &fs.Inode{}, fs.StableAttr{Mode: fuse.S_IFDIR})
			cd.AddChild(fmt.Sprintf("src%03d", s), sd, false)
			for _, n := range []string{"describe.yaml", "metadata.json"} {
				g := sd.NewPersistentInode(ctx, &fs.MemRegularFile{Data: []byte("x: 1\n"), Attr: fuse.Attr{Mode: 0444}}, fs.StableAttr{})
				sd.AddChild(n, g, false)
			}
		}
	}
}

func main() {
	noOpendir := flag.Bool("noopendir", false, "refuse OPENDIR, as intakefs does")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: fusefloor [-noopendir] MOUNTPOINT")
		os.Exit(2)
	}
	et, at := 5*time.Second, 5*time.Second
	opts := &fs.Options{EntryTimeout: &et, AttrTimeout: &at, MountOptions: fuse.MountOptions{DirectMount: true, DisableXAttrs: true}}
	raw := fs.NewNodeFS(&root{}, opts)
	if *noOpendir {
		raw = ifs.WithoutOpendir(raw)
	}
	srv, err := fuse.NewServer(raw, flag.Arg(0), &opts.MountOptions)
	if err == nil {
		go srv.Serve()
		err = srv.WaitMount()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "fusefloor:", err)
		os.Exit(1)
	}
	c := make(chan os.Signal, 1)
	signal.Notify(c, syscall.SIGINT, syscall.SIGTERM)
	go func() { <-c; srv.Unmount() }()
	srv.Wait()
}
