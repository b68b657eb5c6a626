// Package uptodate decides whether a stage must run or can be taken from
// the cache, and says why. One small interface, one strategy per file:
// fingerprint (the stage's definition and inputs are unchanged and a whole
// entry is stored), always (the stage reads the outside world) and force
// (the user asked for it).
package uptodate

import (
	"maps"
	"slices"

	"github.com/kneepipe/kneepipe/runner/cache"
)

// Stage is what a decision looks at.
type Stage struct {
	Name     string
	Kind     string
	Params   map[string]any       // fingerprinted parameter values
	Inputs   map[string]cache.Key // input port -> upstream key and output ("key/output")
	Source   string               // the source a source-reading stage reads, else ""
	Volatile bool
}

// Key is the fingerprint of everything that determines the stage's
// outputs, apart from content read from outside (see Always).
func (s Stage) Key() cache.Key {
	var h cache.Hasher
	h.Add("kind", s.Kind).Add("params", canonical(s.Params)).Add("source", s.Source)
	for _, port := range slices.Sorted(maps.Keys(s.Inputs)) {
		h.Add("input:"+port, string(s.Inputs[port]))
	}
	return h.Key()
}

// Decision is a checker's answer.
type Decision struct {
	Run   bool
	Key   cache.Key // entry key; for a volatile stage the key before content is added
	Why   string    // for people: "cached", "params changed: layout", ...
	Entry *cache.Entry
	// Forced is set when the user asked for the stage (--force): state a
	// stage keeps between runs must not be reused either.
	Forced bool
	// Damaged is set when a stored entry failed its checksums: the stage
	// recomputes and the runner warns.
	Damaged error
}

// Checker decides one stage.
type Checker interface {
	Check(s Stage) Decision
}
