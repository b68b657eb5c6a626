package journal

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"
)

type rec struct {
	K string `json:"k"`
	N int    `json:"n"`
}

func load(t *testing.T, dir string) ([]rec, int) {
	t.Helper()
	var out []rec
	damaged, err := Load(dir, func(raw json.RawMessage) error {
		var r rec
		if err := json.Unmarshal(raw, &r); err != nil {
			return err
		}
		out = append(out, r)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out, damaged
}

func TestAppendCheckpointsAndLoad(t *testing.T) {
	dir := t.TempDir()
	w, err := Append(dir, 2, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	w.Add(rec{"a", 1})
	// One record is below the checkpoint: nothing on disk yet.
	if got, _ := load(t, dir); len(got) != 0 {
		t.Fatalf("before checkpoint: %v", got)
	}
	w.Add(rec{"b", 2})
	if got, _ := load(t, dir); len(got) != 2 {
		t.Fatalf("after checkpoint of 2: %v", got)
	}
	w.Add(rec{"c", 3})
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	got, damaged := load(t, dir)
	if len(got) != 3 || got[2] != (rec{"c", 3}) || damaged != 0 {
		t.Fatalf("after close: %v damaged %d", got, damaged)
	}
}

func TestIntervalCheckpoint(t *testing.T) {
	dir := t.TempDir()
	w, err := Append(dir, 1000, 0) // every Add is past the interval
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	w.Add(rec{"a", 1})
	if got, _ := load(t, dir); len(got) != 1 {
		t.Fatalf("interval checkpoint did not sync: %v", got)
	}
}

func TestDamagedLinesAreSkipped(t *testing.T) {
	dir := t.TempDir()
	w, _ := Append(dir, 1, time.Hour)
	w.Add(rec{"a", 1})
	w.Add(rec{"b", 2})
	w.Add(rec{"c", 3})
	w.Close()
	log := filepath.Join(dir, "log")
	data, _ := os.ReadFile(log)
	// Flip a byte inside the second record's JSON and cut the last line short.
	second := len(data) / 3
	data[second+15] ^= 0x01
	data = data[:len(data)-4]
	os.WriteFile(log, data, 0o644)
	got, damaged := load(t, dir)
	if len(got) != 1 || got[0].K != "a" || damaged != 2 {
		t.Fatalf("got %v, damaged %d; want only a, 2 damaged", got, damaged)
	}
}

func TestCompactReplacesSnapshotAndEmptiesLog(t *testing.T) {
	dir := t.TempDir()
	w, _ := Append(dir, 1, time.Hour)
	w.Add(rec{"a", 1})
	w.Add(rec{"b", 2})
	w.Close()
	if err := Compact(dir, []rec{{"b", 2}}); err != nil {
		t.Fatal(err)
	}
	got, _ := load(t, dir)
	if len(got) != 1 || got[0].K != "b" {
		t.Fatalf("after compact: %v", got)
	}
	if st, err := os.Stat(filepath.Join(dir, "log")); err != nil || st.Size() != 0 {
		t.Fatalf("log not emptied: %v %v", st, err)
	}
	// New appends go after the snapshot.
	w, _ = Append(dir, 1, time.Hour)
	w.Add(rec{"c", 3})
	w.Close()
	got, _ = load(t, dir)
	if len(got) != 2 || got[1].K != "c" {
		t.Fatalf("after append: %v", got)
	}
}

func TestLoadMissingDir(t *testing.T) {
	got, damaged := load(t, filepath.Join(t.TempDir(), "none"))
	if len(got) != 0 || damaged != 0 {
		t.Fatalf("%v %d", got, damaged)
	}
}
