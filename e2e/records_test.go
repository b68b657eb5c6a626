package e2e

// Issue 9: what a run records in --out (run.json, whatever happens), the
// locks on the cache and --out, signals, --force and cache gc.

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// runFailures is run.json's failures list.
func runFailures(t *testing.T, out string) []struct {
	Stage, Key, Error string
	Attempts          int
} {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(out, "run.json"))
	if err != nil {
		t.Fatal(err)
	}
	var rep struct {
		Failures []struct {
			Stage, Key, Error string
			Attempts          int
		} `json:"failures"`
	}
	if err := json.Unmarshal(data, &rep); err != nil {
		t.Fatalf("run.json: %v", err)
	}
	return rep.Failures
}

// Item 1: with one object failing for good, examples/notebook.yaml (which
// declares no failed artifact) names it in run.json with error and attempts.
func TestFailedKeyInRunJSON(t *testing.T) {
	srv := scratchServer(t)
	bkt, _ := sampleBucket(t, srv, "e2e-failed-key")
	proxy := newFaultProxy(t, srv.endpoint, bkt)
	const key = prefix + "MedicalExpert-I/1Doubtful/DoubtfulG1 (3).png"
	proxy.fail(key, fault403)
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	wantCode(t, runBucket(t, srv, proxy.URL, bkt, notebookFile, out, filepath.Join(dir, "cache")), 3, "run with one object refused")
	failures := runFailures(t, out)
	if len(failures) != 1 {
		t.Fatalf("run.json lists %d failures, want 1: %+v", len(failures), failures)
	}
	f := failures[0]
	if f.Stage != "fetch" || f.Key != key || !strings.Contains(strings.ToLower(f.Error), "access denied") || f.Attempts < 1 {
		t.Errorf("failure %+v, want fetch, %s, access denied, attempts >= 1", f, key)
	}
	if rep := readReport(t, out); rep.Status != "partial" || rep.Objects.Failed != 1 {
		t.Errorf("run.json status %q, %d failed; want partial, 1", rep.Status, rep.Objects.Failed)
	}
}

// Item 2: a run that fails before any stage (the source is missing)
// replaces the previous run's ok with failed and the error.
func TestRunJSONWhenSourceMissing(t *testing.T) {
	dir := t.TempDir()
	out, cache := filepath.Join(dir, "out"), filepath.Join(dir, "cache")
	wantCode(t, kneepipe(t, nil, "run", "-f", pipelineFile, "--out", out, "--cache", cache), 0, "first run")
	missing := filepath.Join(dir, "no-such-folder")
	res := kneepipe(t, nil, "run", "-f", pipelineFile, "--out", out, "--cache", cache, "--source", missing)
	wantCode(t, res, 1, "run with a missing source")
	rep := readReport(t, out)
	if rep.Status != "failed" || !strings.Contains(rep.Error, missing) {
		t.Errorf("run.json status %q error %q, want failed naming %s", rep.Status, rep.Error, missing)
	}
}

// startLogged starts kneepipe with its stderr in a file the test can read
// while it runs.
func startLogged(t *testing.T, env []string, args ...string) (*background, string) {
	t.Helper()
	logPath := filepath.Join(t.TempDir(), "stderr")
	f, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	b := &background{done: make(chan struct{})}
	b.cmd = exec.Command(binary, args...)
	b.cmd.Dir = repoRoot
	b.cmd.Env = append(baseEnv(), env...)
	b.cmd.Stderr = f
	if err := b.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		b.err = b.cmd.Wait()
		close(b.done)
	}()
	t.Cleanup(func() {
		if b.running() {
			b.cmd.Process.Kill()
			<-b.done
		}
	})
	return b, logPath
}

// waitFor polls cond until it holds, failing when the process ends first
// or after 30 s.
func waitFor(t *testing.T, b *background, logPath, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if !b.running() || time.Now().After(deadline) {
			log, _ := os.ReadFile(logPath)
			t.Fatalf("never saw %s\nstderr:\n%s", what, log)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// exitsSoon waits for the process to end after a signal: within a few
// seconds, far below the --wait or run time it would otherwise take.
func exitsSoon(t *testing.T, b *background, logPath string) int {
	t.Helper()
	select {
	case <-b.done:
	case <-time.After(5 * time.Second):
		log, _ := os.ReadFile(logPath)
		t.Fatalf("kneepipe still running 5 s after SIGINT\nstderr:\n%s", log)
	}
	var exitErr *exec.ExitError
	if errors.As(b.err, &exitErr) {
		return exitErr.ExitCode()
	}
	if b.err != nil {
		t.Fatal(b.err)
	}
	return 0
}

func logContains(path, s string) func() bool {
	return func() bool {
		data, _ := os.ReadFile(path)
		return strings.Contains(string(data), s)
	}
}

// holdCacheLock takes the cache's lock as another run would.
func holdCacheLock(t *testing.T, cache string) {
	t.Helper()
	if err := os.MkdirAll(cache, 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(filepath.Join(cache, "lock"), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		t.Fatal(err)
	}
}

// Item 7: SIGINT while waiting for the cache lock ends the wait at once;
// run.json says the run was interrupted.
func TestSignalWhileWaitingForLock(t *testing.T) {
	dir := t.TempDir()
	out, cache := filepath.Join(dir, "out"), filepath.Join(dir, "cache")
	holdCacheLock(t, cache)
	b, logPath := startLogged(t, nil, "run", "-f", pipelineFile, "--out", out, "--cache", cache, "--wait", "10m")
	waitFor(t, b, logPath, "the wait for the lock", logContains(logPath, "another run holds the cache"))
	if err := b.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	if code := exitsSoon(t, b, logPath); code != 1 {
		t.Errorf("exit code %d after SIGINT, want 1", code)
	}
	if rep := readReport(t, out); rep.Status != "failed" || !strings.Contains(rep.Error, "interrupt") {
		t.Errorf("run.json status %q error %q, want failed and interrupted", rep.Status, rep.Error)
	}
}

// Item 7: SIGINT in the middle of fetching ends the run within seconds,
// leaves the artifacts in --out as they were and keeps the checkpoints:
// the next run downloads only what was not hashed.
func TestSignalDuringRun(t *testing.T) {
	srv := scratchServer(t)
	bkt, _ := sampleBucket(t, srv, "e2e-sigint")
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	wantCode(t, runBucket(t, srv, srv.endpoint, bkt, notebookFile, out, filepath.Join(dir, "first-cache")), 0, "first run")
	before := snapshot(t, out)

	proxy := newFaultProxy(t, srv.endpoint, bkt)
	proxy.set(faultRates{}, 100*time.Millisecond) // 2 at a time: ~5 s for the sample
	file := withConcurrency(t, "2")
	cache := filepath.Join(dir, "cache")
	b, logPath := startLogged(t, srvEnv(srv), bucketArgs(proxy.URL, bkt, file, out, cache)...)
	var journal string
	waitFor(t, b, logPath, "a checkpoint of the fetch record", func() bool {
		logs, _ := filepath.Glob(filepath.Join(cache, "state", "fetch-hash-*", "log"))
		if len(logs) != 1 {
			return false
		}
		journal = logs[0]
		st, err := os.Stat(journal)
		return err == nil && st.Size() > 0
	})
	if err := b.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	if code := exitsSoon(t, b, logPath); code != 1 {
		t.Errorf("exit code %d after SIGINT, want 1", code)
	}
	after := snapshot(t, out)
	for name, data := range before {
		if name != "run.json" && after[name] != data {
			t.Errorf("%s changed by the interrupted run", name)
		}
	}
	if rep := readReport(t, out); rep.Status != "failed" || !strings.Contains(rep.Error, "interrupt") {
		t.Errorf("run.json status %q error %q, want failed and interrupted", rep.Status, rep.Error)
	}
	kept := len(journalKeys(t, journal))
	if kept == 0 || kept >= sampleObjects {
		t.Fatalf("%d objects checkpointed, want some but not all", kept)
	}
	proxy.idle(t)
	proxy.set(faultRates{}, 0)
	gets := srv.requests(t, "GetObject", bkt)
	// Through the proxy again: the record is kept per source and endpoint.
	wantCode(t, runBucket(t, srv, proxy.URL, bkt, notebookFile, out, cache), 0, "run after the interrupted one")
	if got := srv.requests(t, "GetObject", bkt) - gets; got > sampleObjects-kept {
		t.Errorf("the next run made %d GETs, want at most %d (%d were checkpointed)", got, sampleObjects-kept, kept)
	}
}

// Item 9: --force and --force=fetch download and verify every object
// again, the record of hashed objects notwithstanding.
func TestForceRefetches(t *testing.T) {
	srv := scratchServer(t)
	bkt, _ := sampleBucket(t, srv, "e2e-force")
	dir := t.TempDir()
	cache := filepath.Join(dir, "cache")
	wantCode(t, runBucket(t, srv, srv.endpoint, bkt, notebookFile, filepath.Join(dir, "first"), cache), 0, "first run")
	for _, force := range []string{"--force", "--force=fetch"} {
		gets := srv.requests(t, "GetObject", bkt)
		out := filepath.Join(dir, strings.TrimPrefix(force, "--"))
		wantCode(t, runBucket(t, srv, srv.endpoint, bkt, notebookFile, out, cache, force), 0, "run "+force)
		if got := srv.requests(t, "GetObject", bkt) - gets; got != sampleObjects {
			t.Errorf("run %s made %d GETs, want %d", force, got, sampleObjects)
		}
		if n := downloaded(t, readReport(t, out)); n != sampleObjects {
			t.Errorf("run %s: downloaded %d, want %d", force, n, sampleObjects)
		}
		sameArtifacts(t, filepath.Join(dir, "first"), out, len(notebookArtifacts))
	}
}

// Item 11: a second run into the same --out with another cache exits 4
// at once and leaves the first run's files and run.json alone.
func TestOutLocked(t *testing.T) {
	srv := scratchServer(t)
	bkt, _ := sampleBucket(t, srv, "e2e-outlock")
	proxy := newFaultProxy(t, srv.endpoint, bkt)
	proxy.hold()
	t.Cleanup(proxy.release)
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	a := startKneepipe(t, srvEnv(srv), bucketArgs(proxy.URL, bkt, notebookFile, out, filepath.Join(dir, "cache-a"))...)
	deadline := time.Now().Add(20 * time.Second)
	for n, _ := proxy.stats(); n == 0; n, _ = proxy.stats() {
		if !a.running() || time.Now().After(deadline) {
			t.Fatalf("the first run made no GET\nstderr:\n%s", a.stderr.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
	b := runBucket(t, srv, proxy.URL, bkt, notebookFile, out, filepath.Join(dir, "cache-b"), "--wait", "0")
	wantCode(t, b, 4, "second run into the same --out")
	if verdict := lastLine(t, b); !strings.Contains(verdict, "--out") || !strings.Contains(verdict, "locked by another kneepipe run") {
		t.Errorf("verdict %q does not say --out is locked", verdict)
	}
	if _, err := os.Stat(filepath.Join(out, "run.json")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the locked-out run wrote run.json into the other run's --out (err %v)", err)
	}
	proxy.release()
	wantCode(t, a.wait(t), 0, "first run")
	if rep := readReport(t, out); rep.Status != "ok" {
		t.Errorf("first run's run.json: %q", rep.Status)
	}
}

// Item 12: cache gc on a path that is no cache says so and creates
// nothing there.
func TestGCNotACache(t *testing.T) {
	dir := t.TempDir()
	for _, path := range []string{filepath.Join(dir, "missing"), dir} {
		res := kneepipe(t, nil, "cache", "gc", "--cache", path)
		wantCode(t, res, 2, "cache gc on "+path)
		if !strings.Contains(res.stderr, "not a kneepipe cache") {
			t.Errorf("cache gc on %s: stderr %q, want it to say this is not a cache", path, res.stderr)
		}
	}
	if des, _ := os.ReadDir(dir); len(des) != 0 {
		t.Errorf("cache gc left %d entries behind", len(des))
	}
}

// Item 12: cache gc keeps the entries of every pipeline that shares the
// cache: after pipeline.yaml and then notebook.yaml, pipeline.yaml is
// still all cached.
func TestGCKeepsEveryPipeline(t *testing.T) {
	dir := t.TempDir()
	cache := filepath.Join(dir, "cache")
	sample := repoPath(sampleDir)
	wantCode(t, kneepipe(t, nil, "run", "-f", pipelineFile, "--out", filepath.Join(dir, "p"), "--cache", cache, "--source", sample), 0, "pipeline.yaml")
	wantCode(t, kneepipe(t, nil, "run", "-f", notebookFile, "--out", filepath.Join(dir, "n"), "--cache", cache, "--source", sample), 0, "notebook.yaml")
	wantCode(t, kneepipe(t, nil, "cache", "gc", "--cache", cache), 0, "cache gc")
	for _, file := range []string{pipelineFile, notebookFile} {
		out := filepath.Join(dir, "again-"+filepath.Base(file))
		wantCode(t, kneepipe(t, nil, "run", "-f", file, "--out", out, "--cache", cache, "--source", sample), 0, "rerun "+file)
		for _, st := range readReport(t, out).Stages {
			if want := map[bool]string{true: "ok", false: "cached"}[st.Kind == "list"]; st.Status != want {
				t.Errorf("%s after gc: stage %s %s, want %s", file, st.Name, st.Status, want)
			}
		}
	}
}
