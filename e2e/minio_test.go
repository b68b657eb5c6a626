package e2e

// Issue 14: a second S3 implementation. MinIO (pinned in scripts/tools.mk,
// built into .tools/bin by `make tools`) computes real MD5 ETags on upload
// and `-N` ETags for multipart uploads, pages listings its own way and
// writes its own error bodies: the notebook's goldens, the incremental
// cache, pagination and the error sentences are checked against it too.

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// minio is the MinIO server, started on first use and stopped by
// stopMinio (TestMain) or, should the test process die, by the kernel
// (Pdeathsig).
var minio struct {
	once sync.Once
	srv  *s3Server
	cmd  *exec.Cmd
	err  error
}

func minioServer(t *testing.T) *s3Server {
	t.Helper()
	minio.once.Do(func() { minio.srv, minio.err = startMinio() })
	if minio.err != nil {
		t.Fatalf("MinIO: %v", minio.err)
	}
	return minio.srv
}

func startMinio() (*s3Server, error) {
	bin := filepath.Join(repoRoot, ".tools", "bin", "minio")
	if _, err := os.Stat(bin); err != nil {
		return nil, fmt.Errorf("%s missing: run `make tools` (builds the pinned MinIO)", bin)
	}
	port, err := loopbackAddr()
	if err != nil {
		return nil, err
	}
	console, err := loopbackAddr()
	if err != nil {
		return nil, err
	}
	secret := make([]byte, 12)
	rand.Read(secret)
	srv := &s3Server{
		data:      filepath.Join(workDir, "minio"),
		endpoint:  "http://" + port,
		accessKey: "kneepipe-e2e",
		secretKey: "e2e-" + hex.EncodeToString(secret),
	}
	logf, err := os.Create(filepath.Join(workDir, "minio.log"))
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	cmd := exec.Command(bin, "server", "--quiet", "--address", port, "--console-address", console, srv.data)
	cmd.Env = append(os.Environ(), "MINIO_ROOT_USER="+srv.accessKey, "MINIO_ROOT_PASSWORD="+srv.secretKey,
		"MINIO_BROWSER=off", "MINIO_UPDATE=off", "MINIO_CI_CD=1")
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	minio.cmd = cmd
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	deadline := time.NewTimer(60 * time.Second)
	defer deadline.Stop()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		// health/ready can answer 200 while the object layer still says
		// "Server not initialized yet" (503) on a busy machine: ready is
		// when an S3 call succeeds too.
		resp, err := http.Get(srv.endpoint + "/minio/health/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				if _, err := s3Client(srv).ListBuckets(context.Background(), &s3.ListBucketsInput{}); err == nil {
					return srv, nil
				}
			}
		}
		select {
		case err := <-exited:
			log, _ := os.ReadFile(logf.Name())
			return nil, fmt.Errorf("exited (%v) before it was ready:\n%s", err, log)
		case <-deadline.C:
			return nil, errors.New("not ready after 60 s")
		case <-tick.C:
		}
	}
}

// stopMinio stops the server if a test started it.
func stopMinio() {
	if minio.cmd != nil && minio.cmd.Process != nil {
		minio.cmd.Process.Kill()
	}
}

func loopbackAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// minioBucket makes an empty bucket on MinIO named base-N.
func minioBucket(t *testing.T, srv *s3Server, base string) string {
	t.Helper()
	bkt := fmt.Sprintf("%s-%d", base, bucketSeq.Add(1))
	if _, err := s3Client(srv).CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String(bkt)}); err != nil {
		t.Fatalf("create bucket %s: %v", bkt, err)
	}
	return bkt
}

// putMultipart uploads data as a one-part multipart upload: its ETag is
// the MD5 of the part's MD5 with "-1", not the object's MD5.
func putMultipart(t *testing.T, srv *s3Server, bkt, key string, data []byte) {
	t.Helper()
	cl, ctx := s3Client(srv), context.Background()
	up, err := cl.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String(bkt), Key: aws.String(key)})
	if err != nil {
		t.Fatal(err)
	}
	part, err := cl.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String(bkt), Key: aws.String(key), UploadId: up.UploadId,
		PartNumber: aws.Int32(1), Body: bytes.NewReader(data)})
	if err != nil {
		t.Fatal(err)
	}
	_, err = cl.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String(bkt), Key: aws.String(key), UploadId: up.UploadId,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: []types.CompletedPart{{ETag: part.ETag, PartNumber: aws.Int32(1)}}}})
	if err != nil {
		t.Fatal(err)
	}
}

// uploadSampleMinio PUTs testdata/sample into a new MinIO bucket, the
// objects of multipart (relative paths) as multipart uploads, and checks
// the listing's ETags: the MD5 for the others, "-1" ones for those.
func uploadSampleMinio(t *testing.T, srv *s3Server, base string, multipart ...string) string {
	t.Helper()
	bkt := minioBucket(t, srv, base)
	multi := map[string]bool{}
	for _, m := range multipart {
		multi[prefix+m] = true
	}
	putSample(t, srv, bkt, multi)
	return bkt
}

// The notebook over MinIO writes the goldens byte for byte, objects with
// multipart ETags included (they are not mistaken for damaged bodies); a
// rerun downloads nothing; an overwritten object, and only it, is fetched
// again; and the outputs stay a clean run's.
func TestMinioNotebookAndCache(t *testing.T) {
	srv := minioServer(t)
	const multi = "MedicalExpert-I/1Doubtful/DoubtfulG1 (1).png"
	bkt := uploadSampleMinio(t, srv, "e2e-minio", multi, "MedicalExpert-II/4Severe/SevereG4 (1).png")
	dir := t.TempDir()
	cache := filepath.Join(dir, "cache")

	first := filepath.Join(dir, "first")
	wantCode(t, runBucket(t, srv, srv.endpoint, bkt, notebookFile, first, cache), 0, "notebook over MinIO")
	for _, name := range notebookCSVs {
		sameFile(t, filepath.Join(first, name), repoPath(goldenDir+"/"+name))
	}
	rep := readReport(t, first)
	checkObjects(t, rep, sampleObjects, sampleObjects, 0, 0)
	if got := downloaded(t, rep); got != sampleObjects {
		t.Errorf("downloaded %d, want %d", got, sampleObjects)
	}

	second := filepath.Join(dir, "second")
	wantCode(t, runBucket(t, srv, srv.endpoint, bkt, notebookFile, second, cache), 0, "rerun over MinIO")
	if got := downloaded(t, readReport(t, second)); got != 0 {
		t.Errorf("rerun: downloaded %d, want 0", got)
	}
	sameArtifacts(t, first, second, len(notebookArtifacts))

	// Overwrite the multipart object with another's bytes, as a plain PUT.
	other, err := os.ReadFile(repoPath(sampleDir + "/MedicalExpert-I/0Normal/NormalG0 (1).png"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s3Client(srv).PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String(bkt), Key: aws.String(prefix + multi), Body: bytes.NewReader(other)}); err != nil {
		t.Fatal(err)
	}
	third := filepath.Join(dir, "third")
	wantCode(t, runBucket(t, srv, srv.endpoint, bkt, notebookFile, third, cache), 0, "run after an overwrite")
	if got := downloaded(t, readReport(t, third)); got != 1 {
		t.Errorf("after one overwrite: downloaded %d, want 1", got)
	}
	clean := filepath.Join(dir, "clean")
	wantCode(t, runBucket(t, srv, srv.endpoint, bkt, notebookFile, clean, filepath.Join(dir, "clean-cache")), 0, "clean run")
	sameArtifacts(t, third, clean, len(notebookArtifacts))
}

// MinIO pages a listing at 1000 keys: a grade folder of 1,100 objects is
// listed whole, across pages, and every object is fetched once.
func TestMinioPagination(t *testing.T) {
	srv := minioServer(t)
	bkt := minioBucket(t, srv, "e2e-minio-pages")
	cl := s3Client(srv)
	const objects = 1100
	var wg sync.WaitGroup
	errs := make(chan error, objects)
	sem := make(chan struct{}, 16)
	for i := range objects {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			key := fmt.Sprintf("%sMedicalExpert-I/0Normal/NormalG0 (%d).png", prefix, i)
			_, err := cl.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String(bkt), Key: aws.String(key), Body: bytes.NewReader(synthPNG(t, i))})
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	wantCode(t, runBucket(t, srv, srv.endpoint, bkt, notebookFile, out, filepath.Join(dir, "cache")), 0, "run over 1,100 objects")
	rep := readReport(t, out)
	checkObjects(t, rep, objects, objects, 0, 0)
	if got := downloaded(t, rep); got != objects {
		t.Errorf("downloaded %d, want %d", got, objects)
	}
	if n := len(readLines(t, filepath.Join(out, "raw_data.csv"))) - 1; n != objects {
		t.Errorf("raw_data.csv: %d rows, want %d", n, objects)
	}
}

// MinIO's error bodies give the same sentences as versitygw's: a wrong
// secret is access denied, a missing bucket says so.
func TestMinioErrors(t *testing.T) {
	srv := minioServer(t)
	bkt := minioBucket(t, srv, "e2e-minio-errors")
	for _, c := range []struct {
		name, bucket, secret, says string
	}{
		{"wrong secret", bkt, "e2e-wrong-secret-Mn4Kq8", "access denied (check the access key and secret)"},
		{"missing bucket", "e2e-minio-no-such-bucket", srv.secretKey, "bucket does not exist"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			out, cache := filepath.Join(dir, "out"), filepath.Join(dir, "cache")
			env := []string{"AWS_ACCESS_KEY_ID=" + srv.accessKey, "AWS_SECRET_ACCESS_KEY=" + c.secret}
			res := kneepipe(t, env, bucketArgs(srv.endpoint, c.bucket, notebookFile, out, cache)...)
			wantCode(t, res, 1, c.name)
			assertNoSecret(t, c.secret, res, out, cache)
			if verdict := lastLine(t, res); !strings.Contains(verdict, c.says) {
				t.Errorf("verdict %q lacks %q", verdict, c.says)
			}
		})
	}
}
