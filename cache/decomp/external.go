package decomp

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
)

// ExternalXZ, when set to the path of an xz binary (xz-utils), makes xz
// and lzma streams decode in a child `xz -dc` process instead of in Go:
// ulikunitz/xz decodes at about half the speed of liblzma, and xz also
// decodes the blocks of a multi-threaded (-T) file in parallel. Leave it
// empty for the pure-Go decoder. Set it once, before any NewReader (for
// instance from exec.LookPath("xz") at start-up).
var ExternalXZ string

// NativeZstd makes zstd streams decode with libzstd in this process (see
// nativeZstd) where the build has it (cgo). It is the default there:
// decoding in-process at libzstd's speed leaves the child's pipe out (the
// child's writes into it cost a quarter more CPU than zstd writing to
// /dev/null). ExternalZstd, when set, is used instead: it is what a caller
// asks for by name. Set it once, before any NewReader.
var NativeZstd = haveNativeZstd

// ExternalZstd, when set to the path of a zstd binary, makes zstd streams
// decode in a child `zstd -dc` process: the C decoder is faster than
// klauspost/compress's, and in its own process it runs on another core
// than the one that spools the output and serves FUSE reads (through the
// mount, decoding in Go reached 0.55x of zstd -dc, mostly for want of a
// second core). Its default memory limit (128 MiB windows) is
// ZstdMaxWindow. Set it like ExternalXZ.
var ExternalZstd string

// external decodes by piping the input through a decompressing command.
type external struct {
	cmd    *exec.Cmd
	stdout io.ReadCloser
	stderr *limitedBuffer
	src    *countReader
	c      Compression
	out    int64
	fed    chan error // the feeder's result: the input's error, or nil
	once   sync.Once
	err    error
}

func newExternal(bin string, c Compression, src *countReader) (*external, error) {
	var cmd *exec.Cmd
	switch c {
	case Zstd:
		cmd = exec.Command(bin, "-dc", "-q", "--memory=128MB")
	case LZMA:
		cmd = exec.Command(bin, "-dc", "-q", "-T0", "--format=lzma")
	default:
		cmd = exec.Command(bin, "-dc", "-q", "-T0", "--format=xz")
	}
	// Our own pipes, widened: with the default 64 KiB a decoder that
	// writes 128 KiB at a time blocks in the middle of every write, and
	// the two processes spend more on switching than on decoding.
	inR, stdin, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	stdout, outW, err := os.Pipe()
	if err != nil {
		inR.Close()
		stdin.Close()
		return nil, err
	}
	widenPipe(stdin)
	widenPipe(stdout)
	cmd.Stdin, cmd.Stdout = inR, outW
	e := &external{cmd: cmd, stdout: stdout, stderr: &limitedBuffer{max: 4096}, src: src, c: c, fed: make(chan error, 1)}
	cmd.Stderr = e.stderr
	err = cmd.Start()
	inR.Close() // the child's ends: it has them now
	outW.Close()
	if err != nil {
		stdin.Close()
		stdout.Close()
		return nil, err
	}
	go func() {
		_, err := io.CopyBuffer(stdin, struct{ io.Reader }{src}, make([]byte, 256<<10))
		stdin.Close()
		if err != nil && src.err == nil {
			err = nil // a write error: the child stopped reading (it failed, or was killed)
		}
		e.fed <- err
	}()
	return e, nil
}

func (e *external) Read(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	n, err := e.stdout.Read(p)
	e.out += int64(n)
	if err == nil {
		return n, nil
	}
	e.err = e.finish()
	if e.err == nil {
		e.err = io.EOF
	}
	return n, e.err
}

// finish waits for the feeder and the child, and says how it went.
func (e *external) finish() error {
	ferr := <-e.fed
	werr := e.cmd.Wait()
	e.once.Do(func() {})
	if ferr != nil {
		return fmt.Errorf("%s: reading compressed input at offset %d: %w", e.c, e.src.n, ferr)
	}
	if werr != nil {
		msg := strings.TrimSpace(e.stderr.String())
		if msg == "" {
			msg = werr.Error()
		}
		return &CorruptError{Format: e.c, Offset: e.out, InputOffset: -1, Err: errors.New(msg)}
	}
	return nil
}

func (e *external) Close() {
	e.once.Do(func() {
		e.cmd.Process.Kill()
		e.stdout.Close()
		<-e.fed
		e.cmd.Wait()
	})
}

// limitedBuffer keeps the first max bytes written to it.
type limitedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
	max int
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if room := l.max - l.buf.Len(); room > 0 {
		l.buf.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

func (l *limitedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}
