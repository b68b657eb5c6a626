package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/kneepipe/kneepipe/stages"
)

func (a *app) stagesCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "stages [KIND...]",
		Short: "List the stage kinds with their inputs, outputs and parameters",
		RunE: func(_ *cobra.Command, args []string) error {
			names := args
			if len(names) == 0 {
				names = a.kinds.Names()
			}
			for i, n := range names {
				k, ok := a.kinds[n]
				if !ok {
					return usageError{fmt.Errorf("unknown stage kind %q%s (known: %s)", n, stages.Suggest(n, a.kinds.Names()), strings.Join(a.kinds.Names(), ", "))}
				}
				if i > 0 {
					fmt.Fprintln(a.stdout)
				}
				describeKind(a.stdout, k)
			}
			return nil
		},
	}
}

// describeKind prints a kind's declaration: the same one the loader checks
// pipelines against.
func describeKind(w io.Writer, k stages.Kind) {
	fmt.Fprintf(w, "%s\n  %s\n", k.Name, k.Doc)
	ports := func(title string, ps []stages.Port) {
		if len(ps) == 0 {
			return
		}
		fmt.Fprintf(w, "  %s:\n", title)
		for _, p := range ps {
			fmt.Fprintf(w, "    %-14s %s\n", p.Name, p.Doc)
		}
	}
	ports("inputs", k.Inputs)
	ports("optional inputs (may be left unwired)", k.OptionalInputs)
	ports("outputs (the first is the default)", k.Outputs)
	// The columns the loader checks pipelines against, here with default
	// parameters; read's depend on its required path.
	if schemas, err := k.DefaultSchemas(); err == nil && len(k.Outputs) > 0 {
		fmt.Fprintln(w, "  output columns (with default params):")
		for _, p := range k.Outputs {
			fmt.Fprintf(w, "    %-14s %s\n", p.Name, schemas[p.Name])
		}
	}
	if len(k.Params) > 0 {
		fmt.Fprintln(w, "  params:")
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		for _, p := range k.Params {
			fmt.Fprintf(tw, "    %s\t%s\t%s\t%s\n", p.Name, p.Type, p.FormatDefault(), p.Doc)
		}
		tw.Flush()
	}
}
