package fetchpolicy

import "testing"

func TestBudgetBoundsHedges(t *testing.T) {
	b := NewBudget(0.05, 2)
	took := 0
	for range 2 {
		if b.Take() {
			took++
		}
	}
	if took != 2 || b.Take() {
		t.Fatalf("took %d hedges before any request, want the burst of 2 and no more", took)
	}
	for range 1000 {
		b.Request()
		if b.Take() {
			took++
		}
	}
	if took != 52 {
		t.Errorf("%d hedges over 1000 requests, want 5 %% + 2 = 52", took)
	}
}
