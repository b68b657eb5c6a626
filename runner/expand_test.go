package runner

import (
	"strings"
	"testing"
)

func TestExpandString(t *testing.T) {
	env := envOf(map[string]string{"A": "alpha", "EMPTY": "", "B_2": "b2", "_U": "u", "DOLLAR": "$X"})
	tests := []struct {
		in, want string
	}{
		{"plain", "plain"},
		{"${A}", "alpha"},
		{"x${A}y${A}z", "xalphayalphaz"},
		{"${B_2}/${_U}", "b2/u"},
		{"${A:-d}", "alpha"},
		{"${MISSING:-d}", "d"},
		{"${MISSING:-}", ""},
		{"${MISSING:-a b/c:d}", "a b/c:d"},
		{"${MISSING:-$}", "$"},
		{"${EMPTY:-d}", "d"}, // set but empty takes the default, as ${VAR:-d} in a shell
		{"${EMPTY}", ""},     // set but empty, no default: empty
		{"$$", "$"},
		{"$${A}", "${A}"},
		{"$$$${A}", "$${A}"},
		{"$$${A}", "$alpha"},
		{"price $5", "price $5"},
		{"$A", "$A"}, // only the braced form expands
		{"trailing $", "trailing $"},
		{"${DOLLAR}", "$X"}, // values are not expanded again
	}
	for _, tt := range tests {
		got, err := expandString(tt.in, env)
		if err != nil || got != tt.want {
			t.Errorf("expandString(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func TestExpandStringErrors(t *testing.T) {
	env := envOf(map[string]string{"A": "alpha"})
	tests := []struct {
		in   string
		want []string
	}{
		{"${MISSING}", []string{"variable MISSING is not set", "${MISSING:-value}"}},
		{"ok ${A} then ${NOPE}", []string{"variable NOPE is not set"}},
		{"${A", []string{`unclosed ${ in "${A"`}},
		{"x ${A:-d", []string{"unclosed ${"}},
		{"${}", []string{`bad variable name ""`}},
		{"${1A}", []string{`bad variable name "1A"`}},
		{"${A-B}", []string{`bad variable name "A-B"`}},
		{"${A B}", []string{`bad variable name "A B"`}},
		{"${A:=d}", []string{`bad variable name "A:=d"`}},
		{"${Ä}", []string{`bad variable name "Ä"`}},
		{"${:-d}", []string{`bad variable name ""`}},
	}
	for _, tt := range tests {
		got, err := expandString(tt.in, env)
		if err == nil {
			t.Errorf("expandString(%q) = %q, want an error", tt.in, got)
			continue
		}
		for _, w := range tt.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("expandString(%q) error %q, want %q", tt.in, err, w)
			}
		}
	}
}
