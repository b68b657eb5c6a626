package e2e

// Issue 13: sharded runs. Plan, shards and merge through versitygw with
// the work dir on S3 (workers that share no disk); the Slurm test
// (slurm_test.go) runs them on a real engine with a shared directory.

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/kneepipe/kneepipe/runner/shard"
)

// shardArgs are a shard command's arguments on s3://bkt/datasets/.
func shardArgs(cmd, endpoint, bkt, work string, extra ...string) []string {
	args := []string{"shard", cmd, "-f", pipelineFile, "--work", work,
		"--source", "s3://" + bkt + "/" + prefix, "--endpoint", endpoint, "--region", region}
	return append(args, extra...)
}

// victimOf picks a sample object that falls in shard i of n.
func victimOf(t *testing.T, i, n int) string {
	t.Helper()
	var keys []string
	err := filepath.WalkDir(repoPath(sampleDir), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".png") {
			rel, _ := filepath.Rel(repoPath(sampleDir), p)
			keys = append(keys, prefix+filepath.ToSlash(rel))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if shard.Of(k, n) == i {
			return k
		}
	}
	t.Fatalf("no sample key in shard %d of %d", i, n)
	return ""
}

func TestShardedRunOnS3Work(t *testing.T) {
	srv := scratchServer(t)
	bkt, _ := sampleBucket(t, srv, "e2e-shard")
	workBkt, _ := newBucket(t, srv, "e2e-shard-work")
	work := "s3://" + workBkt + "/runs/nightly/"
	dir := t.TempDir()
	one := filepath.Join(dir, "one")
	wantCode(t, runBucket(t, srv, srv.endpoint, bkt, pipelineFile, one, filepath.Join(dir, "one-cache")), 0, "one-machine run")
	oneGets := srv.requests(t, "GetObject", bkt)

	// One object of shard 1 is refused until the proxy is told otherwise.
	const n = 3
	victim := victimOf(t, 1, n)
	proxy := newFaultProxy(t, srv.endpoint, bkt)
	proxy.fail(victim, fault403)
	env := srvEnv(srv)
	res := kneepipe(t, env, shardArgs("plan", proxy.URL, bkt, work, "--shards", fmt.Sprint(n), "--cache", filepath.Join(dir, "plan-cache"))...)
	wantCode(t, res, 0, "shard plan")
	if !strings.Contains(res.stdout, fmt.Sprintf("%d objects in %d shards", sampleObjects, n)) {
		t.Errorf("plan says %q", res.stdout)
	}
	if _, err := os.Stat(filepath.Join(srv.data, workBkt, "runs", "nightly", "plan.json")); err != nil {
		t.Errorf("the plan is not in the work bucket: %v", err)
	}
	cache := func(i int) string { return filepath.Join(dir, fmt.Sprintf("cache-%d", i)) }
	// Shard 0 and 1 at once; shard 1 takes its index from the engine's
	// variable, as a Kubernetes Indexed Job gives it.
	bg0 := startKneepipe(t, env, shardArgs("run", proxy.URL, bkt, work, "--shard", "0/3", "--cache", cache(0))...)
	bg1 := startKneepipe(t, append(env, "JOB_COMPLETION_INDEX=1"),
		shardArgs("run", proxy.URL, bkt, work, "--shard-index-from", "JOB_COMPLETION_INDEX", "--shards", "3", "--cache", cache(1))...)
	wantCode(t, bg0.wait(t), 0, "shard 0")
	r1 := bg1.wait(t)
	wantCode(t, r1, 3, "shard 1 with an object refused")
	assertNoSecret(t, srv.secretKey, r1, cache(1))

	merged := filepath.Join(dir, "merged")
	merge := func() result {
		return kneepipe(t, env, shardArgs("merge", proxy.URL, bkt, work, "--out", merged, "--cache", filepath.Join(dir, "merge-cache"))...)
	}
	before := srv.requests(t, "GetObject", bkt)
	res = merge()
	wantCode(t, res, 1, "merge without shard 2")
	if got := srv.requests(t, "GetObject", bkt) - before; got != 0 {
		t.Errorf("a merge that found a shard missing made %d GETs", got)
	}
	shardGets := before - oneGets
	if !strings.Contains(res.stderr, "shards 2 of 3 have no part in "+work) {
		t.Errorf("merge without shard 2 says:\n%s", res.stderr)
	}
	wantCode(t, kneepipe(t, env, shardArgs("run", proxy.URL, bkt, work, "--shard", "2/3", "--cache", cache(2))...), 0, "shard 2")
	shardGets += srv.requests(t, "GetObject", bkt) - before

	// All parts there, one object failed: the merge finishes like a run
	// that could not fetch it.
	wantCode(t, merge(), 3, "merge with an object failed")
	rep := readReport(t, merged)
	if o := rep.Objects; o.Listed != sampleObjects || o.Failed != 1 || o.Listed != o.Accepted+o.Rejected+o.Failed {
		t.Errorf("merged accounting with one failure: %+v", o)
	}
	if failed := csvColumn(t, filepath.Join(merged, "failed.csv"), "key"); !slices.Equal(failed, []string{victim}) {
		t.Errorf("failed.csv lists %v, want [%s]", failed, victim)
	}

	// Shard 1 alone again: it fetches only the object it lacks.
	proxy.fail(victim, faultNone)
	before = srv.requests(t, "GetObject", bkt)
	wantCode(t, kneepipe(t, env, shardArgs("run", proxy.URL, bkt, work, "--shard", "1/3", "--cache", cache(1))...), 0, "shard 1 again")
	shardGets += srv.requests(t, "GetObject", bkt) - before
	wantCode(t, merge(), 0, "merge")
	sameOutputs(t, one, merged)
	// One GET per object over the whole sharded run: the shards fetched
	// each object once (the refused GET never reached the server, the
	// re-run shard fetched only the object it lacked), and a merge reads
	// only what the stages after fetch-hash read (the report's
	// thumbnails), as many as one run.
	if shardGets != sampleObjects {
		t.Errorf("plan and shards made %d GETs, want %d", shardGets, sampleObjects)
	}
	fresh := filepath.Join(dir, "fresh")
	before = srv.requests(t, "GetObject", bkt)
	wantCode(t, kneepipe(t, env, shardArgs("merge", proxy.URL, bkt, work, "--out", fresh, "--cache", filepath.Join(dir, "fresh-cache"))...), 0, "merge on a fresh cache")
	// The one-machine run fetched each object once: fetch-hash kept the
	// images for the export and the report. A merge on a fresh cache has
	// none of them (the shards kept them in their own caches): it fetches
	// what the export and the report read, and no more.
	if oneGets != sampleObjects {
		t.Errorf("one-machine run: %d GETs, want %d", oneGets, sampleObjects)
	}
	mergeGets := srv.requests(t, "GetObject", bkt) - before
	_, _, counts := stageReport(t, readReport(t, fresh), "export")
	var summary struct {
		Thumbnails struct{ Shown int }
	}
	if data, err := os.ReadFile(filepath.Join(fresh, "summary.json")); err != nil || json.Unmarshal(data, &summary) != nil {
		t.Fatalf("summary.json of the fresh merge: %v", err)
	}
	// At least the export's downloads; at most one GET per exported image
	// and thumbnail (export and report may both miss an image at once).
	if hi := counts["images"] + int64(summary.Thumbnails.Shown); int64(mergeGets) < counts["downloaded"] || int64(mergeGets) > hi || counts["downloaded"] == 0 {
		t.Errorf("a merge on a fresh cache made %d GETs; want between the export's %d downloads and %d (its images and the report's thumbnails)", mergeGets, counts["downloaded"], hi)
	}
	sameOutputs(t, one, fresh)
	rep = readReport(t, merged)
	if o := rep.Objects; o.Listed != sampleObjects || o.Failed != 0 || o.Listed != o.Accepted+o.Rejected+o.Failed {
		t.Errorf("merged accounting: %+v", o)
	}
	for i := range n {
		p := filepath.Join(srv.data, workBkt, "runs", "nightly", "parts", fmt.Sprintf("%d-of-%d.run.json", i, n))
		if _, err := os.Stat(p); err != nil {
			t.Errorf("shard %d left no run.json in the work bucket: %v", i, err)
		}
	}
}

func TestShardFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		msg  string
	}{
		{[]string{"shard", "run", "--work", "w"}, "give the shard"},
		{[]string{"shard", "run", "--work", "w", "--shard", "4/4"}, "want 0 to 3"},
		{[]string{"shard", "run", "--work", "w", "--shard", "two"}, "want I/N"},
		{[]string{"shard", "run", "--work", "w", "--shard-index-from", "SLURM_ARRAY_TASK_ID"}, "not set"},
		{[]string{"shard", "plan", "--work", "w"}, "--shards 0"},
		{[]string{"shard", "merge"}, "--work is required"},
	} {
		res := kneepipe(t, nil, tc.args...)
		if res.code != 2 || !strings.Contains(res.stderr, tc.msg) {
			t.Errorf("kneepipe %v: exit %d, stderr %q; want 2 and %q", tc.args, res.code, res.stderr, tc.msg)
		}
	}
}

// kill -9 in the middle of a shard, then the same shard again: it
// fetches only what its record (under its own cache) lacks, and the merge
// still equals one run.
func TestShardKillResumes(t *testing.T) {
	srv := scratchServer(t)
	const objects, concurrency, n = 800, 4, 2
	bkt, data := newBucket(t, srv, "e2e-shard-kill")
	var keys []string
	for i := range objects {
		rel := fmt.Sprintf("MedicalExpert-I/0Normal/NormalG0 (%d).png", i)
		writeObject(t, data, rel, synthPNG(t, i))
		keys = append(keys, prefix+rel)
	}
	inShard0 := 0
	for _, k := range keys {
		if shard.Of(k, n) == 0 {
			inShard0++
		}
	}
	file := withConcurrency(t, fmt.Sprint(concurrency))
	dir := t.TempDir()
	work := filepath.Join(dir, "work")
	env := srvEnv(srv)
	proxy := newFaultProxy(t, srv.endpoint, bkt)
	args := func(cmd string, extra ...string) []string {
		a := shardArgs(cmd, proxy.URL, bkt, work, extra...)
		a[3] = file // -f
		return a
	}
	wantCode(t, kneepipe(t, env, args("plan", "--shards", fmt.Sprint(n), "--cache", filepath.Join(dir, "plan-cache"))...), 0, "plan")

	const served = 300 // past the first checkpoint (256 objects), short of the second
	proxy.holdAfter(served)
	t.Cleanup(proxy.release)
	bg := startKneepipe(t, env, args("run", "--shard", "0/2")...)
	proxy.awaitHeld(t, bg, concurrency)
	logs, _ := filepath.Glob(filepath.Join(work, "cache", "shards", "0-of-2", "state", "fetch-hash-*", "log"))
	if len(logs) != 1 {
		t.Fatalf("shard 0's fetch-hash records %v, want one under W/cache/shards/0-of-2", logs)
	}
	if err := bg.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if res := bg.wait(t); res.code != -1 {
		t.Fatalf("shard 0 ended with exit code %d before it was killed\nstderr:\n%s", res.code, res.stderr)
	}
	proxy.idle(t)
	checkpointed := len(journalKeys(t, logs[0]))
	if checkpointed == 0 || checkpointed >= inShard0 {
		t.Fatalf("%d of shard 0's %d objects checkpointed, want some", checkpointed, inShard0)
	}
	if _, err := os.Stat(filepath.Join(work, "parts", "0-of-2.json")); err == nil {
		t.Fatal("a killed shard left a part")
	}

	proxy.release()
	sent, _ := proxy.stats()
	wantCode(t, kneepipe(t, env, args("run", "--shard", "0/2")...), 0, "shard 0 after kill -9")
	if resent, _ := proxy.stats(); resent-sent != inShard0-checkpointed {
		t.Errorf("shard 0 again: %d GETs, want %d (%d objects minus %d checkpointed)", resent-sent, inShard0-checkpointed, inShard0, checkpointed)
	}
	wantCode(t, kneepipe(t, env, args("run", "--shard", "1/2")...), 0, "shard 1")
	merged := filepath.Join(dir, "merged")
	wantCode(t, kneepipe(t, env, args("merge", "--out", merged, "--cache", filepath.Join(dir, "merge-cache"))...), 0, "merge")
	one := filepath.Join(dir, "one")
	wantCode(t, runBucket(t, srv, proxy.URL, bkt, file, one, filepath.Join(dir, "one-cache")), 0, "one run")
	sameOutputs(t, one, merged)
}
