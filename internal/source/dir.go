package source

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
)

// dirStore serves a local directory laid out like a bucket: the path
// under the root, with '/' separators, is the key.
type dirStore struct {
	root string // absolute, symlinks resolved
}

func openDir(path string) (*dirStore, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("source %s: %w", path, err)
	}
	root, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return nil, fmt.Errorf("source %s: %w", path, err)
	}
	st, err := os.Stat(root)
	if err != nil {
		return nil, fmt.Errorf("source %s: %w", path, err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("source %s: not a directory", path)
	}
	return &dirStore{root: root}, nil
}

// List walks the tree, then sorts by key: a directory walk visits "a/b"
// before "a-b", S3 lists them the other way round.
func (d *dirStore) List(ctx context.Context, fn func(Object) error) error {
	var objs []Object
	err := filepath.WalkDir(d.root, func(path string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if e.IsDir() {
			return nil
		}
		rel, err := filepath.Rel(d.root, path)
		if err != nil {
			return err
		}
		key := filepath.ToSlash(rel)
		info, skip, err := d.regular(path, e)
		if err != nil {
			return err
		}
		if skip != "" {
			objs = append(objs, Object{Key: key, Rel: key, Skip: skip})
			return nil
		}
		objs = append(objs, Object{Key: key, Rel: key, Size: info.Size(), LastModified: info.ModTime().UTC()})
		return nil
	})
	if err != nil {
		return fmt.Errorf("list %s: %w", d.root, err)
	}
	sort.Slice(objs, func(i, j int) bool { return objs[i].Key < objs[j].Key })
	for _, o := range objs {
		if err := fn(o); err != nil {
			return err
		}
	}
	return nil
}

// Reasons an entry of a directory source is not an object.
const (
	skipOutside    = "symlink out of the source root"
	skipBroken     = "broken symlink"
	skipNotRegular = "not a regular file"
)

// regular returns the file info of a regular file, following a symlink only
// when its target stays inside the root; for other entries it says why
// they are skipped.
func (d *dirStore) regular(path string, e fs.DirEntry) (fs.FileInfo, string, error) {
	if e.Type()&fs.ModeSymlink != 0 {
		target, err := filepath.EvalSymlinks(path)
		switch {
		case err != nil:
			return nil, skipBroken, nil
		case !d.inside(target):
			return nil, skipOutside, nil
		}
		info, err := os.Stat(target)
		if err != nil {
			return nil, skipBroken, nil
		}
		if !info.Mode().IsRegular() {
			return nil, skipNotRegular, nil
		}
		return info, "", nil
	}
	if !e.Type().IsRegular() {
		return nil, skipNotRegular, nil
	}
	info, err := e.Info()
	return info, "", err
}

func (d *dirStore) inside(path string) bool {
	rel, err := filepath.Rel(d.root, path)
	return err == nil && filepath.IsLocal(rel)
}

func (d *dirStore) path(key string) (string, error) {
	local, err := filepath.Localize(key)
	if err != nil {
		// No retry makes such a key readable.
		return "", fmt.Errorf("%w: key %q is not a path under the source root", ErrPermanent, key)
	}
	return filepath.Join(d.root, local), nil
}

func (d *dirStore) Get(ctx context.Context, key string) (io.ReadCloser, Version, error) {
	p, err := d.path(key)
	if err != nil {
		return nil, Version{}, err
	}
	if target, err := filepath.EvalSymlinks(p); err != nil || !d.inside(target) {
		return nil, Version{}, fmt.Errorf("open %s: outside the source root or missing", key)
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, Version{}, err
	}
	// A directory is not an object (List never returns one).
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() {
		f.Close()
		return nil, Version{}, fmt.Errorf("open %s: not a regular file", key)
	}
	return f, Version{Size: st.Size(), LastModified: st.ModTime().UTC()}, nil
}

func (d *dirStore) URI(key string) string {
	p, err := d.path(key)
	if err != nil {
		return ""
	}
	return p
}
