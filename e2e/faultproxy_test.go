package e2e

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// fault is what the proxy does to one GetObject request.
type fault string

const (
	faultNone     fault = "none"
	faultSlowDown fault = "503 SlowDown" // answered by the proxy, never reaches the server
	faultReset    fault = "reset"        // connection closed with RST before any answer
	faultCut      fault = "cut body"     // headers and half the body, then the connection is closed
	faultStall    fault = "stall"        // headers and half the body, then nothing until the client gives up
	faultFlip     fault = "flipped byte" // the whole body, one byte in the middle inverted (same length)
	fault500      fault = "500 InternalError"
	fault403      fault = "403 AccessDenied"
)

// faultRates are the shares of GetObject requests given each fault.
type faultRates struct {
	SlowDown, Reset, Cut, Stall, Flip float64
}

// faultProxy is a reverse proxy on 127.0.0.1 in front of an S3 server that
// injects faults into GetObject requests. The choice for a request depends
// only on the seed, the key and how many times the proxy has seen that key
// before, so a run is reproducible. The Host header is kept, so SigV4
// signatures made for the proxy's address still verify at the server.
// Listings and other requests pass through untouched.
type faultProxy struct {
	URL string // http://127.0.0.1:PORT: the endpoint to give kneepipe

	srv    *httptest.Server
	rp     *httputil.ReverseProxy
	bucket string

	mu       sync.Mutex
	seed     string
	rates    faultRates
	delay    time.Duration    // added before every GetObject is forwarded
	always   map[string]fault // key -> fault on every request
	seen     map[string]int   // key -> GetObject requests so far
	injected map[fault]int
	served   map[string]bool // keys served whole at least once
	refaults int             // faults injected into requests for a key already served whole
	gets     int             // GetObject requests received
	inflight int

	// The gate: GetObject requests after the first limit received wait
	// until the limit is raised (-1: no limit). Waiters watch gate, which
	// is closed and replaced when the limit changes; the test watches
	// changed, closed and replaced when anything it may wait for changes.
	limit       int
	waiting     int            // requests waiting at the gate
	waitingKeys map[string]int // their keys (a hedge waits with its request)
	gate        chan struct{}
	changed     chan struct{}
}

func newFaultProxy(t *testing.T, upstream, bkt string) *faultProxy {
	t.Helper()
	target, err := url.Parse(upstream)
	if err != nil {
		t.Fatal(err)
	}
	p := &faultProxy{bucket: bkt, seed: "kneepipe-e2e", always: map[string]fault{}, seen: map[string]int{}, injected: map[fault]int{},
		served: map[string]bool{}, waitingKeys: map[string]int{}, limit: -1, gate: make(chan struct{}), changed: make(chan struct{})}
	quiet := log.New(io.Discard, "", 0)
	p.rp = &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(target)
			r.Out.Host = r.In.Host // the client signed the proxy's host:port
		},
		Transport: &http.Transport{
			Proxy:               nil,
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
			MaxIdleConnsPerHost: 256,
			DisableCompression:  true,
		},
		FlushInterval: -1, // every write reaches the client at once: a cut body is really half sent
		ErrorLog:      quiet,
		ModifyResponse: func(resp *http.Response) error {
			f, _ := resp.Request.Context().Value(faultCtxKey{}).(fault)
			switch f {
			case faultCut, faultStall, faultFlip:
				if resp.StatusCode != http.StatusOK || resp.ContentLength <= 0 {
					return nil
				}
				resp.Body = &faultyBody{r: resp.Body, f: f, size: resp.ContentLength, ctx: resp.Request.Context()}
			}
			return nil
		},
	}
	p.srv = httptest.NewUnstartedServer(p)
	p.srv.Config.ErrorLog = quiet
	p.srv.Start()
	t.Cleanup(p.srv.Close)
	p.URL = p.srv.URL
	return p
}

type faultCtxKey struct{}

// set changes the fault rates and delay for the requests to come.
func (p *faultProxy) set(rates faultRates, delay time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rates, p.delay = rates, delay
}

// hold makes the GetObject requests to come wait at the gate: a run stays
// in the middle of fetch-hash for as long as the test needs.
func (p *faultProxy) hold() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.setLimitLocked(p.gets)
}

// holdAfter lets the first n GetObject requests the proxy receives through
// and holds the rest.
func (p *faultProxy) holdAfter(n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.setLimitLocked(n)
}

// admit lets n more held requests through.
func (p *faultProxy) admit(n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.limit >= 0 {
		p.setLimitLocked(p.limit + n)
	}
}

// release opens the gate for good.
func (p *faultProxy) release() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.setLimitLocked(-1)
}

func (p *faultProxy) setLimitLocked(n int) {
	p.limit = n
	close(p.gate)
	p.gate = make(chan struct{})
	p.changedLocked()
}

func (p *faultProxy) changedLocked() {
	close(p.changed)
	p.changed = make(chan struct{})
}

// heldLocked says whether the n-th GetObject request must wait.
func (p *faultProxy) heldLocked(n int) bool { return p.limit >= 0 && n > p.limit }

// fail makes every GetObject of key end in f (faultNone clears it).
func (p *faultProxy) fail(key string, f fault) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if f == faultNone {
		delete(p.always, key)
		return
	}
	p.always[key] = f
}

// stats returns GetObject requests received and faults injected so far.
func (p *faultProxy) stats() (gets int, injected map[fault]int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	injected = map[fault]int{}
	for f, n := range p.injected {
		injected[f] = n
	}
	return p.gets, injected
}

// refetchFaults counts the faults injected into requests for a key the
// proxy had already served whole: a stage after fetch-hash (the report's
// thumbnails) reading it again.
func (p *faultProxy) refetchFaults() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.refaults
}

// idle waits until no request is being served (after a client was killed).
func (p *faultProxy) idle(t *testing.T) {
	t.Helper()
	p.await(t, nil, "no request in flight", func() bool { return p.inflight == 0 })
}

// awaitHeld waits until a client with this many workers is held: every
// request the gate let through has been answered and each worker has sent
// its next one, which waits. All the client did with the answers is done.
// Workers are counted by the keys waiting: a request the client hedged
// waits with its hedge.
func (p *faultProxy) awaitHeld(t *testing.T, bg *background, workers int) {
	t.Helper()
	p.await(t, bg, fmt.Sprintf("GetObject requests for %d keys waiting at the gate", workers), func() bool {
		return p.limit >= 0 && len(p.waitingKeys) == workers && p.inflight == p.waiting
	})
}

// await waits until cond (called with p.mu held) is true, failing the test
// after 30s or as soon as bg (when not nil) exits.
func (p *faultProxy) await(t *testing.T, bg *background, what string, cond func() bool) {
	t.Helper()
	var exited <-chan struct{}
	stderr := func() string { return "" }
	if bg != nil {
		exited = bg.done
		stderr = func() string { return "\nstderr:\n" + bg.stderr.String() }
	}
	timeout := time.NewTimer(30 * time.Second)
	defer timeout.Stop()
	for {
		p.mu.Lock()
		ok, changed := cond(), p.changed
		p.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-changed:
		case <-exited:
			t.Fatalf("fault proxy: the client exited before %s%s", what, stderr())
		case <-timeout.C:
			t.Fatalf("fault proxy: not %s after 30s%s", what, stderr())
		}
	}
}

// choose picks the fault for the n-th request (from 1) of key.
func (p *faultProxy) choose(key string, n int) fault {
	if f, ok := p.always[key]; ok {
		return f
	}
	sum := sha256.Sum256(fmt.Appendf(nil, "%s\x00%s\x00%d", p.seed, key, n))
	u := float64(be64(sum[:8])>>11) / float64(1<<53) // uniform in [0, 1)
	r := p.rates
	for _, c := range []struct {
		f    fault
		rate float64
	}{{faultSlowDown, r.SlowDown}, {faultReset, r.Reset}, {faultCut, r.Cut}, {faultStall, r.Stall}, {faultFlip, r.Flip}} {
		if u < c.rate {
			return c.f
		}
		u -= c.rate
	}
	return faultNone
}

// objectKey returns the key of a GetObject request, or false for listings
// and anything else.
func (p *faultProxy) objectKey(r *http.Request) (string, bool) {
	if r.Method != http.MethodGet {
		return "", false
	}
	key, ok := strings.CutPrefix(r.URL.Path, "/"+p.bucket+"/")
	return key, ok && key != ""
}

func (p *faultProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	p.inflight++
	p.changedLocked()
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		p.inflight--
		p.changedLocked()
		p.mu.Unlock()
	}()
	key, isGet := p.objectKey(r)
	if !isGet {
		p.rp.ServeHTTP(w, r)
		return
	}
	p.mu.Lock()
	p.gets++
	p.seen[key]++
	f := p.choose(key, p.seen[key])
	if f != faultNone {
		p.injected[f]++
		if p.served[key] {
			p.refaults++
		}
	}
	p.served[key] = p.served[key] || f == faultNone
	if !p.pass(r.Context(), key, p.gets) {
		p.mu.Unlock()
		return
	}
	delay := p.delay
	p.mu.Unlock()

	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
			return
		}
	}
	switch f {
	case faultSlowDown:
		s3Error(w, r, http.StatusServiceUnavailable, "SlowDown", "Please reduce your request rate.")
		return
	case fault500:
		s3Error(w, r, http.StatusInternalServerError, "InternalError", "We encountered an internal error. Please try again.")
		return
	case fault403:
		s3Error(w, r, http.StatusForbidden, "AccessDenied", "Access Denied")
		return
	case faultReset:
		hj, ok := w.(http.Hijacker)
		if !ok {
			panic(http.ErrAbortHandler)
		}
		conn, _, err := hj.Hijack()
		if err != nil {
			panic(http.ErrAbortHandler)
		}
		if tc, ok := conn.(*net.TCPConn); ok {
			tc.SetLinger(0) // close with RST
		}
		conn.Close()
		return
	}
	p.rp.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), faultCtxKey{}, f)))
}

// pass waits at the gate (with p.mu held, released while waiting) until
// the n-th GetObject request may go on; false if the client went away.
func (p *faultProxy) pass(ctx context.Context, key string, n int) bool {
	if !p.heldLocked(n) {
		return true
	}
	p.waiting++
	p.waitingKeys[key]++
	p.changedLocked()
	defer func() {
		p.waiting--
		if p.waitingKeys[key]--; p.waitingKeys[key] == 0 {
			delete(p.waitingKeys, key)
		}
		p.changedLocked()
	}()
	for p.heldLocked(n) {
		gate := p.gate
		p.mu.Unlock()
		select {
		case <-gate:
		case <-ctx.Done():
			p.mu.Lock()
			return false
		}
		p.mu.Lock()
	}
	return true
}

// s3Error answers the way S3 does: a status and an XML error document.
func s3Error(w http.ResponseWriter, r *http.Request, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/xml")
	w.Header().Set("x-amz-request-id", "e2e-fault-proxy")
	body := `<?xml version="1.0" encoding="UTF-8"?>` + "\n" +
		"<Error><Code>" + code + "</Code><Message>" + msg + "</Message><Resource>" + r.URL.Path +
		"</Resource><RequestId>e2e-fault-proxy</RequestId></Error>"
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	io.WriteString(w, body)
}

var errCut = errors.New("fault proxy: body cut")

// faultyBody damages an upstream body as its fault says. ReverseProxy
// aborts the connection (http.ErrAbortHandler) when reading it fails, so
// the client sees a body shorter than its Content-Length.
type faultyBody struct {
	r    io.ReadCloser
	f    fault
	size int64
	read int64
	ctx  context.Context
}

func (b *faultyBody) Read(p []byte) (int, error) {
	half := b.size / 2
	if b.f == faultCut || b.f == faultStall {
		if b.read >= half {
			if b.f == faultStall {
				select { // silent until the client gives up (bounded, in case it never does)
				case <-b.ctx.Done():
				case <-time.After(30 * time.Second):
				}
			}
			return 0, errCut
		}
		if rest := half - b.read; int64(len(p)) > rest {
			p = p[:rest]
		}
	}
	n, err := b.r.Read(p)
	if b.f == faultFlip && b.read <= half && half < b.read+int64(n) {
		p[half-b.read] ^= 0xff
	}
	b.read += int64(n)
	return n, err
}

func (b *faultyBody) Close() error { return b.r.Close() }

func be64(b []byte) uint64 {
	var x uint64
	for _, c := range b[:8] {
		x = x<<8 | uint64(c)
	}
	return x
}
