// Package storepolicy decides whether a computed stage's outputs are
// written into the cache, or only recorded there (row counts and figures,
// no data) and recomputed from the stage's inputs if a later run reads
// them. Either way a rerun finds the stage up to date; what differs is
// disk and the time to encode. One small interface, one strategy per file:
// always, never and auto (the default), chosen per stage by its `cache:`
// key.
package storepolicy

import (
	"fmt"
	"slices"
	"strings"
)

// Stage is what a decision looks at: a stage just computed.
type Stage struct {
	Kind     string
	Volatile bool  // always runs, so a stored copy would never be read
	Source   bool  // reads the pipeline's source: dear to compute again
	InBytes  int64 // the size in memory of the inputs it read
	OutBytes int64 // its outputs' size in memory
}

// Policy decides one stage.
type Policy interface {
	// Store says whether to write the stage's outputs into the cache.
	Store(s Stage) bool
}

// Names are the values of a stage's `cache:` key.
var Names = []string{"auto", "always", "never"}

// Parse returns the policy a `cache:` value names.
func Parse(name string) (Policy, error) {
	switch name {
	case "auto", "":
		return Auto{}, nil
	case "always":
		return Always{}, nil
	case "never":
		return Never{}, nil
	}
	return nil, fmt.Errorf("%q is not %s", name, strings.Join(slices.Clone(Names), ", "))
}
