package runner

import (
	"crypto/sha256"
	"encoding/hex"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/ipc"

	"github.com/kneepipe/kneepipe/stages"
)

// outputDigests fingerprints a stage's outputs by their content, hashing
// the Arrow IPC stream of each (a copy of the buffers, no encoding work).
func outputDigests(k stages.Kind, outs map[string]arrow.RecordBatch) map[string]string {
	digests := map[string]string{}
	for _, p := range k.Outputs {
		h := sha256.New()
		w := ipc.NewWriter(h, ipc.WithSchema(outs[p.Name].Schema()))
		err := w.Write(outs[p.Name])
		if cerr := w.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			// Unhashable output: a key no later run can match.
			digests[p.Name] = "unhashable: " + err.Error()
			continue
		}
		digests[p.Name] = hex.EncodeToString(h.Sum(nil))
	}
	return digests
}
