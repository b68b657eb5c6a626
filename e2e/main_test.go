package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	bucket   = "tnn-hse-medtech"
	prefix   = "datasets/"
	s3Source = "s3://" + bucket + "/" + prefix
	region   = "us-east-1"

	// Figures of testdata/sample, from testdata/README.md.
	sampleObjects   = 99 // keys ending .png (notes.txt is not one)
	sampleFileIDs   = 46
	goldenDir       = "testdata/golden/notebook"
	sampleDir       = "testdata/sample"
	notebookFile    = "examples/notebook.yaml"
	fromCSVFile     = "examples/notebook-from-csv.yaml"
	pipelineFile    = "pipeline.yaml"
	kneepipeTimeout = 60 * time.Second
)

// The notebook's four CSVs, compared byte for byte with the goldens.
var notebookCSVs = []string{"raw_data.csv", "deleted_paths.csv", "different_severity.csv", "normalized_data.csv"}

// Set up by TestMain.
var (
	repoRoot  string // the module root: kneepipe's working directory
	binary    string // the kneepipe binary built for these tests
	workDir   string // temp dir holding the binary, the bucket data and the server state
	endpoint  string // http://127.0.0.1:PORT
	accessKey string
	secretKey string
	accessLog string // the server's access log: one line per request
)

func TestMain(m *testing.M) {
	os.Exit(mainWithServer(m))
}

func mainWithServer(m *testing.M) int {
	var err error
	if repoRoot, err = filepath.Abs(".."); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	if _, err := os.Stat(filepath.Join(repoRoot, "go.mod")); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: module root not found:", err)
		return 1
	}
	if _, err := os.Stat(filepath.Join(repoRoot, ".env")); err == nil {
		// kneepipe runs in the repository root and reads .env there for
		// whatever the (scrubbed) environment leaves unset.
		fmt.Fprintln(os.Stderr, "e2e: note: kneepipe will read the .env in", repoRoot, "(a KNEEPIPE_SOURCE or MANIFEST there changes what the tests run)")
	}
	if workDir, err = os.MkdirTemp("", "kneepipe-e2e-"); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(workDir)

	if err := buildBinary(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: build kneepipe:", err)
		return 1
	}
	state := filepath.Join(workDir, "s3state")
	stop, err := startServer(filepath.Join(workDir, "s3data"), state)
	if stop != nil {
		defer stop()
	}
	if err != nil {
		// Fail, never skip: `make test` must prove the S3 path.
		fmt.Fprintln(os.Stderr, "e2e: FAIL: cannot start the S3 server (scripts/s3server.sh):", err)
		return 1
	}
	defer stopScratchServer()
	defer stopMinio()
	return m.Run()
}

func buildBinary() error {
	binary = filepath.Join(workDir, "bin", "kneepipe")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-o", binary, "github.com/kneepipe/kneepipe/cmd/kneepipe")
	cmd.Dir = repoRoot
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%w\n%s", err, out)
	}
	return nil
}

// startServer copies the sample into DATA/<bucket>/<prefix> (regular files:
// versitygw would report a symlink's own size) and starts versitygw over
// DATA. The returned stop func is non-nil once the script was run.
func startServer(data, state string) (func(), error) {
	dst := filepath.Join(data, bucket, filepath.FromSlash(prefix))
	if err := copyTree(filepath.Join(repoRoot, sampleDir), dst); err != nil {
		return nil, fmt.Errorf("copy the sample: %w", err)
	}
	stop, vars, err := startVersitygw(data, state)
	if err != nil {
		return stop, err
	}
	endpoint, accessKey, secretKey = vars["KNEEPIPE_S3_ENDPOINT"], vars["AWS_ACCESS_KEY_ID"], vars["AWS_SECRET_ACCESS_KEY"]
	accessLog = vars["KNEEPIPE_S3_ACCESS_LOG"]
	return stop, nil
}

// startVersitygw starts versitygw over DATA (one folder per bucket) with
// scripts/s3server.sh and returns the variables of STATE/env. The returned
// stop func is non-nil once the script was run.
func startVersitygw(data, state string) (func(), map[string]string, error) {
	script := filepath.Join(repoRoot, "scripts", "s3server.sh")
	env := append(os.Environ(),
		fmt.Sprintf("KNEEPIPE_S3_WATCH_PID=%d", os.Getpid()), // a crashed test never leaks the server
		"KNEEPIPE_S3_ACCESS_LOG=1",                           // the GET counts need it
	)
	if os.Getenv("KNEEPIPE_S3_START_TIMEOUT") == "" {
		env = append(env, "KNEEPIPE_S3_START_TIMEOUT=30")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute) // may build versitygw once
	defer cancel()
	// Plain files, not pipes: were this process killed while the script
	// starts the server, a pipe would kill the script with SIGPIPE before
	// it sets up the watcher, and the server would be left running.
	// Stdout (the env file again, keys included) goes to /dev/null: it
	// must stay out of the logs.
	stderr, err := os.CreateTemp(workDir, "s3server-stderr-")
	if err != nil {
		return nil, nil, err
	}
	defer stderr.Close()
	cmd := exec.CommandContext(ctx, script, "start", data, state)
	cmd.Dir = repoRoot
	cmd.Env = env
	cmd.Stderr = stderr
	runErr := cmd.Run()
	stop := func() {
		c := exec.Command(script, "stop", state)
		c.Dir = repoRoot
		if out, err := c.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "e2e: stopping the S3 server: %v\n%s", err, out)
		}
	}
	if runErr != nil {
		msg, _ := os.ReadFile(stderr.Name())
		return stop, nil, fmt.Errorf("%w\n%s", runErr, msg)
	}
	vars, err := readEnvFile(filepath.Join(state, "env"))
	if err != nil {
		return stop, nil, err
	}
	if !strings.HasPrefix(vars["KNEEPIPE_S3_ENDPOINT"], "http://127.0.0.1:") || vars["AWS_ACCESS_KEY_ID"] == "" ||
		vars["AWS_SECRET_ACCESS_KEY"] == "" || vars["KNEEPIPE_S3_ACCESS_LOG"] == "" {
		return stop, nil, fmt.Errorf("%s/env lacks the endpoint, keys or access log (endpoint %q)", state, vars["KNEEPIPE_S3_ENDPOINT"])
	}
	return stop, vars, nil
}

// readEnvFile parses the `export KEY=VALUE` lines s3server.sh writes.
// Values may be single-quoted; a quote inside one closes the quotes,
// escapes itself and reopens them, as the shell does.
func readEnvFile(path string) (map[string]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	vars := map[string]string{}
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		kv, ok := strings.CutPrefix(line, "export ")
		k, v, ok2 := strings.Cut(kv, "=")
		if !ok || !ok2 {
			return nil, fmt.Errorf("%s: unexpected line %q", path, line)
		}
		if strings.HasPrefix(v, "'") {
			if len(v) < 2 || !strings.HasSuffix(v, "'") {
				return nil, fmt.Errorf("%s: bad quoting for %s", path, k)
			}
			v = strings.ReplaceAll(v[1:len(v)-1], `'\''`, `'`)
		}
		vars[k] = v
	}
	return vars, nil
}

func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		switch {
		case d.IsDir():
			return os.MkdirAll(target, 0o755)
		case d.Type().IsRegular():
			data, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			return os.WriteFile(target, data, 0o644)
		}
		return fmt.Errorf("%s: not a regular file or directory", path)
	})
}

// result is one kneepipe invocation.
type result struct {
	code           int
	stdout, stderr string
}

// baseEnv is the test process's environment without anything that could
// point kneepipe elsewhere: no KNEEPIPE_* (KNEEPIPE_SOURCE stays unset), no
// AWS_* (profiles, endpoints, keys), no MANIFEST; AWS config files are
// pointed at nothing.
func baseEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "KNEEPIPE_") || strings.HasPrefix(k, "AWS_") || k == "MANIFEST" {
			continue
		}
		env = append(env, kv)
	}
	none := filepath.Join(workDir, "no-such-aws-config")
	return append(env,
		"AWS_CONFIG_FILE="+none,
		"AWS_SHARED_CREDENTIALS_FILE="+none,
		"AWS_EC2_METADATA_DISABLED=true",
	)
}

// kneepipe runs the binary from the repository root with baseEnv plus env.
func kneepipe(t *testing.T, env []string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), kneepipeTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Dir = repoRoot
	cmd.Env = append(baseEnv(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	res := result{stdout: stdout.String(), stderr: stderr.String()}
	var exitErr *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exitErr) && exitErr.ExitCode() >= 0:
		res.code = exitErr.ExitCode()
	default:
		t.Fatalf("kneepipe %s: %v\nstderr:\n%s", strings.Join(args, " "), err, res.stderr)
	}
	return res
}

// s3Env passes the keys through the child's environment only, never on
// its command line.
func s3Env(secret string) []string {
	return []string{"AWS_ACCESS_KEY_ID=" + accessKey, "AWS_SECRET_ACCESS_KEY=" + secret}
}

// s3Args points a pipeline at the test bucket.
func s3Args() []string {
	return []string{"--source", s3Source, "--endpoint", endpoint, "--region", region}
}

// runS3 runs `kneepipe run -f file` through S3 with the right keys into
// fresh or given --out and --cache directories, and checks that the secret
// shows up in none of the output.
func runS3(t *testing.T, file, out, cache string, extra ...string) result {
	t.Helper()
	args := append([]string{"run", "-f", file, "--out", out, "--cache", cache}, s3Args()...)
	res := kneepipe(t, s3Env(secretKey), append(args, extra...)...)
	assertNoSecret(t, secretKey, res, out, cache)
	return res
}

// runLocal runs `kneepipe run -f file` on the pipeline's own source.
func runLocal(t *testing.T, env []string, file, out, cache string) result {
	t.Helper()
	return kneepipe(t, env, "run", "-f", file, "--out", out, "--cache", cache)
}

func wantCode(t *testing.T, res result, want int, what string) {
	t.Helper()
	if res.code != want {
		t.Fatalf("%s: exit code %d, want %d\nstderr:\n%s", what, res.code, want, res.stderr)
	}
}

// assertNoSecret fails if secret appears in the run's stdout or stderr or
// in any file under the given directories.
func assertNoSecret(t *testing.T, secret string, res result, dirs ...string) {
	t.Helper()
	if strings.Contains(res.stdout, secret) {
		t.Errorf("the secret key appears on stdout")
	}
	if strings.Contains(res.stderr, secret) {
		t.Errorf("the secret key appears on stderr")
	}
	for _, dir := range dirs {
		err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if errors.Is(err, fs.ErrNotExist) && path == dir {
				return nil // never created
			}
			if err != nil || d.IsDir() {
				return err
			}
			data, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			if bytes.Contains(data, []byte(secret)) {
				t.Errorf("the secret key appears in %s", path)
			}
			return nil
		})
		if err != nil {
			t.Errorf("scanning %s: %v", dir, err)
		}
	}
}

// s3Requests counts the access log lines of one S3 operation, e.g.
// "GetObject"; the log is complete once the request was answered.
func s3Requests(t *testing.T, op string) int {
	t.Helper()
	f, err := os.Open(accessLog)
	if err != nil {
		t.Fatalf("access log: %v", err)
	}
	defer f.Close()
	n := 0
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if strings.Contains(sc.Text(), " s3_"+op+" ") {
			n++
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("access log: %v", err)
	}
	return n
}

// runReport is the part of run.json the tests read.
type runReport struct {
	Pipeline string `json:"pipeline"`
	Source   string `json:"source"`
	Status   string `json:"status"`
	Objects  struct {
		Listed, Accepted, Rejected, Failed int64
	} `json:"objects"`
	Stages []struct {
		Name        string           `json:"name"`
		Kind        string           `json:"kind"`
		Status      string           `json:"status"`
		RowsIn      int64            `json:"rows_in"`
		RowsOut     int64            `json:"rows_out"`
		Outputs     map[string]int64 `json:"outputs"`
		Counts      map[string]int64 `json:"counts"`
		Why         string           `json:"why"`
		Fingerprint string           `json:"fingerprint"`
		Error       string           `json:"error"`
	} `json:"stages"`
	Artifacts      []string                          `json:"artifacts"`
	ArtifactStatus map[string]string                 `json:"artifact_status"`
	Warnings       []struct{ Stage, Message string } `json:"warnings"`
	Error          string                            `json:"error"`
}

func readReport(t *testing.T, out string) runReport {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(out, "run.json"))
	if err != nil {
		t.Fatalf("run.json: %v", err)
	}
	var rep runReport
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&rep); err != nil {
		t.Fatalf("run.json: %v\n%s", err, data)
	}
	return rep
}

// artifactFiles lists the *.csv and *.parquet files under dir, relative.
func artifactFiles(t *testing.T, dir string) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if ext := filepath.Ext(path); ext == ".csv" || ext == ".parquet" {
			rel, _ := filepath.Rel(dir, path)
			files = append(files, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(files)
	return files
}

// sameArtifacts requires dirs a and b to hold the same CSV and Parquet
// files with the same bytes, and at least want of them.
func sameArtifacts(t *testing.T, a, b string, want int) {
	t.Helper()
	fa, fb := artifactFiles(t, a), artifactFiles(t, b)
	if strings.Join(fa, ",") != strings.Join(fb, ",") {
		t.Fatalf("artifact sets differ:\n%s: %v\n%s: %v", a, fa, b, fb)
	}
	if len(fa) < want {
		t.Fatalf("%d artifacts in %s, want at least %d: %v", len(fa), a, want, fa)
	}
	for _, f := range fa {
		sameFile(t, filepath.Join(a, f), filepath.Join(b, f))
	}
}

func sameFile(t *testing.T, a, b string) {
	t.Helper()
	da, err := os.ReadFile(a)
	if err != nil {
		t.Fatal(err)
	}
	db, err := os.ReadFile(b)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(da, db) {
		t.Errorf("%s and %s differ (%d vs %d bytes)%s", a, b, len(da), len(db), firstDiff(da, db))
	}
}

// firstDiff describes the first differing line of two texts.
func firstDiff(a, b []byte) string {
	la, lb := strings.Split(string(a), "\n"), strings.Split(string(b), "\n")
	for i := 0; i < max(len(la), len(lb)); i++ {
		var x, y string
		if i < len(la) {
			x = la[i]
		}
		if i < len(lb) {
			y = lb[i]
		}
		if x != y {
			if len(x) > 300 || len(y) > 300 { // binary
				return ""
			}
			return fmt.Sprintf("; line %d:\n  %q\n  %q", i+1, x, y)
		}
	}
	return ""
}

// notebookS3 is one run of examples/notebook.yaml through S3 with a fresh
// cache, shared by the tests that only read its output.
var notebookS3 struct {
	once sync.Once
	res  result
	out  string
	err  string
}

func sharedNotebookS3(t *testing.T) (string, result) {
	t.Helper()
	notebookS3.once.Do(func() {
		dir, err := os.MkdirTemp(workDir, "notebook-s3-")
		if err != nil {
			notebookS3.err = err.Error()
			return
		}
		notebookS3.err = "the shared run did not complete (see the first test that asked for it)"
		notebookS3.out = filepath.Join(dir, "out")
		notebookS3.res = runS3(t, notebookFile, notebookS3.out, filepath.Join(dir, "cache"))
		notebookS3.err = ""
		if notebookS3.res.code != 0 {
			notebookS3.err = fmt.Sprintf("exit code %d\nstderr:\n%s", notebookS3.res.code, notebookS3.res.stderr)
		}
	})
	if notebookS3.err != "" {
		t.Fatalf("notebook run through S3: %s", notebookS3.err)
	}
	return notebookS3.out, notebookS3.res
}

func readLines(t *testing.T, path string) []string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
}

func repoPath(rel string) string { return filepath.Join(repoRoot, filepath.FromSlash(rel)) }

// s3Server is a versitygw the tests talk to; its data dir holds one folder
// per bucket, and files placed there are served as objects.
type s3Server struct {
	data      string
	endpoint  string
	accessKey string
	secretKey string
	accessLog string
}

// scratch is a second versitygw over its own data dir, started on first
// use, for the tests that add, change or delete objects: the shared sample
// bucket stays untouched. Each test makes its own bucket in it (see
// newBucket), so GETs are counted per bucket.
var scratch struct {
	once sync.Once
	srv  *s3Server
	stop func()
	err  error
}

func scratchServer(t *testing.T) *s3Server {
	t.Helper()
	scratch.once.Do(func() {
		data := filepath.Join(workDir, "s3scratch")
		if scratch.err = os.MkdirAll(data, 0o755); scratch.err != nil {
			return
		}
		stop, vars, err := startVersitygw(data, filepath.Join(workDir, "s3scratch-state"))
		scratch.stop, scratch.err = stop, err
		if err != nil {
			return
		}
		scratch.srv = &s3Server{
			data:      data,
			endpoint:  vars["KNEEPIPE_S3_ENDPOINT"],
			accessKey: vars["AWS_ACCESS_KEY_ID"],
			secretKey: vars["AWS_SECRET_ACCESS_KEY"],
			accessLog: vars["KNEEPIPE_S3_ACCESS_LOG"],
		}
	})
	if scratch.err != nil {
		t.Fatalf("scratch S3 server (scripts/s3server.sh): %v", scratch.err)
	}
	return scratch.srv
}

func stopScratchServer() {
	if scratch.stop != nil {
		scratch.stop()
	}
}

// requests counts the access log lines of one S3 operation on one bucket.
func (s *s3Server) requests(t *testing.T, op, bkt string) int {
	t.Helper()
	return s.countLog(t, func(line string) bool {
		f := strings.SplitN(line, " ", 3)
		return len(f) == 3 && f[1] == bkt && strings.Contains(line, " s3_"+op+" ")
	})
}

// keyGets counts the GETs of one object.
func (s *s3Server) keyGets(t *testing.T, bkt, key string) int {
	t.Helper()
	return s.countLog(t, func(line string) bool {
		return strings.Contains(line, " s3_GetObject "+key+" /"+bkt+"/")
	})
}

func (s *s3Server) countLog(t *testing.T, match func(string) bool) int {
	t.Helper()
	f, err := os.Open(s.accessLog)
	if err != nil {
		t.Fatalf("access log: %v", err)
	}
	defer f.Close()
	n := 0
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if match(sc.Text()) {
			n++
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("access log: %v", err)
	}
	return n
}
