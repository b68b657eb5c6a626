// Command faultproxy is the benchmark's fault injector: a reverse proxy on
// 127.0.0.1 in front of an S3 server that answers a share of GetObject
// requests with 503 SlowDown, cuts a share of bodies mid-stream and stalls
// a share (half the body, then nothing for -stall-for). Like the e2e
// tests' proxy, the fault of a request depends only on the seed, the key
// and how many times the key was requested before, so rounds are
// reproducible. The Host header is kept, so SigV4 signatures made for the
// proxy's address verify at the server. It prints its URL on stdout, and
// the counts of requests and faults on stderr when it gets SIGTERM/SIGINT.
//
//	faultproxy -upstream http://127.0.0.1:7070 -bucket kneebench -slowdown 0.10 -cut 0.04 -stall 0.01
package main

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

type fault int

const (
	none fault = iota
	slowDown
	cut
	stall
)

var faultNames = [...]string{"none", "slowdown", "cut", "stall"}

type proxy struct {
	rp       *httputil.ReverseProxy
	bucket   string
	seed     string
	rates    [4]float64 // by fault; none unused
	stallFor time.Duration

	mu     sync.Mutex
	seen   map[string]int
	counts [4]int
	gets   int
}

func main() {
	upstream := flag.String("upstream", "", "S3 server URL (required)")
	addr := flag.String("addr", "127.0.0.1:0", "listen address")
	bucket := flag.String("bucket", "", "bucket whose GetObject requests get faults (required)")
	seed := flag.String("seed", "kneepipe-bench", "seed of the fault choice")
	sd := flag.Float64("slowdown", 0, "share of GETs answered 503 SlowDown")
	ct := flag.Float64("cut", 0, "share of GETs whose body is cut at half")
	st := flag.Float64("stall", 0, "share of GETs whose body stalls at half")
	stallFor := flag.Duration("stall-for", 120*time.Second, "how long a stalled body stays silent (unless the client gives up)")
	flag.Parse()
	if *upstream == "" || *bucket == "" {
		log.Fatal("faultproxy: -upstream and -bucket are required")
	}
	target, err := url.Parse(*upstream)
	if err != nil {
		log.Fatalf("faultproxy: -upstream: %v", err)
	}
	p := &proxy{bucket: *bucket, seed: *seed, rates: [4]float64{0, *sd, *ct, *st}, stallFor: *stallFor, seen: map[string]int{}}
	p.rp = &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(target)
			r.Out.Host = r.In.Host
		},
		Transport: &http.Transport{
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
			MaxIdleConnsPerHost: 512,
			DisableCompression:  true,
		},
		FlushInterval:  -1,
		ErrorLog:       log.New(io.Discard, "", 0),
		ModifyResponse: p.damage,
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatalf("faultproxy: %v", err)
	}
	fmt.Printf("http://%s\n", ln.Addr())
	srv := &http.Server{Handler: p, ErrorLog: log.New(io.Discard, "", 0)}
	go srv.Serve(ln)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	<-sig
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	srv.Shutdown(ctx)
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(os.Stderr, "faultproxy: %d GETs", p.gets)
	for f := slowDown; f <= stall; f++ {
		fmt.Fprintf(os.Stderr, ", %s %d", faultNames[f], p.counts[f])
	}
	fmt.Fprintln(os.Stderr)
}

type faultKey struct{}

// choose picks the fault of the n-th request (from 1) of key.
func (p *proxy) choose(key string, n int) fault {
	sum := sha256.Sum256(fmt.Appendf(nil, "%s\x00%s\x00%d", p.seed, key, n))
	u := float64(binary.BigEndian.Uint64(sum[:8])>>11) / float64(1<<53)
	for f := slowDown; f <= stall; f++ {
		if u < p.rates[f] {
			return f
		}
		u -= p.rates[f]
	}
	return none
}

func (p *proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	key, ok := strings.CutPrefix(r.URL.Path, "/"+p.bucket+"/")
	if r.Method != http.MethodGet || !ok || key == "" {
		p.rp.ServeHTTP(w, r) // listings and the rest pass untouched
		return
	}
	p.mu.Lock()
	p.gets++
	p.seen[key]++
	f := p.choose(key, p.seen[key])
	p.counts[f]++
	p.mu.Unlock()
	if f == slowDown {
		body := "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message><Resource>" +
			r.URL.Path + "</Resource><RequestId>bench-fault-proxy</RequestId></Error>"
		w.Header().Set("Content-Type", "application/xml")
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, body)
		return
	}
	p.rp.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), faultKey{}, f)))
}

// damage wraps the body of a response whose request drew cut or stall.
func (p *proxy) damage(resp *http.Response) error {
	f, _ := resp.Request.Context().Value(faultKey{}).(fault)
	if (f == cut || f == stall) && resp.StatusCode == http.StatusOK && resp.ContentLength > 0 {
		resp.Body = &halfBody{r: resp.Body, f: f, half: resp.ContentLength / 2, ctx: resp.Request.Context(), stallFor: p.stallFor}
	}
	return nil
}

var errCut = errors.New("faultproxy: body cut")

// halfBody passes the first half of a body, then fails (the proxy aborts
// the connection: the client sees a short body), after -stall-for of
// silence for a stall.
type halfBody struct {
	r        io.ReadCloser
	f        fault
	half     int64
	read     int64
	ctx      context.Context
	stallFor time.Duration
}

func (b *halfBody) Read(p []byte) (int, error) {
	if b.read >= b.half {
		if b.f == stall {
			t := time.NewTimer(b.stallFor)
			defer t.Stop()
			select {
			case <-b.ctx.Done():
			case <-t.C:
			}
		}
		return 0, errCut
	}
	if rest := b.half - b.read; int64(len(p)) > rest {
		p = p[:rest]
	}
	n, err := b.r.Read(p)
	b.read += int64(n)
	return n, err
}

func (b *halfBody) Close() error { return b.r.Close() }
