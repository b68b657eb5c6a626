package source

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
)

// emptyCredentialChain leaves the SDK's default chain nothing to find: no
// keys in the environment, no shared files, no container or web identity,
// and the EC2 instance metadata service disabled (so the test does not
// wait for it).
func emptyCredentialChain(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(home, "no-config"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(home, "no-credentials"))
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	for _, k := range []string{
		"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_DEFAULT_PROFILE",
		"AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
	} {
		t.Setenv(k, "") // restored after the test
		os.Unsetenv(k)
	}
}

// listErr opens an S3 source on endpoint and returns the listing's error.
func listErr(t *testing.T, endpoint string, env map[string]string) error {
	t.Helper()
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	st, err := Open(context.Background(), Config{URI: "s3://bucket/prefix/", Endpoint: endpoint, Region: "us-east-1"}, lookup)
	if err != nil {
		t.Fatal(err)
	}
	return st.List(context.Background(), func(Object) error { return nil })
}

// Without credentials the error says so in one sentence, not as the IMDS
// error the SDK's chain ends with, and is not retried.
func TestNoCredentials(t *testing.T) {
	emptyCredentialChain(t)
	var requests atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		w.WriteHeader(http.StatusForbidden)
		w.Write([]byte("<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>"))
	}))
	defer srv.Close()

	err := listErr(t, srv.URL, nil)
	if err == nil {
		t.Fatal("listing without credentials: no error")
	}
	msg := err.Error()
	if !strings.HasSuffix(msg, ": no AWS credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (in the environment or a .env file) or AWS_PROFILE") {
		t.Errorf("error %q, want it to end with the sentence saying no credentials were found", msg)
	}
	if strings.Contains(strings.ToLower(msg), "imds") {
		t.Errorf("error %q mentions IMDS", msg)
	}
	if !Permanent(err) {
		t.Errorf("error %q is not permanent: it would be retried", msg)
	}
	if n := requests.Load(); n != 0 {
		t.Errorf("%d requests reached the server without credentials", n)
	}

	// With keys (from .env, say) the same server's refusal is access denied,
	// not missing credentials.
	err = listErr(t, srv.URL, map[string]string{"AWS_ACCESS_KEY_ID": "id", "AWS_SECRET_ACCESS_KEY": "secret"})
	if err == nil || !strings.Contains(err.Error(), "access denied") || strings.Contains(err.Error(), "no AWS credentials") {
		t.Errorf("with keys: error %v, want access denied", err)
	}
	if requests.Load() == 0 {
		t.Errorf("with keys: no request reached the server (error %v)", err)
	}
}

// A GET answered 503 SlowDown is one request (the SDK does not retry it:
// Retry does, and tells the fetch) and its error is Throttled; a 500 is
// not throttling.
func TestGetThrottledIsOneRequest(t *testing.T) {
	var requests atomic.Int32
	status := atomic.Int32{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		code, name := http.StatusServiceUnavailable, "SlowDown"
		if status.Load() == 500 {
			code, name = http.StatusInternalServerError, "InternalError"
		}
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(code)
		w.Write([]byte("<Error><Code>" + name + "</Code><Message>m</Message></Error>"))
	}))
	defer srv.Close()
	lookup := func(k string) (string, bool) {
		v, ok := map[string]string{"AWS_ACCESS_KEY_ID": "id", "AWS_SECRET_ACCESS_KEY": "secret"}[k]
		return v, ok
	}
	st, err := Open(context.Background(), Config{URI: "s3://bucket/prefix/", Endpoint: srv.URL, Region: "us-east-1"}, lookup)
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = st.Get(context.Background(), "prefix/k.png")
	if !Throttled(err) || Permanent(err) || requests.Load() != 1 {
		t.Errorf("503 SlowDown: err %v after %d requests; want one request, throttled, not permanent", err, requests.Load())
	}
	status.Store(500)
	requests.Store(0)
	_, _, err = st.Get(context.Background(), "prefix/k.png")
	if err == nil || Throttled(err) || requests.Load() != 1 {
		t.Errorf("500: err %v after %d requests; want one request, not throttled", err, requests.Load())
	}
}
