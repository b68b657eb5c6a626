package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// plan takes no lock, so it has no --wait to offer; run and cache gc do.
func TestWaitOnlyWhereALockIsTaken(t *testing.T) {
	for _, tc := range []struct {
		cmd  string
		want bool
	}{{"run", true}, {"cache gc", true}, {"plan", false}} {
		var stdout, stderr bytes.Buffer
		if code := run(context.Background(), append(strings.Fields(tc.cmd), "--help"), &stdout, &stderr); code != exitOK {
			t.Fatalf("%s --help: exit %d", tc.cmd, code)
		}
		if got := strings.Contains(stdout.String(), "--wait"); got != tc.want {
			t.Errorf("%s --help lists --wait: %v, want %v", tc.cmd, got, tc.want)
		}
	}
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"plan", "--wait", "1s"}, &stdout, &stderr); code != exitConfig {
		t.Errorf("plan --wait 1s: exit %d, want %d (%s)", code, exitConfig, stderr.String())
	}
}
