package report

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// splitInput is a crafted split table: keys split_group, file_id, patient.
func splitInput(rows ...SplitRow) *SplitRows {
	return &SplitRows{Order: []string{"train", "val", "test"}, Keys: []string{"split_group", "file_id", "patient"}, Rows: rows}
}

func TestSplitAuditCountsAndShares(t *testing.T) {
	in := splitInput(
		SplitRow{Split: "train", Grade: 0, Keys: []string{"patient=1", "a", "1"}},
		SplitRow{Split: "train", Grade: 0, Keys: []string{"patient=1", "b", "1"}},
		SplitRow{Split: "train", Grade: 1, Keys: []string{"patient=2", "c", "2"}},
		SplitRow{Split: "test", Grade: 1, Keys: []string{"patient=3", "d", "3"}},
		SplitRow{Split: "test", Grade: 0, Keys: []string{"file_id=e", "e", ""}}, // no patient: links nothing
	)
	r := build(t, Input{Splits: in}, Options{})
	a := r.Summary.Splits
	if a == nil || a.Rows != 5 || a.Groups != 4 || a.Leaks != 0 {
		t.Fatalf("audit %+v", a)
	}
	if len(a.Splits) != 3 || a.Splits[0].Split != "train" || a.Splits[1].Split != "val" || a.Splits[2].Split != "test" {
		t.Fatalf("splits %+v", a.Splits)
	}
	train := a.Splits[0]
	if train.Rows != 3 || train.Groups != 2 || train.Grades[0].Rows != 2 || train.Grades[0].Share != 2.0/3 || train.Grades[1].InSplit != 1.0/3 {
		t.Errorf("train %+v", train)
	}
	if a.Keys[2].Column != "patient" || a.Keys[2].Values != 3 {
		t.Errorf("patient check %+v", a.Keys[2])
	}
	// val is empty: it lacks both grades, a warning on the page.
	if len(a.Missing) != 2 || a.Missing[0].Split != "val" || len(a.Warnings) != 1 || !strings.Contains(a.Warnings[0], "split val has no row of grade 0") {
		t.Errorf("missing %+v, warnings %q", a.Missing, a.Warnings)
	}
	page, err := r.HTML()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(page, []byte("No group crosses splits")) || bytes.Contains(page, []byte(`class="fail"`)) {
		t.Error("a pure split is not shown as such")
	}
	if !bytes.Contains(page, []byte("A split lacks a grade.")) {
		t.Error("the split lacking a grade is not on the page")
	}
	js, _ := r.JSON()
	var back struct {
		Splits struct {
			Splits []struct {
				Grades []struct {
					Share float64 `json:"share"`
				} `json:"grades"`
			} `json:"splits"`
		} `json:"splits"`
	}
	if err := json.Unmarshal(js, &back); err != nil || back.Splits.Splits[0].Grades[0].Share != 2.0/3 {
		t.Errorf("summary.json lacks the per-grade shares: %s", js)
	}
}

// A crafted leak, whatever the split stage claimed: a patient in train and
// test (two different split groups), and one split_group in two splits.
func TestSplitAuditFindsLeaks(t *testing.T) {
	in := splitInput(
		SplitRow{Split: "train", Grade: 0, Keys: []string{"file_id=a", "a", "9000001"}},
		SplitRow{Split: "test", Grade: 0, Keys: []string{"file_id=b", "b", "9000001"}},
		SplitRow{Split: "val", Grade: 1, Keys: []string{"file_id=c", "c", "9000002"}},
		SplitRow{Split: "train", Grade: 1, Keys: []string{"file_id=c", "c", "9000002"}},
	)
	r := build(t, Input{Splits: in}, Options{})
	a := r.Summary.Splits
	// patient 9000001 and 9000002, split_group file_id=c, file_id c.
	if a.Leaks != 4 {
		t.Fatalf("%d leaks, want 4: %+v", a.Leaks, a.Keys)
	}
	var patient KeyAudit
	for _, k := range a.Keys {
		if k.Column == "patient" {
			patient = k
		}
	}
	if patient.Crossing != 2 || patient.Examples[0].Value != "9000001" || patient.Examples[0].Splits["train"] != 1 || patient.Examples[0].Splits["test"] != 1 {
		t.Errorf("patient check %+v", patient)
	}
	if k := a.Keys[0]; k.Column != "split_group" || k.Crossing != 1 || k.Examples[0].Value != "file_id=c" || k.Examples[0].Splits["val"] != 1 || k.Examples[0].Splits["train"] != 1 {
		t.Errorf("split_group check %+v", k)
	}
	page, err := r.HTML()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`class="fail"`, "Leak: 4 group values are in more than one split", "9000001", `<div class="tile fail">`} {
		if !bytes.Contains(page, []byte(want)) {
			t.Errorf("page lacks %q", want)
		}
	}
	if bytes.Contains(page, []byte("No group crosses splits")) {
		t.Error("a leaking split is shown as pure")
	}
}

func TestSplitAuditNotKnown(t *testing.T) {
	r := build(t, Input{}, Options{})
	if r.Summary.Splits != nil {
		t.Fatal("an audit without splits")
	}
	page, _ := r.HTML()
	if !bytes.Contains(page, []byte("the report was given no split rows")) {
		t.Error("the splits section does not say it is not known")
	}
	js, _ := r.JSON()
	if !bytes.Contains(js, []byte(`"splits": null`)) {
		t.Errorf("summary %s", js)
	}
	if _, err := auditSplits(&SplitRows{Keys: []string{"a"}, Rows: []SplitRow{{Split: "x"}}}, r.gradeName); err == nil {
		t.Error("a row without its keys was accepted")
	}
}
