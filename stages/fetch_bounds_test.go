package stages

import "testing"

// Issue 9 item 6: a PNG whose header declares more than max_pixels is
// rejected with a reason (no later stage decodes it); at the bound it is
// kept. The default bounds the 20000×20000 header of a 70-byte file.
func TestFetchHashMaxPixels(t *testing.T) {
	store := newMemStore()
	store.put("bomb.png", append(pngHead("IHDR", 20000, 20000, 8, 0), "IDAT....IEND"...))
	store.put("small.png", grayPNG(t, 4, 3, 9))
	env := fetchEnv(t, store)
	for _, tt := range []struct{ params, rejected string }{
		{"{}", lines("key,reason", "bomb.png,image too large: 20000×20000 pixels (max_pixels 50000000)")},
		{"{max_pixels: 12}", lines("key,reason", "bomb.png,image too large: 20000×20000 pixels (max_pixels 12)")},
		{"{max_pixels: 11}", lines("key,reason", "bomb.png,image too large: 20000×20000 pixels (max_pixels 11)", "small.png,image too large: 4×3 pixels (max_pixels 11)")},
	} {
		res := fetchRun(t, env, tt.params)
		if got := csvOf(t, res.Outputs["rejected"]); got != tt.rejected {
			t.Errorf("%s: rejected\n%s\nwant\n%s", tt.params, got, tt.rejected)
		}
		if n := res.Objects.Rejected + res.Outputs["rows"].NumRows(); n != 2 {
			t.Errorf("%s: %d rejected + kept, want 2", tt.params, n)
		}
	}
}
