package e2e

// Issue 14: objects overwritten or deleted while a run fetches them. The
// fault proxy's gate holds the run in the middle of fetch-hash while the
// test changes objects it has listed but not fetched yet.

import (
	"bytes"
	"context"
	"io"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// An object overwritten between the listing and its GET is failed as
// changed (no row carries its new bytes under the listed version), a
// deleted one as gone; the next run on the same cache fetches just the
// overwritten ones, and its artifacts equal a clean run's on the bucket as
// it is now. On versitygw and on MinIO.
func TestObjectsChangeDuringFetch(t *testing.T) {
	t.Run("versitygw", func(t *testing.T) {
		srv := scratchServer(t)
		objectsChangeDuringFetch(t, srv, uploadSample(t, srv, "e2e-changing"))
	})
	t.Run("minio", func(t *testing.T) {
		srv := minioServer(t)
		objectsChangeDuringFetch(t, srv, uploadSampleMinio(t, srv, "e2e-minio-changing"))
	})
}

func objectsChangeDuringFetch(t *testing.T, srv *s3Server, bkt string) {
	cl := s3Client(srv)
	ctx := context.Background()
	keys := bucketKeys(t, srv, bkt)
	get := func(key string) []byte {
		t.Helper()
		out, err := cl.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bkt), Key: aws.String(key)})
		if err != nil {
			t.Fatal(err)
		}
		defer out.Body.Close()
		b, err := io.ReadAll(out.Body)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	// The last keys in listing order are fetched last: two are overwritten
	// with other images (other sizes), one is deleted.
	n := len(keys)
	overwritten := map[string][]byte{keys[n-1]: get(keys[0]), keys[n-3]: get(keys[1])}
	deleted := keys[n-2]
	for k, b := range overwritten {
		if len(b) == len(get(k)) {
			t.Fatalf("%s: the replacement has its size; pick another", k)
		}
	}

	const concurrency = 4
	proxy := newFaultProxy(t, srv.endpoint, bkt)
	proxy.holdAfter(10)
	t.Cleanup(proxy.release)
	file := withExtraArtifacts(t, "params: {concurrency: 64}", "params: {concurrency: 4}")
	dir := t.TempDir()
	cache := filepath.Join(dir, "cache")
	out := filepath.Join(dir, "changing")
	bg := startKneepipe(t, srvEnv(srv), bucketArgs(proxy.URL, bkt, file, out, cache)...)
	proxy.awaitHeld(t, bg, concurrency)
	for k, b := range overwritten {
		if _, err := cl.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bkt), Key: aws.String(k), Body: bytes.NewReader(b)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := cl.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(bkt), Key: aws.String(deleted)}); err != nil {
		t.Fatal(err)
	}
	proxy.release()
	res := bg.wait(t)
	assertNoSecret(t, srv.secretKey, res, out, cache)
	wantCode(t, res, 3, "run whose objects changed while it fetched")

	failed := map[string]string{}
	for _, row := range csvRows(t, filepath.Join(out, "failed.csv")) {
		failed[row["key"]] = row["error"]
	}
	if len(failed) != 3 {
		t.Errorf("failed.csv: %v, want the two overwritten objects and the deleted one", failed)
	}
	for k := range overwritten {
		if e := failed[k]; !strings.Contains(e, "changed since it was listed") || !strings.Contains(e, "fetched again on the next run") {
			t.Errorf("%s (overwritten): error %q, want it failed as changed since listed", k, e)
		}
	}
	if e := failed[deleted]; !strings.Contains(e, "does not exist") {
		t.Errorf("%s (deleted): error %q, want it failed as gone", deleted, e)
	}
	for _, row := range csvRows(t, filepath.Join(out, "raw_data.csv")) {
		for k := range failed {
			if prefix+row["relative_path"] == k {
				t.Errorf("raw_data.csv has a row for %s, which changed while the run fetched", k)
			}
		}
	}
	rep := readReport(t, out)
	if _, _, counts := stageReport(t, rep, "fetch"); counts["changed"] != 2 {
		t.Errorf("run.json fetch counts %v, want changed 2", counts)
	}
	checkObjects(t, rep, int64(n), int64(n-3), 0, 3)

	// The next run (through the same endpoint: the record is kept per
	// source) lists the bucket as it is now: it fetches the two new versions
	// and nothing else, and writes what a clean run writes.
	again := filepath.Join(dir, "again")
	res = runBucket(t, srv, proxy.URL, bkt, file, again, cache)
	wantCode(t, res, 0, "rerun after the changes")
	rep = readReport(t, again)
	if got := downloaded(t, rep); got != 2 {
		t.Errorf("rerun: downloaded %d, want the 2 overwritten objects", got)
	}
	checkObjects(t, rep, int64(n-1), int64(n-1), 0, 0)
	clean := filepath.Join(dir, "clean")
	wantCode(t, runBucket(t, srv, srv.endpoint, bkt, file, clean, filepath.Join(dir, "clean-cache")), 0, "clean run")
	sameArtifacts(t, again, clean, len(notebookArtifacts)+len(extraArtifacts))
}

// bucketKeys lists bkt's PNG keys under the datasets prefix (what the
// notebook pipeline lists) in S3 order.
func bucketKeys(t *testing.T, srv *s3Server, bkt string) []string {
	t.Helper()
	var keys []string
	p := s3.NewListObjectsV2Paginator(s3Client(srv), &s3.ListObjectsV2Input{Bucket: aws.String(bkt), Prefix: aws.String(prefix)})
	for p.HasMorePages() {
		page, err := p.NextPage(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range page.Contents {
			if k := aws.ToString(o.Key); strings.HasSuffix(k, ".png") {
				keys = append(keys, k)
			}
		}
	}
	sort.Strings(keys)
	return keys
}
