package storepolicy

import "testing"

func TestPolicies(t *testing.T) {
	big := Stage{Kind: "dedupe", Seconds: 0.5, Bytes: 200e6}    // 200 MB in 0.5 s
	dear := Stage{Kind: "cross-check", Seconds: 1, Bytes: 10e6} // 10 MB in 1 s
	listing := Stage{Kind: "list", Volatile: true, Source: true, Seconds: 5, Bytes: 1e3}
	fetch := Stage{Kind: "fetch-hash", Source: true, Seconds: 0.01, Bytes: 1e9}
	read := Stage{Kind: "read", Volatile: true, Seconds: 10, Bytes: 1e3}
	for _, c := range []struct {
		policy Policy
		stage  Stage
		want   bool
	}{
		{Auto{}, big, false},
		{Auto{}, dear, true},
		{Auto{}, listing, false},
		{Auto{}, read, false},
		{Auto{}, fetch, true},
		{Auto{}, Stage{Seconds: 0, Bytes: 0}, false},
		{Always{}, big, true},
		{Always{}, read, true},
		{Never{}, dear, false},
		{Never{}, fetch, false},
	} {
		if got := c.policy.Store(c.stage); got != c.want {
			t.Errorf("%T.Store(%+v) = %v, want %v", c.policy, c.stage, got, c.want)
		}
	}
}

func TestParse(t *testing.T) {
	for name, want := range map[string]Policy{"": Auto{}, "auto": Auto{}, "always": Always{}, "never": Never{}} {
		got, err := Parse(name)
		if err != nil || got != want {
			t.Errorf("Parse(%q) = %v, %v; want %T", name, got, err, want)
		}
	}
	if _, err := Parse("sometimes"); err == nil || err.Error() != `"sometimes" is not auto, always, never` {
		t.Errorf("Parse(sometimes) error = %v", err)
	}
}
