package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// kneepipe runs the command line in-process.
func kneepipe(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(context.Background(), args, &out, &errOut)
	return code, out.String(), errOut.String()
}

// brokenPipeline writes a pipeline whose third line names an unknown kind
// at column 21.
func brokenPipeline(t *testing.T) string {
	t.Helper()
	file := filepath.Join(t.TempDir(), "broken.yaml")
	if err := os.WriteFile(file, []byte("version: 1\nstages:\n  - {name: x, kind: nope}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return file
}

// An unknown command or flag, or an extra argument, is a usage error:
// exit 2 and one line saying which.
func TestUsageErrorsExit2(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"frobnicate"}, `unknown command "frobnicate" for "kneepipe"`},
		{[]string{"valdate"}, `did you mean "validate"?`},
		{[]string{"validate", "extra"}, `unknown command "extra" for "kneepipe validate"`},
		{[]string{"run", "extra"}, `unknown command "extra" for "kneepipe run"`},
		{[]string{"cache", "frobnicate"}, `unknown command "frobnicate" for "kneepipe cache"`},
		{[]string{"cache", "gc", "extra"}, `unknown command "extra" for "kneepipe cache gc"`},
		{[]string{"--bogus"}, "unknown flag: --bogus"},
		{[]string{"version", "extra"}, `unknown command "extra" for "kneepipe version"`},
	} {
		code, stdout, stderr := kneepipe(t, c.args...)
		lines := strings.Split(strings.TrimSuffix(stderr, "\n"), "\n")
		if code != exitConfig || len(lines) != 1 || !strings.HasPrefix(lines[0], "kneepipe: ") || !strings.Contains(lines[0], c.want) {
			t.Errorf("%q: exit %d, stderr %q; want exit 2 and one line saying %q", c.args, code, stderr, c.want)
		}
		if stdout != "" {
			t.Errorf("%q: stdout %q", c.args, stdout)
		}
	}
	// Without a command kneepipe prints its help, as before.
	if code, stdout, _ := kneepipe(t); code != exitOK || !strings.Contains(stdout, "Available Commands") {
		t.Errorf("no arguments: exit %d, stdout %q", code, stdout)
	}
}

// --version and `kneepipe version` print the version and the commit.
func TestVersion(t *testing.T) {
	defer func(v, c string) { version, commit = v, c }(version, commit)
	version, commit = "v1.2.3-test", "0123456789abcdef0123456789abcdef01234567"
	want := "kneepipe v1.2.3-test (commit 0123456789abcdef0123456789abcdef01234567, go"
	for _, args := range [][]string{{"--version"}, {"version"}, {"-v"}} {
		code, stdout, stderr := kneepipe(t, args...)
		if code != exitOK || !strings.HasPrefix(stdout, want) || strings.Count(stdout, "\n") != 1 || stderr != "" {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want one line starting %q", args, code, stdout, stderr, want)
		}
	}
}

// An error in the pipeline file is one line starting file:line:col, the
// form an editor jumps to, with no prefix before the file name.
func TestConfigErrorLine(t *testing.T) {
	file := brokenPipeline(t)
	for _, cmd := range []string{"validate", "run", "plan", "graph"} {
		args := []string{cmd, "-f", file}
		if cmd == "run" {
			args = append(args, "--out", filepath.Join(t.TempDir(), "out"))
		}
		if cmd == "run" || cmd == "plan" {
			args = append(args, "--cache", filepath.Join(t.TempDir(), "cache"))
		}
		code, _, stderr := kneepipe(t, args...)
		want := file + ":3:21: "
		if code != exitConfig || strings.Count(stderr, "\n") != 1 || !strings.HasPrefix(stderr, want) || !strings.Contains(stderr, `unknown kind "nope"`) {
			t.Errorf("%s: exit %d, stderr %q; want exit 2 and one line starting %q", cmd, code, stderr, want)
		}
	}
}

// With --log-format json every stderr line is a JSON record, the final
// error included (with its exit code, and its place in the pipeline file).
func TestJSONErrors(t *testing.T) {
	dir := t.TempDir()
	failing := filepath.Join(dir, "failing.yaml")
	pipeline := "version: 1\nstages:\n  - {name: raw, kind: read, params: {path: " + filepath.Join(dir, "missing.csv") + "}}\n"
	if err := os.WriteFile(failing, []byte(pipeline), 0o644); err != nil {
		t.Fatal(err)
	}
	broken := brokenPipeline(t)
	for _, c := range []struct {
		args []string
		code int
		want map[string]any
	}{
		{[]string{"--log-format", "json", "validate", "-f", broken}, exitConfig,
			map[string]any{"file": broken, "line": 3.0, "column": 21.0, "exit_code": 2.0}},
		{[]string{"--log-format=json", "frobnicate"}, exitConfig, map[string]any{"exit_code": 2.0}},
		{[]string{"frobnicate", "--log-format", "json"}, exitConfig, map[string]any{"exit_code": 2.0}},
		{[]string{"run", "--log-format", "json", "--bogus"}, exitConfig, map[string]any{"exit_code": 2.0}},
		{[]string{"run", "--log-format", "json", "-f", failing, "--out", filepath.Join(dir, "out"), "--cache", filepath.Join(dir, "cache")},
			exitFailed, map[string]any{"exit_code": 1.0}},
	} {
		code, _, stderr := kneepipe(t, c.args...)
		if code != c.code {
			t.Errorf("%q: exit %d, want %d", c.args, code, c.code)
		}
		lines := strings.Split(strings.TrimSuffix(stderr, "\n"), "\n")
		var last map[string]any
		for _, l := range lines {
			last = nil
			if err := json.Unmarshal([]byte(l), &last); err != nil {
				t.Errorf("%q: stderr line %q is not JSON: %v", c.args, l, err)
			}
		}
		if last["level"] != "ERROR" || !strings.Contains(last["msg"].(string), ": ") {
			t.Errorf("%q: last line %v, want an ERROR record with the message", c.args, last)
		}
		for k, v := range c.want {
			if last[k] != v {
				t.Errorf("%q: last line %s = %v, want %v", c.args, k, last[k], v)
			}
		}
	}
}
