package e2e

import (
	"path/filepath"
	"strings"
	"testing"
)

// Issue 9 item 13: a run through S3 without any credentials (none in the
// environment, no .env, no shared files, IMDS disabled) fails with one
// sentence saying so, printed once, not with the IMDS error the SDK's chain ends with;
// nothing reaches the server and run.json records the failure.
func TestMissingCredentials(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	lists := s3Requests(t, "ListObjectsV2")
	res := kneepipe(t, nil, append([]string{"run", "-f", pipelineFile, "--out", out, "--cache", filepath.Join(dir, "cache")}, s3Args()...)...)
	wantCode(t, res, 1, "run without credentials")
	const sentence = "no AWS credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (in the environment or a .env file) or AWS_PROFILE"
	if got := lastLine(t, res); !strings.HasSuffix(got, ": "+sentence) || !strings.Contains(got, s3Source) {
		t.Errorf("last line %q, want the listing of %s and %q", got, s3Source, sentence)
	}
	if n := strings.Count(res.stderr, sentence); n != 1 {
		t.Errorf("the sentence is on stderr %d times, want once:\n%s", n, res.stderr)
	}
	if strings.Contains(strings.ToLower(res.stderr), "imds") {
		t.Errorf("stderr mentions IMDS:\n%s", res.stderr)
	}
	if got := s3Requests(t, "ListObjectsV2") - lists; got != 0 {
		t.Errorf("%d listings reached the server without credentials", got)
	}
	if rep := readReport(t, out); rep.Status != "failed" || !strings.Contains(rep.Error, sentence) {
		t.Errorf("run.json: status %q error %q, want failed and %q", rep.Status, rep.Error, sentence)
	}
}
