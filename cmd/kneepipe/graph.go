package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/kneepipe/kneepipe/runner"
)

func (a *app) graphCommand() *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "graph",
		Short: "Print the pipeline's DAG as Mermaid or Graphviz DOT",
		Example: `  kneepipe graph > pipeline.mmd
  kneepipe graph --format dot | dot -Tsvg > pipeline.svg`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			cfg, _, err := a.load()
			if err != nil {
				return err
			}
			switch format {
			case "mermaid":
				writeMermaid(a.stdout, cfg)
			case "dot":
				writeDOT(a.stdout, cfg)
			default:
				return usageError{fmt.Errorf("--format %q: want mermaid or dot", format)}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&format, "format", "mermaid", "mermaid or dot")
	return cmd
}

// edgeLabel names the output and input of an edge when they are not the
// defaults, e.g. "disagreements → by".
func edgeLabel(st *runner.Stage, port string, ref runner.Ref, cfg *runner.Config) string {
	for _, up := range cfg.Stages {
		if up.Name == ref.Stage && up.Kind.Outputs[0].Name != ref.Output {
			return ref.Output + " → " + port
		}
	}
	if len(st.Kind.AllInputs()) > 1 {
		return port
	}
	return ""
}

func writeMermaid(w io.Writer, cfg *runner.Config) {
	fmt.Fprintln(w, "flowchart LR")
	id := func(s string) string { return "s_" + strings.NewReplacer("-", "_", ".", "_", "/", "_").Replace(s) }
	for _, st := range cfg.Stages {
		fmt.Fprintf(w, "  %s[\"%s<br/><i>%s</i>\"]\n", id(st.Name), st.Name, st.Kind.Name)
	}
	for _, st := range cfg.Stages {
		for _, port := range sortedPorts(st) {
			ref := st.Inputs[port]
			if l := edgeLabel(st, port, ref, cfg); l != "" {
				fmt.Fprintf(w, "  %s -->|%s| %s\n", id(ref.Stage), l, id(st.Name))
			} else {
				fmt.Fprintf(w, "  %s --> %s\n", id(ref.Stage), id(st.Name))
			}
		}
	}
	for i, art := range cfg.Artifacts {
		aid := fmt.Sprintf("a_%d", i)
		fmt.Fprintf(w, "  %s[/\"%s\"/]\n", aid, strings.Join(art.Files(), "<br/>"))
		fmt.Fprintf(w, "  %s -.->|%s| %s\n", id(art.From.Stage), art.From.Output, aid)
	}
}

func writeDOT(w io.Writer, cfg *runner.Config) {
	fmt.Fprintln(w, "digraph pipeline {\n  rankdir=LR;\n  node [shape=box, fontname=\"Helvetica\"];")
	for _, st := range cfg.Stages {
		fmt.Fprintf(w, "  %q [label=%q];\n", st.Name, st.Name+"\n("+st.Kind.Name+")")
	}
	for _, st := range cfg.Stages {
		for _, port := range sortedPorts(st) {
			ref := st.Inputs[port]
			fmt.Fprintf(w, "  %q -> %q [label=%q];\n", ref.Stage, st.Name, edgeLabel(st, port, ref, cfg))
		}
	}
	for i, art := range cfg.Artifacts {
		aid := fmt.Sprintf("artifact %d", i)
		fmt.Fprintf(w, "  %q [shape=note, label=%q];\n", aid, strings.Join(art.Files(), "\n"))
		fmt.Fprintf(w, "  %q -> %q [style=dashed, label=%q];\n", art.From.Stage, aid, art.From.Output)
	}
	fmt.Fprintln(w, "}")
}

// sortedPorts lists the stage's wired inputs in declaration order (an
// optional input left unwired has no edge).
func sortedPorts(st *runner.Stage) []string {
	var out []string
	for _, p := range st.Kind.AllInputs() {
		if _, ok := st.Inputs[p.Name]; ok {
			out = append(out, p.Name)
		}
	}
	return out
}
