package main

import (
	"errors"
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
nothing. It takes no lock, so it works while a run holds the cache (it
then sees what that run has finished). --force plans as if it were given
to run.`,
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
		Short: "Remove cache entries, stored artifacts and export shards no pipeline's latest run references",
		Args:  cobra.NoArgs,
		Long: `Remove the cache entries, stored artifacts and export shards (kept in
the export stage's state) that the latest run of no pipeline sharing the
cache references: every pipeline file that ran on the cache keeps what its
latest run used. A directory that is not a kneepipe
cache is left untouched (exit 2).`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := a.logger()
			if err != nil {
				return err
			}
			r, err := runner.GC(cmd.Context(), cacheDir, wait, log)
			if errors.Is(err, runner.ErrNotCache) {
				return usageError{fmt.Errorf("cache gc --cache %w", err)}
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "removed %d cache entries, %d stored artifacts and %d stored export files\n", r.Entries, r.ArtifactSets, r.StoredFiles)
			return nil
		},
	}
	gc.Flags().StringVar(&cacheDir, "cache", ".kneepipe/cache", "cache directory")
	gc.Flags().DurationVar(&wait, "wait", 0, "wait this long for another run's cache lock")
	cmd.AddCommand(gc)
	return cmd
}
