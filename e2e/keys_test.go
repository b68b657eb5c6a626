package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Issue 9 item 10 through the CLI on a directory source: a key that is not
// valid UTF-8 is rejected once per run with its reason (in --out, counted,
// never fetched), .PNG matches the default suffix, and what the listing
// skips (other suffix, a symlink out of the root) is counted in run.json.
func TestDirectoryKeys(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	if err := copyTree(repoPath(sampleDir), src); err != nil {
		t.Fatal(err)
	}
	const bad = "MedicalExpert-I/0Normal/bad\xff.png"
	if err := os.WriteFile(filepath.Join(src, filepath.FromSlash(bad)), synthPNG(t, 9001), 0o644); err != nil {
		t.Skipf("file system refuses a name that is not UTF-8: %v", err)
	}
	writeObject(t, src, "MedicalExpert-II/0Normal/Upper (1).PNG", synthPNG(t, 9002))
	outside := filepath.Join(dir, "outside.png")
	writeObject(t, dir, "outside.png", synthPNG(t, 9003))
	if err := os.Symlink(outside, filepath.Join(src, "MedicalExpert-I", "0Normal", "escape.png")); err != nil {
		t.Skipf("symlinks not supported: %v", err)
	}
	cache := filepath.Join(dir, "cache")

	for _, name := range []string{"first", "second"} {
		out := filepath.Join(dir, name)
		res := kneepipe(t, nil, "run", "-f", pipelineFile, "--source", src, "--out", out, "--cache", cache)
		wantCode(t, res, 0, name+" run")
		got, err := os.ReadFile(filepath.Join(out, "rejected_keys.csv"))
		if want := "key,reason\nMedicalExpert-I/0Normal/bad\\xff.png,key is not valid UTF-8\n"; err != nil || string(got) != want {
			t.Errorf("%s run: rejected_keys.csv %q (%v), want %q", name, got, err, want)
		}
		excluded := 0
		for _, l := range readLines(t, filepath.Join(out, "excluded.csv")) {
			if strings.HasPrefix(l, "MedicalExpert-I/0Normal/bad\\xff.png,") {
				excluded++
				if !strings.Contains(l, ",rejected,key is not valid UTF-8,") {
					t.Errorf("%s run: excluded.csv row %q, want the reason rejected, key is not valid UTF-8", name, l)
				}
			}
		}
		if excluded != 1 {
			t.Errorf("%s run: excluded.csv names the bad key %d times, want once", name, excluded)
		}
		if got := readLines(t, filepath.Join(out, "failed.csv")); len(got) != 1 {
			t.Errorf("%s run: failed.csv %q, want the header only", name, got)
		}
		rep := readReport(t, out)
		if o := rep.Objects; o.Listed != sampleObjects+2 || o.Rejected != 1 || o.Failed != 0 || o.Accepted != sampleObjects+1 {
			t.Errorf("%s run: objects %+v, want listed %d (the sample, .PNG, the bad key), 1 rejected", name, o, sampleObjects+2)
		}
		for _, st := range rep.Stages {
			switch st.Name {
			case "list":
				if st.Counts["skipped"] != 2 || st.Counts["rejected"] != 1 {
					t.Errorf("%s run: list counts %v, want skipped 2 (notes.txt, the symlink out) and rejected 1", name, st.Counts)
				}
			case "fetch":
				// The first run fetches the sample and the .PNG, not the bad
				// key; the second fetches nothing (the stage is cached).
				if name == "first" && st.Counts["downloaded"] != sampleObjects+1 || name == "second" && st.Status != "cached" {
					t.Errorf("%s run: fetch %s, counts %v", name, st.Status, st.Counts)
				}
			}
		}
		if n := strings.Count(res.stderr, "not valid UTF-8"); n != 1 {
			t.Errorf("%s run: stderr names the bad key %d times, want once:\n%s", name, n, res.stderr)
		}
	}
}

// An empty listing warns, and says whether the source is empty or nothing
// has the suffix.
func TestEmptyListingWarns(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	if err := os.MkdirAll(src, 0o755); err != nil {
		t.Fatal(err)
	}
	run := func(name, want string) {
		t.Helper()
		out := filepath.Join(dir, name)
		res := kneepipe(t, nil, "run", "-f", pipelineFile, "--source", src, "--out", out, "--cache", filepath.Join(dir, "cache"))
		var warned bool
		for _, l := range stderrLines(res.stderr) {
			warned = warned || strings.Contains(l, "level=WARN") && strings.Contains(l, want)
		}
		if !warned {
			t.Errorf("%s: no warning %q (exit %d):\n%s", name, want, res.code, res.stderr)
		}
		if w := readReport(t, out).Warnings; len(w) != 1 || w[0].Stage != "list" || !strings.HasPrefix(w[0].Message, want) {
			t.Errorf("%s: run.json warnings %+v, want list's %q", name, w, want)
		}
	}
	run("empty", "the listing is empty: the source holds no objects")
	writeObject(t, src, "notes.txt", []byte("not an image"))
	run("no png", "the listing is empty: no key has the suffix")
}
