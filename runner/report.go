package runner

import (
	"encoding/json"
	"errors"
	"maps"

	"github.com/kneepipe/kneepipe/internal/atomicfile"
	"github.com/kneepipe/kneepipe/stages"
)

// Run statuses in run.json.
const (
	RunOK      = "ok"
	RunPartial = "partial" // finished, some objects failed
	RunFailed  = "failed"
)

// Stage statuses in run.json and plans.
const (
	StatusOK       = "ok"
	StatusCached   = "cached"
	StatusFailed   = "failed"
	StatusSkipped  = "skipped" // an input failed, or the run ended first
	StatusWouldRun = "would run"
)

// Report is run.json.
type Report struct {
	Pipeline string         `json:"pipeline"`
	Source   string         `json:"source,omitempty"`
	Status   string         `json:"status"` // ok, partial (some objects failed), failed
	Seconds  float64        `json:"seconds"`
	Objects  ObjectCounts   `json:"objects"`
	Stages   []*StageReport `json:"stages"`
	// Failures lists every object that could not be fetched, whatever
	// artifacts the pipeline declares.
	Failures []Failure `json:"failures"`
	// Warnings are the stages' warnings (an empty listing, objects
	// excluded for no known reason), cached stages' included.
	Warnings  []Warning `json:"warnings"`
	Artifacts []string  `json:"artifacts"`
	// ArtifactStatus says per artifact how its files got into --out:
	// written (rendered from a stage output), copied (from the cache's
	// copy of identical bytes) or unchanged (already there).
	ArtifactStatus map[string]string `json:"artifact_status,omitempty"`
	Error          string            `json:"error,omitempty"`
}

// ObjectCounts accounts for every listed object.
type ObjectCounts struct {
	Listed   int64 `json:"listed"`
	Accepted int64 `json:"accepted"`
	Rejected int64 `json:"rejected"`
	Failed   int64 `json:"failed"`
	Skipped  int64 `json:"skipped,omitempty"`
}

func (c *ObjectCounts) add(o stages.Objects) {
	c.Listed += o.Listed
	c.Accepted += o.Accepted
	c.Rejected += o.Rejected
	c.Failed += o.Failed
	c.Skipped += o.Skipped
}

// Failure is one object a stage could not fetch.
type Failure struct {
	Stage    string `json:"stage"`
	Key      string `json:"key"`
	Error    string `json:"error"`
	Attempts int    `json:"attempts"`
}

// Warning is one stage's warning.
type Warning struct {
	Stage   string `json:"stage"`
	Message string `json:"message"`
}

// StageReport is one stage's line in run.json.
type StageReport struct {
	Name    string           `json:"name"`
	Kind    string           `json:"kind"`
	Status  string           `json:"status"`
	Why     string           `json:"why,omitempty"`
	RowsIn  int64            `json:"rows_in"`
	RowsOut int64            `json:"rows_out"`
	Outputs map[string]int64 `json:"outputs,omitempty"`
	// Counts are the stage's object counts (those that are not zero) and
	// its other figures, e.g. fetch's downloaded.
	Counts      map[string]int64 `json:"counts,omitempty"`
	Seconds     float64          `json:"seconds"`
	Fingerprint string           `json:"fingerprint,omitempty"`
	Error       string           `json:"error,omitempty"`
}

// ErrObjectsFailed marks a run that finished but could not fetch some
// objects; the CLI maps it to its own exit code.
var ErrObjectsFailed = errors.New("some objects failed")

// stageReport is one stage's line, derived from what the stage did.
func (sr *stageRun) stageReport() *StageReport {
	r := &StageReport{Name: sr.st.Name, Kind: sr.st.Kind.Name, Status: sr.status(), Why: sr.why,
		RowsIn: sr.rowsIn, Seconds: sr.seconds}
	if sr.err != nil {
		r.Error = sr.err.Error()
	}
	if sr.summary == nil {
		return r
	}
	r.Fingerprint = string(sr.key)
	r.Outputs = maps.Clone(sr.summary.Rows)
	r.RowsOut = r.Outputs[sr.st.Kind.Outputs[0].Name]
	r.Counts = encodeCounts(sr.summary.Objects, sr.summary.Stats)
	return r
}

// writeReport writes run.json atomically: a reader sees the previous one
// or this one.
func writeReport(path string, rep *Report) error {
	data, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.WriteBytes(path, append(data, '\n'))
}
