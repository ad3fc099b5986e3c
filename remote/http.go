package remote

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// HTTPOptions configures an HTTP store.
type HTTPOptions struct {
	// Headers are sent with every request (fsspec's headers option), e.g.
	// Authorization. Their values are treated as secrets in messages.
	Headers map[string]string
	// Timeouts bound each request; zero fields take DefaultTimeouts.
	Timeouts Timeouts
	// Client replaces the default client (tests). Its own timeouts then
	// apply in addition to Timeouts.Request/Idle.
	Client *http.Client
}

// HTTP is the Store for http:// and https:// URLs.
//
// Stat asks HEAD, and falls back to GET with "Range: bytes=0-0" when the
// server refuses HEAD, answers it without a size, or forbids it (as a
// presigned GET URL does). Size comes from Content-Length or the total of
// Content-Range and is -1 when the server does not say; the identity is the
// ETag, else Last-Modified (as ModTime) with the size. ReadRange sends a
// Range header and copes with servers that ignore it (status 200: the
// first off bytes are skipped, the rest limited to length). Requests ask
// for the stored bytes (Accept-Encoding: identity), so offsets and sizes
// are those of the object. List is not possible over HTTP and returns an
// error matching ErrNotSupported.
type HTTP struct {
	client  *http.Client
	headers map[string]string
	t       Timeouts
	secrets []string
}

var _ Store = (*HTTP)(nil)
var _ VersionReader = (*HTTP)(nil)

// NewHTTP builds an HTTP store.
func NewHTTP(o HTTPOptions) *HTTP {
	t := o.Timeouts.withDefaults()
	h := &HTTP{client: o.Client, headers: map[string]string{}, t: t}
	for k, v := range o.Headers {
		h.headers[k] = v
		h.secrets = append(h.secrets, v)
	}
	if h.client == nil {
		dialer := &net.Dialer{Timeout: t.Connect, KeepAlive: 30 * time.Second}
		tr := &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           dialer.DialContext,
			ForceAttemptHTTP2:     true,
			MaxIdleConns:          128,
			MaxIdleConnsPerHost:   64, // a full readahead window is 64 parallel ranged GETs
			IdleConnTimeout:       90 * time.Second,
			TLSHandshakeTimeout:   t.Connect,
			ResponseHeaderTimeout: t.Request + t.Request/2, // a backstop: the watchdog fires first
			ExpectContinueTimeout: time.Second,
			DisableCompression:    true,
		}
		h.client = &http.Client{Transport: tr}
	}
	return h
}

func (h *HTTP) do(ctx context.Context, method, url, rng string) (*http.Response, error) {
	return h.doIf(ctx, method, url, rng, "")
}

func (h *HTTP) doIf(ctx context.Context, method, url, rng, ifMatch string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, url, nil)
	if err != nil {
		return nil, newOpError(strings.ToLower(method), url, nil, "invalid URL", nil, h.secrets)
	}
	for k, v := range h.headers {
		req.Header.Set(k, v)
	}
	if req.Header.Get("Accept-Encoding") == "" {
		req.Header.Set("Accept-Encoding", "identity")
	}
	if req.Header.Get("User-Agent") == "" {
		req.Header.Set("User-Agent", "intakefs")
	}
	if rng != "" {
		req.Header.Set("Range", rng)
	}
	if ifMatch != "" {
		req.Header.Set("If-Match", ifMatch)
	}
	return h.client.Do(req)
}

func (h *HTTP) statusErr(op, url string, resp *http.Response) error {
	kind, _ := statusKind(resp.StatusCode)
	return newOpError(op, url, kind, "HTTP "+resp.Status, nil, h.secrets)
}

// Stat implements Store.
func (h *HTTP) Stat(ctx context.Context, url string) (ObjectInfo, error) {
	w := newWatchdog(ctx)
	defer w.stop()
	w.arm(h.t.Request, "no answer")
	resp, err := h.do(w.ctx, http.MethodHead, url, "")
	if err != nil {
		return ObjectInfo{}, mapTransport(w.ctx, "stat", url, err, h.secrets)
	}
	resp.Body.Close()
	switch {
	case resp.StatusCode/100 == 2 && resp.ContentLength >= 0:
		return httpInfo(url, resp, resp.ContentLength), nil
	case resp.StatusCode == http.StatusNotFound, resp.StatusCode == http.StatusGone,
		resp.StatusCode == http.StatusTooManyRequests, resp.StatusCode == http.StatusInternalServerError,
		resp.StatusCode == http.StatusBadGateway, resp.StatusCode == http.StatusServiceUnavailable,
		resp.StatusCode == http.StatusGatewayTimeout:
		return ObjectInfo{}, h.statusErr("stat", url, resp)
	}
	// HEAD refused (405, 501), forbidden (a URL signed for GET), or
	// without a size: ask for the first byte instead.
	w.arm(h.t.Request, "no answer")
	resp, err = h.do(w.ctx, http.MethodGet, url, "bytes=0-0")
	if err != nil {
		return ObjectInfo{}, mapTransport(w.ctx, "stat", url, err, h.secrets)
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusPartialContent:
		_, _, total, ok := parseContentRange(resp.Header.Get("Content-Range"))
		if !ok {
			total = -1
		}
		return httpInfo(url, resp, total), nil
	case http.StatusOK:
		return httpInfo(url, resp, resp.ContentLength), nil
	case http.StatusRequestedRangeNotSatisfiable:
		// Only an empty object has no byte 0.
		_, _, total, ok := parseContentRange(resp.Header.Get("Content-Range"))
		if !ok {
			total = 0
		}
		return httpInfo(url, resp, total), nil
	}
	if resp.StatusCode/100 == 2 {
		return httpInfo(url, resp, -1), nil
	}
	return ObjectInfo{}, h.statusErr("stat", url, resp)
}

func httpInfo(url string, resp *http.Response, size int64) ObjectInfo {
	info := ObjectInfo{URL: url, Size: size, ETag: resp.Header.Get("ETag")}
	if lm := resp.Header.Get("Last-Modified"); lm != "" {
		if t, err := http.ParseTime(lm); err == nil {
			info.ModTime = t
		}
	}
	return info
}

// parseContentRange parses "bytes START-END/TOTAL" and "bytes */TOTAL";
// start and end are -1 in the latter, total is -1 for "*".
func parseContentRange(s string) (start, end, total int64, ok bool) {
	s = strings.TrimSpace(s)
	rest, found := strings.CutPrefix(s, "bytes ")
	if !found {
		return 0, 0, 0, false
	}
	rng, tot, found := strings.Cut(rest, "/")
	if !found {
		return 0, 0, 0, false
	}
	total = -1
	if tot != "*" {
		n, err := strconv.ParseInt(tot, 10, 64)
		if err != nil {
			return 0, 0, 0, false
		}
		total = n
	}
	if rng == "*" {
		return -1, -1, total, true
	}
	a, b, found := strings.Cut(rng, "-")
	if !found {
		return 0, 0, 0, false
	}
	start, err1 := strconv.ParseInt(a, 10, 64)
	end, err2 := strconv.ParseInt(b, 10, 64)
	if err1 != nil || err2 != nil {
		return 0, 0, 0, false
	}
	return start, end, total, true
}

// rangeHeader is the Range value for [off, off+length) ("" for the whole
// object).
func rangeHeader(off, length int64) string {
	switch {
	case length < 0 && off == 0:
		return ""
	case length < 0:
		return fmt.Sprintf("bytes=%d-", off)
	}
	return fmt.Sprintf("bytes=%d-%d", off, off+length-1)
}

// ReadRange implements Store.
func (h *HTTP) ReadRange(ctx context.Context, url string, off, length int64) (io.ReadCloser, error) {
	return h.readRange(ctx, url, off, length, "", nil)
}

// ReadVersion implements VersionReader with If-Match on a strong ETag
// (a weak W/ one cannot be sent in If-Match). Whatever was sent, the
// answer's own identity must be info's (see answerChanged): a server that
// ignores If-Match, or was sent none, answers with the bytes it has now.
func (h *HTTP) ReadVersion(ctx context.Context, info ObjectInfo, off, length int64) (io.ReadCloser, error) {
	etag := info.ETag
	if strings.HasPrefix(etag, "W/") {
		etag = ""
	}
	return h.readRange(ctx, info.URL, off, length, etag, &info)
}

// answerChanged says how an answer to a read of want shows another version
// of the object, or "" when nothing in it does: an ETag that differs (as
// the weak comparison of RFC 9110 sees it, so a proxy that weakens a tag
// is no change), or a total size (Content-Range's, or a whole body's
// length) that differs. What the answer does not carry is not held against
// it: a server that sends no ETag is no change. Nor is Last-Modified:
// servers of generated files send the time of each answer.
func answerChanged(want ObjectInfo, resp *http.Response) string {
	total := int64(-1)
	switch resp.StatusCode {
	case http.StatusPartialContent, http.StatusRequestedRangeNotSatisfiable:
		if _, _, t, ok := parseContentRange(resp.Header.Get("Content-Range")); ok {
			total = t
		}
	case http.StatusOK:
		// An encoded body's length is not the object's.
		if enc := resp.Header.Get("Content-Encoding"); enc == "" || strings.EqualFold(enc, "identity") {
			total = resp.ContentLength
		}
	}
	return versionDiffers(want, resp.Header.Get("ETag"), total)
}

// readRange reads [off, off+length) of url; with want set, the answer
// must be of that version (ErrChanged otherwise).
func (h *HTTP) readRange(ctx context.Context, url string, off, length int64, ifMatch string, want *ObjectInfo) (io.ReadCloser, error) {
	if off < 0 {
		return nil, newOpError("read", url, nil, fmt.Sprintf("negative offset %d", off), nil, h.secrets)
	}
	if length == 0 {
		return emptyBody(), nil
	}
	w := newWatchdog(ctx)
	w.arm(h.t.Request, "no answer")
	resp, err := h.doIf(w.ctx, http.MethodGet, url, rangeHeader(off, length), ifMatch)
	w.disarm()
	if err != nil {
		err = mapTransport(w.ctx, "read", url, err, h.secrets)
		w.stop()
		return nil, err
	}
	body := newGuardedBody(w, resp.Body, h.t.Idle, "read", url, h.secrets)
	if want != nil && (resp.StatusCode/100 == 2 || resp.StatusCode == http.StatusRequestedRangeNotSatisfiable) {
		if why := answerChanged(*want, resp); why != "" {
			body.Close()
			return nil, newOpError("read", url, ErrChanged, why, nil, h.secrets)
		}
	}
	switch resp.StatusCode {
	case http.StatusPartialContent:
		if start, _, _, ok := parseContentRange(resp.Header.Get("Content-Range")); ok && start != off {
			body.Close()
			return nil, newOpError("read", url, nil,
				fmt.Sprintf("server sent a range from byte %d when asked for byte %d", start, off), nil, h.secrets)
		}
		return limitedBody(body, length), nil
	case http.StatusOK:
		// The server ignored Range: skip to off ourselves.
		if off > 0 {
			if _, err := io.CopyN(io.Discard, body, off); err != nil {
				body.Close()
				if err == io.EOF {
					return emptyBody(), nil
				}
				return nil, err
			}
		}
		return limitedBody(body, length), nil
	case http.StatusRequestedRangeNotSatisfiable:
		body.Close()
		return emptyBody(), nil
	case http.StatusPreconditionFailed:
		body.Close()
		return nil, newOpError("read", url, ErrChanged, "ETag no longer "+ifMatch, nil, h.secrets)
	}
	err = h.statusErr("read", url, resp)
	body.Close()
	return nil, err
}

// List implements Store: HTTP has no listing.
func (h *HTTP) List(ctx context.Context, url string) ([]ObjectInfo, error) {
	return nil, newOpError("list", url, ErrNotSupported,
		"HTTP servers cannot be listed; name the files instead of a glob", nil, h.secrets)
}
