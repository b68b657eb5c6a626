// Package stages holds kneepipe's stage kinds, one per file. Each kind
// declares its inputs, outputs and parameters once (a Kind value); the
// runner decodes and validates YAML against that declaration, `kneepipe
// stages` prints it, and the kind's constructor receives typed values.
package stages

import (
	"context"
	"fmt"
	"log/slog"
	"sort"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/kneepipe/kneepipe/internal/source"
)

// Kind declares a stage kind.
type Kind struct {
	Name   string
	Doc    string
	Inputs []Port // named inputs, all required
	// OptionalInputs may be left unwired: the stage then runs without
	// them, Run's map and Schema's map lack them (a section is "not known").
	OptionalInputs []Port
	Outputs        []Port  // named outputs; the first is the stage's default output
	Params         []Param // declared parameters
	// Source marks kinds that read the pipeline's source (bucket or directory).
	Source bool
	// Volatile marks kinds that read the outside world (a listing, a file):
	// they always run, and their outputs are fingerprinted by content.
	Volatile bool
	// PerObject marks kinds whose every output row stems from one input
	// row, carries its key column and keeps input order: a sharded run
	// runs them on each shard of the listing and merges the parts by key.
	PerObject bool
	// Connections, when set, says how many connections to the source the
	// stage keeps open at once with these parameters; the runner sizes
	// the HTTP pool for the busiest stage.
	Connections func(Params) int
	// New builds a stage from validated parameters. It may reject
	// combinations of values that a single parameter's type cannot.
	New func(Params) (Stage, error)
	// Schema declares the columns of every output from the parameters and
	// the inputs' schemas (keyed by port), so the loader checks each
	// column a stage reads before anything runs (need does one column).
	// Errors are *ParamError or *InputError where they can be placed. What
	// Run returns must match: every run in the stage tests is checked.
	// Nil: the outputs' columns are unknown.
	Schema func(p Params, in map[string]Schema) (map[string]Schema, error)
	// Reads says which columns of each input the stage reads, given the
	// columns of each output read downstream (used; nil or a port left out:
	// all of them), nil or a port left out meaning all. The runner keeps,
	// and stores, only the columns of an output that someone reads (see
	// Env.Used). Nil Reads: every column of every input.
	Reads func(p Params, used map[string][]string) map[string][]string
	// RunStats names the Result.Stats that count this run's work (fetch's
	// downloaded), not what the outputs hold: a stage taken from the cache
	// did none, and reports them as 0.
	RunStats []string
}

// Port names one input or output of a kind.
type Port struct {
	Name string
	Doc  string
}

// Stage is a configured stage, ready to run.
type Stage interface {
	// Run consumes one record batch per declared input and returns one per
	// declared output. It must not retain or release its inputs.
	Run(ctx context.Context, env *Env, in map[string]arrow.RecordBatch) (*Result, error)
}

// Result is what a stage run produced.
type Result struct {
	Outputs map[string]arrow.RecordBatch
	// Objects accounts for the source's objects the stage decided about;
	// the runner adds them up over the stages into run.json.
	Objects Objects
	// Stats are other figures for run.json, e.g. fetch's "downloaded".
	Stats map[string]int64
	// Partial marks outputs that lack objects the next run should retry
	// (they failed): the runner does not cache them.
	Partial bool
	// Failures are the objects that could not be fetched, for run.json.
	Failures []Failure
	// Warnings are what a user should look at although the stage
	// succeeded (an empty listing, objects excluded for no known reason):
	// run.json lists them, cached or not. Stages add them with warn.
	Warnings []string
}

// warn logs a warning and keeps it, with its attributes as key=value, for
// run.json's warnings (Result.Warnings).
func warn(env *Env, warnings *[]string, msg string, args ...any) {
	env.Log.Warn(msg, args...)
	for i := 0; i+1 < len(args); i += 2 {
		msg += fmt.Sprintf(" %v=%v", args[i], args[i+1])
	}
	*warnings = append(*warnings, msg)
}

// Failure is one object a stage could not fetch.
type Failure struct {
	Key      string
	Err      error
	Attempts int
}

// Objects counts what a stage did with the source's objects.
type Objects struct {
	Listed   int64 // listed by the source
	Accepted int64 // kept for the next stages
	Rejected int64 // fetched or read but unusable, with a reason
	Failed   int64 // could not be fetched
	Skipped  int64 // seen in the listing but not taken (e.g. another suffix)
}

// Env is what the runner lends a stage.
type Env struct {
	Store    source.Store // nil when the pipeline has no source
	Mem      memory.Allocator
	Log      *slog.Logger
	Progress func(label string, total int) Progress
	// StateDir is where the stage may keep state between runs (under
	// --cache, one per kind and source); only one run writes it at a time.
	StateDir string
	// ImageCache is the folder of images by SHA-256 (imagecache) that
	// every stage shares under --cache: fetch-hash with keep_images fills
	// it, export and report read it. Empty: none.
	ImageCache string
	// Forced is set when the user forced this stage (--force): state kept
	// between runs is a cache like the others, and must not be reused.
	Forced bool
	// Used names the columns of each output read downstream (an output
	// left out: all). The runner drops the others from what Run returns;
	// a stage may spare itself building them (see UsedColumns).
	Used map[string][]string
}

// Progress reports work done, for a progress bar or log lines.
type Progress interface {
	Add(n int)
	Done()
}

// Registry maps kind names to declarations.
type Registry map[string]Kind

// Builtin returns the kinds kneepipe ships. A fresh map each call: no
// package-level state to mutate.
func Builtin() Registry {
	r := Registry{}
	for _, k := range []Kind{
		listKind(),
		fetchHashKind(),
		mapSeverityKind(),
		dedupeKind(),
		nearDuplicatesKind(),
		crossCheckKind(),
		filterKind(),
		readKind(),
		splitKind(),
		exportKind(),
		reportKind(),
		exclusionsKind(),
	} {
		r[k.Name] = k
	}
	return r
}

// Names lists the registered kinds in order.
func (r Registry) Names() []string {
	out := make([]string, 0, len(r))
	for n := range r {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Output reports whether the kind declares an output of that name.
func (k Kind) Output(name string) bool {
	for _, p := range k.Outputs {
		if p.Name == name {
			return true
		}
	}
	return false
}

// AllInputs lists the required inputs, then the optional ones.
func (k Kind) AllInputs() []Port {
	return append(append([]Port{}, k.Inputs...), k.OptionalInputs...)
}

// input returns the named input or an error; kinds call it in Run.
func input(in map[string]arrow.RecordBatch, name string) (arrow.RecordBatch, error) {
	rec, ok := in[name]
	if !ok || rec == nil {
		return nil, fmt.Errorf("input %q missing", name)
	}
	return rec, nil
}
