package runner

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/kneepipe/kneepipe/internal/table"
)

// A files table may name stored files (an export's shards) instead of
// carrying their content: they are streamed, and refused when they no
// longer match their SHA-256.
func TestFilesArtifactFromPaths(t *testing.T) {
	mem := memory.NewGoAllocator()
	dir := t.TempDir()
	data := []byte("shard bytes")
	sum := sha256.Sum256(data)
	good := filepath.Join(dir, "good")
	if err := os.WriteFile(good, data, 0o644); err != nil {
		t.Fatal(err)
	}
	damaged := filepath.Join(dir, "damaged")
	if err := os.WriteFile(damaged, []byte("shard bytez"), 0o644); err != nil {
		t.Fatal(err)
	}
	rec := table.New(
		table.Strings(mem, "name", []string{"webdataset/train-000000.tar", "b", "c"}),
		table.Strings(mem, "path", []string{good, damaged, filepath.Join(dir, "gone")}),
		table.Strings(mem, "sha256", []string{hex.EncodeToString(sum[:]), hex.EncodeToString(sum[:]), hex.EncodeToString(sum[:])}),
	)
	defer rec.Release()
	files, release, err := artifactFiles(&Artifact{Name: "out", Formats: []string{"files"}}, rec)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	if files[0].name != filepath.Join("out", "webdataset", "train-000000.tar") {
		t.Errorf("name %s", files[0].name)
	}
	var b bytes.Buffer
	if err := files[0].write(&b); err != nil || b.String() != string(data) {
		t.Errorf("stored file: %q, %v", b.String(), err)
	}
	if err := files[1].write(&bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "is damaged") {
		t.Errorf("damaged file: %v", err)
	}
	if err := files[2].write(&bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "rerun with --force") {
		t.Errorf("missing file: %v", err)
	}
	noContent := table.New(table.Strings(mem, "name", []string{"x"}))
	defer noContent.Release()
	if _, _, err := artifactFiles(&Artifact{Name: "out", Formats: []string{"files"}}, noContent); err == nil || !strings.Contains(err.Error(), "needs a content or a path column") {
		t.Errorf("neither column: %v", err)
	}
}
