package stages

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/kneepipe/kneepipe/internal/table"
)

// Exclusion reasons, in the order the default pipeline drops objects.
const (
	ReasonFailed       = "failed"         // could not be fetched
	ReasonRejected     = "rejected"       // fetched but unusable, or its path does not fit
	ReasonDuplicate    = "duplicate"      // a rater's second copy of the same bytes
	ReasonDisagreement = "disagreement"   // the raters graded the image differently
	ReasonMissingRater = "missing_rater"  // some rater did not grade the image
	ReasonNearDup      = "near_duplicate" // a near-duplicate of a kept image
	ReasonUnexplained  = "unexplained"    // not in clean, and no input says why
)

func exclusionsKind() Kind {
	return Kind{
		Name: "exclusions",
		Doc: "Accounts for every listed object that is not in the clean table, once, in listing order, with its reason: " +
			"failed (the error), rejected (the reason), duplicate (of which kept copy), disagreement (the grades), missing_rater (graded by some raters only), near_duplicate (of which kept image, with the similarity), " +
			"unexplained (not in clean, and no input says why). Every other listed object is in clean through the row of its image, so clean + excluded = listed.",
		Inputs: []Port{
			{"objects", "the listed objects (list's objects): key, and relative_path when present"},
			{"list_rejected", "listed keys no stage can read (list's rejected): key, reason"},
			{"failed", "objects that could not be fetched (fetch-hash's failed): key, error, attempts when present"},
			{"fetch_rejected", "objects fetched but unusable (fetch-hash's rejected): key, reason"},
			{"rejected", "rows whose path does not fit (map-severity's rejected): key, reason"},
			{"rows", "the de-duplicated rows the raters were compared on (dedupe's rows): key, item, the dedupe's key columns"},
			{"removed", "the duplicates dropped (dedupe's removed)"},
			{"disagreements", "the items dropped for disagreeing (cross-check's disagreements): item plus one grade column per rater, null where the rater lacks it"},
			{"clean", "the clean table: its item column"},
		},
		OptionalInputs: []Port{
			{"near_groups", "near-duplicate groups (near-duplicates' groups): group, item, similarity; the first row of a group is its kept representative"},
		},
		Outputs: []Port{{"excluded", "key, relative_path, reason, detail, kept_key, kept_relative_path (the copy kept, for duplicates and near-duplicates): one row per excluded listed object, in listing order"}},
		Params: []Param{
			{Name: "key", Type: String, Default: "key", Doc: "object key column"},
			{Name: "path", Type: String, Default: "relative_path", Doc: "path column copied to the output (used when present)"},
			{Name: "item", Type: String, Default: "file_id", Doc: "column identifying an image across raters"},
			{Name: "on", Type: Strings, Default: []string{"expert", "file_id"}, Doc: "the columns the dedupe stage de-duplicated on: a removed row is a duplicate of the kept row with the same values"},
			{Name: "grade", Type: String, Default: "severity", Doc: "grade column; a duplicate graded differently from its kept copy says so (used when present)"},
		},
		Schema: exclusionsSchema,
		New: func(p Params) (Stage, error) {
			if len(p.Strings("on")) == 0 {
				return nil, fmt.Errorf("on: name at least one column")
			}
			return &exclusions{key: p.Str("key"), path: p.Str("path"), item: p.Str("item"), on: p.Strings("on"), grade: p.Str("grade")}, nil
		},
	}
}

// exclusionsSchema checks the columns the stage reads; its output is six
// string columns.
func exclusionsSchema(p Params, in map[string]Schema) (map[string]Schema, error) {
	key, path, item := p.Str("key"), p.Str("path"), p.Str("item")
	for _, port := range []string{"objects", "list_rejected", "failed", "fetch_rejected", "rejected", "rows", "removed"} {
		if err := need(in, port, "key", 0, key, StringType); err != nil {
			return nil, err
		}
	}
	for _, c := range []struct{ port, name string }{{"failed", "error"}, {"list_rejected", "reason"}, {"fetch_rejected", "reason"}, {"rejected", "reason"}} {
		if err := need(in, c.port, "", 0, c.name, StringType); err != nil {
			return nil, err
		}
	}
	if _, ok, _ := in["failed"].Lookup("attempts"); ok {
		if err := need(in, "failed", "", 0, "attempts", Int64Type); err != nil {
			return nil, err
		}
	}
	ports := []string{"rows", "disagreements", "clean"}
	if _, ok := in["near_groups"]; ok {
		if err := need(in, "near_groups", "", 0, "group", Int64Type); err != nil {
			return nil, err
		}
		if err := need(in, "near_groups", "", 0, "similarity", Float64Type); err != nil {
			return nil, err
		}
		ports = append(ports, "near_groups")
	}
	for _, port := range ports {
		if err := need(in, port, "item", 0, item, nil); err != nil {
			return nil, err
		}
	}
	for _, port := range []string{"rows", "removed"} {
		for i, c := range p.Strings("on") {
			if err := need(in, port, "on", i+1, c, nil); err != nil {
				return nil, err
			}
		}
	}
	for _, port := range []string{"objects", "rows"} {
		if _, ok, _ := in[port].Lookup(path); ok {
			if err := need(in, port, "path", 0, path, StringType); err != nil {
				return nil, err
			}
		}
	}
	cols := make([]Col, 0, 6)
	for _, name := range []string{key, "relative_path", "reason", "detail", "kept_key", "kept_relative_path"} {
		cols = append(cols, Col{name, StringType})
	}
	return map[string]Schema{"excluded": Closed(cols...)}, nil
}

type exclusions struct {
	key, path, item, grade string
	on                     []string
}

// exclusion is why one listed object is not in the clean table.
type exclusion struct {
	reason, detail    string
	keptKey, keptPath string
}

func (s *exclusions) Run(ctx context.Context, env *Env, in map[string]arrow.RecordBatch) (*Result, error) {
	// Each input names the objects one stage dropped, in pipeline order: an
	// object dropped early never reaches a later stage, and should a key be
	// named twice the first reason stands. A further reason (say,
	// near-duplicates of a kept image) is one more input and one more step
	// here, in its place in the pipeline.
	why := map[string]exclusion{}
	note := func(key string, e exclusion) {
		if _, ok := why[key]; !ok {
			why[key] = e
		}
	}
	for _, step := range []func() error{
		func() error { return s.rejections(in, "list_rejected", note) },
		func() error { return s.failures(in, note) },
		func() error { return s.rejections(in, "fetch_rejected", note) },
		func() error { return s.rejections(in, "rejected", note) },
		func() error { return s.duplicates(in, note) },
		func() error { return s.disagreements(in, note) },
		func() error { return s.nearDuplicates(in, note) },
	} {
		if err := step(); err != nil {
			return nil, err
		}
	}
	return s.account(env, in, why)
}

// account walks the listing: an object no input names is in clean when
// its image is; anything else is unexplained.
func (s *exclusions) account(env *Env, in map[string]arrow.RecordBatch, why map[string]exclusion) (*Result, error) {
	objects, err := input(in, "objects")
	if err != nil {
		return nil, err
	}
	keys, err := table.StringCol(objects, s.key)
	if err != nil {
		return nil, fmt.Errorf("objects: %w", err)
	}
	paths := optionalString(objects, s.path)
	rows, err := input(in, "rows")
	if err != nil {
		return nil, err
	}
	rowKeys, rowItems, err := s.keyItem(rows, "rows")
	if err != nil {
		return nil, err
	}
	itemOf := make(map[string]string, rowKeys.Len())
	for i := range rowKeys.Len() {
		itemOf[rowKeys.Value(i)] = table.Text(rowItems, i)
	}
	clean, err := input(in, "clean")
	if err != nil {
		return nil, err
	}
	ci, err := table.Index(clean, s.item)
	if err != nil {
		return nil, fmt.Errorf("clean: %w", err)
	}
	inClean := map[string]bool{}
	for i := range clean.Column(ci).Len() {
		inClean[table.Text(clean.Column(ci), i)] = true
	}

	// Keys the listing rejected are not among its objects: they follow them.
	listRejected, err := input(in, "list_rejected")
	if err != nil {
		return nil, err
	}
	rejectedKeys, err := table.StringCol(listRejected, s.key)
	if err != nil {
		return nil, fmt.Errorf("list_rejected: %w", err)
	}
	var out [6][]string
	counts := map[string]int{}
	seen := make(map[string]bool, keys.Len())
	for i := range keys.Len() + rejectedKeys.Len() {
		key, path := "", ""
		if i < keys.Len() {
			key = keys.Value(i)
			if paths != nil {
				path = paths.Value(i)
			}
		} else {
			key = rejectedKeys.Value(i - keys.Len())
		}
		if seen[key] {
			continue // a key is one object, accounted for once
		}
		seen[key] = true
		e, ok := why[key]
		if !ok {
			item, compared := itemOf[key]
			if compared && inClean[item] {
				continue
			}
			e = exclusion{reason: ReasonUnexplained, detail: "not among the compared rows, and no input says why"}
			if compared {
				e.detail = "its image is not in clean, and no input says why"
			}
		}
		for c, v := range []string{key, path, e.reason, e.detail, e.keptKey, e.keptPath} {
			out[c] = append(out[c], v)
		}
		counts[e.reason]++
	}
	var warnings []string
	if counts[ReasonUnexplained] > 0 {
		warn(env, &warnings, "objects not in clean for no known reason", "objects", counts[ReasonUnexplained])
	}
	cols := make([]table.Column, len(out))
	for c, name := range []string{s.key, "relative_path", "reason", "detail", "kept_key", "kept_relative_path"} {
		cols[c] = table.Strings(env.Mem, name, out[c])
	}
	return &Result{Outputs: map[string]arrow.RecordBatch{"excluded": table.New(cols...)}, Warnings: warnings}, nil
}

// failures notes fetch failures with their error (and attempts).
func (s *exclusions) failures(in map[string]arrow.RecordBatch, note func(string, exclusion)) error {
	rec, err := input(in, "failed")
	if err != nil {
		return err
	}
	keys, err := table.StringCol(rec, s.key)
	if err != nil {
		return fmt.Errorf("failed: %w", err)
	}
	errs, err := table.StringCol(rec, "error")
	if err != nil {
		return fmt.Errorf("failed: %w", err)
	}
	attempts, _ := table.Int64Col(rec, "attempts")
	for i := range keys.Len() {
		detail := errs.Value(i)
		if attempts != nil && attempts.IsValid(i) {
			detail += " (" + strconv.FormatInt(attempts.Value(i), 10) + " attempts)"
		}
		note(keys.Value(i), exclusion{reason: ReasonFailed, detail: detail})
	}
	return nil
}

// rejections notes rejected objects with their reason.
func (s *exclusions) rejections(in map[string]arrow.RecordBatch, port string, note func(string, exclusion)) error {
	rec, err := input(in, port)
	if err != nil {
		return err
	}
	keys, err := table.StringCol(rec, s.key)
	if err != nil {
		return fmt.Errorf("%s: %w", port, err)
	}
	reasons, err := table.StringCol(rec, "reason")
	if err != nil {
		return fmt.Errorf("%s: %w", port, err)
	}
	for i := range keys.Len() {
		note(keys.Value(i), exclusion{reason: ReasonRejected, detail: reasons.Value(i)})
	}
	return nil
}

// duplicates notes every removed row as a duplicate of the kept row with
// the same values on the dedupe's columns.
func (s *exclusions) duplicates(in map[string]arrow.RecordBatch, note func(string, exclusion)) error {
	kept, err := input(in, "rows")
	if err != nil {
		return err
	}
	removed, err := input(in, "removed")
	if err != nil {
		return err
	}
	keptOn, err := namedColumns(kept, s.on, "rows")
	if err != nil {
		return err
	}
	removedOn, err := namedColumns(removed, s.on, "removed")
	if err != nil {
		return err
	}
	keptKeys, err := table.StringCol(kept, s.key)
	if err != nil {
		return fmt.Errorf("rows: %w", err)
	}
	removedKeys, err := table.StringCol(removed, s.key)
	if err != nil {
		return fmt.Errorf("removed: %w", err)
	}
	keptPaths := optionalString(kept, s.path)
	keptGrade, removedGrade := optionalColumn(kept, s.grade), optionalColumn(removed, s.grade)
	first := make(map[string]int, keptKeys.Len())
	for i := range keptKeys.Len() {
		if k := groupKey(keptOn, i); first[k] == 0 {
			first[k] = i + 1
		}
	}
	same := "same " + strings.Join(s.on, ", ") + " as the kept copy"
	for i := range removedKeys.Len() {
		e := exclusion{reason: ReasonDuplicate, detail: same}
		if k := first[groupKey(removedOn, i)]; k > 0 {
			e.keptKey = keptKeys.Value(k - 1)
			if keptPaths != nil {
				e.keptPath = keptPaths.Value(k - 1)
			}
			if keptGrade != nil && removedGrade != nil {
				if a, b := table.Text(removedGrade, i), table.Text(keptGrade, k-1); a != b {
					e.detail += fmt.Sprintf("; %s %s here, %s on the kept copy", s.grade, removedGrade.ValueStr(i), keptGrade.ValueStr(k-1))
				}
			}
		} else {
			e.detail = "removed as a duplicate, but no kept row has the same " + strings.Join(s.on, ", ")
		}
		note(removedKeys.Value(i), e)
	}
	return nil
}

// disagreements notes every compared row whose item the raters disagree
// on, or some rater lacks.
func (s *exclusions) disagreements(in map[string]arrow.RecordBatch, note func(string, exclusion)) error {
	dis, err := input(in, "disagreements")
	if err != nil {
		return err
	}
	di, err := table.Index(dis, s.item)
	if err != nil {
		return fmt.Errorf("disagreements: %w", err)
	}
	byItem := make(map[string]exclusion, dis.NumRows())
	for i := range int(dis.NumRows()) {
		var graded, lacking []string // "rater grade", and rater names
		grades := map[string]bool{}
		for c := range int(dis.NumCols()) {
			if c == di {
				continue
			}
			col := dis.Column(c)
			if col.IsNull(i) {
				lacking = append(lacking, dis.ColumnName(c))
				continue
			}
			graded = append(graded, dis.ColumnName(c)+" "+col.ValueStr(i))
			grades[col.ValueStr(i)] = true
		}
		e := exclusion{reason: ReasonDisagreement, detail: strings.Join(graded, ", ")}
		if len(grades) <= 1 {
			e.reason = ReasonMissingRater // the raters present agree
		}
		if len(lacking) > 0 {
			e.detail = strings.TrimPrefix(e.detail+"; not graded by "+strings.Join(lacking, ", "), "; ")
		}
		byItem[table.Text(dis.Column(di), i)] = e
	}
	rows, err := input(in, "rows")
	if err != nil {
		return err
	}
	keys, items, err := s.keyItem(rows, "rows")
	if err != nil {
		return err
	}
	for i := range keys.Len() {
		if e, ok := byItem[table.Text(items, i)]; ok {
			note(keys.Value(i), e)
		}
	}
	return nil
}

// nearDuplicates notes every compared row whose image is a near-duplicate
// copy (a group member after the first) with the group's kept image: its
// row in clean (key and path), or else its first compared row.
func (s *exclusions) nearDuplicates(in map[string]arrow.RecordBatch, note func(string, exclusion)) error {
	groups, ok := in["near_groups"]
	if !ok || groups == nil {
		return nil // not wired: no near-duplicate step
	}
	gi, err := table.Int64Col(groups, "group")
	if err != nil {
		return fmt.Errorf("near_groups: %w", err)
	}
	ii, err := table.Index(groups, s.item)
	if err != nil {
		return fmt.Errorf("near_groups: %w", err)
	}
	si, err := table.Index(groups, "similarity")
	if err != nil {
		return fmt.Errorf("near_groups: %w", err)
	}
	items, sims := groups.Column(ii), groups.Column(si).(*array.Float64)
	type copyOf struct {
		kept  string // the representative's item
		group int64
		sim   float64
	}
	copies := map[string]copyOf{}
	var rep string
	for i := range gi.Len() {
		if i == 0 || gi.Value(i) != gi.Value(i-1) {
			rep = table.Text(items, i)
			continue
		}
		if it := table.Text(items, i); it != rep {
			copies[it] = copyOf{kept: rep, group: gi.Value(i), sim: sims.Value(i)}
		}
	}
	if len(copies) == 0 {
		return nil
	}
	keptAt := map[string][2]string{} // item: key, path of its kept row
	for _, port := range []string{"clean", "rows"} {
		rec, err := input(in, port)
		if err != nil {
			return err
		}
		keys, _ := table.StringCol(rec, s.key)
		paths := optionalString(rec, s.path)
		ci, err := table.Index(rec, s.item)
		if err != nil || keys == nil {
			continue
		}
		for i := range keys.Len() {
			it := table.Text(rec.Column(ci), i)
			if _, ok := keptAt[it]; ok {
				continue
			}
			kp := [2]string{keys.Value(i)}
			if paths != nil {
				kp[1] = paths.Value(i)
			}
			keptAt[it] = kp
		}
	}
	rows, err := input(in, "rows")
	if err != nil {
		return err
	}
	keys, rowItems, err := s.keyItem(rows, "rows")
	if err != nil {
		return err
	}
	for i := range keys.Len() {
		c, ok := copies[table.Text(rowItems, i)]
		if !ok {
			continue
		}
		kp := keptAt[c.kept]
		note(keys.Value(i), exclusion{
			reason:   ReasonNearDup,
			detail:   fmt.Sprintf("near-duplicate group %d: similarity %.4f to the kept image", c.group, c.sim),
			keptKey:  kp[0],
			keptPath: kp[1],
		})
	}
	return nil
}

// keyItem returns a table's key and item columns.
func (s *exclusions) keyItem(rec arrow.RecordBatch, port string) (*table.StringCells, arrow.Array, error) {
	keys, err := table.StringCol(rec, s.key)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", port, err)
	}
	i, err := table.Index(rec, s.item)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", port, err)
	}
	return keys, rec.Column(i), nil
}

// namedColumns returns the named columns of rec.
func namedColumns(rec arrow.RecordBatch, names []string, port string) ([]arrow.Array, error) {
	out := make([]arrow.Array, len(names))
	for i, name := range names {
		idx, err := table.Index(rec, name)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", port, err)
		}
		out[i] = rec.Column(idx)
	}
	return out, nil
}

// groupKey joins a row's values, length-prefixed so that no value can fake
// a column boundary (as dedupe does).
func groupKey(cols []arrow.Array, i int) string {
	var sb strings.Builder
	for _, c := range cols {
		v := table.Text(c, i)
		sb.WriteString(strconv.Itoa(len(v)))
		sb.WriteByte(':')
		sb.WriteString(v)
	}
	return sb.String()
}

func optionalString(rec arrow.RecordBatch, name string) *table.StringCells {
	c, _ := table.StringCol(rec, name)
	return c
}

func optionalColumn(rec arrow.RecordBatch, name string) arrow.Array {
	i, err := table.Index(rec, name)
	if err != nil {
		return nil
	}
	return rec.Column(i)
}
