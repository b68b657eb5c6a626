// Command report turns the raw measurements of scripts/bench.sh into the
// Markdown tables of docs/benchmarks.md.
//
//	report RESULTS_DIR
//
// RESULTS_DIR/meta.tsv (tab-separated, one record a line) declares:
//
//	info     KEY  VALUE                         machine and version lines
//	group    ID   TITLE  BASE_PEER  [ORDER]     a table; ratios are against BASE_PEER;
//	                                            ORDER says how the peers ran in a round
//	                                            (default: alternated, rotated order)
//	gnote    GROUP  TEXT                        a line under the group's title
//	peer     GROUP  ID  LABEL  COMMAND          a row of the group's table, in order
//	target   GROUP  PEER  METRIC  OP  LIMIT  TEXT
//	         METRIC: ratio (median paired time ratio vs the base), seconds,
//	         rss_mb, ratio:OTHERPEER (time ratio vs OTHERPEER),
//	         rss_ratio:OTHERPEER (peak RSS ratio vs OTHERPEER, paired by
//	         round) or count:WHAT (median of the peer's WHAT in counts.tsv);
//	         OP: <= or <
//	check    TEXT                               a correctness check that passed
//	note     TEXT                               a free line under the tables
//
// RESULTS_DIR/results.tsv holds one measurement a line:
//
//	GROUP  PEER  ROUND  SECONDS  MAXRSS_KB  CPU_S  SERVER_CPU_S  FOREIGN
//
// CPU_S is the command's user+sys CPU seconds, SERVER_CPU_S what the local
// S3 server used meanwhile, FOREIGN the share of the machine (0..1) other
// processes used meanwhile.
//
// RESULTS_DIR/stages.tsv (optional) holds kneepipe's per-stage seconds from
// run.json, printed under the group's table (one column per peer when more
// than one peer of the group has them):
//
//	GROUP  PEER  ROUND  STAGE  SECONDS
//
// RESULTS_DIR/counts.tsv (optional) holds numbers per run, such as objects
// listed and GET requests, printed under the group's table with one column
// per peer:
//
//	GROUP  PEER  ROUND  WHAT  VALUE
//
// Peers of a group run in the same rounds, in a rotated order, so the ratio
// of two peers is taken per round (paired) and summarised by its median and
// min..max; times by median and min..max over the rounds.
package main

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
)

type peer struct {
	group, id, label, command string
}

type group struct {
	id, title, base string
	order           string
	notes           []string
	peers           []*peer
}

type target struct {
	group, peer, metric, op string
	limit                   float64
	text                    string
}

type sample struct {
	secs, rssKB, cpu, server, foreign float64
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: report RESULTS_DIR")
		os.Exit(2)
	}
	if err := run(os.Args[1]); err != nil {
		fmt.Fprintln(os.Stderr, "report:", err)
		os.Exit(1)
	}
}

func readTSV(path string) ([][]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out [][]string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if line := sc.Text(); line != "" {
			out = append(out, strings.Split(line, "\t"))
		}
	}
	return out, sc.Err()
}

func run(dir string) error {
	meta, err := readTSV(filepath.Join(dir, "meta.tsv"))
	if err != nil {
		return err
	}
	res, err := readTSV(filepath.Join(dir, "results.tsv"))
	if err != nil {
		return err
	}
	var (
		infos   [][2]string
		groups  []*group
		byID    = map[string]*group{}
		targets []target
		checks  []string
		notes   []string
	)
	for _, r := range meta {
		need := map[string]int{"info": 3, "group": 4, "gnote": 3, "peer": 5, "target": 7, "check": 2, "note": 2}[r[0]]
		if need == 0 || len(r) < need {
			return fmt.Errorf("meta.tsv: bad line %q", strings.Join(r, "\t"))
		}
		switch r[0] {
		case "info":
			infos = append(infos, [2]string{r[1], r[2]})
		case "group":
			g := &group{id: r[1], title: r[2], base: r[3], order: "peers alternated (rotated order each round)"}
			if len(r) > 4 && r[4] != "" {
				g.order = r[4]
			}
			groups = append(groups, g)
			byID[g.id] = g
		case "gnote":
			g := byID[r[1]]
			if g == nil {
				return fmt.Errorf("meta.tsv: gnote of unknown group %q", r[1])
			}
			g.notes = append(g.notes, r[2])
		case "peer":
			g := byID[r[1]]
			if g == nil {
				return fmt.Errorf("meta.tsv: peer of unknown group %q", r[1])
			}
			g.peers = append(g.peers, &peer{group: r[1], id: r[2], label: r[3], command: r[4]})
		case "target":
			lim, err := strconv.ParseFloat(r[5], 64)
			if err != nil {
				return fmt.Errorf("meta.tsv: target limit %q", r[5])
			}
			targets = append(targets, target{r[1], r[2], r[3], r[4], lim, r[6]})
		case "check":
			checks = append(checks, r[1])
		case "note":
			notes = append(notes, r[1])
		}
	}
	// data[group][peer][round]
	data := map[string]map[string]map[int]sample{}
	for _, r := range res {
		if len(r) < 8 {
			return fmt.Errorf("results.tsv: bad line %q", strings.Join(r, "\t"))
		}
		round, err := strconv.Atoi(r[2])
		if err != nil {
			return fmt.Errorf("results.tsv: bad line %q", strings.Join(r, "\t"))
		}
		var f [5]float64
		for i := range f {
			if f[i], err = strconv.ParseFloat(r[3+i], 64); err != nil {
				return fmt.Errorf("results.tsv: bad line %q", strings.Join(r, "\t"))
			}
		}
		if data[r[0]] == nil {
			data[r[0]] = map[string]map[int]sample{}
		}
		if data[r[0]][r[1]] == nil {
			data[r[0]][r[1]] = map[int]sample{}
		}
		data[r[0]][r[1]][round] = sample{f[0], f[1], f[2], f[3], f[4]}
	}

	stageData, err := readSeries(filepath.Join(dir, "stages.tsv"))
	if err != nil {
		return err
	}
	countData, err := readSeries(filepath.Join(dir, "counts.tsv"))
	if err != nil {
		return err
	}

	w := bufio.NewWriter(os.Stdout)
	defer w.Flush()

	fmt.Fprintln(w, "| | |")
	fmt.Fprintln(w, "| --- | --- |")
	for _, kv := range infos {
		fmt.Fprintf(w, "| %s | %s |\n", kv[0], esc(kv[1]))
	}
	fmt.Fprintln(w)

	for _, g := range groups {
		fmt.Fprintf(w, "### %s\n\n", g.title)
		for _, n := range g.notes {
			fmt.Fprintf(w, "%s\n\n", n)
		}
		rounds := len(data[g.id][g.base])
		fmt.Fprintf(w, "%d rounds, %s. Time = wall clock of the whole command; ratio = median over rounds of (peer time / %s time in the same round), with min..max.\n\n", rounds, g.order, g.base)
		withServer := false
		var foreign []float64
		for _, p := range g.peers {
			for _, x := range data[g.id][p.id] {
				withServer = withServer || x.server >= 0.05
				foreign = append(foreign, x.foreign)
			}
		}
		hdr := fmt.Sprintf("| peer | median s | min..max s | ratio vs %s | ratio min..max | CPU s (median)", g.base)
		sep := "| --- | ---: | ---: | ---: | ---: | ---:"
		if withServer {
			hdr += " | S3 server CPU s (median)"
			sep += " | ---:"
		}
		fmt.Fprintln(w, hdr+" | peak RSS MB (median) | RSS min..max |")
		fmt.Fprintln(w, sep+" | ---: | ---: |")
		for _, p := range g.peers {
			s := data[g.id][p.id]
			if len(s) == 0 {
				fmt.Fprintf(w, "| %s | (no data) |\n", esc(p.label))
				continue
			}
			secs, rss := values(s, func(x sample) float64 { return x.secs }), values(s, func(x sample) float64 { return x.rssKB / 1024 })
			ratio, rlo, rhi := pairedRatio(s, data[g.id][g.base])
			fmt.Fprintf(w, "| %s | %.2f | %.2f..%.2f | %s | %s | %.2f",
				esc(p.label), median(secs), minOf(secs), maxOf(secs),
				fmtRatio(ratio), fmtRange(rlo, rhi), median(values(s, func(x sample) float64 { return x.cpu })))
			if withServer {
				fmt.Fprintf(w, " | %.2f", median(values(s, func(x sample) float64 { return x.server })))
			}
			fmt.Fprintf(w, " | %.0f | %.0f..%.0f |\n", median(rss), minOf(rss), maxOf(rss))
		}
		if len(foreign) > 0 {
			sort.Float64s(foreign)
			fmt.Fprintf(w, "\nOther processes on the machine used a median %.0f%% (max %.0f%%) of its %s during these measurements.\n",
				100*median(foreign), 100*maxOf(foreign), "CPUs")
		}
		fmt.Fprintln(w)
		if ss := stageData[g.id]; ss != nil {
			if len(ss.peers) == 1 {
				fmt.Fprintf(w, "%s's stages in these runs (seconds from its run.json; median over rounds, min..max; stages may overlap):\n\n", ss.peers[0])
				fmt.Fprintln(w, "| stage | median s | min..max s |")
				fmt.Fprintln(w, "| --- | ---: | ---: |")
				for _, name := range ss.order {
					v := ss.vals[ss.peers[0]][name]
					fmt.Fprintf(w, "| %s | %.3f | %.3f..%.3f |\n", esc(name), median(v), minOf(v), maxOf(v))
				}
			} else {
				fmt.Fprintln(w, "kneepipe's stages in these runs (seconds from its run.json; median over rounds, with min..max when rounds differ; stages may overlap):")
				fmt.Fprintln(w)
				seriesTable(w, g, ss, "stage", func(v []float64) string { return fmtSpread(v, "%.3f") })
			}
			fmt.Fprintln(w)
		}
		if cs := countData[g.id]; cs != nil {
			fmt.Fprintln(w, "Per run (median over rounds, with min..max when rounds differ):")
			fmt.Fprintln(w)
			seriesTable(w, g, cs, "from run.json", func(v []float64) string { return fmtSpread(v, "%.0f") })
			fmt.Fprintln(w)
		}
		fmt.Fprintln(w, "Commands:")
		fmt.Fprintln(w)
		for _, p := range g.peers {
			fmt.Fprintf(w, "- %s: `%s`\n", p.label, p.command)
		}
		fmt.Fprintln(w)
	}

	if len(targets) > 0 {
		fmt.Fprintln(w, "### Targets")
		fmt.Fprintln(w)
		fmt.Fprintln(w, "| target | measured | met? |")
		fmt.Fprintln(w, "| --- | ---: | --- |")
		for _, t := range targets {
			got, unit := measure(t, data, byID, countData)
			ok := false
			switch t.op {
			case "<=":
				ok = got <= t.limit
			case "<":
				ok = got < t.limit
			}
			mark := "yes"
			if !ok || math.IsNaN(got) {
				mark = "**no**"
			}
			fmt.Fprintf(w, "| %s | %s%s | %s |\n", esc(t.text), fmtNum(got), unit, mark)
		}
		fmt.Fprintln(w)
	}
	if len(checks) > 0 {
		fmt.Fprintln(w, "### Output checks (all passed)")
		fmt.Fprintln(w)
		for _, c := range checks {
			fmt.Fprintf(w, "- %s\n", c)
		}
		fmt.Fprintln(w)
	}
	if len(notes) > 0 {
		fmt.Fprintln(w, "### Notes")
		fmt.Fprintln(w)
		for _, n := range notes {
			fmt.Fprintf(w, "- %s\n", n)
		}
		fmt.Fprintln(w)
	}
	return nil
}

// series is one group's per-run numbers (stages.tsv, counts.tsv): names in
// first-seen order, values per peer and name.
type series struct {
	peers []string
	order []string
	vals  map[string]map[string][]float64
}

// readSeries reads GROUP PEER ROUND NAME VALUE lines into series per group;
// a missing file is no data.
func readSeries(path string) (map[string]*series, error) {
	out := map[string]*series{}
	rows, err := readTSV(path)
	if os.IsNotExist(err) {
		return out, nil
	}
	if err != nil {
		return nil, err
	}
	for _, r := range rows {
		if len(r) < 5 {
			return nil, fmt.Errorf("%s: bad line %q", filepath.Base(path), strings.Join(r, "\t"))
		}
		v, err := strconv.ParseFloat(r[4], 64)
		if err != nil {
			return nil, fmt.Errorf("%s: bad line %q", filepath.Base(path), strings.Join(r, "\t"))
		}
		s := out[r[0]]
		if s == nil {
			s = &series{vals: map[string]map[string][]float64{}}
			out[r[0]] = s
		}
		if s.vals[r[1]] == nil {
			s.vals[r[1]] = map[string][]float64{}
			s.peers = append(s.peers, r[1])
		}
		if !slices.Contains(s.order, r[3]) {
			s.order = append(s.order, r[3])
		}
		s.vals[r[1]][r[3]] = append(s.vals[r[1]][r[3]], v)
	}
	for _, s := range out {
		for _, byName := range s.vals {
			for _, v := range byName {
				sort.Float64s(v)
			}
		}
	}
	return out, nil
}

// seriesTable prints s with one row per name and one column per peer of g
// that has data, in g's peer order.
func seriesTable(w io.Writer, g *group, s *series, first string, cell func([]float64) string) {
	var cols []*peer
	for _, p := range g.peers {
		if s.vals[p.id] != nil {
			cols = append(cols, p)
		}
	}
	hdr, sep := "| "+first, "| ---"
	for _, p := range cols {
		hdr += " | " + esc(p.label)
		sep += " | ---:"
	}
	fmt.Fprintln(w, hdr+" |")
	fmt.Fprintln(w, sep+" |")
	for _, name := range s.order {
		line := "| " + esc(name)
		for _, p := range cols {
			if v := s.vals[p.id][name]; len(v) > 0 {
				line += " | " + cell(v)
			} else {
				line += " | -"
			}
		}
		fmt.Fprintln(w, line+" |")
	}
}

// fmtSpread is the median of sorted v, with min..max when they differ.
func fmtSpread(v []float64, f string) string {
	m := fmt.Sprintf(f, median(v))
	if lo, hi := fmt.Sprintf(f, minOf(v)), fmt.Sprintf(f, maxOf(v)); lo != hi {
		m += " (" + lo + ".." + hi + ")"
	}
	return m
}

func measure(t target, data map[string]map[string]map[int]sample, groups map[string]*group, counts map[string]*series) (float64, string) {
	s := data[t.group][t.peer]
	switch {
	case strings.HasPrefix(t.metric, "rss_ratio:"):
		other := data[t.group][strings.TrimPrefix(t.metric, "rss_ratio:")]
		var rs []float64
		for r, x := range s {
			if y, ok := other[r]; ok && y.rssKB > 0 {
				rs = append(rs, x.rssKB/y.rssKB)
			}
		}
		if len(rs) == 0 {
			return math.NaN(), "x"
		}
		sort.Float64s(rs)
		return median(rs), "x"
	case strings.HasPrefix(t.metric, "count:"):
		c := counts[t.group]
		if c == nil || len(c.vals[t.peer][strings.TrimPrefix(t.metric, "count:")]) == 0 {
			return math.NaN(), ""
		}
		v := slices.Clone(c.vals[t.peer][strings.TrimPrefix(t.metric, "count:")])
		sort.Float64s(v)
		return median(v), ""
	case t.metric == "ratio":
		r, _, _ := pairedRatio(s, data[t.group][groups[t.group].base])
		return r, "x"
	case strings.HasPrefix(t.metric, "ratio:"):
		r, _, _ := pairedRatio(s, data[t.group][strings.TrimPrefix(t.metric, "ratio:")])
		return r, "x"
	case t.metric == "seconds":
		return median(values(s, func(x sample) float64 { return x.secs })), " s"
	case t.metric == "rss_mb":
		return median(values(s, func(x sample) float64 { return x.rssKB / 1024 })), " MB"
	}
	return math.NaN(), ""
}

func values(s map[int]sample, f func(sample) float64) []float64 {
	out := make([]float64, 0, len(s))
	for _, x := range s {
		out = append(out, f(x))
	}
	sort.Float64s(out)
	return out
}

// pairedRatio is the median and range of a[r]/b[r] over rounds both have.
func pairedRatio(a, b map[int]sample) (med, lo, hi float64) {
	var rs []float64
	for r, x := range a {
		if y, ok := b[r]; ok && y.secs > 0 {
			rs = append(rs, x.secs/y.secs)
		}
	}
	if len(rs) == 0 {
		return math.NaN(), math.NaN(), math.NaN()
	}
	sort.Float64s(rs)
	return median(rs), rs[0], rs[len(rs)-1]
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

func minOf(v []float64) float64 { return v[0] }
func maxOf(v []float64) float64 { return v[len(v)-1] }

func fmtRatio(r float64) string {
	if math.IsNaN(r) {
		return "-"
	}
	return fmt.Sprintf("%.2fx", r)
}

func fmtRange(lo, hi float64) string {
	if math.IsNaN(lo) {
		return "-"
	}
	return fmt.Sprintf("%.2f..%.2f", lo, hi)
}

func fmtNum(v float64) string {
	if math.IsNaN(v) {
		return "n/a"
	}
	return strconv.FormatFloat(v, 'f', 2, 64)
}

// esc keeps a cell inside its Markdown table cell.
func esc(s string) string { return strings.ReplaceAll(s, "|", `\|`) }
