package main

import (
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/kneepipe/kneepipe/runner"
)

func (a *app) planCommand() *cobra.Command {
	var ex execFlags
	cmd := &cobra.Command{
		Use:   "plan",
		Short: "Say which stages a run would compute and why, and which are cached, without running them",
		Long: `Say which stages a run would compute and why (which parameter or input
changed), and which are cached. It lists the source (no downloads) and reads
manifests, so it can tell whether the bucket changed; it computes and writes
nothing. --force plans as if it were given to run.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, opts, err := ex.prepare(a)
			if err != nil {
				return err
			}
			rep, err := runner.Plan(cmd.Context(), cfg, opts)
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "STAGE\tKIND\tPLAN\tWHY")
			for _, s := range rep.Stages {
				plan := s.Status
				if s.Status == runner.StatusOK {
					plan = "runs"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", s.Name, s.Kind, plan, s.Why)
			}
			return tw.Flush()
		},
	}
	ex.register(cmd)
	return cmd
}

func (a *app) cacheCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "cache", Short: "Maintain the stage cache"}
	var cacheDir string
	var wait time.Duration
	gc := &cobra.Command{
		Use:   "gc",
		Short: "Remove cache entries and stored artifacts the latest run does not reference",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			r, err := runner.GC(cacheDir, wait)
			if err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "removed %d cache entries and %d stored artifacts\n", r.Entries, r.ArtifactSets)
			return nil
		},
	}
	gc.Flags().StringVar(&cacheDir, "cache", ".kneepipe/cache", "cache directory")
	gc.Flags().DurationVar(&wait, "wait", 0, "wait this long for another run's cache lock")
	cmd.AddCommand(gc)
	return cmd
}
