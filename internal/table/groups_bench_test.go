package table

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// BenchmarkGroups groups 1M 97-byte ids, each twice (as dedupe and
// cross-check see the file ids of the table benchmark).
func BenchmarkGroups(b *testing.B) {
	mem := memory.NewGoAllocator()
	const n = 1 << 20
	rng := rand.New(rand.NewPCG(3, 4))
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("%064x:%032x", rng.Uint64(), rng.Uint64()%(n/2))
	}
	for i := n / 2; i < n; i++ {
		ids[i] = ids[rng.IntN(n/2)]
	}
	col := Strings(mem, "file_id", ids)
	defer col.Array.Release()
	cols := []arrow.Array{col.Array}
	b.ResetTimer()
	for range b.N {
		g := NewGroups(cols, n)
		for i := range n {
			g.Add(i)
		}
		for i := range n {
			g.Lookup(cols, i)
		}
	}
}
