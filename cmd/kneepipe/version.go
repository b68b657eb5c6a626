package main

import (
	"fmt"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// version and commit are set by the Makefile's build (-ldflags "-X
// main.version=... -X main.commit=...", from git). Without them a `go
// install` build takes the module version, and the commit comes from the
// build info Go stamps in a git checkout (unless -buildvcs=false).
var version, commit = "dev", ""

// versionLine is what --version and `kneepipe version` print: the version,
// the commit the binary was built from (Go stamps it into the build info
// when building inside a git checkout) and the Go release.
func versionLine() string {
	v, rev, modified, goVersion := version, commit, false, "go?"
	if info, ok := debug.ReadBuildInfo(); ok {
		goVersion = info.GoVersion
		if v == "dev" && info.Main.Version != "" && info.Main.Version != "(devel)" {
			v = info.Main.Version
		}
		for _, s := range info.Settings {
			switch {
			case s.Key == "vcs.revision" && rev == "":
				rev = s.Value
			case s.Key == "vcs.modified":
				modified = s.Value == "true"
			}
		}
	}
	switch {
	case rev == "":
		rev = "unknown"
	case modified:
		rev += ", modified"
	}
	return fmt.Sprintf("kneepipe %s (commit %s, %s)", v, rev, goVersion)
}

func (a *app) versionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version and the commit kneepipe was built from",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			_, err := fmt.Fprintln(a.stdout, versionLine())
			return err
		},
	}
}
