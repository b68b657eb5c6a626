package runner

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/kneepipe/kneepipe/stages"
)

// checkGraph resolves every input and artifact reference, rejects
// duplicate stage names and cycles, and leaves cfg.Stages in file order.
func (l *loader) checkGraph(cfg *Config) error {
	byName := map[string]*Stage{}
	for _, st := range cfg.Stages {
		if prev, dup := byName[st.Name]; dup {
			return &ConfigError{File: l.file, Pos: st.Pos, Msg: fmt.Sprintf("duplicate stage name %q (first at line %d)", st.Name, prev.Pos.Line)}
		}
		byName[st.Name] = st
	}
	resolve := func(r *Ref, what string) error {
		up, ok := byName[r.Stage]
		if !ok {
			names := slices.Sorted(maps.Keys(byName))
			return &ConfigError{File: l.file, Pos: r.Pos, Msg: what + ": no stage named " + quote(r.Stage) + stages.Suggest(r.Stage, names) + " (stages: " + strings.Join(names, ", ") + ")"}
		}
		if r.Output == "" {
			r.Output = up.Kind.Outputs[0].Name
		}
		if !up.Kind.Output(r.Output) {
			return &ConfigError{File: l.file, Pos: r.Pos, Msg: what + ": stage " + quote(up.Name) + " (" + up.Kind.Name + ") has no output " + quote(r.Output) + stages.Suggest(r.Output, portList(up.Kind.Outputs)) + " (outputs: " + portNames(up.Kind.Outputs) + ")"}
		}
		return nil
	}
	for _, st := range cfg.Stages {
		for _, port := range slices.Sorted(maps.Keys(st.Inputs)) {
			r := st.Inputs[port]
			if err := resolve(&r, "stage "+quote(st.Name)+" input "+quote(port)); err != nil {
				return err
			}
			st.Inputs[port] = r
		}
	}
	files := map[string]bool{}
	for _, a := range cfg.Artifacts {
		if err := resolve(&a.From, "artifact "+quote(a.Name)); err != nil {
			return err
		}
		for _, f := range a.Files() {
			if files[f] {
				return &ConfigError{File: l.file, Pos: a.Pos, Msg: "artifact file " + quote(f) + " is written twice"}
			}
			files[f] = true
		}
	}
	if _, err := Order(cfg.Stages); err != nil {
		ce := err.(*ConfigError)
		ce.File = l.file
		return ce
	}
	return nil
}

// Order returns the stages so that every stage comes after its inputs,
// keeping file order where the graph allows. A cycle is a *ConfigError.
func Order(list []*Stage) ([]*Stage, error) {
	state := map[string]int{} // 0 new, 1 on the path, 2 done
	byName := map[string]*Stage{}
	for _, st := range list {
		byName[st.Name] = st
	}
	var out []*Stage
	var path []string
	var visit func(st *Stage) error
	visit = func(st *Stage) error {
		switch state[st.Name] {
		case 1:
			start := 0
			for i, n := range path {
				if n == st.Name {
					start = i
				}
			}
			cycle := append(append([]string(nil), path[start:]...), st.Name)
			return &ConfigError{Pos: st.Pos, Msg: "cycle: " + strings.Join(cycle, " -> ")}
		case 2:
			return nil
		}
		state[st.Name] = 1
		path = append(path, st.Name)
		for _, port := range slices.Sorted(maps.Keys(st.Inputs)) {
			if up, ok := byName[st.Inputs[port].Stage]; ok {
				if err := visit(up); err != nil {
					return err
				}
			}
		}
		path = path[:len(path)-1]
		state[st.Name] = 2
		out = append(out, st)
		return nil
	}
	for _, st := range list {
		if err := visit(st); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func quote(s string) string { return fmt.Sprintf("%q", s) }
