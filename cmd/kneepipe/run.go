package main

import (
	"fmt"
	"os"
	"strconv"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/kneepipe/kneepipe/runner"
)

func (a *app) runCommand() *cobra.Command {
	var out, cacheDir, src, endpoint, region, pathStyle string
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Run the pipeline and write its artifacts and run.json into --out",
		Long: `Run the pipeline and write its artifacts and run.json into --out.

--source, --endpoint, --region and --path-style override the pipeline's source:
block, so any pipeline can be pointed at another bucket or folder unchanged.

Exit codes: 0 success, 1 a stage failed, 2 bad pipeline file or flags,
3 finished but some objects could not be fetched.`,
		Example: `  kneepipe run
  kneepipe run -f examples/notebook.yaml --out out/notebook
  kneepipe run --source s3://tnn-hse-medtech/datasets/ --endpoint https://storage.yandexcloud.net --region ru-central1`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := a.logger()
			if err != nil {
				return err
			}
			cfg, lookup, err := a.load()
			if err != nil {
				return err
			}
			if src != "" {
				cfg.Source.URI = src
			}
			if endpoint != "" {
				cfg.Source.Endpoint = endpoint
			}
			if region != "" {
				cfg.Source.Region = region
			}
			if pathStyle != "" {
				b, err := strconv.ParseBool(pathStyle)
				if err != nil {
					return usageError{fmt.Errorf("--path-style %q: want true or false", pathStyle)}
				}
				cfg.Source.PathStyle = &b
			}
			opts := runner.Options{OutDir: out, CacheDir: cacheDir, Lookup: lookup, Log: log}
			if f, ok := a.stderr.(*os.File); ok && a.logFormat == "text" && term.IsTerminal(int(f.Fd())) {
				opts.Progress = newBar(a.stderr)
			}
			rep, err := runner.Run(cmd.Context(), cfg, opts)
			if rep != nil {
				log.Info("run finished", "status", rep.Status, "seconds", rep.Seconds,
					"listed", rep.Objects.Listed, "accepted", rep.Objects.Accepted,
					"rejected", rep.Objects.Rejected, "failed", rep.Objects.Failed, "out", out)
			}
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&out, "out", "out", "directory for artifacts and run.json")
	f.StringVar(&cacheDir, "cache", ".kneepipe/cache", "directory for cached stage outputs")
	f.StringVar(&src, "source", "", "override source.uri: s3://bucket/prefix/ or a directory")
	f.StringVar(&endpoint, "endpoint", "", "override source.endpoint (S3 endpoint URL)")
	f.StringVar(&region, "region", "", "override source.region")
	f.StringVar(&pathStyle, "path-style", "", "override source.path_style: true or false")
	return cmd
}

func (a *app) validateCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "validate",
		Short: "Check the pipeline file (keys, stage kinds, parameters, inputs, cycles) without running it",
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
