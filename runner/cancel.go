package runner

import (
	"context"
	"io"
)

// ctxWriter fails every write once ctx has ended, so that encoding a large
// table (a cache entry, an artifact) stops within a write of Ctrl-C; the
// caller then drops what it had staged.
type ctxWriter struct {
	ctx context.Context
	w   io.Writer
}

func (c ctxWriter) Write(p []byte) (int, error) {
	if err := context.Cause(c.ctx); err != nil {
		return 0, err
	}
	return c.w.Write(p)
}
