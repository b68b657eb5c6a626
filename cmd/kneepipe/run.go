package main

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/kneepipe/kneepipe/runner"
)

// sourceFlags override the pipeline's source: block.
type sourceFlags struct{ uri, endpoint, region, pathStyle string }

func (s *sourceFlags) register(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&s.uri, "source", "", "override source.uri: s3://bucket/prefix/ or a directory")
	f.StringVar(&s.endpoint, "endpoint", "", "override source.endpoint (S3 endpoint URL)")
	f.StringVar(&s.region, "region", "", "override source.region")
	f.StringVar(&s.pathStyle, "path-style", "", "override source.path_style: true or false")
}

func (s *sourceFlags) apply(cfg *runner.Config) error {
	if s.uri != "" {
		cfg.Source.URI = s.uri
	}
	if s.endpoint != "" {
		cfg.Source.Endpoint = s.endpoint
	}
	if s.region != "" {
		cfg.Source.Region = s.region
	}
	if s.pathStyle != "" {
		b, err := strconv.ParseBool(s.pathStyle)
		if err != nil {
			return usageError{fmt.Errorf("--path-style %q: want true or false", s.pathStyle)}
		}
		cfg.Source.PathStyle = &b
	}
	return nil
}

// execFlags are the flags run and plan share.
type execFlags struct {
	cacheDir string
	src      sourceFlags
	force    []string
	wait     time.Duration
}

func (e *execFlags) register(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&e.cacheDir, "cache", ".kneepipe/cache", "directory for cached stage outputs")
	f.StringSliceVar(&e.force, "force", nil, "recompute all stages (--force) or the named ones (--force=STAGE)")
	f.Lookup("force").NoOptDefVal = "*"
	e.src.register(cmd)
}

// prepare loads the pipeline, applies the flags and builds run options.
func (e *execFlags) prepare(a *app) (*runner.Config, runner.Options, error) {
	log, err := a.logger()
	if err != nil {
		return nil, runner.Options{}, err
	}
	cfg, lookup, err := a.load()
	if err != nil {
		return nil, runner.Options{}, err
	}
	if err := e.src.apply(cfg); err != nil {
		return nil, runner.Options{}, err
	}
	if err := checkForce(cfg, e.force); err != nil {
		return nil, runner.Options{}, err
	}
	return cfg, runner.Options{CacheDir: e.cacheDir, Lookup: lookup, Log: log, Force: e.force, Wait: e.wait}, nil
}

func (a *app) runCommand() *cobra.Command {
	var out string
	var ex execFlags
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Run the pipeline and write its artifacts and run.json into --out",
		Long: `Run the pipeline and write its artifacts and run.json into --out.

--source, --endpoint, --region and --path-style override the pipeline's source:
block, so any pipeline can be pointed at another bucket or folder unchanged.

Stages whose definition and inputs are unchanged are taken from --cache
("cached" in the log and run.json); --force recomputes all stages, and
--force=STAGE (repeatable) only the ones named.

run.json in --out records every run, failed ones included, with every
object that could not be fetched under "failures".

Exit codes: 0 success, 1 a stage failed (or the run was interrupted),
2 bad pipeline file or flags, 3 finished but some objects could not be
fetched, 4 another run holds the cache or --out for longer than --wait.`,
		Example: `  kneepipe run
  kneepipe run -f examples/notebook.yaml --out out/notebook
  kneepipe run --source s3://tnn-hse-medtech/datasets/ --endpoint https://storage.yandexcloud.net --region ru-central1`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, opts, err := ex.prepare(a)
			if err != nil {
				return err
			}
			log := opts.Log
			opts.OutDir = out
			if f, ok := a.stderr.(*os.File); ok && a.logFormat == "text" && term.IsTerminal(int(f.Fd())) {
				opts.Progress = newBar(a.stderr)
			}
			rep, err := runner.Run(cmd.Context(), cfg, opts)
			if rep != nil {
				log.Info("run finished", "status", rep.Status, "seconds", rep.Seconds,
					"listed", rep.Objects.Listed, "accepted", rep.Objects.Accepted,
					"rejected", rep.Objects.Rejected, "failed", rep.Objects.Failed, "out", out)
				for _, f := range rep.Artifacts {
					if path.Base(f) == "report.html" {
						fmt.Fprintf(a.stdout, "report: %s\n", filepath.Join(out, filepath.FromSlash(f)))
					}
				}
			}
			return err
		},
	}
	cmd.Flags().StringVar(&out, "out", "out", "directory for artifacts and run.json")
	ex.register(cmd)
	// Only run waits: plan takes no lock.
	cmd.Flags().DurationVar(&ex.wait, "wait", 0, "wait this long for another run's cache or --out lock (e.g. 10m)")
	return cmd
}

// checkForce rejects --force=NAME for a stage the pipeline lacks.
func checkForce(cfg *runner.Config, force []string) error {
	for _, name := range force {
		if name == "*" {
			continue
		}
		found := false
		for _, st := range cfg.Stages {
			found = found || st.Name == name
		}
		if !found {
			return usageError{fmt.Errorf("--force=%s: the pipeline has no stage of that name", name)}
		}
	}
	return nil
}

func (a *app) validateCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "validate",
		Short: "Check the pipeline file (keys, stage kinds, parameters, inputs, cycles, columns) without running it",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			cfg, _, err := a.load()
			if err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "%s: ok (%d stages, %d artifacts)\n", cfg.File, len(cfg.Stages), len(cfg.Artifacts))
			return nil
		},
	}
}
