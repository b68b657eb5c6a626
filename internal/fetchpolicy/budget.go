package fetchpolicy

import "sync"

// Budget bounds the extra requests hedging makes to a share of the
// requests made, so that a server that is slow for everyone is not hit
// harder: at most Ratio times the requests so far, plus Burst.
type Budget struct {
	Ratio float64 // e.g. 0.05: 5 % extra GETs
	Burst int     // hedges allowed before any request was counted

	mu       sync.Mutex
	requests int
	spent    int
}

// NewBudget allows ratio extra requests per request, plus burst.
func NewBudget(ratio float64, burst int) *Budget { return &Budget{Ratio: ratio, Burst: burst} }

// Request counts a request (not a hedge).
func (b *Budget) Request() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.requests++
}

// Take spends one hedge if the budget allows it.
func (b *Budget) Take() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if float64(b.spent+1) > b.Ratio*float64(b.requests)+float64(b.Burst) {
		return false
	}
	b.spent++
	return true
}
