// Package shard runs a pipeline as N shards on any engine that can start
// N copies of a command (Slurm arrays, Airflow mapped tasks, Kubernetes
// Indexed Jobs): Plan lists the source once into a work directory W,
// RunShard runs the per-object stages on one shard's objects and writes
// its part, and Merge runs the rest of the pipeline over the parts,
// writing what one `kneepipe run` would.
//
// W holds:
//
//	plan.json                        the plan, written last by Plan
//	plan/listing-<sum>.arrows        the listing, for the merge
//	plan/listing-I-of-N-<sum>.arrows shard I's rows of it
//	parts/I-of-N/<stage>.<output>-<sum>.arrows  shard I's outputs
//	parts/I-of-N.run.json            shard I's run.json
//	parts/I-of-N.json                shard I's manifest, written last
//	cache/shards/I-of-N/             shard I's cache, when W is a directory
package shard

import (
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"maps"
	"slices"

	"github.com/kneepipe/kneepipe/runner"
	"github.com/kneepipe/kneepipe/runner/cache"
	"github.com/kneepipe/kneepipe/stages"
)

// format is the version of what W holds; a change makes old plans stale.
const format = 1

// Of assigns a key to one of n shards: FNV-1a of the key's bytes, so the
// assignment is the same on every machine and for every run.
func Of(key string, n int) int {
	h := fnv.New64a()
	h.Write([]byte(key))
	return int(h.Sum64() % uint64(n))
}

// Index is shard I of N, as `--shard I/N` says.
type Index struct{ I, N int }

func (x Index) String() string { return fmt.Sprintf("%d/%d", x.I, x.N) }

// name is the shard's part's name in W.
func (x Index) name() string { return fmt.Sprintf("%d-of-%d", x.I, x.N) }

// Check rejects an index outside its count.
func (x Index) Check() error {
	if x.N < 1 {
		return fmt.Errorf("shard count %d: want at least 1", x.N)
	}
	if x.I < 0 || x.I >= x.N {
		return fmt.Errorf("shard %d of %d: want 0 to %d", x.I, x.N, x.N-1)
	}
	return nil
}

// layout is how a pipeline splits: the listing stage, recorded by the
// plan, and the per-object stages that read only it (or each other), run
// by the shards. The merge runs the rest.
type layout struct {
	list      *runner.Stage
	port      string          // the listing's output the per-object stages read
	perObject []*runner.Stage // in DAG order
}

func split(cfg *runner.Config) (*layout, error) {
	order, err := runner.Order(cfg.Stages)
	if err != nil {
		return nil, err
	}
	byName := map[string]*runner.Stage{}
	in := map[string]bool{}
	var l layout
	for _, st := range order {
		byName[st.Name] = st
		if !st.Kind.PerObject || len(st.Inputs) == 0 {
			continue
		}
		ok := true
		for _, ref := range st.Inputs {
			p := byName[ref.Stage]
			switch {
			case in[p.Name]:
			case p.Kind.Source && len(p.Inputs) == 0 && (l.list == nil || l.list == p) && (l.port == "" || l.port == ref.Output):
				l.list, l.port = p, ref.Output
			default:
				ok = false
			}
		}
		if ok {
			in[st.Name] = true
			l.perObject = append(l.perObject, st)
		}
	}
	if len(l.perObject) == 0 {
		return nil, errors.New("the pipeline has no per-object stage reading its listing (e.g. fetch-hash after list): nothing to shard")
	}
	return &l, nil
}

func (l *layout) names() []string {
	out := make([]string, len(l.perObject))
	for i, st := range l.perObject {
		out[i] = st.Name
	}
	return out
}

// fingerprint names what the shards compute: the source and the listing
// and per-object stages' definitions (tuning parameters such as
// concurrency left out). A plan, its parts and the merge must agree on it.
func fingerprint(cfg *runner.Config, l *layout) string {
	var h cache.Hasher
	h.Add("format", fmt.Sprint(format)).Add("source", cfg.Source.URI+" "+cfg.Source.Endpoint)
	for _, st := range append([]*runner.Stage{l.list}, l.perObject...) {
		params, _ := json.Marshal(st.Params.Fingerprinted()) // plain values; keys sorted
		h.Add("stage", st.Name).Add("kind", st.Kind.Name).Add("params", string(params))
		for _, port := range slices.Sorted(maps.Keys(st.Inputs)) {
			h.Add("input:"+port, st.Inputs[port].String())
		}
	}
	return string(h.Key())
}

// planRecord is W/plan.json, written last by Plan.
type planRecord struct {
	Format    int      `json:"format"`
	ID        string   `json:"plan"`
	Shards    int      `json:"shards"`
	Pipeline  string   `json:"pipeline_fingerprint"`
	Source    string   `json:"source"`
	ListStage string   `json:"list_stage"`
	Stages    []string `json:"stages"` // the per-object stages the shards run
	// Listing is every output of the listing stage, and ListCounts its
	// run.json counts, for the merge.
	Listing      map[string]file  `json:"listing"`
	ListCounts   map[string]int64 `json:"list_counts,omitempty"`
	ListWarnings []string         `json:"list_warnings,omitempty"`
	// ShardListings are each shard's rows of them, by key.
	ShardListings []map[string]file `json:"shard_listings"`
	PerShard      []int64           `json:"objects_per_shard"` // rows of the output the shards read
}

const planName = "plan.json"

// partRecord is a shard's manifest, W/parts/I-of-N.json, written after
// its files: a part is there when its manifest is.
type partRecord struct {
	Format int                  `json:"format"`
	Plan   string               `json:"plan"`
	Shard  int                  `json:"shard"`
	Shards int                  `json:"shards"`
	Files  map[string]file      `json:"files"` // "stage.output"
	Stages map[string]partStage `json:"stages"`
}

type partStage struct {
	Objects  stages.Objects   `json:"objects"`
	Stats    map[string]int64 `json:"stats,omitempty"`
	Failures []failure        `json:"failures,omitempty"`
	Warnings []string         `json:"warnings,omitempty"`
}

type failure struct {
	Key      string `json:"key"`
	Error    string `json:"error"`
	Attempts int    `json:"attempts"`
}

func partName(x Index) string    { return "parts/" + x.name() + ".json" }
func runJSONName(x Index) string { return "parts/" + x.name() + ".run.json" }
