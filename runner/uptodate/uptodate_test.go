package uptodate

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kneepipe/kneepipe/runner/cache"
)

func stage() Stage {
	return Stage{
		Name: "unique", Kind: "dedupe",
		Params: map[string]any{"on": []string{"expert", "file_id"}, "check": "severity"},
		Inputs: map[string]cache.Key{"rows": "abc/rows"},
	}
}

func store(t *testing.T, k cache.Key) cache.Store {
	t.Helper()
	s := cache.Store{Root: t.TempDir()}
	w, err := s.Create(k, "unique", "dedupe")
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Add("rows", 1, func(w io.Writer) error { _, err := w.Write([]byte("data")); return err }); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(nil); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestKeyDependsOnEverythingThatDeterminesOutput(t *testing.T) {
	base := stage().Key()
	if stage().Key() != base {
		t.Fatal("key is not deterministic")
	}
	changes := map[string]func(*Stage){
		"param":  func(s *Stage) { s.Params["check"] = "grade" },
		"kind":   func(s *Stage) { s.Kind = "filter" },
		"input":  func(s *Stage) { s.Inputs["rows"] = "abd/rows" },
		"port":   func(s *Stage) { s.Inputs = map[string]cache.Key{"by": "abc/rows"} },
		"source": func(s *Stage) { s.Source = "s3://other/" },
	}
	for name, change := range changes {
		s := stage()
		change(&s)
		if s.Key() == base {
			t.Errorf("changing the %s did not change the key", name)
		}
	}
	// The stage's name is not part of what it computes.
	s := stage()
	s.Name = "renamed"
	if s.Key() != base {
		t.Error("renaming a stage changed its key")
	}
}

func TestFingerprintHitMissAndReasons(t *testing.T) {
	s := stage()
	st := store(t, s.Key())
	if d := (Fingerprint{Store: st}).Check(s); d.Run || d.Entry == nil {
		t.Fatalf("stored entry not used: %+v", d)
	}

	last := map[string]Record{"unique": {Key: s.Key(), Kind: s.Kind, Params: normalize(s.Params).(map[string]any), Inputs: s.Inputs}}
	changed := stage()
	changed.Params["check"] = "grade"
	d := Fingerprint{Store: st, Last: last}.Check(changed)
	if !d.Run || d.Why != "params changed: check" {
		t.Fatalf("param change: %+v", d)
	}
	changed = stage()
	changed.Inputs["rows"] = "zzz/rows"
	if d := (Fingerprint{Store: st, Last: last}).Check(changed); !d.Run || d.Why != "input changed: rows" {
		t.Fatalf("input change: %+v", d)
	}
	if d := (Fingerprint{Store: cache.Store{Root: t.TempDir()}}).Check(s); !d.Run || d.Why != "not run before" {
		t.Fatalf("fresh cache: %+v", d)
	}
}

func TestFingerprintDamagedEntryRecomputes(t *testing.T) {
	s := stage()
	st := store(t, s.Key())
	path := filepath.Join(st.Root, "entries", string(s.Key()), "rows.parquet")
	if err := os.WriteFile(path, []byte("dat4"), 0o644); err != nil {
		t.Fatal(err)
	}
	d := Fingerprint{Store: st}.Check(s)
	if !d.Run || !strings.Contains(d.Why, "damaged") || d.Damaged == nil || !strings.Contains(d.Damaged.Error(), "checksum") {
		t.Fatalf("damaged entry: %+v", d)
	}
}

func TestAlwaysAndForce(t *testing.T) {
	s := stage()
	st := store(t, s.Key())
	if d := (Always{}).Check(s); !d.Run {
		t.Fatal("Always did not run")
	}
	next := Fingerprint{Store: st}
	if d := (Force{Stages: map[string]bool{"unique": true}, Next: next}).Check(s); !d.Run || d.Why != "forced" {
		t.Fatalf("named force: %+v", d)
	}
	if d := (Force{Stages: map[string]bool{"*": true}, Next: next}).Check(s); !d.Run {
		t.Fatalf("force all: %+v", d)
	}
	if d := (Force{Stages: map[string]bool{"other": true}, Next: next}).Check(s); d.Run {
		t.Fatalf("force of another stage ran this one: %+v", d)
	}
}

func TestContentKey(t *testing.T) {
	a := ContentKey("base", map[string]string{"objects": "d1"})
	if a == ContentKey("base", map[string]string{"objects": "d2"}) {
		t.Fatal("content change did not change the key")
	}
	if a != ContentKey("base", map[string]string{"objects": "d1"}) {
		t.Fatal("not deterministic")
	}
}
