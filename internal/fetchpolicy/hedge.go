package fetchpolicy

import "time"

// Hedge decides when a request has been slow enough, measured against the
// recent requests of the same fetch, to be sent again in parallel. It
// looks at the two phases of a GET apart: the wait for the answer's
// headers (time to first byte) and the body, whose expected time grows
// with its size. A request past Factor times the Quantile of either is
// hedged.
type Hedge struct {
	Factor    float64       // e.g. 3: a few times the quantile
	Quantile  float64       // e.g. 0.99
	Samples   int           // no hedging before this many samples of a phase
	Floor     time.Duration // never sooner than this (scheduler and GC noise)
	FirstByte *Window       // seconds to the headers
	PerByte   *Window       // seconds of body per byte
}

// DefaultHedge hedges past 3 times the p99 of the last 512 requests, once
// 32 have been seen, never sooner than half a second: on a loopback or LAN
// server 3 x p99 is a few milliseconds, which a busy machine's scheduler
// alone exceeds, and a GET sent twice for nothing is load (and a surprise
// in request counts). Against S3 the p99 of the headers alone is often
// 100-300 ms, so the floor seldom binds there.
func DefaultHedge() Hedge {
	return Hedge{Factor: 3, Quantile: 0.99, Samples: 32, Floor: 500 * time.Millisecond,
		FirstByte: NewWindow(512), PerByte: NewWindow(512)}
}

// Observe records a finished request: the time its headers took, and the
// time its body of size bytes took after them.
func (h Hedge) Observe(firstByte, body time.Duration, size int64) {
	h.FirstByte.Add(firstByte.Seconds())
	if size > 0 {
		h.PerByte.Add(body.Seconds() / float64(size))
	}
}

// FirstByteAfter is how long a request may wait for its headers before it
// is hedged; false: not enough samples yet, do not hedge.
func (h Hedge) FirstByteAfter() (time.Duration, bool) {
	q, ok := h.quantile(h.FirstByte)
	if !ok {
		return 0, false
	}
	return h.bound(q * h.Factor), true
}

// BodyAfter is how long a body of size bytes may take, from its headers,
// before the request is hedged: Factor times the quantile of seconds per
// byte times the size, and never less than FirstByteAfter (a small body
// costs about one round trip whatever its size).
func (h Hedge) BodyAfter(size int64) (time.Duration, bool) {
	perByte, ok := h.quantile(h.PerByte)
	if !ok {
		return 0, false
	}
	d := h.bound(perByte * float64(max(size, 0)) * h.Factor)
	if fb, ok := h.FirstByteAfter(); ok && fb > d {
		d = fb
	}
	return d, true
}

func (h Hedge) quantile(w *Window) (float64, bool) {
	if w == nil || w.Len() < max(h.Samples, 1) {
		return 0, false
	}
	return w.Quantile(h.Quantile)
}

func (h Hedge) bound(seconds float64) time.Duration {
	return max(time.Duration(seconds*float64(time.Second)), h.Floor)
}
