package linediff

import "testing"

func TestDiff(t *testing.T) {
	for _, tc := range []struct {
		name, a, b, indent, want string
	}{
		{"same", "a\nb\n", "a\nb\n", "", ""},
		{"one changed", "a\nb\nc\n", "a\nc\nd\n", "\t", "\t-b\n\t+d"},
		{"in order", "x\na\nb\ny\n", "x\nb\nc\ny\n", "", "-a\n+c"},
		{"all new", "", "a\nb\n", "", "+a\n+b"},
		{"all gone", "a\n", "", "  ", "  -a"},
		{"last newline", "a\nb", "a\nb\n", "", "-b\n+b"},
		{"long common ends", "p\np\np\nold\ns\ns\n", "p\np\np\nnew\ns\ns\n", "", "-old\n+new"},
	} {
		if got := Diff(tc.a, tc.b, tc.indent); got != tc.want {
			t.Errorf("%s: Diff = %q, want %q", tc.name, got, tc.want)
		}
	}
}

// Texts of many lines that differ in few are cheap: the common start and end are not compared
// line by line against each other.
func TestDiffLongTexts(t *testing.T) {
	var a, b []byte
	for i := 0; i < 200000; i++ {
		line := []byte("net/ipv4/conf/x/value = 1\n")
		a = append(a, line...)
		b = append(b, line...)
		if i == 100000 {
			a = append(a, "net/ipv4/ip_forward = 0\n"...)
			b = append(b, "net/ipv4/ip_forward = 1\n"...)
		}
	}
	if got, want := Diff(string(a), string(b), ""), "-net/ipv4/ip_forward = 0\n+net/ipv4/ip_forward = 1"; got != want {
		t.Errorf("Diff = %q, want %q", got, want)
	}
}
