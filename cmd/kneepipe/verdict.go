package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/kneepipe/kneepipe/runner"
)

// printError writes the final line of a failed command. In text, an error
// in the pipeline file is `file:line:col: message`, the form editors and CI
// annotators jump to; any other error is `kneepipe: message`. With
// --log-format json the line is a JSON record like every other stderr
// line, with the exit code and, for the pipeline file, its place.
func printError(w io.Writer, format string, err error, code int) {
	msg := "kneepipe: " + err.Error()
	var ce *runner.ConfigError
	located := errors.As(err, &ce) && ce.Error() == err.Error()
	if located {
		msg = err.Error()
	}
	if format != "json" {
		fmt.Fprintln(w, msg)
		return
	}
	attrs := []any{"exit_code", code}
	if located {
		attrs = append(attrs, "file", ce.File)
		if ce.Pos.Line > 0 {
			attrs = append(attrs, "line", ce.Pos.Line, "column", ce.Pos.Column)
		}
	}
	slog.New(slog.NewJSONHandler(w, nil)).Error(msg, attrs...)
}

// logFormatArg finds --log-format in raw arguments, for errors that stop
// the command line before cobra has parsed its flags (an unknown command
// or flag). "" when it is not there.
func logFormatArg(args []string) string {
	for i, a := range args {
		switch {
		case a == "--":
			return ""
		case strings.HasPrefix(a, "--log-format="):
			return strings.TrimPrefix(a, "--log-format=")
		case a == "--log-format" && i+1 < len(args):
			return args[i+1]
		}
	}
	return ""
}
