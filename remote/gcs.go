package remote

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"

	"cloud.google.com/go/storage"
	"google.golang.org/api/googleapi"
	"google.golang.org/api/iterator"
	"google.golang.org/api/option"
)

// GCSOptions configures a GCS store. The fields mirror the gcsfs
// storage_options Intake catalogs carry; see GCSOptionsFrom.
type GCSOptions struct {
	// Anon sends unauthenticated requests (gcsfs token: "anon").
	Anon bool
	// CredentialsFile is a service-account (or authorized-user, external
	// account) JSON file (gcsfs token: "/path/key.json").
	CredentialsFile string
	// CredentialsJSON is the content of such a file (gcsfs token: {…}).
	CredentialsJSON []byte
	// Project is the billing/user project; only used for requester-pays
	// buckets (requester_pays) and otherwise recorded.
	Project string
	// RequesterPays bills requests to Project.
	RequesterPays bool
	// Endpoint overrides the JSON API endpoint, e.g. an emulator at
	// "http://127.0.0.1:4443" ("/storage/v1/" is added when missing).
	// STORAGE_EMULATOR_HOST is honoured by the client library itself.
	Endpoint string
	// Timeouts bound each request; zero fields take DefaultTimeouts.
	Timeouts Timeouts
}

// GCS is the Store for gs:// and gcs:// URLs ("gs://bucket/object").
//
// The directory convention is S3's (see S3): List lists "object/" with
// delimiter "/", prefixes come back as IsDir entries without a trailing
// "/", Stat of a prefix with objects under it gives IsDir. The identity is
// the object generation, as ETag "gen:N". The library's own retries are off:
// wrap the store with WithRetry. Reads ask for the stored bytes, so an
// object uploaded with Content-Encoding: gzip reads compressed, with the
// stored size (except against an emulator, an Endpoint or
// STORAGE_EMULATOR_HOST, where reads use the JSON API, which the library
// does not let ask for that).
type GCS struct {
	client        *storage.Client
	t             Timeouts
	secrets       []string
	project       string
	requesterPays bool
	jsonReads     bool // talking to an emulator: JSON reads, no ReadCompressed
}

var _ Store = (*GCS)(nil)
var _ VersionReader = (*GCS)(nil)

// NewGCS builds a GCS store. Without Anon or credentials it uses
// Application Default Credentials (GOOGLE_APPLICATION_CREDENTIALS, gcloud's
// file, the metadata server).
func NewGCS(ctx context.Context, o GCSOptions) (*GCS, error) {
	g := &GCS{t: o.Timeouts.withDefaults(), project: o.Project, requesterPays: o.RequesterPays}
	var opts []option.ClientOption
	creds := o.CredentialsJSON
	if o.CredentialsFile != "" {
		b, err := os.ReadFile(o.CredentialsFile)
		if err != nil {
			return nil, fmt.Errorf("gcs: reading credentials file: %v", err)
		}
		creds = b
	}
	switch {
	case o.Anon:
		opts = append(opts, option.WithoutAuthentication())
	case creds != nil:
		var head struct {
			Type         string `json:"type"`
			PrivateKey   string `json:"private_key"`
			ClientSecret string `json:"client_secret"`
			RefreshToken string `json:"refresh_token"`
		}
		if err := json.Unmarshal(creds, &head); err != nil {
			return nil, fmt.Errorf("gcs: credentials are not JSON")
		}
		for _, x := range []string{head.PrivateKey, head.ClientSecret, head.RefreshToken} {
			if x != "" {
				g.secrets = append(g.secrets, x)
			}
		}
		var ct option.CredentialsType
		switch head.Type {
		case "service_account":
			ct = option.ServiceAccount
		case "authorized_user":
			ct = option.AuthorizedUser
		case "external_account":
			ct = option.ExternalAccount
		case "impersonated_service_account":
			ct = option.ImpersonatedServiceAccount
		default:
			return nil, fmt.Errorf("gcs: unsupported credentials type %q", head.Type)
		}
		opts = append(opts, option.WithAuthCredentialsJSON(ct, creds))
	}
	if o.Endpoint != "" {
		ep := strings.TrimSuffix(o.Endpoint, "/")
		if !strings.HasSuffix(ep, "/storage/v1") {
			ep += "/storage/v1"
		}
		opts = append(opts, option.WithEndpoint(ep+"/"))
		g.secrets = append(g.secrets, userinfoSecrets(o.Endpoint)...)
	}
	if o.Endpoint != "" || os.Getenv("STORAGE_EMULATOR_HOST") != "" {
		// Emulators (fake-gcs-server as usually run) serve reads through
		// the JSON API only; the library then refuses ReadCompressed.
		opts = append(opts, storage.WithJSONReads())
		g.jsonReads = true
	}
	client, err := storage.NewClient(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("gcs: %s", Redact(err.Error(), g.secrets...))
	}
	client.SetRetry(storage.WithPolicy(storage.RetryNever))
	g.client = client
	return g, nil
}

// Close releases the client.
func (g *GCS) Close() error { return g.client.Close() }

func (g *GCS) bucket(name string) *storage.BucketHandle {
	b := g.client.Bucket(name)
	if g.requesterPays && g.project != "" {
		b = b.UserProject(g.project)
	}
	return b
}

func (g *GCS) mapErr(ctx context.Context, op, url string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, storage.ErrObjectNotExist):
		return newOpError(op, url, ErrNotExist, "no such object", nil, g.secrets)
	case errors.Is(err, storage.ErrBucketNotExist):
		return newOpError(op, url, ErrNotExist, "no such bucket", nil, g.secrets)
	}
	var ge *googleapi.Error
	if errors.As(err, &ge) {
		kind, _ := statusKind(ge.Code)
		reason := "HTTP " + strconv.Itoa(ge.Code)
		if t := http.StatusText(ge.Code); t != "" {
			reason += " " + t
		}
		msg := ge.Message
		if msg == "" {
			msg = strings.TrimSpace(ge.Body)
		}
		if len(msg) > 200 {
			msg = msg[:200] + "…"
		}
		if msg != "" {
			reason += ": " + msg
		}
		return newOpError(op, url, kind, reason, nil, g.secrets)
	}
	msg := err.Error()
	if ctx.Err() == nil && strings.Contains(msg, "credentials") {
		var ne net.Error
		if !errors.As(err, &ne) {
			return newOpError(op, url, ErrPermission,
				"no usable Google credentials (set token: anon for a public bucket, or a service-account file): "+msg, nil, g.secrets)
		}
	}
	return mapTransport(ctx, op, url, err, g.secrets)
}

// Stat implements Store.
func (g *GCS) Stat(ctx context.Context, url string) (ObjectInfo, error) {
	_, bucket, key, err := splitBucketURL(url)
	if err != nil {
		return ObjectInfo{}, newOpError("stat", url, nil, err.Error(), nil, g.secrets)
	}
	w := newWatchdog(ctx)
	defer w.stop()
	if key == "" || strings.HasSuffix(key, "/") {
		return g.statPrefix(w, url, bucket, key, nil)
	}
	w.arm(g.t.Request, "no answer")
	attrs, err := g.bucket(bucket).Object(key).Attrs(w.ctx)
	w.disarm()
	if err != nil {
		err = g.mapErr(w.ctx, "stat", url, err)
		if errors.Is(err, ErrNotExist) {
			return g.statPrefix(w, url, bucket, key+"/", err)
		}
		return ObjectInfo{}, err
	}
	return ObjectInfo{URL: url, Size: attrs.Size, ModTime: attrs.Updated, ETag: genTag(attrs.Generation)}, nil
}

func genTag(gen int64) string { return "gen:" + strconv.FormatInt(gen, 10) }

func (g *GCS) statPrefix(w *watchdog, url, bucket, prefix string, notFound error) (ObjectInfo, error) {
	q := &storage.Query{Prefix: prefix, Delimiter: "/"}
	_ = q.SetAttrSelection([]string{"Name"})
	it := g.bucket(bucket).Objects(w.ctx, q)
	it.PageInfo().MaxSize = 1
	w.arm(g.t.Request, "no answer")
	_, err := it.Next()
	w.disarm()
	switch {
	case err == nil || (err == iterator.Done && prefix == ""):
		return ObjectInfo{URL: strings.TrimSuffix(url, "/"), IsDir: true}, nil
	case notFound != nil:
		return ObjectInfo{}, notFound
	case err == iterator.Done:
		return ObjectInfo{}, newOpError("stat", url, ErrNotExist, "no objects under this prefix", nil, g.secrets)
	}
	return ObjectInfo{}, g.mapErr(w.ctx, "stat", url, err)
}

// ReadRange implements Store.
func (g *GCS) ReadRange(ctx context.Context, url string, off, length int64) (io.ReadCloser, error) {
	return g.readRange(ctx, url, off, length, nil)
}

// ReadVersion implements VersionReader by reading info's generation
// itself: the bytes of that version while it exists (a versioned bucket
// keeps it), ErrChanged once it is gone. The answer is checked too (see
// gcsAnswerChanged), for a server that ignores the generation.
func (g *GCS) ReadVersion(ctx context.Context, info ObjectInfo, off, length int64) (io.ReadCloser, error) {
	return g.readRange(ctx, info.URL, off, length, &info)
}

// readRange reads [off, off+length) of url; with want set, of that
// generation, and ErrChanged when the answer is of another version.
func (g *GCS) readRange(ctx context.Context, url string, off, length int64, want *ObjectInfo) (io.ReadCloser, error) {
	var gen int64
	if want != nil {
		if v, ok := strings.CutPrefix(want.ETag, "gen:"); ok {
			gen, _ = strconv.ParseInt(v, 10, 64)
		}
	}
	_, bucket, key, err := splitBucketURL(url)
	if err != nil || key == "" {
		if err == nil {
			err = fmt.Errorf("no object name in URL")
		}
		return nil, newOpError("read", url, nil, err.Error(), nil, g.secrets)
	}
	if off < 0 {
		return nil, newOpError("read", url, nil, fmt.Sprintf("negative offset %d", off), nil, g.secrets)
	}
	if length == 0 {
		return emptyBody(), nil
	}
	if length < 0 {
		length = -1
	}
	w := newWatchdog(ctx)
	w.arm(g.t.Request, "no answer")
	obj := g.bucket(bucket).Object(key)
	if !g.jsonReads {
		obj = obj.ReadCompressed(true)
	}
	if gen > 0 {
		// That generation exactly: its bytes while it exists, else 404.
		obj = obj.Generation(gen)
	}
	r, err := obj.NewRangeReader(w.ctx, off, length)
	w.disarm()
	if err != nil {
		var ge *googleapi.Error
		if errors.As(err, &ge) && ge.Code == http.StatusRequestedRangeNotSatisfiable {
			w.stop()
			return emptyBody(), nil // past the end
		}
		if errors.As(err, &ge) && ge.Code == http.StatusPreconditionFailed {
			w.stop()
			return nil, newOpError("read", url, ErrChanged, "generation no longer "+strconv.FormatInt(gen, 10), nil, g.secrets)
		}
		err = g.mapErr(w.ctx, "read", url, err)
		w.stop()
		if gen > 0 && errors.Is(err, ErrNotExist) {
			return nil, newOpError("read", url, ErrChanged, "generation "+strconv.FormatInt(gen, 10)+" is gone", nil, g.secrets)
		}
		return nil, err
	}
	body := newGuardedBody(w, r, g.t.Idle, "read", url, g.secrets)
	if want != nil {
		if why := gcsAnswerChanged(*want, gen, r.Attrs); why != "" {
			body.Close()
			return nil, newOpError("read", url, ErrChanged, why, nil, g.secrets)
		}
	}
	return body, nil
}

// gcsAnswerChanged says how a reader's attributes show another version
// than want (of generation gen), or "". Over HTTP the library reports the
// generation it asked for, not the one the server answered with, so the
// size is what catches a server that ignored the generation; a
// decompressed or unfinalized reader's size is not the stored object's.
func gcsAnswerChanged(want ObjectInfo, gen int64, a storage.ReaderObjectAttrs) string {
	if gen > 0 && a.Generation > 0 && a.Generation != gen {
		return fmt.Sprintf("the server answered with generation %d, not %d", a.Generation, gen)
	}
	if a.Decompressed || a.Unfinalized {
		return ""
	}
	// the ETag is "gen:N" here, checked above: only the size is left
	return versionDiffers(ObjectInfo{Size: want.Size}, "", a.Size)
}

// List implements Store.
func (g *GCS) List(ctx context.Context, url string) ([]ObjectInfo, error) {
	scheme, bucket, prefix, err := splitBucketURL(url)
	if err != nil {
		return nil, newOpError("list", url, nil, err.Error(), nil, g.secrets)
	}
	if prefix != "" && !strings.HasSuffix(prefix, "/") {
		prefix += "/"
	}
	base := scheme + "://" + bucket + "/"
	w := newWatchdog(ctx)
	defer w.stop()
	q := &storage.Query{Prefix: prefix, Delimiter: "/"}
	_ = q.SetAttrSelection([]string{"Name", "Size", "Updated", "Generation"})
	it := g.bucket(bucket).Objects(w.ctx, q)
	var out []ObjectInfo
	seen := false
	for {
		w.arm(g.t.Request, "no answer")
		a, err := it.Next()
		w.disarm()
		if err == iterator.Done {
			break
		}
		if err != nil {
			return nil, g.mapErr(w.ctx, "list", url, err)
		}
		seen = true
		if a.Prefix != "" {
			name := strings.TrimSuffix(strings.TrimPrefix(a.Prefix, prefix), "/")
			if name == "" || strings.Contains(name, "/") {
				continue
			}
			out = append(out, ObjectInfo{URL: base + prefix + name, IsDir: true})
			continue
		}
		name := strings.TrimPrefix(a.Name, prefix)
		if name == "" || strings.Contains(name, "/") {
			continue // the directory marker itself
		}
		out = append(out, ObjectInfo{URL: base + a.Name, Size: a.Size, ModTime: a.Updated, ETag: genTag(a.Generation)})
	}
	if !seen && prefix != "" {
		return nil, newOpError("list", url, ErrNotExist, "no objects under this prefix", nil, g.secrets)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].URL < out[j].URL })
	return out, nil
}
