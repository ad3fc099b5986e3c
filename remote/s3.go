package remote

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
)

// S3Options configures an S3 store. The fields mirror the s3fs
// storage_options Intake catalogs carry; see S3OptionsFrom.
type S3Options struct {
	// Anon sends unsigned requests and looks up no credentials.
	Anon bool
	// Key, Secret and Token are static credentials (s3fs key/secret/token).
	Key, Secret, Token string
	// Profile names a profile of the shared AWS config/credentials files.
	Profile string
	// EndpointURL is a custom endpoint (MinIO, Ceph, versitygw, …);
	// requests then use path-style addressing.
	EndpointURL string
	// Region; default from the AWS environment/config, else us-east-1.
	Region string
	// RequesterPays marks every request as paid by the requester.
	RequesterPays bool
	// Timeouts bound each request; zero fields take DefaultTimeouts.
	Timeouts Timeouts
}

// S3 is the Store for s3:// URLs ("s3://bucket/key"; s3a:// is the same).
//
// Directory convention: S3 has no directories, only keys with "/" in them.
// List(url) lists the keys directly under the prefix "key/" (a trailing "/"
// on url is optional); each common prefix "key/sub/" comes back as an entry
// with IsDir set and URL "s3://bucket/key/sub" — no trailing slash, as
// Local gives directories — and objects as "s3://bucket/key/name". A
// "directory marker" object (a key ending in "/") is not listed. A prefix
// with nothing under it does not exist (ErrNotExist), except the bucket root,
// which lists empty. Stat of a key that is no object but has keys under
// "key/" gives IsDir, so Glob and Stat work on prefixes as on directories.
//
// The SDK's own retries are off: wrap the store with WithRetry.
type S3 struct {
	client        *s3.Client
	requesterPays bool
	t             Timeouts
	secrets       []string
	// regions holds buckets found to live in another region than the
	// client's (learned from a 301 redirect's x-amz-bucket-region).
	regions sync.Map
}

var _ Store = (*S3)(nil)
var _ VersionReader = (*S3)(nil)

// NewS3 builds an S3 store. It reads the shared AWS config files and
// environment as the SDK does (AWS_REGION, AWS_PROFILE, AWS_CA_BUNDLE,
// AWS_ENDPOINT_URL, …), except what the options set.
func NewS3(ctx context.Context, o S3Options) (*S3, error) {
	t := o.Timeouts.withDefaults()
	s := &S3{requesterPays: o.RequesterPays, t: t}
	for _, x := range []string{o.Key, o.Secret, o.Token} {
		if x != "" {
			s.secrets = append(s.secrets, x)
		}
	}
	// A BuildableClient, never a plain *http.Client: the SDK installs
	// AWS_CA_BUNDLE into it, and fails on any other client type. There is no
	// whole-request timeout (WithTimeout), which would cut off long
	// reads; the watchdogs bound every phase instead.
	hc := awshttp.NewBuildableClient().
		WithDialerOptions(func(d *net.Dialer) { d.Timeout = t.Connect }).
		WithTransportOptions(func(tr *http.Transport) {
			tr.TLSHandshakeTimeout = t.Connect
			tr.ResponseHeaderTimeout = t.Request + t.Request/2 // a backstop: the watchdog fires first
			tr.IdleConnTimeout = 90 * time.Second
			tr.MaxIdleConnsPerHost = 64 // a full readahead window is 64 parallel ranged GETs
		})
	loadOpts := []func(*config.LoadOptions) error{
		config.WithHTTPClient(hc),
		config.WithRetryer(func() aws.Retryer { return aws.NopRetryer{} }),
	}
	if o.Profile != "" {
		loadOpts = append(loadOpts, config.WithSharedConfigProfile(o.Profile))
	}
	if o.Region != "" {
		loadOpts = append(loadOpts, config.WithRegion(o.Region))
	}
	switch {
	case o.Anon:
		loadOpts = append(loadOpts, config.WithCredentialsProvider(aws.AnonymousCredentials{}))
	case o.Key != "" || o.Secret != "":
		loadOpts = append(loadOpts, config.WithCredentialsProvider(
			credentials.NewStaticCredentialsProvider(o.Key, o.Secret, o.Token)))
	}
	cfg, err := config.LoadDefaultConfig(ctx, loadOpts...)
	if err != nil {
		return nil, fmt.Errorf("s3: loading AWS configuration: %s", Redact(err.Error(), s.secrets...))
	}
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	endpoint := o.EndpointURL
	if endpoint != "" {
		s.secrets = append(s.secrets, userinfoSecrets(endpoint)...)
	}
	s.client = s3.NewFromConfig(cfg, func(so *s3.Options) {
		if endpoint != "" {
			so.BaseEndpoint = aws.String(endpoint)
		}
		if so.BaseEndpoint != nil { // option or AWS_ENDPOINT_URL(_S3)
			so.UsePathStyle = true
		}
		so.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
		so.DisableLogOutputChecksumValidationSkipped = true
	})
	return s, nil
}

// userinfoSecrets returns the password (and user) of a URL with userinfo.
func userinfoSecrets(u string) []string {
	i := strings.Index(u, "://")
	if i < 0 {
		return nil
	}
	rest := u[i+3:]
	if j := strings.IndexAny(rest, "/?#"); j >= 0 {
		rest = rest[:j]
	}
	at := strings.LastIndex(rest, "@")
	if at < 0 {
		return nil
	}
	user, pass, _ := strings.Cut(rest[:at], ":")
	var out []string
	for _, x := range []string{user, pass} {
		if x != "" {
			out = append(out, x)
		}
	}
	return out
}

// splitBucketURL splits "s3://bucket/key" into scheme, bucket and key.
func splitBucketURL(u string) (scheme, bucket, key string, err error) {
	scheme, rest, ok := strings.Cut(u, "://")
	if !ok || rest == "" {
		return "", "", "", fmt.Errorf("not a bucket URL")
	}
	bucket, key, _ = strings.Cut(rest, "/")
	if bucket == "" {
		return "", "", "", fmt.Errorf("no bucket in URL")
	}
	return scheme, bucket, key, nil
}

func (s *S3) payer() types.RequestPayer {
	if s.requesterPays {
		return types.RequestPayerRequester
	}
	return ""
}

// regionOpt routes requests for a bucket to the region it was found in.
func (s *S3) regionOpt(bucket string) []func(*s3.Options) {
	if r, ok := s.regions.Load(bucket); ok {
		region := r.(string)
		return []func(*s3.Options){func(o *s3.Options) { o.Region = region }}
	}
	return nil
}

// redirected learns a bucket's region from a wrong-region error and
// reports whether the request is worth repeating.
func (s *S3) redirected(bucket string, err error) bool {
	var re *awshttp.ResponseError
	if !errors.As(err, &re) || re.Response == nil {
		return false
	}
	code := re.HTTPStatusCode()
	if code != http.StatusMovedPermanently && code != http.StatusBadRequest && code != http.StatusTemporaryRedirect {
		return false
	}
	region := re.Response.Header.Get("x-amz-bucket-region")
	if region == "" {
		return false
	}
	current := s.client.Options().Region
	if r, ok := s.regions.Load(bucket); ok {
		current = r.(string)
	}
	if region == current {
		return false
	}
	s.regions.Store(bucket, region)
	return true
}

// call runs one SDK request under a watchdog, repeating it once in the
// right region when S3 says the bucket lives elsewhere.
func (s *S3) call(ctx context.Context, bucket string, fn func(ctx context.Context, opts []func(*s3.Options)) error) error {
	err := fn(ctx, s.regionOpt(bucket))
	if err != nil && s.redirected(bucket, err) {
		err = fn(ctx, s.regionOpt(bucket))
	}
	return err
}

func (s *S3) mapErr(ctx context.Context, op, url string, err error) error {
	if err == nil {
		return nil
	}
	var re *awshttp.ResponseError
	if errors.As(err, &re) && re.Response != nil && re.HTTPStatusCode() != 0 {
		code := re.HTTPStatusCode()
		kind, _ := statusKind(code)
		reason := fmt.Sprintf("HTTP %d", code)
		var ae smithy.APIError
		if errors.As(err, &ae) {
			switch ae.ErrorCode() {
			case "NoSuchKey", "NoSuchBucket", "NotFound", "NoSuchVersion":
				kind = ErrNotExist
			case "AccessDenied", "Forbidden", "InvalidAccessKeyId", "SignatureDoesNotMatch",
				"AllAccessDisabled", "ExpiredToken", "InvalidToken", "AccountProblem":
				kind = ErrPermission
			case "SlowDown", "RequestTimeout", "InternalError", "ServiceUnavailable", "RequestTimeTooSkewed":
				kind = ErrUnavailable
			}
			reason += " " + ae.ErrorCode()
			if m := ae.ErrorMessage(); m != "" && m != ae.ErrorCode() {
				reason += ": " + m
			}
		}
		if code == http.StatusMovedPermanently {
			reason += " (the bucket is in another region: set client_kwargs.region_name)"
		}
		return newOpError(op, url, kind, reason, nil, s.secrets)
	}
	msg := err.Error()
	if ctx.Err() == nil && strings.Contains(msg, "credentials") && !errors.Is(err, errTimedOut) {
		var ne net.Error
		if !errors.As(err, &ne) {
			return newOpError(op, url, ErrPermission,
				"no usable AWS credentials (set anon: true for a public bucket, or key/secret, or profile): "+msg, nil, s.secrets)
		}
	}
	return mapTransport(ctx, op, url, err, s.secrets)
}

// Stat implements Store.
func (s *S3) Stat(ctx context.Context, url string) (ObjectInfo, error) {
	_, bucket, key, err := splitBucketURL(url)
	if err != nil {
		return ObjectInfo{}, newOpError("stat", url, nil, err.Error(), nil, s.secrets)
	}
	w := newWatchdog(ctx)
	defer w.stop()
	if key == "" || strings.HasSuffix(key, "/") {
		return s.statPrefix(w, url, bucket, key, nil)
	}
	var out *s3.HeadObjectOutput
	w.arm(s.t.Request, "no answer")
	err = s.call(w.ctx, bucket, func(ctx context.Context, opts []func(*s3.Options)) error {
		var err error
		out, err = s.client.HeadObject(ctx, &s3.HeadObjectInput{
			Bucket: aws.String(bucket), Key: aws.String(key), RequestPayer: s.payer(),
		}, opts...)
		return err
	})
	w.disarm()
	if err != nil {
		err = s.mapErr(w.ctx, "stat", url, err)
		if errors.Is(err, ErrNotExist) {
			return s.statPrefix(w, url, bucket, key+"/", err)
		}
		return ObjectInfo{}, err
	}
	info := ObjectInfo{URL: url, Size: aws.ToInt64(out.ContentLength), ETag: strings.Trim(aws.ToString(out.ETag), `"`)}
	if out.LastModified != nil {
		info.ModTime = *out.LastModified
	}
	return info, nil
}

// statPrefix reports a prefix with keys under it as a directory; notFound
// is the error to give when there are none (nil: make one).
func (s *S3) statPrefix(w *watchdog, url, bucket, prefix string, notFound error) (ObjectInfo, error) {
	var out *s3.ListObjectsV2Output
	w.arm(s.t.Request, "no answer")
	err := s.call(w.ctx, bucket, func(ctx context.Context, opts []func(*s3.Options)) error {
		var err error
		out, err = s.client.ListObjectsV2(ctx, &s3.ListObjectsV2Input{
			Bucket: aws.String(bucket), Prefix: aws.String(prefix), MaxKeys: aws.Int32(1),
			RequestPayer: s.payer(),
		}, opts...)
		return err
	})
	w.disarm()
	if err != nil {
		if notFound != nil {
			return ObjectInfo{}, notFound
		}
		return ObjectInfo{}, s.mapErr(w.ctx, "stat", url, err)
	}
	if prefix == "" || len(out.Contents) > 0 || len(out.CommonPrefixes) > 0 {
		return ObjectInfo{URL: strings.TrimSuffix(url, "/"), IsDir: true}, nil
	}
	if notFound != nil {
		return ObjectInfo{}, notFound
	}
	return ObjectInfo{}, newOpError("stat", url, ErrNotExist, "no objects under this prefix", nil, s.secrets)
}

// ReadRange implements Store.
func (s *S3) ReadRange(ctx context.Context, url string, off, length int64) (io.ReadCloser, error) {
	return s.readRange(ctx, url, off, length, nil)
}

// ReadVersion implements VersionReader with If-Match on the ETag, and
// checks the answer's ETag and size against info's: an S3-compatible
// server that ignores If-Match answers with the bytes it has now.
func (s *S3) ReadVersion(ctx context.Context, info ObjectInfo, off, length int64) (io.ReadCloser, error) {
	return s.readRange(ctx, info.URL, off, length, &info)
}

// readRange reads [off, off+length) of url; with want set, the answer
// must be of that version (ErrChanged otherwise).
func (s *S3) readRange(ctx context.Context, url string, off, length int64, want *ObjectInfo) (io.ReadCloser, error) {
	_, bucket, key, err := splitBucketURL(url)
	if err != nil || key == "" {
		if err == nil {
			err = fmt.Errorf("no object key in URL")
		}
		return nil, newOpError("read", url, nil, err.Error(), nil, s.secrets)
	}
	if off < 0 {
		return nil, newOpError("read", url, nil, fmt.Sprintf("negative offset %d", off), nil, s.secrets)
	}
	if length == 0 {
		return emptyBody(), nil
	}
	in := &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), RequestPayer: s.payer()}
	if r := rangeHeader(off, length); r != "" {
		in.Range = aws.String(r)
	}
	var etag string
	if want != nil {
		etag = want.ETag
	}
	if etag != "" {
		in.IfMatch = aws.String(`"` + strings.Trim(etag, `"`) + `"`)
	}
	w := newWatchdog(ctx)
	w.arm(s.t.Request, "no answer")
	var out *s3.GetObjectOutput
	err = s.call(w.ctx, bucket, func(ctx context.Context, opts []func(*s3.Options)) error {
		var err error
		out, err = s.client.GetObject(ctx, in, opts...)
		return err
	})
	w.disarm()
	if err != nil {
		var re *awshttp.ResponseError
		if errors.As(err, &re) && re.Response != nil {
			switch re.HTTPStatusCode() {
			case http.StatusRequestedRangeNotSatisfiable:
				w.stop()
				return emptyBody(), nil // past the end
			case http.StatusPreconditionFailed:
				w.stop()
				return nil, newOpError("read", url, ErrChanged, "ETag no longer "+etag, nil, s.secrets)
			}
		}
		err = s.mapErr(w.ctx, "read", url, err)
		w.stop()
		return nil, err
	}
	body := newGuardedBody(w, out.Body, s.t.Idle, "read", url, s.secrets)
	if want != nil {
		if why := s3AnswerChanged(*want, out); why != "" {
			body.Close()
			return nil, newOpError("read", url, ErrChanged, why, nil, s.secrets)
		}
	}
	return limitedBody(body, length), nil
}

// s3AnswerChanged is answerChanged (http.go) for the SDK's view of a
// GetObject answer: its ETag, and the object's size in its Content-Range.
func s3AnswerChanged(want ObjectInfo, out *s3.GetObjectOutput) string {
	total := int64(-1)
	if cr := aws.ToString(out.ContentRange); cr != "" {
		if _, _, t, ok := parseContentRange(cr); ok {
			total = t
		}
	} else if out.ContentLength != nil {
		total = *out.ContentLength // no range: the whole object
	}
	return versionDiffers(want, aws.ToString(out.ETag), total)
}

// List implements Store; see the type's comment for the conventions.
func (s *S3) List(ctx context.Context, url string) ([]ObjectInfo, error) {
	scheme, bucket, prefix, err := splitBucketURL(url)
	if err != nil {
		return nil, newOpError("list", url, nil, err.Error(), nil, s.secrets)
	}
	if prefix != "" && !strings.HasSuffix(prefix, "/") {
		prefix += "/"
	}
	base := scheme + "://" + bucket + "/"
	w := newWatchdog(ctx)
	defer w.stop()
	var out []ObjectInfo
	var token *string
	seen := false // anything under the prefix, a directory marker included
	for {
		var page *s3.ListObjectsV2Output
		w.arm(s.t.Request, "no answer")
		err := s.call(w.ctx, bucket, func(ctx context.Context, opts []func(*s3.Options)) error {
			var err error
			page, err = s.client.ListObjectsV2(ctx, &s3.ListObjectsV2Input{
				Bucket: aws.String(bucket), Prefix: aws.String(prefix), Delimiter: aws.String("/"),
				ContinuationToken: token, RequestPayer: s.payer(),
			}, opts...)
			return err
		})
		w.disarm()
		if err != nil {
			return nil, s.mapErr(w.ctx, "list", url, err)
		}
		seen = seen || len(page.CommonPrefixes) > 0 || len(page.Contents) > 0
		for _, cp := range page.CommonPrefixes {
			name := strings.TrimSuffix(strings.TrimPrefix(aws.ToString(cp.Prefix), prefix), "/")
			if name == "" || strings.Contains(name, "/") {
				continue // "a//b": an empty path segment cannot be shown
			}
			out = append(out, ObjectInfo{URL: base + prefix + name, IsDir: true})
		}
		for _, o := range page.Contents {
			key := aws.ToString(o.Key)
			name := strings.TrimPrefix(key, prefix)
			if name == "" || strings.Contains(name, "/") {
				continue // the directory marker itself
			}
			info := ObjectInfo{URL: base + key, Size: aws.ToInt64(o.Size), ETag: strings.Trim(aws.ToString(o.ETag), `"`)}
			if o.LastModified != nil {
				info.ModTime = *o.LastModified
			}
			out = append(out, info)
		}
		if !aws.ToBool(page.IsTruncated) || page.NextContinuationToken == nil || aws.ToString(page.NextContinuationToken) == "" {
			break
		}
		token = page.NextContinuationToken
	}
	if !seen && prefix != "" {
		return nil, newOpError("list", url, ErrNotExist, "no objects under this prefix", nil, s.secrets)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].URL < out[j].URL })
	return out, nil
}
