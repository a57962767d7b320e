package envlist

import "testing"

func TestValue(t *testing.T) {
	env := []string{"A=1", "B=", "A=2", "AB=3", "C"}
	for _, tc := range []struct{ key, want string }{
		{"A", "2"}, // the last one wins, as getenv
		{"B", ""},
		{"AB", "3"},
		{"C", ""}, // no "=": no value
		{"D", ""},
	} {
		if got := Value(env, tc.key); got != tc.want {
			t.Errorf("Value(%q) = %q, want %q", tc.key, got, tc.want)
		}
	}
}
