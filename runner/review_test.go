package runner

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/kneepipe/kneepipe/internal/safe"
	"github.com/kneepipe/kneepipe/stages"
)

// logRecords is a slog handler that keeps every record's message and
// attributes as text.
type logRecords struct {
	mu    *sync.Mutex
	lines *[]string
	attrs []slog.Attr
}

func newLogRecords() logRecords { return logRecords{mu: &sync.Mutex{}, lines: &[]string{}} }

func (l logRecords) Enabled(context.Context, slog.Level) bool { return true }
func (l logRecords) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Level.String() + " " + r.Message)
	for _, a := range l.attrs {
		b.WriteString(" " + a.String())
	}
	r.Attrs(func(a slog.Attr) bool { b.WriteString(" " + a.String()); return true })
	l.mu.Lock()
	*l.lines = append(*l.lines, b.String())
	l.mu.Unlock()
	return nil
}
func (l logRecords) WithAttrs(as []slog.Attr) slog.Handler {
	l.attrs = append(append([]slog.Attr{}, l.attrs...), as...)
	return l
}
func (l logRecords) WithGroup(string) slog.Handler { return l }

func (l logRecords) containing(s string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, line := range *l.lines {
		if strings.Contains(line, s) {
			out = append(out, line)
		}
	}
	return out
}

// withPanicKind is the test kinds plus "panics", whose Run panics,
// "worker-panics", whose Run starts a goroutine that panics, and
// "counted", a copy that reports its rows as downloaded.
func withPanicKind(k *testKinds) stages.Registry {
	reg := k.registry()
	reg["counted"] = stages.Kind{Name: "counted", Inputs: []stages.Port{{Name: "rows"}}, Outputs: []stages.Port{{Name: "rows"}},
		RunStats: []string{"downloaded"},
		New: func(p stages.Params) (stages.Stage, error) {
			copyRun := reg["copy"]
			st, err := copyRun.New(p)
			return stageFunc(func(ctx context.Context, env *stages.Env, in map[string]arrow.RecordBatch) (*stages.Result, error) {
				res, err := st.Run(ctx, env, in)
				if err == nil {
					res.Stats = map[string]int64{"downloaded": in["rows"].NumRows(), "groups": 2}
				}
				return res, err
			}), err
		}}
	reg["panics"] = stages.Kind{Name: "panics", Inputs: []stages.Port{{Name: "rows"}}, Outputs: []stages.Port{{Name: "rows"}},
		New: func(stages.Params) (stages.Stage, error) {
			return stageFunc(func(context.Context, *stages.Env, map[string]arrow.RecordBatch) (*stages.Result, error) {
				var m map[string]int
				m["boom"]++ // a nil map: the kind of bug a stage can have
				return nil, nil
			}), nil
		}}
	reg["worker-panics"] = stages.Kind{Name: "worker-panics", Inputs: []stages.Port{{Name: "rows"}}, Outputs: []stages.Port{{Name: "rows"}},
		New: func(stages.Params) (stages.Stage, error) {
			return stageFunc(func(ctx context.Context, _ *stages.Env, _ map[string]arrow.RecordBatch) (*stages.Result, error) {
				workers := safe.NewGroup(nil)
				workers.Go(func() {
					var m map[string]int
					m["boom"]++
				})
				return nil, fmt.Errorf("workers: %w", workers.Wait())
			}), nil
		}}
	return reg
}

// A panic in a stage's Run, or in a goroutine it started, is that stage's
// error: the run fails (exit 1), run.json is written, the stages after it
// are skipped, and the stack of the panic is in the log.
func TestStagePanicIsStageError(t *testing.T) {
	for _, tc := range []struct{ kind, err string }{
		{"panics", "stage b: panic: assignment to entry in nil map"},
		{"worker-panics", "stage b: workers: panic: assignment to entry in nil map"},
	} {
		t.Run(tc.kind, func(t *testing.T) { testStagePanic(t, tc.kind, tc.err) })
	}
}

func testStagePanic(t *testing.T, kind, wantErr string) {
	dir := t.TempDir()
	k := &testKinds{}
	cfg, err := Parse(dir+"/p.yaml", []byte(`stages:
  - {name: a, kind: gen}
  - {name: b, kind: `+kind+`, inputs: {rows: a}}
  - {name: c, kind: copy, inputs: {rows: b}}
`), withPanicKind(k), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	logs := newLogRecords()
	opts := testOptions(dir)
	opts.Log = slog.New(logs)
	rep, err := Run(context.Background(), cfg, opts)
	if err == nil || !strings.Contains(err.Error(), wantErr) {
		t.Fatalf("err = %v, want %q", err, wantErr)
	}
	if errors.Is(err, ErrObjectsFailed) {
		t.Errorf("err %v is ErrObjectsFailed", err)
	}
	got := map[string]string{}
	for _, s := range rep.Stages {
		got[s.Name] = s.Status
	}
	if got["a"] != StatusOK || got["b"] != StatusFailed || got["c"] != StatusSkipped {
		t.Errorf("statuses %v", got)
	}
	if r := readRunJSON(t, opts.OutDir); r.Status != RunFailed || !strings.Contains(r.Error, "panic") {
		t.Errorf("run.json status %q error %q, want failed with the panic", r.Status, r.Error)
	}
	if l := logs.containing("stage panicked"); len(l) != 1 || !strings.Contains(l[0], "review_test.go") || !strings.Contains(l[0], "stage=b") {
		t.Errorf("log lines of the panic %q, want one with the stack and the stage", l)
	}
}

// Issue 9 item 13: the error that ends the run is printed once, by the
// CLI from Run's error, not also logged as "stage failed".
func TestRunErrorNotLoggedTwice(t *testing.T) {
	dir := t.TempDir()
	k := &testKinds{}
	cfg := k.pipeline(t, dir, "p.yaml", `stages:
  - {name: a, kind: gen}
  - {name: b, kind: broken, inputs: {rows: a}}
`)
	logs := newLogRecords()
	opts := testOptions(dir)
	opts.Log = slog.New(logs)
	if _, err := Run(context.Background(), cfg, opts); !errors.Is(err, errBroken) {
		t.Fatalf("err = %v, want errBroken", err)
	}
	if l := logs.containing(errBroken.Error()); len(l) != 0 {
		t.Errorf("the run's error is logged too: %q", l)
	}
}

// A cached stage did no work this run: the stats its kind counts work with
// (fetch's downloaded) read 0 in run.json, not the figures stored with the
// entry; its other stats describe the outputs and hold.
func TestCachedStatsAreZero(t *testing.T) {
	dir := t.TempDir()
	k := &testKinds{}
	cfg, err := Parse(dir+"/p.yaml", []byte(`stages:
  - {name: a, kind: gen}
  - {name: fetch, kind: counted, inputs: {rows: a}}
`), withPanicKind(k), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []struct {
		status     string
		downloaded int64
	}{{StatusOK, 3}, {StatusCached, 0}} {
		if _, err := Run(context.Background(), cfg, testOptions(dir)); err != nil {
			t.Fatal(err)
		}
		st := readRunJSON(t, dir+"/out").Stages[1]
		got, ok := st.Counts["downloaded"]
		if st.Status != want.status || !ok || got != want.downloaded || st.Counts["groups"] != 2 {
			t.Errorf("run %d: fetch %s, counts %v; want %s, downloaded %d and groups 2", i+1, st.Status, st.Counts, want.status, want.downloaded)
		}
	}
}

// Ctrl-C while a stage runs: the interrupt is the run's error, printed
// once by the caller, not logged again as the stage's failure.
func TestInterruptNotLoggedTwice(t *testing.T) {
	dir := t.TempDir()
	k := &testKinds{}
	ctx, cancel := context.WithCancelCause(context.Background())
	reg := k.registry()
	reg["waits"] = stages.Kind{Name: "waits", Inputs: []stages.Port{{Name: "rows"}}, Outputs: []stages.Port{{Name: "rows"}},
		New: func(stages.Params) (stages.Stage, error) {
			return stageFunc(func(ctx context.Context, _ *stages.Env, _ map[string]arrow.RecordBatch) (*stages.Result, error) {
				cancel(errors.New("interrupt on purpose"))
				<-ctx.Done()
				return nil, fmt.Errorf("reading: %w", context.Cause(ctx))
			}), nil
		}}
	cfg, err := Parse(dir+"/p.yaml", []byte(`stages:
  - {name: a, kind: gen}
  - {name: b, kind: waits, inputs: {rows: a}}
`), reg, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	logs := newLogRecords()
	opts := testOptions(dir)
	opts.Log = slog.New(logs)
	if _, err := Run(ctx, cfg, opts); err == nil || !strings.Contains(err.Error(), "interrupt on purpose") {
		t.Fatalf("err = %v, want the interrupt", err)
	}
	if l := logs.containing("interrupt on purpose"); len(l) != 0 {
		t.Errorf("the interrupt is logged too: %q", l)
	}
}

// A stage's warnings are in run.json's warnings, named by stage, when it
// is computed and when it is taken from the cache.
func TestWarningsInRunJSON(t *testing.T) {
	dir := t.TempDir()
	k := &testKinds{}
	reg := withPanicKind(k)
	reg["warns"] = stages.Kind{Name: "warns", Inputs: []stages.Port{{Name: "rows"}}, Outputs: []stages.Port{{Name: "rows"}},
		New: func(p stages.Params) (stages.Stage, error) {
			st, err := reg["copy"].New(p)
			return stageFunc(func(ctx context.Context, env *stages.Env, in map[string]arrow.RecordBatch) (*stages.Result, error) {
				res, err := st.Run(ctx, env, in)
				if err == nil {
					res.Warnings = []string{"look at this"}
				}
				return res, err
			}), err
		}}
	cfg, err := Parse(dir+"/p.yaml", []byte(`stages:
  - {name: a, kind: gen}
  - {name: b, kind: warns, inputs: {rows: a}}
`), reg, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	for _, status := range []string{StatusOK, StatusCached} {
		if _, err := Run(context.Background(), cfg, testOptions(dir)); err != nil {
			t.Fatal(err)
		}
		rep := readRunJSON(t, dir+"/out")
		if st := rep.Stages[1].Status; st != status {
			t.Errorf("b %s, want %s", st, status)
		}
		if len(rep.Warnings) != 1 || rep.Warnings[0] != (Warning{Stage: "b", Message: "look at this"}) {
			t.Errorf("%s: warnings %+v", status, rep.Warnings)
		}
	}
}

// README's run.json section names every field run.json has.
func TestReadmeNamesRunJSONFields(t *testing.T) {
	data, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(data), "### run.json\n")
	if !ok {
		t.Fatal("README has no run.json section")
	}
	section, _, _ = strings.Cut(section, "\n## ")
	for _, v := range []any{Report{}, ObjectCounts{}, StageReport{}, Failure{}, Warning{}} {
		typ := reflect.TypeOf(v)
		for i := range typ.NumField() {
			name, _, _ := strings.Cut(typ.Field(i).Tag.Get("json"), ",")
			if !strings.Contains(section, "`"+name+"`") {
				t.Errorf("README's run.json section does not name %s's field `%s`", typ.Name(), name)
			}
		}
	}
}
