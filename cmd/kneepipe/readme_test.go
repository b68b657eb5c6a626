package main

import (
	"io"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// sourceGroup are the flags the README shows as [--source ...] and
// explains together right below the block.
var sourceGroup = map[string]bool{"endpoint": true, "region": true, "path-style": true}

// usageFlag finds the flag names in pflag's usage text.
var usageFlag = regexp.MustCompile(`(?m)^\s+(?:-\w, )?--([a-z-]+)`)

// The README's command-line block shows only commands and flags the
// binary has, and every flag of each command it shows.
func TestReadmeCommandLine(t *testing.T) {
	data, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, block, ok := strings.Cut(string(data), "## Command line\n\n```\n")
	if !ok {
		t.Fatal("README has no command-line block")
	}
	block, _, _ = strings.Cut(block, "```")
	root := newApp(io.Discard, io.Discard).command()
	flagRe := regexp.MustCompile(`--([a-z-]+)|\[-f\b`)
	var cmd *cobra.Command
	shown := map[*cobra.Command]map[string]bool{}
	for _, line := range strings.Split(block, "\n") {
		if rest, ok := strings.CutPrefix(line, "kneepipe "); ok {
			words := strings.Fields(rest)
			var path []string
			for _, w := range words {
				if strings.HasPrefix(w, "[") || strings.HasPrefix(w, "-") {
					break
				}
				path = append(path, w)
			}
			c, _, err := root.Find(path)
			if err != nil || c == root {
				t.Errorf("README shows %q: no such command", "kneepipe "+strings.Join(path, " "))
				cmd = nil
				continue
			}
			cmd = c
			shown[cmd] = map[string]bool{}
		}
		if cmd == nil {
			continue
		}
		desc := line[:strings.LastIndex(line, "]")+1] // flags, in brackets, come before the description
		for _, m := range flagRe.FindAllStringSubmatch(desc, -1) {
			name := m[1]
			if name == "" {
				name = "file"
			}
			if cmd.Flags().Lookup(name) == nil && cmd.InheritedFlags().Lookup(name) == nil {
				t.Errorf("README shows %s --%s: no such flag", cmd.CommandPath(), name)
			}
			shown[cmd][name] = true
		}
	}
	for cmd, flags := range shown {
		for _, m := range usageFlag.FindAllStringSubmatch(cmd.LocalNonPersistentFlags().FlagUsages(), -1) {
			if !flags[m[1]] && m[1] != "help" && !(flags["source"] && sourceGroup[m[1]]) {
				t.Errorf("README's %s lacks its flag --%s", cmd.CommandPath(), m[1])
			}
		}
	}
}
