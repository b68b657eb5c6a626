package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/kneepipe/kneepipe/runner"
	"github.com/kneepipe/kneepipe/runner/shard"
)

// shardFlags are what the three shard commands share.
type shardFlags struct {
	src      sourceFlags
	work     string
	cacheDir string
	wait     time.Duration
}

func (s *shardFlags) register(cmd *cobra.Command, cacheDoc string) {
	f := cmd.Flags()
	f.StringVar(&s.work, "work", "", "work directory shared by plan, shards and merge: a directory or s3://bucket/prefix/ (required)")
	f.StringVar(&s.cacheDir, "cache", "", cacheDoc)
	f.DurationVar(&s.wait, "wait", 0, "wait this long for another run's cache or --out lock")
	s.src.register(cmd)
}

// prepare loads the pipeline, applies the flags and opens W.
func (s *shardFlags) prepare(cmd *cobra.Command, a *app) (*runner.Config, runner.Options, shard.Work, error) {
	log, err := a.logger()
	if err != nil {
		return nil, runner.Options{}, nil, err
	}
	if s.work == "" {
		return nil, runner.Options{}, nil, usageError{fmt.Errorf("--work is required: a shared directory or s3://bucket/prefix/")}
	}
	cfg, lookup, err := a.load()
	if err != nil {
		return nil, runner.Options{}, nil, err
	}
	if err := s.src.apply(cfg); err != nil {
		return nil, runner.Options{}, nil, err
	}
	w, err := shard.OpenWork(cmd.Context(), s.work, cfg.Source, lookup)
	if err != nil {
		return nil, runner.Options{}, nil, usageError{err}
	}
	return cfg, runner.Options{CacheDir: s.cacheDir, Lookup: lookup, Log: log, Wait: s.wait}, w, nil
}

func (a *app) shardCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "shard",
		Short: "Run the pipeline as N shards on Slurm, Airflow, Kubernetes or any engine that starts N tasks",
		Long: `Run the pipeline as N shards on an engine that starts N copies of a command:
  kneepipe shard plan  --shards N --work W   lists the source once into W
  kneepipe shard run   --shard I/N --work W  fetches shard I's objects (N tasks)
  kneepipe shard merge --work W --out OUT    runs the rest, writing what run would

Objects go to shards by FNV-1a of their key. The shards run the per-object
stages (fetch-hash); the merge checks that every shard's part is there and
belongs to the plan, then writes artifacts byte-identical to one
kneepipe run. W is a shared directory or s3://bucket/prefix/, reached with
the source's --endpoint, --region and --path-style. Exit codes as for run.`,
	}
	cmd.AddCommand(a.shardPlanCommand(), a.shardRunCommand(), a.shardMergeCommand())
	return cmd
}

func (a *app) shardPlanCommand() *cobra.Command {
	var sf shardFlags
	var n int
	cmd := &cobra.Command{
		Use:     "plan",
		Short:   "List the source once and record the listing and the shards' plan under --work",
		Example: `  kneepipe shard plan --shards 4 --work /shared/kneepipe-work --source s3://bucket/prefix/`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if n < 1 {
				return usageError{fmt.Errorf("--shards %d: want at least 1", n)}
			}
			cfg, opts, w, err := sf.prepare(cmd, a)
			if err != nil {
				return err
			}
			if opts.CacheDir == "" {
				opts.CacheDir = ".kneepipe/cache"
			}
			p, err := shard.Plan(cmd.Context(), cfg, opts, w, n)
			if err != nil {
				return err
			}
			counts := make([]string, len(p.PerShard))
			for i, c := range p.PerShard {
				counts[i] = strconv.FormatInt(c, 10)
			}
			fmt.Fprintf(a.stdout, "plan %s: %d objects in %d shards (%s) in %s\n", p.ID, p.Listed, n, strings.Join(counts, ", "), w)
			return nil
		},
	}
	cmd.Flags().IntVar(&n, "shards", 0, "number of shards (required)")
	sf.register(cmd, "cache directory for the listing (default .kneepipe/cache)")
	return cmd
}

func (a *app) shardRunCommand() *cobra.Command {
	var sf shardFlags
	var spec, from string
	var n int
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Run the per-object stages for one shard and write its part under --work",
		Long: `Run the per-object stages (fetch-hash) for one shard of the plan in --work
and write its part there: its outputs, run.json and last its manifest. A
retried or duplicated task writes the same part; a killed one resumes from
its record under the shard's cache (--cache/shards/I-of-N; by default under
W when W is a directory, else under .kneepipe/cache).

The shard is --shard I/N, or --shard-index-from VAR with --shards N: VAR is
SLURM_ARRAY_TASK_ID, JOB_COMPLETION_INDEX (Kubernetes), AWS_BATCH_JOB_ARRAY_INDEX
or any variable holding I. N is always given: an engine's own task count
is wrong when only some tasks are resubmitted.`,
		Example: `  kneepipe shard run --shard 2/4 --work /shared/kneepipe-work
  kneepipe shard run --shard-index-from SLURM_ARRAY_TASK_ID --shards 4 --work /shared/kneepipe-work`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			x, err := shardIndex(spec, from, n, os.LookupEnv)
			if err != nil {
				return usageError{err}
			}
			cfg, opts, w, err := sf.prepare(cmd, a)
			if err != nil {
				return err
			}
			opts.CacheDir = shardCache(sf.cacheDir, w, x)
			rep, err := shard.RunShard(cmd.Context(), cfg, opts, w, x)
			if rep != nil {
				opts.Log.Info("shard finished", "shard", x.String(), "status", rep.Status, "seconds", rep.Seconds,
					"listed", rep.Objects.Listed, "rejected", rep.Objects.Rejected, "failed", rep.Objects.Failed, "work", w.String())
			}
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&spec, "shard", "", "the shard to run: I/N (0 <= I < N)")
	f.StringVar(&from, "shard-index-from", "", "read I from this environment variable (with --shards N)")
	f.IntVar(&n, "shards", 0, "number of shards, with --shard-index-from")
	sf.register(cmd, "cache directory; the shard keeps its own under shards/I-of-N (default: W/cache on a directory W, else .kneepipe/cache)")
	return cmd
}

// shardIndex reads I/N from --shard, or I from an environment variable
// and N from --shards.
func shardIndex(spec, from string, n int, env func(string) (string, bool)) (shard.Index, error) {
	var x shard.Index
	switch {
	case spec != "" && from != "":
		return x, fmt.Errorf("give --shard I/N or --shard-index-from VAR, not both")
	case spec != "":
		i, nn, ok := strings.Cut(spec, "/")
		var err1, err2 error
		x.I, err1 = strconv.Atoi(i)
		x.N, err2 = strconv.Atoi(nn)
		if !ok || err1 != nil || err2 != nil {
			return x, fmt.Errorf("--shard %q: want I/N, e.g. 0/4", spec)
		}
		if n != 0 && n != x.N {
			return x, fmt.Errorf("--shard %s and --shards %d disagree", spec, n)
		}
	case from != "":
		v, ok := env(from)
		if !ok {
			return x, fmt.Errorf("--shard-index-from %s: the variable is not set", from)
		}
		i, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil {
			return x, fmt.Errorf("--shard-index-from %s: %q is not a shard index", from, v)
		}
		if n == 0 {
			return x, fmt.Errorf("--shard-index-from needs --shards N")
		}
		x = shard.Index{I: i, N: n}
	default:
		return x, fmt.Errorf("give the shard: --shard I/N, or --shard-index-from VAR with --shards N")
	}
	return x, x.Check()
}

// shardCache is the shard's own cache: shards running at once on one
// machine or one shared file system must not share a cache lock or
// fetch-hash's record.
func shardCache(base string, w shard.Work, x shard.Index) string {
	if base == "" {
		base = ".kneepipe/cache"
		if w.Dir() != "" {
			base = filepath.Join(w.Dir(), "cache")
		}
	}
	return filepath.Join(base, "shards", fmt.Sprintf("%d-of-%d", x.I, x.N))
}

func (a *app) shardMergeCommand() *cobra.Command {
	var sf shardFlags
	var out string
	cmd := &cobra.Command{
		Use:   "merge",
		Short: "Check every shard's part, run the rest of the pipeline and write artifacts and run.json into --out",
		Long: `Check that every shard of the plan in --work left its part and that each
belongs to the plan (an error names the missing and stale shards), then run
the rest of the pipeline and write into --out what kneepipe run of the same
pipeline and bucket writes, byte for byte. run.json accounts for all shards.`,
		Example: `  kneepipe shard merge --work /shared/kneepipe-work --out out`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, opts, w, err := sf.prepare(cmd, a)
			if err != nil {
				return err
			}
			if opts.CacheDir == "" {
				opts.CacheDir = ".kneepipe/cache"
			}
			opts.OutDir = out
			rep, err := shard.Merge(cmd.Context(), cfg, opts, w)
			if rep != nil {
				opts.Log.Info("merge finished", "status", rep.Status, "seconds", rep.Seconds,
					"listed", rep.Objects.Listed, "accepted", rep.Objects.Accepted,
					"rejected", rep.Objects.Rejected, "failed", rep.Objects.Failed, "out", out)
			}
			return err
		},
	}
	cmd.Flags().StringVar(&out, "out", "out", "directory for artifacts and run.json")
	sf.register(cmd, "cache directory (default .kneepipe/cache)")
	return cmd
}
