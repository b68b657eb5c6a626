package storepolicy

// Shrink is how much smaller than its inputs a table stage's outputs must
// be for auto to store them. A table stage passes over its inputs at
// several hundred MB/s (dedupe, filter, map-severity, cross-check, all in
// memory), while storing its outputs (Parquet encoding, writing, reading
// back in a later run) goes at about 100 MB/s: computing again costs about
// as much as storing a quarter of the inputs' size.
const Shrink = 4

// Auto stores what is dearer to compute again than to store, judged from
// sizes so that the same pipeline stores the same entries on a busy
// machine as on a quiet one:
//   - never a volatile stage's outputs: it runs in every run anyway, and
//     nothing reads the stored copy;
//   - always a stage that read the source (objects fetched and hashed,
//     images exported): the network is the slow part, not the size;
//   - otherwise the outputs when they are under 1/Shrink of the inputs'
//     size: an aggregation such as cross-check is stored, while a dedupe,
//     a filter or map-severity, whose outputs are about as big as their
//     inputs, is only recorded.
type Auto struct{}

// Store implements Policy.
func (Auto) Store(s Stage) bool {
	switch {
	case s.Volatile:
		return false
	case s.Source:
		return true
	}
	return s.OutBytes*Shrink < s.InBytes
}
