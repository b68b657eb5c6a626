package runner

import (
	"errors"
	"fmt"
	"os"
	"slices"
)

// stagedFile names the temporary file and destination of one artifact file.
type stagedFile struct{ tmp, dst string }

// backupSuffix names the previous run's file while publish replaces it.
const backupSuffix = ".old-kneepipe"

// publishFiles renames every staged file onto its destination, or none: a
// rename that fails puts back what the earlier ones replaced (a run that
// fails leaves --out as the previous run left it). rename is os.Rename but
// for tests. The staged files are left for the caller to remove on error.
func publishFiles(files []stagedFile, rename func(from, to string) error) error {
	type replaced struct {
		f      stagedFile
		backup bool // the destination existed and was moved aside
	}
	var done []replaced
	undo := func() error {
		var errs []error
		for _, r := range slices.Backward(done) {
			if err := rename(r.f.dst, r.f.tmp); err != nil {
				errs = append(errs, err)
				continue
			}
			if r.backup {
				errs = append(errs, rename(r.f.dst+backupSuffix, r.f.dst))
			}
		}
		return errors.Join(errs...)
	}
	for _, f := range files {
		r := replaced{f: f}
		if _, err := os.Lstat(f.dst); err == nil {
			if err := rename(f.dst, f.dst+backupSuffix); err != nil {
				return errors.Join(fmt.Errorf("publish %s: %w", f.dst, err), undo())
			}
			r.backup = true
		}
		if err := rename(f.tmp, f.dst); err != nil {
			if r.backup {
				err = errors.Join(err, rename(f.dst+backupSuffix, f.dst))
			}
			return errors.Join(fmt.Errorf("publish %s: %w", f.dst, err), undo())
		}
		done = append(done, r)
	}
	for _, r := range done {
		if r.backup {
			os.Remove(r.f.dst + backupSuffix)
		}
	}
	return nil
}

// checkFileNames fails when two artifacts write the same path under --out
// (files[i] lists artifact i's), or one writes run.json: the later rename
// would silently replace the other's file. The pipeline's artifact names
// are checked when it loads, but a files artifact's names are its rows.
func checkFileNames(artifacts []*Artifact, files [][]string) error {
	owner := map[string]string{"run.json": "the run's report"}
	for i, a := range artifacts {
		for _, name := range files[i] {
			if prev, ok := owner[name]; ok && prev != a.Name {
				return fmt.Errorf("artifact %s: file %s is also written by %s", a.Name, name, prev)
			}
			owner[name] = a.Name
		}
	}
	return nil
}
