package runner

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/kneepipe/kneepipe/internal/table"
	"github.com/kneepipe/kneepipe/stages"
)

// testKinds are stage kinds for runner tests. gen makes rows (param n);
// copy copies its input into a new table; probe calls hook when it runs;
// flaky reports one failed object; broken fails with errBroken.
type testKinds struct {
	mu     sync.Mutex
	gen    []arrow.RecordBatch // every table gen produced
	probe  func(env *stages.Env)
	forced map[string]bool // stage kind -> Env.Forced of its last run
	// released, when set, is closed when gen's first table is released
	// (its last reference given back).
	released chan struct{}
}

// signalRelease is a record that closes ch when its last reference is
// given back: a signal free of data races, unlike its columns.
type signalRelease struct {
	arrow.RecordBatch
	refs atomic.Int64
	ch   chan struct{}
}

func (r *signalRelease) Retain() { r.refs.Add(1); r.RecordBatch.Retain() }

func (r *signalRelease) Release() {
	r.RecordBatch.Release()
	if r.refs.Add(-1) == 0 {
		close(r.ch)
	}
}

var errBroken = errors.New("broken on purpose")

type stageFunc func(ctx context.Context, env *stages.Env, in map[string]arrow.RecordBatch) (*stages.Result, error)

func (f stageFunc) Run(ctx context.Context, env *stages.Env, in map[string]arrow.RecordBatch) (*stages.Result, error) {
	return f(ctx, env, in)
}

func rowsOut(rec arrow.RecordBatch) map[string]arrow.RecordBatch {
	return map[string]arrow.RecordBatch{"rows": rec}
}

func (k *testKinds) registry() stages.Registry {
	rows := []stages.Port{{Name: "rows"}}
	kind := func(name string, inputs []stages.Port, params []stages.Param, run func(stages.Params) stageFunc) stages.Kind {
		return stages.Kind{Name: name, Inputs: inputs, Outputs: rows, Params: params,
			New: func(p stages.Params) (stages.Stage, error) { return run(p), nil }}
	}
	note := func(name string, env *stages.Env) {
		k.mu.Lock()
		defer k.mu.Unlock()
		if k.forced == nil {
			k.forced = map[string]bool{}
		}
		k.forced[name] = env.Forced
	}
	copyOf := func(env *stages.Env, in arrow.RecordBatch) (arrow.RecordBatch, error) {
		idx := make([]int, in.NumRows())
		for i := range idx {
			idx[i] = i
		}
		return table.Take(context.Background(), env.Mem, in, idx)
	}
	return stages.Registry{
		"gen": kind("gen", nil, []stages.Param{
			{Name: "n", Type: stages.Int, Default: int64(3)},
			{Name: "partial", Type: stages.Bool, Default: false},
		}, func(p stages.Params) stageFunc {
			return func(_ context.Context, env *stages.Env, _ map[string]arrow.RecordBatch) (*stages.Result, error) {
				note("gen", env)
				keys := make([]string, p.Int("n"))
				for i := range keys {
					keys[i] = strings.Repeat("k", i+1)
				}
				rec := table.New(table.Strings(env.Mem, "key", keys))
				k.mu.Lock()
				if k.released != nil && len(k.gen) == 0 {
					sr := &signalRelease{RecordBatch: rec, ch: k.released}
					sr.refs.Store(1)
					rec = sr
				}
				k.gen = append(k.gen, rec)
				k.mu.Unlock()
				return &stages.Result{Outputs: rowsOut(rec), Objects: stages.Objects{Listed: int64(len(keys))}, Partial: p.Bool("partial")}, nil
			}
		}),
		"copy": kind("copy", rows, nil, func(stages.Params) stageFunc {
			return func(_ context.Context, env *stages.Env, in map[string]arrow.RecordBatch) (*stages.Result, error) {
				rec, err := copyOf(env, in["rows"])
				return &stages.Result{Outputs: rowsOut(rec)}, err
			}
		}),
		"probe": kind("probe", rows, nil, func(stages.Params) stageFunc {
			return func(_ context.Context, env *stages.Env, in map[string]arrow.RecordBatch) (*stages.Result, error) {
				if k.probe != nil {
					k.probe(env)
				}
				rec, err := copyOf(env, in["rows"])
				return &stages.Result{Outputs: rowsOut(rec)}, err
			}
		}),
		"flaky": kind("flaky", rows, nil, func(stages.Params) stageFunc {
			return func(_ context.Context, env *stages.Env, in map[string]arrow.RecordBatch) (*stages.Result, error) {
				rec, err := copyOf(env, in["rows"])
				return &stages.Result{
					Outputs: rowsOut(rec), Objects: stages.Objects{Accepted: rec.NumRows() - 1, Failed: 1},
					Stats: map[string]int64{"downloaded": 2}, Partial: true,
					Failures: []stages.Failure{{Key: "k", Err: errors.New("403 AccessDenied"), Attempts: 1}},
				}, err
			}
		}),
		"broken": kind("broken", rows, nil, func(stages.Params) stageFunc {
			return func(context.Context, *stages.Env, map[string]arrow.RecordBatch) (*stages.Result, error) {
				return nil, errBroken
			}
		}),
	}
}

// pipeline writes a pipeline file into dir and loads it.
func (k *testKinds) pipeline(t *testing.T, dir, name, src string) *Config {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(path, k.registry(), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func testOptions(dir string) Options {
	return Options{OutDir: filepath.Join(dir, "out"), CacheDir: filepath.Join(dir, "cache"), Lookup: noEnv}
}

func readRunJSON(t *testing.T, out string) Report {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(out, "run.json"))
	if err != nil {
		t.Fatal(err)
	}
	var rep Report
	if err := json.Unmarshal(data, &rep); err != nil {
		t.Fatalf("run.json: %v\n%s", err, data)
	}
	return rep
}

const chain = `stages:
  - {name: a, kind: gen}
  - {name: b, kind: copy, inputs: {rows: a}}
  - {name: c, kind: probe, inputs: {rows: b}}
`

// Item 16: a stage's outputs are released once every stage and artifact
// that reads them is done, not at the end of the run. Without an artifact
// a's table is released when b is done, before c starts. An artifact is
// rendered as soon as a is done, concurrently with b: a's table is then
// released once both are done, which c (after b) waits for; it must have
// been whole when rendered.
func TestOutputsReleasedAfterLastConsumer(t *testing.T) {
	for _, artifacts := range []string{"", "artifacts:\n  - {from: a, name: a, formats: [csv]}\n"} {
		t.Run(fmt.Sprintf("artifact %v", artifacts != ""), func(t *testing.T) {
			dir := t.TempDir()
			k := &testKinds{released: make(chan struct{})}
			var releasedInC error
			k.probe = func(*stages.Env) {
				select {
				case <-k.released:
					return
				default:
				}
				if artifacts != "" { // the artifact may still render
					select {
					case <-k.released:
						return
					case <-time.After(20 * time.Second):
					}
				}
				releasedInC = errors.New("a's output still held while c ran")
			}
			// A partial result is not cached: no cache write holds a's
			// output while c runs.
			src := strings.Replace(chain, "kind: gen}", "kind: gen, params: {partial: true}}", 1)
			cfg := k.pipeline(t, dir, "p.yaml", src+artifacts)
			if _, err := Run(context.Background(), cfg, testOptions(dir)); !errors.Is(err, ErrObjectsFailed) {
				t.Fatal(err)
			}
			if releasedInC != nil {
				t.Error(releasedInC)
			}
			if artifacts != "" {
				data, err := os.ReadFile(filepath.Join(dir, "out", "a.csv"))
				if err != nil || string(data) != "key\nk\nkk\nkkk\n" {
					t.Errorf("a.csv = %q (%v)", data, err)
				}
			}
		})
	}
}

// Item 16: a stage's error is kept as an error (errors.Is sees through
// it); its status is derived from it, and the stage after it is skipped.
func TestStageErrorKept(t *testing.T) {
	dir := t.TempDir()
	k := &testKinds{}
	cfg := k.pipeline(t, dir, "p.yaml", `stages:
  - {name: a, kind: gen}
  - {name: b, kind: broken, inputs: {rows: a}}
  - {name: c, kind: copy, inputs: {rows: b}}
`)
	rep, err := Run(context.Background(), cfg, testOptions(dir))
	if !errors.Is(err, errBroken) || !strings.Contains(err.Error(), "stage b") {
		t.Fatalf("err = %v, want stage b's errBroken", err)
	}
	got := map[string]string{}
	for _, s := range rep.Stages {
		got[s.Name] = s.Status
	}
	if got["a"] != StatusOK || got["b"] != StatusFailed || got["c"] != StatusSkipped {
		t.Errorf("statuses %v", got)
	}
	if r := readRunJSON(t, dir+"/out"); r.Status != RunFailed || !strings.Contains(r.Error, errBroken.Error()) {
		t.Errorf("run.json status %q error %q", r.Status, r.Error)
	}
}

// Item 1: every failed object is listed in run.json with its error and
// attempts, whatever artifacts the pipeline declares; the result is not
// cached and its counts add up.
func TestFailuresInRunJSON(t *testing.T) {
	dir := t.TempDir()
	k := &testKinds{}
	cfg := k.pipeline(t, dir, "p.yaml", `stages:
  - {name: a, kind: gen}
  - {name: fetch, kind: flaky, inputs: {rows: a}}
`)
	_, err := Run(context.Background(), cfg, testOptions(dir))
	if !errors.Is(err, ErrObjectsFailed) {
		t.Fatalf("err = %v, want ErrObjectsFailed", err)
	}
	rep := readRunJSON(t, dir+"/out")
	want := []Failure{{Stage: "fetch", Key: "k", Error: "403 AccessDenied", Attempts: 1}}
	if rep.Status != RunPartial || len(rep.Failures) != 1 || rep.Failures[0] != want[0] {
		t.Errorf("status %q failures %+v, want partial and %+v", rep.Status, rep.Failures, want)
	}
	if rep.Objects != (ObjectCounts{Listed: 3, Accepted: 2, Failed: 1}) {
		t.Errorf("objects %+v", rep.Objects)
	}
	if c := rep.Stages[1].Counts; c["downloaded"] != 2 || c["failed"] != 1 {
		t.Errorf("fetch counts %v", c)
	}
	// Not cached: the next run computes it again.
	rep2, _ := Run(context.Background(), cfg, testOptions(dir))
	if s := rep2.Stages[1].Status; s != StatusOK {
		t.Errorf("second run: fetch %s, want ok (a partial result is not cached)", s)
	}
}

// holdFlock locks path (a file or directory) as another process would.
func holdFlock(t *testing.T, path string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		f, err = os.Create(path)
	}
	if err != nil {
		t.Fatal(err)
	}
	// flock locks belong to the open file description: another one, even
	// in this process, conflicts with it.
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
}

// Item 2: a run that fails before any stage (here: the cache is locked)
// still writes run.json, replacing the previous run's ok.
func TestRunJSONWhenLocked(t *testing.T) {
	dir := t.TempDir()
	k := &testKinds{}
	cfg := k.pipeline(t, dir, "p.yaml", chain)
	opts := testOptions(dir)
	if _, err := Run(context.Background(), cfg, opts); err != nil {
		t.Fatal(err)
	}
	holdFlock(t, filepath.Join(opts.CacheDir, "lock"))
	_, err := Run(context.Background(), cfg, opts)
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("err = %v, want ErrLocked", err)
	}
	rep := readRunJSON(t, opts.OutDir)
	if rep.Status != RunFailed || !strings.Contains(rep.Error, "locked by another kneepipe run") {
		t.Errorf("run.json status %q error %q, want failed and the lock", rep.Status, rep.Error)
	}
}

// Item 2: a source that cannot be opened (a missing folder) fails the run
// before any stage, and run.json says so.
func TestRunJSONWhenSourceFails(t *testing.T) {
	dir := t.TempDir()
	cfg, err := Parse(filepath.Join(dir, "p.yaml"), []byte(`source: {uri: `+filepath.Join(dir, "missing")+`}
stages:
  - {name: list, kind: list}
`), stages.Builtin(), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	opts := testOptions(dir)
	if err := os.MkdirAll(opts.OutDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(opts.OutDir, "run.json"), []byte(`{"status": "ok"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Run(context.Background(), cfg, opts); err == nil {
		t.Fatal("run succeeded")
	}
	if rep := readRunJSON(t, opts.OutDir); rep.Status != RunFailed || !strings.Contains(rep.Error, "missing") || len(rep.Stages) != 0 {
		t.Errorf("run.json status %q error %q, want failed with the error", rep.Status, rep.Error)
	}
}

// waitLog is a slog handler that closes a channel when a message with the
// prefix is logged.
type waitLog struct {
	prefix string
	once   *sync.Once
	seen   chan struct{}
}

func newWaitLog(prefix string) waitLog {
	return waitLog{prefix, &sync.Once{}, make(chan struct{})}
}

func (w waitLog) Enabled(context.Context, slog.Level) bool { return true }
func (w waitLog) Handle(_ context.Context, r slog.Record) error {
	if strings.HasPrefix(r.Message, w.prefix) {
		w.once.Do(func() { close(w.seen) })
	}
	return nil
}
func (w waitLog) WithAttrs([]slog.Attr) slog.Handler { return w }
func (w waitLog) WithGroup(string) slog.Handler      { return w }

// Item 7: cancelling the run's context ends a wait for the cache lock at
// once, not when --wait runs out.
func TestLockWaitEndsOnCancel(t *testing.T) {
	dir := t.TempDir()
	k := &testKinds{}
	cfg := k.pipeline(t, dir, "p.yaml", chain)
	opts := testOptions(dir)
	holdFlock(t, filepath.Join(opts.CacheDir, "lock"))
	wl := newWaitLog("another run holds the cache")
	opts.Log = slog.New(wl)
	opts.Wait = 24 * 60 * 60 * 1e9 // a day: the test times out long before
	ctx, cancel := context.WithCancelCause(context.Background())
	go func() {
		<-wl.seen
		cancel(errors.New("interrupt signal received"))
	}()
	_, err := Run(ctx, cfg, opts)
	if err == nil || errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), "interrupt") {
		t.Fatalf("err = %v, want the cancellation's cause", err)
	}
	if rep := readRunJSON(t, opts.OutDir); rep.Status != RunFailed || !strings.Contains(rep.Error, "interrupt") {
		t.Errorf("run.json status %q error %q", rep.Status, rep.Error)
	}
}

// Item 11: a run into an --out another run holds (with another cache)
// gives ErrLocked and leaves that run's run.json alone.
func TestOutLocked(t *testing.T) {
	dir := t.TempDir()
	k := &testKinds{}
	cfg := k.pipeline(t, dir, "p.yaml", chain)
	opts := testOptions(dir)
	if _, err := Run(context.Background(), cfg, opts); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(filepath.Join(opts.OutDir, "run.json"))
	holdFlock(t, opts.OutDir)
	opts.CacheDir = filepath.Join(dir, "other-cache")
	_, err := Run(context.Background(), cfg, opts)
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), "--out") {
		t.Fatalf("err = %v, want ErrLocked naming --out", err)
	}
	if after, _ := os.ReadFile(filepath.Join(opts.OutDir, "run.json")); string(after) != string(before) {
		t.Errorf("the locked-out run replaced run.json:\n%s", after)
	}
}

// Item 12: plan takes no lock; it works while a run holds the cache.
func TestPlanWhileLocked(t *testing.T) {
	dir := t.TempDir()
	k := &testKinds{}
	cfg := k.pipeline(t, dir, "p.yaml", chain)
	opts := testOptions(dir)
	if _, err := Run(context.Background(), cfg, opts); err != nil {
		t.Fatal(err)
	}
	holdFlock(t, filepath.Join(opts.CacheDir, "lock"))
	rep, err := Plan(context.Background(), cfg, opts)
	if err != nil {
		t.Fatalf("plan while locked: %v", err)
	}
	for _, s := range rep.Stages {
		if s.Status != StatusCached {
			t.Errorf("plan: %s %s, want cached", s.Name, s.Status)
		}
	}
}

// Item 12: gc on a path that is not a cache says so and creates nothing.
func TestGCNotACache(t *testing.T) {
	dir := t.TempDir()
	for _, path := range []string{filepath.Join(dir, "missing"), dir} {
		_, err := GC(context.Background(), path, 0, slog.New(slog.DiscardHandler))
		if !errors.Is(err, ErrNotCache) {
			t.Errorf("gc %s: err = %v, want ErrNotCache", path, err)
		}
	}
	if des, _ := os.ReadDir(dir); len(des) != 0 {
		t.Errorf("gc left %d entries in a directory that is no cache", len(des))
	}
}

// Item 12: gc keeps the entries of every pipeline that shares the cache.
func TestGCKeepsEveryPipeline(t *testing.T) {
	dir := t.TempDir()
	k := &testKinds{}
	one := k.pipeline(t, dir, "one.yaml", chain)
	two := k.pipeline(t, dir, "two.yaml", strings.ReplaceAll(chain, "kind: gen}", "kind: gen, params: {n: 5}}"))
	opts := testOptions(dir)
	for _, cfg := range []*Config{one, two} {
		if _, err := Run(context.Background(), cfg, opts); err != nil {
			t.Fatal(err)
		}
	}
	removed, err := GC(context.Background(), opts.CacheDir, 0, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if removed.Entries != 0 {
		t.Errorf("gc removed %d entries, want none", removed.Entries)
	}
	rep, err := Plan(context.Background(), one, opts)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range rep.Stages {
		if s.Status != StatusCached {
			t.Errorf("after gc, one.yaml's %s is %s, want cached", s.Name, s.Status)
		}
	}
}

// Item 9: a forced stage is told so, to ignore state kept between runs.
func TestForcedEnv(t *testing.T) {
	dir := t.TempDir()
	k := &testKinds{}
	cfg := k.pipeline(t, dir, "p.yaml", chain)
	opts := testOptions(dir)
	opts.Force = []string{"a"}
	if _, err := Run(context.Background(), cfg, opts); err != nil {
		t.Fatal(err)
	}
	if !k.forced["gen"] {
		t.Errorf("forced stage ran without Env.Forced")
	}
	opts.Force = nil
	if _, err := Plan(context.Background(), cfg, opts); err != nil {
		t.Fatal(err)
	}
}

// Item 16: the HTTP pool is sized by what kinds declare, not by name.
func TestConnectionsDeclared(t *testing.T) {
	k := stages.Kind{Name: "anything", Connections: func(stages.Params) int { return 99 }}
	if n := connections([]*Stage{{Kind: k}, {Kind: stages.Kind{Name: "other"}}}); n != 99 {
		t.Errorf("connections = %d, want 99", n)
	}
	if n := connections([]*Stage{{Kind: stages.Kind{Name: "fetch-hash"}}}); n != defaultConnections {
		t.Errorf("connections = %d, want the default %d", n, defaultConnections)
	}
}

// Item 2: an --out that cannot be a folder is an error naming it; the
// file in the way is left alone (no run.json can be written there).
func TestBadOut(t *testing.T) {
	dir := t.TempDir()
	k := &testKinds{}
	cfg := k.pipeline(t, dir, "p.yaml", chain)
	opts := testOptions(dir)
	if err := os.WriteFile(opts.OutDir, []byte("not a folder"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Run(context.Background(), cfg, opts)
	if err == nil || !strings.Contains(err.Error(), "out dir") || !strings.Contains(err.Error(), opts.OutDir) {
		t.Fatalf("err = %v, want one naming the out dir", err)
	}
	if data, _ := os.ReadFile(opts.OutDir); string(data) != "not a folder" {
		t.Errorf("the file in the way changed: %q", data)
	}
}

// Item 7: a run interrupted while a stage runs ends with the interrupt,
// leaves the artifacts as they were, and writes run.json.
func TestInterruptedRun(t *testing.T) {
	dir := t.TempDir()
	k := &testKinds{}
	src := chain + "artifacts:\n  - {from: c, name: c, formats: [csv]}\n"
	cfg := k.pipeline(t, dir, "p.yaml", src)
	opts := testOptions(dir)
	if _, err := Run(context.Background(), cfg, opts); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancelCause(context.Background())
	k.probe = func(*stages.Env) { cancel(errors.New("interrupt signal received")) }
	opts.Force = []string{"*"}
	if err := os.WriteFile(filepath.Join(opts.OutDir, "c.csv"), []byte("previous\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Run(ctx, cfg, opts)
	if err == nil || !strings.Contains(err.Error(), "interrupt") {
		t.Fatalf("err = %v, want the interrupt", err)
	}
	if data, _ := os.ReadFile(filepath.Join(opts.OutDir, "c.csv")); string(data) != "previous\n" {
		t.Errorf("c.csv = %q, want the previous file", data)
	}
	if rep := readRunJSON(t, opts.OutDir); rep.Status != RunFailed || !strings.Contains(rep.Error, "interrupt") {
		t.Errorf("run.json status %q error %q", rep.Status, rep.Error)
	}
}
