package shard

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/kneepipe/kneepipe/internal/atomicfile"
	"github.com/kneepipe/kneepipe/internal/source"
)

// Work is a sharded run's work directory: the plan, the listing and the
// shards' parts, on a shared file system or under an S3 prefix (workers
// that share no disk). Every write is whole or absent: a file system
// write goes to a temporary file renamed into place, an S3 write is one
// PUT.
type Work interface {
	Put(ctx context.Context, name string, data []byte) error
	// Get reads a file; errors.Is(err, fs.ErrNotExist) when it is absent.
	Get(ctx context.Context, name string) ([]byte, error)
	// Dir is the directory of a file system work dir, "" on S3.
	Dir() string
	String() string
}

// OpenWork opens W: s3://bucket/prefix/ (reached with the source's
// endpoint, region and path style) or a directory.
func OpenWork(ctx context.Context, uri string, src source.Config, lookup func(string) (string, bool)) (Work, error) {
	if uri == "" {
		return nil, errors.New("--work is required: a shared directory or s3://bucket/prefix/")
	}
	if !strings.HasPrefix(uri, "s3://") {
		if strings.Contains(uri, "://") {
			return nil, fmt.Errorf("--work %q: want a directory or s3://bucket/prefix/", uri)
		}
		return dirWork(uri), nil
	}
	if !strings.HasSuffix(uri, "/") {
		uri += "/"
	}
	st, err := source.Open(ctx, source.Config{URI: uri, Endpoint: src.Endpoint, Region: src.Region, PathStyle: src.PathStyle}, lookup)
	if err != nil {
		return nil, fmt.Errorf("--work %s: %w", uri, err)
	}
	w, ok := st.(source.Writer)
	if !ok {
		return nil, fmt.Errorf("--work %s: store cannot be written", uri)
	}
	return &s3Work{uri: uri, store: w}, nil
}

type dirWork string

func (d dirWork) path(name string) string { return filepath.Join(string(d), filepath.FromSlash(name)) }

func (d dirWork) Put(_ context.Context, name string, data []byte) error {
	p := d.path(name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	return atomicfile.WriteBytes(p, data)
}

func (d dirWork) Get(_ context.Context, name string) ([]byte, error) {
	return os.ReadFile(d.path(name))
}

func (d dirWork) Dir() string    { return string(d) }
func (d dirWork) String() string { return string(d) }

type s3Work struct {
	uri   string
	store source.Writer
}

func (w *s3Work) Put(ctx context.Context, name string, data []byte) error {
	return w.store.Put(ctx, w.store.Key(name), data)
}

func (w *s3Work) Get(ctx context.Context, name string) ([]byte, error) {
	body, _, err := w.store.Get(ctx, w.store.Key(name))
	if source.NotFound(err) {
		return nil, fmt.Errorf("%s%s: %w", w.uri, name, fs.ErrNotExist)
	}
	if err != nil {
		return nil, fmt.Errorf("%s%s: %w", w.uri, name, err)
	}
	defer body.Close()
	data, err := io.ReadAll(body)
	if err != nil {
		return nil, fmt.Errorf("%s%s: %w", w.uri, name, err)
	}
	return data, nil
}

func (w *s3Work) Dir() string    { return "" }
func (w *s3Work) String() string { return w.uri }
