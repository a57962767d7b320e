package shellquote

import (
	"os/exec"
	"testing"
)

func TestQuote(t *testing.T) {
	for _, tc := range []struct{ in, word, always string }{
		{"work.service", "work.service", "'work.service'"},
		{`backup@home\x2ddir.service`, `'backup@home\x2ddir.service'`, `'backup@home\x2ddir.service'`},
		{"it's", `'it'\''s'`, `'it'\''s'`},
		{"foo@bar:baz_1.2+3=4.svc", "foo@bar:baz_1.2+3=4.svc", "'foo@bar:baz_1.2+3=4.svc'"},
		{"a b", "'a b'", "'a b'"},
		{"$(x)", "'$(x)'", "'$(x)'"},
		{"é", "'é'", "'é'"},
	} {
		if got := Word(tc.in); got != tc.word {
			t.Errorf("Word(%q) = %q, want %q", tc.in, got, tc.word)
		}
		if got := Always(tc.in); got != tc.always {
			t.Errorf("Always(%q) = %q, want %q", tc.in, got, tc.always)
		}
	}
}

// A real shell reads each quoted word back as it was.
func TestQuoteRoundTrip(t *testing.T) {
	for _, s := range []string{"plain", "it's", "a b\tc\nd", `$HOME "x" \ ;|&*?`, "''"} {
		for _, q := range []string{Word(s), Always(s)} {
			out, err := exec.Command("sh", "-c", "printf %s "+q).Output()
			if err != nil {
				t.Fatalf("sh: %v", err)
			}
			if string(out) != s {
				t.Errorf("sh read %q back as %q", q, out)
			}
		}
	}
}
