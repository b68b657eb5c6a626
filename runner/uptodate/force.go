package uptodate

// Force runs the stages the user named with --force (all when the set
// holds "*"), and leaves the others to Next.
type Force struct {
	Stages map[string]bool
	Next   Checker
}

// Check implements Checker.
func (f Force) Check(s Stage) Decision {
	if f.Stages["*"] || f.Stages[s.Name] {
		return Decision{Run: true, Key: s.Key(), Why: "forced", Forced: true}
	}
	return f.Next.Check(s)
}
