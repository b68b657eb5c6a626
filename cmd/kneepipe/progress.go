package main

import (
	"io"

	"github.com/schollz/progressbar/v3"

	"github.com/kneepipe/kneepipe/stages"
)

// newBar draws a terminal progress bar per counted step (fetching).
func newBar(w io.Writer) func(string, int) stages.Progress {
	return func(label string, total int) stages.Progress {
		return bar{progressbar.NewOptions(total,
			progressbar.OptionSetWriter(w),
			progressbar.OptionSetDescription(label),
			progressbar.OptionShowCount(),
			progressbar.OptionShowIts(),
			progressbar.OptionSetItsString("obj"),
			progressbar.OptionThrottle(100_000_000),
			progressbar.OptionClearOnFinish(),
		)}
	}
}

type bar struct{ *progressbar.ProgressBar }

func (b bar) Add(n int) { _ = b.ProgressBar.Add(n) }
func (b bar) Done()     { _ = b.ProgressBar.Finish() }
