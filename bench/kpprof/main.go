// Command kpprof runs a pipeline the way `kneepipe run` does (runner.Load,
// the --source/--endpoint/--region overrides, runner.Run) with Go's
// profilers on, to find where kneepipe spends its time and memory in the
// benchmarks of scripts/bench.sh. It is not part of `make bench`.
//
//	kpprof -f examples/notebook-from-csv.yaml -out OUT -cache DIR \
//	    -cpuprofile cpu.pprof -memprofile heap.pprof [-source ... -endpoint ... -region ...]
//	go tool pprof -top -nodecount=40 cpu.pprof
//
// -memprofile writes the heap profile at the end of the run with
// MemProfileRate=512 KiB samples (alloc_space shows where the bytes were
// allocated); -peakheap samples runtime heap stats every 10 ms and prints
// the peak HeapInuse and Sys next to the process's VmHWM.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"runtime/pprof"
	"runtime/trace"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/kneepipe/kneepipe/runner"
	"github.com/kneepipe/kneepipe/stages"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "kpprof:", err)
		os.Exit(1)
	}
}

func run() error {
	file := flag.String("f", "pipeline.yaml", "pipeline file")
	out := flag.String("out", "out", "artifact directory")
	cacheDir := flag.String("cache", "", "cache directory (required; use a fresh one for a cold run)")
	src := flag.String("source", "", "override source.uri")
	endpoint := flag.String("endpoint", "", "override source.endpoint")
	region := flag.String("region", "", "override source.region")
	cpu := flag.String("cpuprofile", "", "write a CPU profile here")
	mem := flag.String("memprofile", "", "write a heap profile (end of run) here")
	tr := flag.String("trace", "", "write an execution trace here")
	peak := flag.Bool("peakheap", false, "report the peak Go heap and the process's VmHWM")
	peakProf := flag.String("peakprofile", "", "with -peakheap: write the heap profile of the collection that found the most live bytes here (inuse_space: what was live at the peak)")
	verbose := flag.Bool("v", false, "log stage progress to stderr")
	repeat := flag.Int("repeat", 1, "run this many times on the same cache, each into a new folder OUT/<i> (profiles no-op reruns)")
	flag.Parse()
	if *cacheDir == "" {
		return errors.New("-cache is required")
	}
	if *mem != "" || *peakProf != "" {
		runtime.MemProfileRate = 512 << 10
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	lookup := os.LookupEnv
	cfg, err := runner.Load(*file, stages.Builtin(), lookup)
	if err != nil {
		return err
	}
	if *src != "" {
		cfg.Source.URI = *src
	}
	if *endpoint != "" {
		cfg.Source.Endpoint = *endpoint
	}
	if *region != "" {
		cfg.Source.Region = *region
	}
	log := slog.New(slog.DiscardHandler)
	if *verbose {
		log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}

	if *cpu != "" {
		f, err := os.Create(*cpu)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	if *tr != "" {
		f, err := os.Create(*tr)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := trace.Start(f); err != nil {
			return err
		}
		defer trace.Stop()
	}
	var peakInuse, peakSys atomic.Uint64
	var peakLive uint64
	done := make(chan struct{})
	if *peak {
		go func() {
			t := time.NewTicker(10 * time.Millisecond)
			defer t.Stop()
			var ms runtime.MemStats
			for {
				select {
				case <-done:
					return
				case <-t.C:
				}
				runtime.ReadMemStats(&ms)
				if *peakProf != "" {
					peakLive = writeAtPeak(*peakProf, peakLive)
				}
				if ms.HeapInuse > peakInuse.Load() {
					peakInuse.Store(ms.HeapInuse)
				}
				if ms.Sys > peakSys.Load() {
					peakSys.Store(ms.Sys)
				}
			}
		}()
	}

	start := time.Now()
	var rep *runner.Report
	var runErr error
	for i := range max(*repeat, 1) {
		dir := *out
		if *repeat > 1 {
			dir = filepath.Join(*out, strconv.Itoa(i))
		}
		if rep, runErr = runner.Run(ctx, cfg, runner.Options{OutDir: dir, CacheDir: *cacheDir, Lookup: lookup, Log: log}); runErr != nil {
			break
		}
	}
	elapsed := time.Since(start)
	close(done)

	if rep != nil {
		var parts []string
		for _, s := range rep.Stages {
			parts = append(parts, fmt.Sprintf("%s=%.3fs(%s)", s.Name, s.Seconds, s.Status))
		}
		fmt.Fprintf(os.Stderr, "kpprof: %s in %.3fs (report %.3fs): %s\n", rep.Status, elapsed.Seconds(), rep.Seconds, strings.Join(parts, " "))
	}
	if *peak {
		fmt.Fprintf(os.Stderr, "kpprof: peak HeapInuse %d MiB, peak Sys %d MiB, %s\n",
			peakInuse.Load()>>20, peakSys.Load()>>20, vmHWM())
	}
	if *mem != "" {
		f, err := os.Create(*mem)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
			return err
		}
	}
	return runErr
}

// writeAtPeak writes the heap profile to file when the last collection
// found more live bytes than peak, and returns the new peak.
func writeAtPeak(file string, peak uint64) uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	live := s[0].Value.Uint64()
	if live <= peak+peak/50 {
		return peak
	}
	if f, err := os.Create(file); err == nil {
		_ = pprof.Lookup("heap").WriteTo(f, 0)
		f.Close()
	}
	fmt.Fprintf(os.Stderr, "kpprof: live heap %d MiB, profile written\n", live>>20)
	return live
}

// vmHWM reads the process's peak resident set from /proc.
func vmHWM() string {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return "VmHWM unknown"
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmHWM:") {
			return "VmHWM " + strings.Join(strings.Fields(strings.TrimPrefix(l, "VmHWM:")), " ")
		}
	}
	return "VmHWM unknown"
}
