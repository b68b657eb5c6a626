package storepolicy

// StoreRate is the bytes per second auto assumes storing costs: encoding
// the outputs as Parquet, writing them and reading them back in a later
// run (about 200 MB/s each way on a 2-core machine with an SSD).
const StoreRate = 100e6

// Auto stores what is dearer to compute again than to store:
//   - never a volatile stage's outputs: it runs in every run anyway, and
//     nothing reads the stored copy;
//   - always a stage that read the source (a listing, objects fetched and
//     hashed): the network is the slow part, not the size;
//   - otherwise the outputs when computing them took longer than storing
//     and reading them back would (Bytes / StoreRate). Table stages run at
//     hundreds of MB/s over data already in memory, so a dedupe or filter
//     of a big table is recorded, not stored, while an aggregation that
//     shrinks its input (cross-check's matrix) is stored.
type Auto struct{}

// Store implements Policy.
func (Auto) Store(s Stage) bool {
	switch {
	case s.Volatile:
		return false
	case s.Source:
		return true
	}
	return s.Seconds*StoreRate > float64(s.Bytes)
}
