// Package golden compares test output with files under testdata/, and rewrites them when the
// tests run with -update (go test ./PKG -update). Golden files hold text as a reader would see it:
// a diff of one in review is a diff of the behaviour.
package golden

import (
	"flag"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current output")

// Check compares got with testdata/NAME.golden, or rewrites that file with -update. On a
// difference it reports the first differing line and both texts.
func Check(t testing.TB, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading the golden file (run go test -update to create it): %v", err)
	}
	if got != string(want) {
		t.Errorf("%s differs (run go test -update to accept): %s\n--- got:\n%s\n--- want:\n%s", path, FirstDiff(string(want), got), got, want)
	}
}

// FirstDiff describes the first line where a and b differ, or "" when they are equal.
func FirstDiff(a, b string) string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	for i := 0; i < len(al) || i < len(bl); i++ {
		var x, y string
		if i < len(al) {
			x = al[i]
		}
		if i < len(bl) {
			y = bl[i]
		}
		if x != y || i >= len(al) || i >= len(bl) {
			return "line " + strconv.Itoa(i+1) + ": want " + quote(x, i < len(al)) + ", got " + quote(y, i < len(bl))
		}
	}
	return ""
}

func quote(s string, present bool) string {
	if !present {
		return "(end of text)"
	}
	return "\"" + s + "\""
}
