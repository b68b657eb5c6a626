package stages

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/kneepipe/kneepipe/internal/atomicfile"
)

// The split stage records each image's split (by its item column) in its
// state under --cache, and warns when a rerun moves an image that was
// already split: the promise is that only a change to the image's own
// group can do that, and a test image that drifts into train silently
// contaminates every later comparison, so it must never go unnoticed.

// assignmentsPath names the record for one set of split parameters: other
// salts or fractions are other splits, not moves.
func (s *split) assignmentsPath(stateDir string) string {
	sum := sha256.Sum256(fmt.Appendf(nil, "%q %q %v %q %q", s.salt, s.names, s.bounds, s.required, s.optional))
	return filepath.Join(stateDir, fmt.Sprintf("assignments-%x.tsv", sum[:8]))
}

// readAssignments reads a record: one "item<TAB>split" line per image. A
// missing or unreadable record is no record.
func readAssignments(path string) map[string]string {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	out := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		item, sp, ok := strings.Cut(sc.Text(), "\t")
		if !ok {
			return nil
		}
		out[item] = sp
	}
	if sc.Err() != nil {
		return nil
	}
	return out
}

// writeAssignments replaces the record atomically.
func writeAssignments(path string, items, splitOf []string) error {
	var b bytes.Buffer
	seen := map[string]bool{}
	for i, it := range items {
		if seen[it] || strings.ContainsAny(it, "\t\n") {
			continue
		}
		seen[it] = true
		b.WriteString(it)
		b.WriteByte('\t')
		b.WriteString(splitOf[i])
		b.WriteByte('\n')
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return atomicfile.WriteBytes(path, b.Bytes())
}

// moves compares this run's splits with the record: the images that were
// split before and are now in another split, with up to three examples.
func moves(prev map[string]string, items, splitOf []string) (int, []string) {
	n := 0
	var examples []string
	seen := map[string]bool{}
	for i, it := range items {
		was, ok := prev[it]
		if !ok || was == splitOf[i] || seen[it] {
			continue
		}
		seen[it] = true
		n++
		if len(examples) < 3 {
			examples = append(examples, fmt.Sprintf("%s: %s -> %s", it, was, splitOf[i]))
		}
	}
	return n, examples
}

// checkMoves warns of moved images and records this run's splits. Without
// the item column or a state folder there is nothing to compare.
func (s *split) checkMoves(env *Env, items, splitOf []string) int {
	if env.StateDir == "" || items == nil {
		return 0
	}
	path := s.assignmentsPath(env.StateDir)
	n, examples := moves(readAssignments(path), items, splitOf)
	if n > 0 {
		env.Log.Warn("split: images moved to another split since the last run, because their groups changed (see split_group)",
			"images", n, "examples", strings.Join(examples, "; "))
	}
	if err := writeAssignments(path, items, splitOf); err != nil {
		env.Log.Warn("split: could not record the splits; the next run cannot tell moved images", "err", err)
	}
	return n
}
