package uptodate

// Always runs stages that read the outside world (a bucket listing, a
// file): no fingerprint of their definition can tell whether the world
// changed. Their outputs are then keyed by content (see ContentKey), so
// the stages after them still hit the cache when nothing changed.
type Always struct{}

// Check implements Checker.
func (Always) Check(s Stage) Decision {
	return Decision{Run: true, Key: s.Key(), Why: "reads the source: always runs"}
}
