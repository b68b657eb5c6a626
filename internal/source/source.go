// Package source lists and reads the objects a pipeline starts from: an S3
// bucket prefix or a local directory laid out like one. Both list keys in
// S3 order (byte order of the whole key), so a pipeline gives the same rows
// whichever one holds the data.
package source

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"
	"time"
)

// ErrPermanent marks failures a retry cannot mend: the object is gone, or
// the credentials are refused.
var ErrPermanent = errors.New("permanent failure")

// Permanent reports whether err is not worth retrying.
func Permanent(err error) bool {
	return errors.Is(err, ErrPermanent) || errors.Is(err, fs.ErrNotExist)
}

// ErrThrottled marks an answer asking the client to slow down (503
// SlowDown and its kin): a transient failure that is also a signal to the
// whole fetch (see Tail).
var ErrThrottled = errors.New("throttled")

// Throttled reports whether err is a throttled answer.
func Throttled(err error) bool { return errors.Is(err, ErrThrottled) }

// Object is one listed object.
type Object struct {
	Key          string // full key in the bucket (or path under the root)
	Rel          string // Key relative to the source prefix
	Size         int64
	ETag         string // as the server sends it, without quotes; empty for local files
	LastModified time.Time
	// Skip, when set, says why this entry of the listing is not an object
	// a stage can read (a symlink out of a directory source's root, a
	// socket). List passes such entries only so that they can be counted.
	Skip string
}

// Version is what a Get's answer says of the bytes it brings: compared
// with the listing, it tells an object overwritten since it was listed.
type Version struct {
	Size         int64  // -1: not known
	ETag         string // without quotes; empty: not known
	LastModified time.Time
}

// ErrChanged marks an object whose GET brought another version than the
// listing describes (overwritten or replaced since): retrying within the
// run brings the same other version, so it is not retried. It is
// permanent for this run only; the next run lists the new version.
var ErrChanged = fmt.Errorf("%w: object changed since it was listed", ErrPermanent)

// Changed returns an ErrChanged error when v is not the version o
// describes: another size, another ETag (when both have one), or, without
// ETags, another modification time at the coarser of the two precisions
// (tables keep microseconds, an HTTP Last-Modified header whole seconds).
func Changed(o Object, v Version) error {
	switch {
	case v.Size >= 0 && v.Size != o.Size:
		return fmt.Errorf("%w (listed %d bytes, now %d); fetched again on the next run", ErrChanged, o.Size, v.Size)
	case o.ETag != "" && v.ETag != "":
		if o.ETag != v.ETag {
			return fmt.Errorf("%w (listed ETag %s, now %s); fetched again on the next run", ErrChanged, o.ETag, v.ETag)
		}
	case !o.LastModified.IsZero() && !v.LastModified.IsZero():
		a, b := o.LastModified.Truncate(time.Microsecond), v.LastModified.Truncate(time.Microsecond)
		if a.Nanosecond() == 0 || b.Nanosecond() == 0 {
			a, b = a.Truncate(time.Second), b.Truncate(time.Second)
		}
		if !a.Equal(b) {
			return fmt.Errorf("%w (listed as modified %s, now %s); fetched again on the next run", ErrChanged,
				o.LastModified.UTC().Format(time.RFC3339Nano), v.LastModified.UTC().Format(time.RFC3339Nano))
		}
	}
	return nil
}

// Store is a listed, readable set of objects under one prefix.
type Store interface {
	// List calls fn for every object under the prefix in byte order of Key,
	// and for every entry it leaves out with the reason in Object.Skip.
	List(ctx context.Context, fn func(Object) error) error
	// Get opens the object's bytes and says which version of the object
	// they are, as the answer described it.
	Get(ctx context.Context, key string) (io.ReadCloser, Version, error)
	// URI names an object so that another program can open it.
	URI(key string) string
}

// Config says where the objects are. Only URI is needed for a local
// directory; Endpoint, Region and PathStyle tune S3.
type Config struct {
	URI       string // s3://bucket/prefix/ or a directory path (file:// optional)
	Endpoint  string // e.g. https://storage.yandexcloud.net; empty for AWS
	Region    string // e.g. ru-central1; empty: from the environment, else us-east-1
	PathStyle *bool  // nil: path style for IP and localhost endpoints only
	// Connections sizes the HTTP connection pool (the fetch concurrency).
	Connections int
	// ListDepth is how many levels of '/'-separated folders an S3 listing
	// discovers and lists concurrently (0: one flat, paginated listing).
	ListDepth int
}

// Open returns the store cfg names. lookup reads environment variables
// (the process environment overlaid on a .env file).
func Open(ctx context.Context, cfg Config, lookup func(string) (string, bool)) (Store, error) {
	if cfg.URI == "" {
		return nil, fmt.Errorf("no source: set source.uri in the pipeline or pass --source")
	}
	if rest, ok := strings.CutPrefix(cfg.URI, "s3://"); ok {
		bucket, prefix, _ := strings.Cut(rest, "/")
		if bucket == "" {
			return nil, fmt.Errorf("source %q: no bucket name", cfg.URI)
		}
		return openS3(ctx, cfg, bucket, prefix, lookup)
	}
	if strings.Contains(cfg.URI, "://") && !strings.HasPrefix(cfg.URI, "file://") {
		return nil, fmt.Errorf("source %q: unsupported scheme (want s3:// or a directory)", cfg.URI)
	}
	return openDir(strings.TrimPrefix(cfg.URI, "file://"))
}
