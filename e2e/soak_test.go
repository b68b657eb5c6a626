//go:build soak

package e2e

// Issue 14's soak test (`make soak`, not part of `make test`): cycles over
// a large bucket that changes between them (objects added, deleted and
// overwritten), each run through the fault proxy with random faults, and
// in random cycles killed with SIGKILL in the middle of its fetch before
// it is run again on the same cache. After every cycle the cache has no
// damaged entry (no run warns of one) and the finished run's artifacts
// equal a clean run's (fresh cache, no proxy) on the same bucket state.
//
// SOAK_CYCLES (default 20), SOAK_OBJECTS (default 100000) and SOAK_SEED
// (default 1) set its size and its random choices.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

func soakInt(t *testing.T, name string, def int) int {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		t.Fatalf("%s=%q: want a positive integer", name, v)
	}
	return n
}

// soakRun waits for a background run (at most limit) and returns it.
func soakRun(t *testing.T, bg *background, limit time.Duration) result {
	t.Helper()
	select {
	case <-bg.done:
	case <-time.After(limit):
		bg.cmd.Process.Kill()
		<-bg.done
		t.Fatalf("kneepipe did not finish within %s\nstderr:\n%s", limit, bg.stderr.String())
	}
	res := result{stdout: bg.stdout.String(), stderr: bg.stderr.String()}
	if bg.err != nil {
		res.code = -1
		if ee, ok := bg.err.(interface{ ExitCode() int }); ok {
			res.code = ee.ExitCode()
		}
	}
	return res
}

func TestSoak(t *testing.T) {
	cycles := soakInt(t, "SOAK_CYCLES", 20)
	objects := soakInt(t, "SOAK_OBJECTS", 100000)
	seed := soakInt(t, "SOAK_SEED", 1)
	rng := rand.New(rand.NewPCG(uint64(seed), 14))
	const concurrency = 16
	limit := time.Duration(objects/100+120) * time.Second

	srv := scratchServer(t)
	bkt, _ := newBucket(t, srv, "e2e-soak")
	grades := []string{"0Normal/NormalG0", "1Doubtful/DoubtfulG1", "2Mild/MildG2", "3Moderate/ModerateG3", "4Severe/SevereG4"}
	rel := func(i int) string {
		ex := "MedicalExpert-I"
		if i%2 == 1 {
			ex = "MedicalExpert-II"
		}
		return fmt.Sprintf("%s/%s (%d).png", ex, grades[(i/2)%5], i/2)
	}
	// Objects are PUT (not written into the server's directory), so that
	// they have MD5 ETags: a flipped byte is detectable only with one.
	cl := s3Client(srv)
	// upload PUTs object i with the bytes of image id and returns their
	// SHA-256.
	upload := func(i, id int) (string, error) {
		img := synthPNG(t, id)
		sum := sha256.Sum256(img)
		_, err := cl.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String(bkt), Key: aws.String(prefix + rel(i)), Body: bytes.NewReader(img)})
		return hex.EncodeToString(sum[:]), err
	}
	present := map[int]string{} // object number -> SHA-256 of its bytes
	nextID := 0
	put := func(i int) {
		sha, err := upload(i, nextID)
		if err != nil {
			t.Fatal(err)
		}
		present[i] = sha
		nextID++
	}
	start := time.Now()
	var mu sync.Mutex
	var wg sync.WaitGroup
	errs := make(chan error, 1)
	sem := make(chan struct{}, 32)
	for i := range objects {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			sha, err := upload(i, i)
			if err != nil {
				select {
				case errs <- err:
				default:
				}
				return
			}
			mu.Lock()
			present[i] = sha
			mu.Unlock()
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		t.Fatal(err)
	}
	nextID = objects
	t.Logf("soak: %d objects uploaded in %s", objects, time.Since(start).Round(time.Second))
	next := objects

	proxy := newFaultProxy(t, srv.endpoint, bkt)
	t.Cleanup(proxy.release)
	file := withConcurrency(t, strconv.Itoa(concurrency))
	dir := t.TempDir()
	cache := filepath.Join(dir, "cache")
	var kills, faultsSeen, retried int
	todo := objects
	for c := 1; c <= cycles; c++ {
		cycleStart := time.Now()
		if c > 1 { // the bucket changes between cycles
			n := max(objects/200, 1)
			for range n {
				put(next)
				next++
			}
			keys := make([]int, 0, len(present))
			for i := range present {
				keys = append(keys, i)
			}
			rng.Shuffle(len(keys), func(a, b int) { keys[a], keys[b] = keys[b], keys[a] })
			for _, i := range keys[:n] {
				if _, err := cl.DeleteObject(context.Background(), &s3.DeleteObjectInput{Bucket: aws.String(bkt), Key: aws.String(prefix + rel(i))}); err != nil {
					t.Fatal(err)
				}
				delete(present, i)
			}
			for _, i := range keys[n : 2*n] {
				put(i)
			}
			todo = 2 * n
		}
		rates := faultRates{SlowDown: rng.Float64() * 0.10, Reset: rng.Float64() * 0.02, Cut: rng.Float64() * 0.04, Stall: rng.Float64() * 0.01, Flip: rng.Float64() * 0.01}
		proxy.set(rates, 0)
		out := filepath.Join(dir, fmt.Sprintf("out-%d", c))
		args := bucketArgs(proxy.URL, bkt, file, out, cache)

		if todo > 2*concurrency && rng.IntN(2) == 0 { // kill -9 in the middle of the fetch
			// Without faults: a throttled fetch keeps fewer requests in
			// flight than it has workers, and the proxy waits for all of
			// them to be held.
			proxy.set(faultRates{}, 0)
			gets, _ := proxy.stats()
			proxy.holdAfter(gets + 1 + rng.IntN(todo/2))
			bg := startKneepipe(t, srvEnv(srv), args...)
			proxy.awaitHeld(t, bg, concurrency)
			if err := bg.cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			soakRun(t, bg, limit)
			proxy.release()
			proxy.idle(t)
			kills++
			proxy.set(rates, 0)
		}
		var res result
		for try := 1; ; try++ { // a run left partial by the faults is run again
			res = soakRun(t, startKneepipe(t, srvEnv(srv), args...), limit)
			assertNoSecret(t, srv.secretKey, res, out, cache)
			for _, l := range warnLines(res.stderr) {
				if strings.Contains(l, "damaged") {
					t.Errorf("cycle %d: the cache had a damaged entry: %s", c, l)
				}
			}
			if res.code == 0 || res.code != 3 || try == 3 {
				break
			}
			retried++
		}
		wantCode(t, res, 0, fmt.Sprintf("cycle %d", c))
		_, injected := proxy.stats()
		faultsSeen = 0
		for _, n := range injected {
			faultsSeen += n
		}
		clean := filepath.Join(dir, fmt.Sprintf("clean-%d", c))
		cleanRes := soakRun(t, startKneepipe(t, srvEnv(srv), bucketArgs(srv.endpoint, bkt, file, clean, filepath.Join(dir, fmt.Sprintf("clean-cache-%d", c)))...), limit)
		wantCode(t, cleanRes, 0, fmt.Sprintf("cycle %d: clean run", c))
		soakCheckHashes(t, c, "the run", out, present, rel)
		soakCheckHashes(t, c, "the clean run", clean, present, rel)
		sameArtifacts(t, out, clean, len(notebookArtifacts))
		rep := readReport(t, out)
		checkObjects(t, rep, int64(len(present)), int64(len(present)), 0, 0)
		t.Logf("soak cycle %d: %d objects, %d changed, faults %+v, %s (kills so far %d, faults injected so far %d)",
			c, len(present), todo, rates, time.Since(cycleStart).Round(time.Second), kills, faultsSeen)
		os.RemoveAll(clean)
		os.RemoveAll(filepath.Join(dir, fmt.Sprintf("clean-cache-%d", c)))
		if c > 1 {
			os.RemoveAll(filepath.Join(dir, fmt.Sprintf("out-%d", c-1)))
		}
	}
	t.Logf("soak: %d cycles over %d objects, %d runs killed with SIGKILL, %d partial runs run again, %d faults injected, %s",
		cycles, objects, kills, retried, faultsSeen, time.Since(start).Round(time.Second))
}

// soakCheckHashes checks raw_data.csv's SHA-256 of every object against
// the bytes the test wrote.
func soakCheckHashes(t *testing.T, cycle int, what, out string, present map[int]string, rel func(int) string) {
	t.Helper()
	want := map[string]string{}
	for i, sha := range present {
		want[rel(i)] = sha
	}
	bad := 0
	for _, row := range csvRows(t, filepath.Join(out, "raw_data.csv")) {
		sha, _, _ := strings.Cut(row["file_id"], ":")
		if w := want[row["relative_path"]]; sha != w {
			if bad++; bad <= 5 {
				t.Errorf("cycle %d, %s: %s has SHA-256 %s, its bytes %s", cycle, what, row["relative_path"], sha, w)
			}
		}
	}
	if bad > 0 {
		t.Errorf("cycle %d, %s: %d rows with another object's hash", cycle, what, bad)
	}
}
