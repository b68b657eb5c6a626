package main

import (
	"cmp"
	"encoding/csv"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/kneepipe/kneepipe/internal/neardup"
)

// labels holds the optional columns of a corpus's images.csv, by original
// (its file name without .png): patient, and radiograph (files of one
// radiograph share it: copies found in the sources themselves).
type labels struct{ patient, radiograph map[string]string }

// labelsOf reads them; a column that is not there stays nil.
func labelsOf(src string) (labels, error) {
	var l labels
	f, err := os.Open(filepath.Join(src, "images.csv"))
	if err != nil {
		return l, err
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		return l, fmt.Errorf("%s: %w", f.Name(), err)
	}
	if len(rows) == 0 {
		return l, fmt.Errorf("%s: empty, no header", f.Name())
	}
	column := func(name string) map[string]string {
		col := slices.Index(rows[0], name)
		if col < 0 {
			return nil
		}
		out := map[string]string{}
		for _, row := range rows[1:] {
			out[strings.TrimSuffix(filepath.Base(row[0]), ".png")] = row[col]
		}
		return out
	}
	return labels{column("patient"), column("radiograph")}, nil
}

// relation names what two different originals are to each other. Two
// radiographs of one patient are distinct images that may look alike by
// nature (a follow-up, a repeat exposure), so they are counted apart from
// pairs of different patients; one radiograph twice in the source is no
// false pair at all.
func (l labels) relation(a, b string) string {
	switch {
	case l.radiograph[a] != "" && l.radiograph[a] == l.radiograph[b]:
		return "same radiograph in the source"
	case l.patient[a] == "" || l.patient[b] == "":
		return "distinct"
	case l.patient[a] == l.patient[b]:
		return "same patient, other radiograph"
	}
	return "different patients"
}

// patientSplit prints what a tool's grouped pairs of different originals
// are (see relation), and the originals involved.
func patientSplit(tool string, items []item, sets [][]int, l labels) {
	if l.patient == nil && l.radiograph == nil {
		return
	}
	byRelation := map[string]int{}
	origPairs := map[[2]string][]string{} // grouped originals: the kinds of the two files
	for _, members := range sets {
		for x, i := range members {
			for _, j := range members[x+1:] {
				a, b := items[i], items[j]
				if a.root == b.root {
					continue
				}
				byRelation[l.relation(a.root, b.root)]++
				if a.root > b.root {
					a, b = b, a
				}
				k := [2]string{a.root, b.root}
				origPairs[k] = append(origPairs[k], a.kind+"~"+b.kind)
			}
		}
	}
	fmt.Printf("%s: of those, different patients %d, same patient (other radiograph) %d, same radiograph in the source %d; pairs of originals involved: %d\n",
		tool, byRelation["different patients"]+byRelation["distinct"], byRelation["same patient, other radiograph"], byRelation["same radiograph in the source"], len(origPairs))
	keys := slices.SortedFunc(maps.Keys(origPairs), func(p, q [2]string) int { return cmp.Compare(len(origPairs[q]), len(origPairs[p])) })
	for _, k := range keys[:min(len(keys), 8)] {
		fmt.Printf("  %s ~ %s (%s): %d pairs, e.g. %s\n", k[0], k[1], l.relation(k[0], k[1]), len(origPairs[k]), strings.Join(origPairs[k][:min(3, len(origPairs[k]))], ", "))
	}
}

// hardNegatives prints the most similar pairs of distinct originals
// (different patients, and one patient's different radiographs) and the
// least similar planted copy of each kind: the margin the threshold sits
// in on this corpus. It compares all pairs of originals, in both orders.
func hardNegatives(items []item, fps []neardup.Fingerprint, sets [][]int, l labels, threshold float64) {
	type pair struct {
		sim  float64
		a, b int
	}
	sim := func(i, j int) float64 {
		return max(neardup.Similarity(&fps[i], &fps[j]), neardup.Similarity(&fps[j], &fps[i]))
	}
	var origs []int
	orig := map[string]int{}
	for i, it := range items {
		if it.kind == "orig" {
			origs = append(origs, i)
			orig[it.root] = i
		}
	}
	byRelation := map[string][]pair{}
	for x, i := range origs {
		for _, j := range origs[x+1:] {
			r := l.relation(items[i].root, items[j].root)
			byRelation[r] = append(byRelation[r], pair{sim(i, j), i, j})
		}
	}
	show := func(what string, ps []pair) {
		if len(ps) == 0 {
			return
		}
		slices.SortFunc(ps, func(p, q pair) int { return cmp.Compare(q.sim, p.sim) })
		above := 0
		for _, p := range ps {
			if p.sim >= threshold {
				above++
			}
		}
		fmt.Printf("hard negatives, %s: %d pairs, %d at or above %.3f; median %.4f; most similar:\n", what, len(ps), above, threshold, ps[len(ps)/2].sim)
		for _, p := range ps[:min(3, len(ps))] {
			fmt.Printf("  %.4f %s ~ %s\n", p.sim, items[p.a].root, items[p.b].root)
		}
	}
	for _, r := range []string{"distinct", "different patients", "same patient, other radiograph", "same radiograph in the source"} {
		show(r, byRelation[r])
	}
	for _, k := range kinds {
		least := pair{sim: 2}
		for i, it := range items {
			if it.kind == k.name {
				if s := neardup.Similarity(&fps[orig[it.root]], &fps[i]); s < least.sim {
					least = pair{s, orig[it.root], i}
				}
			}
		}
		if least.sim <= 1 {
			fmt.Printf("least similar %s copy: %.4f (%s)\n", k.name, least.sim, items[least.b].path)
		}
	}
	missed(items, fps, sets, orig)
}

// missed prints each copy of a recall kind that is not in its original's
// group, with its similarity to the original.
func missed(items []item, fps []neardup.Fingerprint, sets [][]int, orig map[string]int) {
	setOf := map[int]int{}
	for s, members := range sets {
		for _, i := range members {
			setOf[i] = s + 1
		}
	}
	separate := map[string]bool{}
	for _, k := range kinds {
		separate[k.name] = k.separate
	}
	for i, it := range items {
		o := orig[it.root]
		if it.kind == "orig" || separate[it.kind] || (setOf[i] != 0 && setOf[i] == setOf[o]) {
			continue
		}
		fmt.Printf("missed %s copy %s: similarity to its original %.4f (grouped: %v)\n", it.kind, it.path, neardup.Similarity(&fps[o], &fps[i]), setOf[i] != 0)
	}
}
