// Command kneepipe runs declarative data pipelines: stages in a YAML file
// form a DAG, exchange Arrow record batches, cache their outputs and write
// Parquet and CSV artifacts.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/joho/godotenv"
	"github.com/spf13/cobra"

	"github.com/kneepipe/kneepipe/runner"
	"github.com/kneepipe/kneepipe/stages"
)

// Exit codes, documented in the README for schedulers.
const (
	exitOK            = 0
	exitFailed        = 1 // a stage failed; no artifact was touched
	exitConfig        = 2 // bad pipeline file or command line; nothing ran
	exitObjectsFailed = 3 // finished, but some objects could not be fetched
	exitLocked        = 4 // another run holds the cache lock (see --wait)
)

func main() {
	tuneGC()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// usageError marks command-line mistakes (exit code 2).
type usageError struct{ error }

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	a := newApp(stdout, stderr)
	root := a.command()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	code := exitCode(err)
	format := a.logFormat
	if !root.PersistentFlags().Changed("log-format") {
		format = logFormatArg(args)
	}
	printError(stderr, format, err, code)
	return code
}

func exitCode(err error) int {
	var ce *runner.ConfigError
	var ue usageError
	switch {
	case errors.As(err, &ce), errors.As(err, &ue):
		return exitConfig
	case errors.Is(err, runner.ErrObjectsFailed):
		return exitObjectsFailed
	case errors.Is(err, runner.ErrLocked):
		return exitLocked
	}
	return exitFailed
}

// app holds what the subcommands share; one per invocation.
type app struct {
	stdout, stderr io.Writer
	kinds          stages.Registry
	file           string
	logFormat      string
}

func newApp(stdout, stderr io.Writer) *app {
	return &app{stdout: stdout, stderr: stderr, kinds: stages.Builtin()}
}

func (a *app) command() *cobra.Command {
	root := &cobra.Command{
		Use:           "kneepipe",
		Short:         "Run declarative data pipelines over object stores",
		Long:          "kneepipe runs the stages of a YAML pipeline as a DAG: they pass Arrow record batches,\ncache their outputs, and write Parquet and CSV artifacts.",
		Version:       versionLine(),
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetVersionTemplate("{{.Version}}\n")
	root.PersistentFlags().StringVarP(&a.file, "file", "f", "pipeline.yaml", "pipeline file")
	root.PersistentFlags().StringVar(&a.logFormat, "log-format", "text", "log format on stderr: text or json")
	root.AddCommand(a.runCommand(), a.planCommand(), a.validateCommand(), a.graphCommand(), a.shardCommand(), a.stagesCommand(), a.cacheCommand(), a.versionCommand())
	strictArgs(root)
	return root
}

// strictArgs makes every stray argument a usage error (exit 2): cobra
// reports an unknown command or an extra argument as a plain error, and
// runs a command group given an unknown subcommand as if asked for help.
func strictArgs(cmd *cobra.Command) {
	switch {
	case cmd.HasSubCommands():
		cmd.SuggestionsMinimumDistance = 2 // cobra's default, applied only by its own check
		cmd.Args = func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return nil
			}
			msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
			if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
				msg += fmt.Sprintf(" (did you mean %q?)", s[0])
			}
			return usageError{errors.New(msg)}
		}
		if !cmd.Runnable() {
			cmd.RunE = func(cmd *cobra.Command, _ []string) error { return cmd.Help() }
		}
	case cmd.Args != nil:
		check := cmd.Args
		cmd.Args = func(cmd *cobra.Command, args []string) error {
			if err := check(cmd, args); err != nil {
				return usageError{err}
			}
			return nil
		}
	}
	for _, c := range cmd.Commands() {
		strictArgs(c)
	}
}

// lookup reads the environment, then a .env file in the working
// directory (the notebook loaded its keys from one). The file never
// overrides the environment.
func lookupEnv() (func(string) (string, bool), error) {
	dotenv, err := godotenv.Read(".env")
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf(".env: %w", err)
	}
	return func(name string) (string, bool) {
		if v, ok := os.LookupEnv(name); ok {
			return v, true
		}
		v, ok := dotenv[name]
		return v, ok
	}, nil
}

func (a *app) logger() (*slog.Logger, error) {
	opts := &slog.HandlerOptions{Level: slog.LevelInfo}
	switch a.logFormat {
	case "text":
		return slog.New(slog.NewTextHandler(a.stderr, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(a.stderr, opts)), nil
	}
	return nil, usageError{fmt.Errorf("--log-format %q: want text or json", a.logFormat)}
}

func (a *app) load() (*runner.Config, func(string) (string, bool), error) {
	lookup, err := lookupEnv()
	if err != nil {
		return nil, nil, usageError{err}
	}
	cfg, err := runner.Load(a.file, a.kinds, lookup)
	return cfg, lookup, err
}
