package runner

import (
	"errors"
	"fmt"
	"maps"
	"slices"

	"gopkg.in/yaml.v3"

	"github.com/kneepipe/kneepipe/stages"
)

// checkColumns derives each stage's output schemas in DAG order from its
// kind's declaration, so that a column a stage reads, or an artifact
// selects or renames, is checked before anything runs. It runs after
// checkGraph: every reference resolves and there is no cycle.
func (l *loader) checkColumns(cfg *Config) error {
	order, err := Order(cfg.Stages)
	if err != nil {
		return err
	}
	byName := map[string]*Stage{}
	for _, st := range order {
		byName[st.Name] = st
		in := map[string]stages.Schema{}
		for port, r := range st.Inputs {
			in[port] = byName[r.Stage].Schemas[r.Output]
		}
		if st.Schemas, err = st.Kind.OutputSchemas(st.Params, in); err != nil {
			return l.schemaError(st, err)
		}
	}
	for _, a := range cfg.Artifacts {
		if err := l.checkArtifact(a, byName[a.From.Stage].Schemas[a.From.Output]); err != nil {
			return err
		}
	}
	usedColumns(order, cfg.Artifacts)
	return nil
}

// usedColumns works out, from the last stage back, which columns of each
// output anyone reads: an artifact its `columns:` (every column without,
// or for files), a stage what its kind's Reads says (every column
// without), and sets each stage's Used. An output nobody reads is left
// as the stage makes it. Stages that read the source or the outside world,
// or run per object (a shard's part, merged by key), keep every column:
// their outputs are not narrowed.
func usedColumns(order []*Stage, artifacts []*Artifact) {
	used := map[string]map[string][]string{}
	read := func(ref Ref, cols []string) {
		if used[ref.Stage] == nil {
			used[ref.Stage] = map[string][]string{}
		}
		prev, ok := used[ref.Stage][ref.Output]
		switch {
		case !ok:
			used[ref.Stage][ref.Output] = slices.Clone(cols)
		case prev == nil || cols == nil:
			used[ref.Stage][ref.Output] = nil
		default:
			for _, c := range cols {
				if !slices.Contains(prev, c) {
					prev = append(prev, c)
				}
			}
			used[ref.Stage][ref.Output] = prev
		}
	}
	for _, a := range artifacts {
		if len(a.Columns) > 0 && !slices.Contains(a.Formats, "files") {
			read(a.From, a.Columns)
		} else {
			read(a.From, nil)
		}
	}
	for i := len(order) - 1; i >= 0; i-- {
		st := order[i]
		var reads map[string][]string
		if st.Kind.Reads != nil {
			outs := map[string][]string{}
			for _, p := range st.Kind.Outputs {
				cols, ok := used[st.Name][p.Name]
				if !ok {
					cols = []string{} // nobody reads it
				}
				outs[p.Name] = cols
			}
			reads = st.Kind.Reads(st.Params, outs)
		}
		for _, port := range slices.Sorted(maps.Keys(st.Inputs)) {
			read(st.Inputs[port], reads[port])
		}
		st.Used = nil
		if st.Kind.Source || st.Kind.Volatile || st.Kind.PerObject {
			continue
		}
		for name, cols := range used[st.Name] {
			if cols == nil {
				continue
			}
			if st.Used == nil {
				st.Used = map[string][]string{}
			}
			st.Used[name] = slices.Sorted(slices.Values(cols))
		}
	}
}

// schemaError places a kind's schema error: at the parameter (or its
// list item) that named the column, at the input whose columns do not
// fit, or at the stage.
func (l *loader) schemaError(st *Stage, err error) error {
	prefix := fmt.Sprintf("stage %q: %s: ", st.Name, st.Kind.Name)
	var pe *stages.ParamError
	var ie *stages.InputError
	switch {
	case errors.As(err, &pe):
		at, given := paramNode(st, pe.Param, pe.Item)
		msg := fmt.Sprintf("parameter %q: %s", pe.Param, pe.Msg)
		if !given {
			msg = fmt.Sprintf("parameter %q (default %s): %s", pe.Param, defaultOf(st.Kind, pe.Param), pe.Msg)
		}
		return l.errAt(at, "%s%s", prefix, msg)
	case errors.As(err, &ie):
		r := st.Inputs[ie.Input]
		return &ConfigError{File: l.file, Pos: r.Pos, Msg: fmt.Sprintf("%sinput %q (%s): %s", prefix, ie.Input, r, ie.Msg)}
	}
	return l.errAt(st.node, "%s%v", prefix, err)
}

// paramNode finds a parameter's value in the stage's params (item, 1-based,
// of a list value); a parameter left at its default points at params or
// the stage itself.
func paramNode(st *Stage, param string, item int) (*yaml.Node, bool) {
	if p := st.paramsNode; p != nil && p.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(p.Content); i += 2 {
			if p.Content[i].Value != param {
				continue
			}
			v := p.Content[i+1]
			if item > 0 && v.Kind == yaml.SequenceNode && item <= len(v.Content) {
				return v.Content[item-1], true
			}
			return v, true
		}
		return p, false
	}
	return st.node, false
}

// hasColumns says whether s may hold every column of want, of its type.
func hasColumns(s, want stages.Schema) bool {
	for _, c := range want.Cols {
		col, ok, maybe := s.Lookup(c.Name)
		if !maybe || ok && col.Type != nil && col.Type.ID() != c.Type.ID() {
			return false
		}
	}
	return true
}

func defaultOf(k stages.Kind, param string) string {
	for _, p := range k.Params {
		if p.Name == param {
			return p.FormatDefault()
		}
	}
	return "?"
}

// checkArtifact checks an artifact's columns and renames against the
// schema of the output it writes: every column selected or renamed must
// exist, none twice, and no rename may land on another column's name.
func (l *loader) checkArtifact(a *Artifact, s stages.Schema) error {
	what := fmt.Sprintf("artifact %q: ", a.Name)
	if slices.Contains(a.Formats, "files") && !hasColumns(s, stages.FilesSchema()) && !hasColumns(s, stages.StoredFilesSchema()) {
		return &ConfigError{File: l.file, Pos: a.From.Pos, Msg: what + "format files writes a table of " + stages.FilesSchema().String() + "; " +
			a.From.String() + " has " + s.String() + " (a table of stored files has " + stages.StoredFilesSchema().String() + ")"}
	}
	selected := s
	if len(a.Columns) > 0 {
		selected = stages.Schema{}
		for i, name := range a.Columns {
			at := a.columnsNode.Content[i]
			c, _, maybe := s.Lookup(name)
			switch {
			case !maybe:
				return l.errAt(at, "%scolumns: %s has no column %q%s (columns: %s)", what, a.From, name, stages.Suggest(name, s.Names()), s)
			case slices.Contains(a.Columns[:i], name):
				return l.errAt(at, "%scolumns: %q given twice", what, name)
			}
			selected.Cols = append(selected.Cols, c)
		}
	}
	if a.renameNode == nil {
		return nil
	}
	// Walk the YAML mapping, not a.Rename, for file order and positions.
	targets := map[string]string{}
	for i := 0; i+1 < len(a.renameNode.Content); i += 2 {
		k, v := a.renameNode.Content[i], a.renameNode.Content[i+1]
		from, to := k.Value, v.Value
		// With columns given, selected is closed: maybe is ok.
		if _, _, maybe := selected.Lookup(from); !maybe {
			if len(a.Columns) > 0 {
				return l.errAt(k, "%srename: column %q is not among the artifact's columns", what, from)
			}
			return l.errAt(k, "%srename: %s has no column %q%s (columns: %s)", what, a.From, from, stages.Suggest(from, s.Names()), s)
		}
		if prev, dup := targets[to]; dup {
			return l.errAt(v, "%srename: %q and %q would both be named %q", what, prev, from, to)
		}
		targets[to] = from
		if to == "" {
			return l.errAt(v, "%srename: %q: give a new name", what, from)
		}
		if to != from {
			_, renamedToo := a.Rename[to]
			if _, ok, _ := selected.Lookup(to); ok && !renamedToo {
				return l.errAt(v, "%srename: %q onto %q, which is already a column of %s (rename that one too, or leave it out with columns)", what, from, to, a.From)
			}
		}
	}
	return nil
}
