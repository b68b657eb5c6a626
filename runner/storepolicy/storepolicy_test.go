package storepolicy

import "testing"

func TestPolicies(t *testing.T) {
	big := Stage{Kind: "dedupe", InBytes: 200e6, OutBytes: 198e6}
	dear := Stage{Kind: "cross-check", InBytes: 200e6, OutBytes: 45e6}
	edge := Stage{Kind: "cross-check", InBytes: 200e6, OutBytes: 50e6}
	listing := Stage{Kind: "list", Volatile: true, Source: true, OutBytes: 1e3}
	fetch := Stage{Kind: "fetch-hash", Source: true, InBytes: 1e3, OutBytes: 1e9}
	read := Stage{Kind: "read", Volatile: true, OutBytes: 1e9}
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
		{Auto{}, edge, false},
		{Auto{}, Stage{}, false},
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
