package uptodate

import (
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"

	"github.com/kneepipe/kneepipe/runner/cache"
)

// Fingerprint takes a stage from the cache when an intact entry is stored
// under its key. When not, it compares the stage with the previous run's
// record to say what changed.
type Fingerprint struct {
	Store cache.Store
	Last  map[string]Record // previous run, by stage name
}

// Record is what a run remembers of a stage, to explain the next plan.
type Record struct {
	Key    cache.Key            `json:"key"`
	Kind   string               `json:"kind"`
	Params map[string]any       `json:"params"`
	Inputs map[string]cache.Key `json:"inputs,omitempty"`
}

// Check implements Checker.
func (f Fingerprint) Check(s Stage) Decision {
	key := s.Key()
	entry, err := f.Store.Lookup(key)
	if err == nil {
		return Decision{Key: key, Why: "definition and inputs unchanged", Entry: entry}
	}
	if !errors.Is(err, cache.ErrMiss) {
		return Decision{Run: true, Key: key, Why: "cache entry damaged, recomputing", Damaged: err}
	}
	return Decision{Run: true, Key: key, Why: f.changed(s)}
}

func (f Fingerprint) changed(s Stage) string {
	last, ok := f.Last[s.Name]
	if !ok {
		return "not run before"
	}
	if last.Kind != s.Kind {
		return fmt.Sprintf("kind changed: %s -> %s", last.Kind, s.Kind)
	}
	var params []string
	for _, name := range slices.Sorted(maps.Keys(union(last.Params, s.Params))) {
		if !reflect.DeepEqual(normalize(last.Params[name]), normalize(s.Params[name])) {
			params = append(params, name)
		}
	}
	if len(params) > 0 {
		return "params changed: " + strings.Join(params, ", ")
	}
	var inputs []string
	for _, port := range slices.Sorted(maps.Keys(s.Inputs)) {
		if last.Inputs[port] != s.Inputs[port] {
			inputs = append(inputs, port)
		}
	}
	if len(inputs) > 0 {
		return "input changed: " + strings.Join(inputs, ", ")
	}
	if last.Key == s.Key() {
		return "cache entry missing (removed or never written)"
	}
	return "source or format changed"
}

func union(a, b map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		out[k] = v
	}
	return out
}
