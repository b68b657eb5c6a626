package report_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"image/png"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kneepipe/kneepipe/internal/report"
)

var screenshotPath = flag.String("screenshot", "", "also save the browser test's screenshot here (e.g. $PWD/docs/report.png)")

// chromiumBinary finds headless Chromium. Without it the browser test
// skips, except under CI=true, where it fails: CI must install chromium.
func chromiumBinary(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("chromium not found: CI must install it (apt-get install -y chromium)")
	}
	t.Skip("chromium not found (apt-get install -y chromium); the browser test needs it")
	return ""
}

// pageFacts is what the browser test reads from the live DOM.
type pageFacts struct {
	IDs         []string `json:"ids"`
	Images      int      `json:"images"`
	Broken      []string `json:"broken"`
	SVGs        int      `json:"svgs"`
	Title       string   `json:"title"`
	ScrollWidth int      `json:"scrollWidth"`
	External    []string `json:"external"`
	DOM         int      `json:"dom"`
	// Clipped lists the SVG texts that reach outside their chart (an
	// inline SVG cuts them off).
	Clipped []string `json:"clipped"`
	// Audit is the leakage audit's verdict as displayed.
	Audit string `json:"audit"`
}

const shotWidth, shotHeight = 1280, 2400

// inspect opens a local HTML file in headless Chromium, driven over the
// DevTools protocol on a pipe, in a 1280×2400 window. It returns the
// page's facts, the problems the browser reported (console errors,
// uncaught exceptions, error log entries, failed loads, requests for
// anything but the file itself and data: URIs) and a PNG screenshot.
func inspect(t *testing.T, bin, page string) (pageFacts, []string, []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	b, err := startBrowser(ctx, bin, filepath.Join(t.TempDir(), "profile"))
	if err != nil {
		t.Fatal(err)
	}
	defer b.close()
	call := func(session, method string, params any, out any) {
		t.Helper()
		res, err := b.call(ctx, session, method, params)
		if err != nil {
			t.Fatal(err)
		}
		if out != nil {
			if err := json.Unmarshal(res, out); err != nil {
				t.Fatalf("%s: %v", method, err)
			}
		}
	}
	var tgt struct{ TargetID string }
	call("", "Target.createTarget", map[string]any{"url": "about:blank"}, &tgt)
	var att struct{ SessionID string }
	call("", "Target.attachToTarget", map[string]any{"targetId": tgt.TargetID, "flatten": true}, &att)
	s := att.SessionID
	for _, m := range []string{"Page.enable", "Runtime.enable", "Log.enable", "Network.enable"} {
		call(s, m, nil, nil)
	}
	call(s, "Emulation.setDeviceMetricsOverride", map[string]any{
		"width": shotWidth, "height": shotHeight, "deviceScaleFactor": 1, "mobile": false,
	}, nil)
	fileURL := (&url.URL{Scheme: "file", Path: filepath.ToSlash(page)}).String()
	call(s, "Page.navigate", map[string]any{"url": fileURL}, nil)
	if err := b.waitEvent(ctx, "Page.loadEventFired"); err != nil {
		t.Fatal(err)
	}
	var ev struct {
		Result struct{ Value string }
	}
	call(s, "Runtime.evaluate", map[string]any{"returnByValue": true, "expression": `JSON.stringify({
		ids: Array.from(document.querySelectorAll("section[id]"), e => e.id),
		images: document.images.length,
		broken: Array.from(document.images).filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.alt || i.src.slice(0, 40)),
		svgs: document.querySelectorAll("svg").length,
		title: document.title,
		scrollWidth: document.documentElement.scrollWidth,
		external: Array.from(document.querySelectorAll("[src],[href]"), e => e.getAttribute("src") || e.getAttribute("href"))
			.filter(u => !u.startsWith("#") && !u.startsWith("data:")),
		dom: document.documentElement.outerHTML.length,
		audit: Array.from(document.querySelectorAll("#splits .ok, #splits .fail"), e => e.offsetHeight > 0 ? e.textContent : "").join(" | "),
		clipped: Array.from(document.querySelectorAll("svg")).flatMap(svg => {
			const b = svg.getBoundingClientRect();
			return Array.from(svg.querySelectorAll("text")).filter(t => {
				const r = t.getBoundingClientRect();
				return r.width > 0 && (r.left < b.left - 0.5 || r.right > b.right + 0.5 || r.top < b.top - 0.5 || r.bottom > b.bottom + 0.5);
			}).map(t => t.textContent);
		})
	})`}, &ev)
	var facts pageFacts
	if err := json.Unmarshal([]byte(ev.Result.Value), &facts); err != nil {
		t.Fatalf("page facts %q: %v", ev.Result.Value, err)
	}
	var sc struct{ Data string }
	call(s, "Page.captureScreenshot", map[string]any{"format": "png"}, &sc)
	img, err := base64.StdEncoding.DecodeString(sc.Data)
	if err != nil {
		t.Fatal(err)
	}
	return facts, b.problems(fileURL), img
}

// TestReportInBrowser renders the sample's report.html (mean images on)
// in headless Chromium. It fails on any problem the browser reports, on a
// missing section, a broken image, a reference outside the file or a page
// wider than the window, and saves a screenshot (-screenshot=PATH to keep
// it, e.g. for docs/report.png).
func TestReportInBrowser(t *testing.T) {
	bin := chromiumBinary(t)
	files := sampleFiles(t, "{title: 'Knee X-rays: EDA report', mean_images: true}")
	dir := t.TempDir()
	page := filepath.Join(dir, "report.html")
	if err := os.WriteFile(page, files["report.html"], 0o644); err != nil {
		t.Fatal(err)
	}
	got, problems, img := inspect(t, bin, page)
	for _, p := range problems {
		t.Errorf("browser: %s", p)
	}
	if !slices.Equal(got.IDs, report.SectionIDs) {
		t.Errorf("sections %v, want %v", got.IDs, report.SectionIDs)
	}
	// The sample: 6 duplicate groups holding 14 files, 5 disagreements,
	// 5 mean images, one near-duplicate group of 2 images.
	if got.Images != 14+5+5+2 {
		t.Errorf("%d images in the page, want 26", got.Images)
	}
	if len(got.Broken) > 0 {
		t.Errorf("images that did not load: %v", got.Broken)
	}
	if got.SVGs != 4 { // counts, one heatmap, kappas, sizes (one pixel format: no chart)
		t.Errorf("%d SVG charts, want 4", got.SVGs)
	}
	// The sample split by file_id: 40 images, none in two splits; one
	// near-duplicate group (N9, which N6 is a rescan of).
	if got.Audit != "✓ No group crosses splits: 40 split_group values, 40 file_id values, 1 near_group values, each in one split." {
		t.Errorf("leakage audit shows %q", got.Audit)
	}
	if got.Title != "Knee X-rays: EDA report" {
		t.Errorf("title %q", got.Title)
	}
	if got.ScrollWidth > shotWidth {
		t.Errorf("page is %d px wide in a %d px window", got.ScrollWidth, shotWidth)
	}
	if len(got.External) > 0 {
		t.Errorf("references outside the file: %v", got.External)
	}
	if len(got.Clipped) > 0 {
		t.Errorf("chart texts cut off: %q", got.Clipped)
	}
	cfg, err := png.DecodeConfig(bytes.NewReader(img))
	if err != nil || cfg.Width != shotWidth || cfg.Height != shotHeight {
		t.Errorf("screenshot %dx%d (%v), want %dx%d", cfg.Width, cfg.Height, err, shotWidth, shotHeight)
	}
	out := filepath.Join(dir, "report.png")
	if *screenshotPath != "" {
		out = *screenshotPath
	}
	if err := os.WriteFile(out, img, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s (%d bytes); page: %d DOM characters", out, len(img), got.DOM)
}

// A heatmap of one grade is one cell wide: the axis titles (long rater
// names) and the grade labels must still fit in the chart.
func TestOneGradeHeatmapInBrowser(t *testing.T) {
	bin := chromiumBinary(t)
	a, b := "MedicalExpert-I (senior radiologist)", "MedicalExpert-II (resident)"
	zero := int64(0)
	in := report.Input{Title: "one grade", Raters: []string{a, b}, Matrix: []report.Cell{{RaterA: a, RaterB: b, GradeA: 0, GradeB: 0, Count: 3}},
		Kappas: []report.Kappa{{RaterA: a, RaterB: b, N: 3}}, Excluded: []report.Excluded{}}
	for _, item := range []string{"x", "y", "z"} {
		for _, r := range []string{a, b} {
			in.Rows = append(in.Rows, report.Row{Rater: r, Item: item, Grade: zero, Label: "0Normal (no osteoarthritis)"})
		}
	}
	rep, err := report.Build(context.Background(), in, report.Options{})
	if err != nil {
		t.Fatal(err)
	}
	html, err := rep.HTML()
	if err != nil {
		t.Fatal(err)
	}
	page := filepath.Join(t.TempDir(), "report.html")
	if err := os.WriteFile(page, html, 0o644); err != nil {
		t.Fatal(err)
	}
	got, problems, _ := inspect(t, bin, page)
	for _, p := range problems {
		t.Errorf("browser: %s", p)
	}
	if got.SVGs < 2 {
		t.Errorf("%d SVG charts, want the counts and the heatmap at least", got.SVGs)
	}
	if len(got.Clipped) > 0 {
		t.Errorf("chart texts cut off: %q", got.Clipped)
	}
}

// A leaking split shows as a red failure, in the overview and the audit.
func TestLeakInBrowser(t *testing.T) {
	bin := chromiumBinary(t)
	in := report.Input{Title: "leak", Splits: &report.SplitRows{Order: []string{"train", "test"}, Keys: []string{"split_group", "patient"}, Rows: []report.SplitRow{
		{Split: "train", Grade: 0, Keys: []string{"file_id=a", "9000001"}},
		{Split: "test", Grade: 1, Keys: []string{"file_id=b", "9000001"}},
	}}}
	rep, err := report.Build(context.Background(), in, report.Options{})
	if err != nil {
		t.Fatal(err)
	}
	html, err := rep.HTML()
	if err != nil {
		t.Fatal(err)
	}
	page := filepath.Join(t.TempDir(), "report.html")
	if err := os.WriteFile(page, html, 0o644); err != nil {
		t.Fatal(err)
	}
	got, problems, _ := inspect(t, bin, page)
	for _, p := range problems {
		t.Errorf("browser: %s", p)
	}
	if !strings.HasPrefix(got.Audit, "✗ Leak: 1 group values are in more than one split.") {
		t.Errorf("leakage audit shows %q", got.Audit)
	}
}

// The harness itself: a page with a console error, an uncaught exception,
// a broken image and a request to the network must produce problems.
func TestBrowserHarnessSeesProblems(t *testing.T) {
	bin := chromiumBinary(t)
	page := filepath.Join(t.TempDir(), "bad.html")
	bad := `<!DOCTYPE html><html><head><title>bad</title></head><body>
<section id="counts"></section>
<img src="missing.png" alt="missing">
<img src="http://127.0.0.1:9/x.png" alt="remote">
<script>console.error("boom"); throw new Error("uncaught")</script>
</body></html>`
	if err := os.WriteFile(page, []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	got, problems, _ := inspect(t, bin, page)
	all := strings.Join(problems, "\n")
	for _, want := range []string{"console.error: boom", "uncaught exception", "request outside the file: http://127.0.0.1:9/x.png"} {
		if !strings.Contains(all, want) {
			t.Errorf("problems lack %q:\n%s", want, all)
		}
	}
	if len(got.Broken) != 2 || len(got.External) != 2 || !slices.Equal(got.IDs, []string{"counts"}) {
		t.Errorf("facts %+v", got)
	}
}

// browser is headless Chromium spoken to over --remote-debugging-pipe:
// JSON messages ended by NUL, ours on its fd 3, its on fd 4.
type browser struct {
	cmd    *exec.Cmd
	w      io.WriteCloser
	stderr bytes.Buffer

	mu      sync.Mutex
	next    int
	pending map[int]chan cdpMessage
	events  []cdpMessage
	notify  chan string
	readErr error
}

type cdpMessage struct {
	ID     int             `json:"id,omitempty"`
	Method string          `json:"method,omitempty"`
	Params json.RawMessage `json:"params,omitempty"`
	Result json.RawMessage `json:"result,omitempty"`
	Error  *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"error,omitempty"`
	SessionID string `json:"sessionId,omitempty"`
}

func startBrowser(ctx context.Context, bin, profile string) (*browser, error) {
	toR, toW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	fromR, fromW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	b := &browser{w: toW, pending: map[int]chan cdpMessage{}, notify: make(chan string, 4096)}
	b.cmd = exec.CommandContext(ctx, bin,
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
		"--no-first-run", "--disable-component-update", "--disable-sync", "--disable-extensions",
		"--disable-default-apps", "--hide-scrollbars", "--mute-audio",
		"--user-data-dir="+profile, "--remote-debugging-pipe", "--window-size=1280,2400", "about:blank")
	b.cmd.ExtraFiles = []*os.File{toR, fromW} // fd 3: commands in, fd 4: replies out
	b.cmd.Stderr = &b.stderr
	if err := b.cmd.Start(); err != nil {
		return nil, err
	}
	toR.Close()
	fromW.Close()
	go b.read(fromR)
	return b, nil
}

func (b *browser) read(r io.ReadCloser) {
	defer r.Close()
	br := bufio.NewReaderSize(r, 1<<20)
	for {
		raw, err := br.ReadBytes(0)
		if err != nil {
			b.mu.Lock()
			b.readErr = err
			for _, ch := range b.pending {
				close(ch)
			}
			b.pending = map[int]chan cdpMessage{}
			b.mu.Unlock()
			close(b.notify)
			return
		}
		var m cdpMessage
		if json.Unmarshal(raw[:len(raw)-1], &m) != nil {
			continue
		}
		b.mu.Lock()
		if m.ID != 0 {
			if ch, ok := b.pending[m.ID]; ok {
				ch <- m
				delete(b.pending, m.ID)
			}
		} else {
			b.events = append(b.events, m)
			select {
			case b.notify <- m.Method:
			default:
			}
		}
		b.mu.Unlock()
	}
}

func (b *browser) call(ctx context.Context, session, method string, params any) (json.RawMessage, error) {
	b.mu.Lock()
	if b.readErr != nil {
		b.mu.Unlock()
		return nil, fmt.Errorf("%s: browser gone (%v): %s", method, b.readErr, b.stderr.String())
	}
	b.next++
	id := b.next
	ch := make(chan cdpMessage, 1)
	b.pending[id] = ch
	b.mu.Unlock()
	msg := map[string]any{"id": id, "method": method}
	if params != nil {
		msg["params"] = params
	}
	if session != "" {
		msg["sessionId"] = session
	}
	data, _ := json.Marshal(msg)
	if _, err := b.w.Write(append(data, 0)); err != nil {
		return nil, fmt.Errorf("%s: %w", method, err)
	}
	select {
	case m, ok := <-ch:
		if !ok {
			return nil, fmt.Errorf("%s: browser closed the pipe: %s", method, b.stderr.String())
		}
		if m.Error != nil {
			return nil, fmt.Errorf("%s: %s", method, m.Error.Message)
		}
		return m.Result, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("%s: %w", method, ctx.Err())
	}
}

func (b *browser) waitEvent(ctx context.Context, method string) error {
	b.mu.Lock()
	for _, e := range b.events {
		if e.Method == method {
			b.mu.Unlock()
			return nil
		}
	}
	b.mu.Unlock()
	for {
		select {
		case m, ok := <-b.notify:
			if !ok {
				return errors.New("browser closed before " + method)
			}
			if m == method {
				return nil
			}
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w", method, ctx.Err())
		}
	}
}

// problems lists console errors, exceptions, error log entries, failed
// loads and requests for anything but the page itself and data: URIs.
func (b *browser) problems(page string) []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for _, e := range b.events {
		switch e.Method {
		case "Runtime.consoleAPICalled":
			var p struct {
				Type string
				Args []struct {
					Value       any
					Description string
				}
			}
			json.Unmarshal(e.Params, &p)
			if p.Type == "error" || p.Type == "assert" {
				var parts []string
				for _, a := range p.Args {
					parts = append(parts, fmt.Sprint(a.Value, a.Description))
				}
				out = append(out, "console."+p.Type+": "+strings.Join(parts, " "))
			}
		case "Runtime.exceptionThrown":
			out = append(out, "uncaught exception: "+string(e.Params))
		case "Log.entryAdded":
			var p struct {
				Entry struct{ Level, Text, URL string }
			}
			json.Unmarshal(e.Params, &p)
			if p.Entry.Level == "error" {
				out = append(out, "log error: "+p.Entry.Text+" "+p.Entry.URL)
			}
		case "Network.loadingFailed":
			out = append(out, "load failed: "+string(e.Params))
		case "Network.requestWillBeSent":
			var p struct {
				Request struct{ URL string }
			}
			json.Unmarshal(e.Params, &p)
			u := p.Request.URL
			if u != page && u != "about:blank" && !strings.HasPrefix(u, "data:") {
				out = append(out, "request outside the file: "+u)
			}
		}
	}
	return out
}

func (b *browser) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	b.call(ctx, "", "Browser.close", nil)
	b.w.Close()
	done := make(chan struct{})
	go func() { b.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		b.cmd.Process.Kill()
		<-done
	}
}
