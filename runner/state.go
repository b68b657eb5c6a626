package runner

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/kneepipe/kneepipe/runner/cache"
	"github.com/kneepipe/kneepipe/runner/uptodate"
)

// lastRun is <cache>/state/last-run.json: what the latest run computed,
// for the next plan's explanations and for `cache gc`.
type lastRun struct {
	Stages map[string]uptodate.Record `json:"stages"`
	// Artifacts are the sources of the artifacts written, whose stored
	// copies `cache gc` keeps.
	Artifacts []cache.Key `json:"artifacts,omitempty"`
}

func lastRunPath(cacheDir string) string {
	return filepath.Join(cacheDir, "state", "last-run.json")
}

func readLastRun(cacheDir string) (*lastRun, error) {
	data, err := os.ReadFile(lastRunPath(cacheDir))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var lr lastRun
	if err := json.Unmarshal(data, &lr); err != nil {
		return nil, fmt.Errorf("%s: %w", lastRunPath(cacheDir), err)
	}
	return &lr, nil
}

func (x *execution) writeLastRun() error {
	lr := lastRun{Stages: map[string]uptodate.Record{}, Artifacts: x.artifactSources}
	for name, sr := range x.runs {
		if sr.key != "" && !sr.failed {
			lr.Stages[name] = sr.record
		}
	}
	data, err := json.MarshalIndent(lr, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(lastRunPath(x.opts.CacheDir)), 0o755); err != nil {
		return err
	}
	return cache.WriteFileAtomic(lastRunPath(x.opts.CacheDir), data)
}

// GC removes the cache entries and stored artifacts the latest run does
// not reference.
func GC(cacheDir string, wait time.Duration) (cache.Removed, error) {
	unlock, err := lockCache(cacheDir, wait)
	if err != nil {
		return cache.Removed{}, err
	}
	defer unlock()
	last, err := readLastRun(cacheDir)
	if err != nil {
		return cache.Removed{}, err
	}
	if last == nil {
		return cache.Removed{}, errors.New("no run recorded in this cache yet: nothing to compare against")
	}
	entries := map[cache.Key]bool{}
	for _, r := range last.Stages {
		entries[r.Key] = true
	}
	artifacts := map[cache.Key]bool{}
	for _, k := range last.Artifacts {
		artifacts[k] = true
	}
	return cache.Store{Root: cacheDir}.GC(entries, artifacts)
}
