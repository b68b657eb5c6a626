package main

import (
	"os"
	"path/filepath"
	"testing"
)

func TestLabelsRelation(t *testing.T) {
	dir := t.TempDir()
	csv := "path,patient,source,source_file,radiograph\n" +
		"a/a-0001.png,p1,a,x.png,a/a-0001.png\n" +
		"a/a-0002.png,p1,a,y.png,a/a-0002.png\n" +
		"b/b-0003.png,p2,b,z.jpg,a/a-0001.png\n" +
		"b/b-0004.png,p3,b,w.jpg,b/b-0004.png\n"
	if err := os.WriteFile(filepath.Join(dir, "images.csv"), []byte(csv), 0o644); err != nil {
		t.Fatal(err)
	}
	l, err := labelsOf(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ a, b, want string }{
		{"a-0001", "a-0002", "same patient, other radiograph"},
		{"a-0001", "b-0003", "same radiograph in the source"}, // other patient ids, one radiograph
		{"a-0002", "b-0004", "different patients"},
		{"a-0001", "unknown", "distinct"}, // not in images.csv: no label matches
	} {
		if got := l.relation(c.a, c.b); got != c.want {
			t.Errorf("relation(%s, %s) = %q, want %q", c.a, c.b, got, c.want)
		}
	}

	// knee-dev's images.csv has a patient column and no radiograph column.
	if err := os.WriteFile(filepath.Join(dir, "images.csv"), []byte("path,patient,side\n3/9000296L.png,9000296,L\n2/9000296R.png,9000296,R\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if l, err = labelsOf(dir); err != nil {
		t.Fatal(err)
	}
	if l.radiograph != nil {
		t.Errorf("radiograph labels %v from a file without that column", l.radiograph)
	}
	if got := l.relation("9000296L", "9000296R"); got != "same patient, other radiograph" {
		t.Errorf("left and right knee: %q", got)
	}
}
