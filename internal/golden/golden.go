// Package golden compares test output with files under testdata/, and rewrites them when the
// tests run with -update (go test ./PKG -update). Golden files hold text as a reader would see it:
// a diff of one in review is a diff of the behaviour.
package golden

import (
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata from the current output")

// Check compares got with testdata/NAME.golden, or rewrites that file with -update. On a
// difference it reports a diff (-want +got).
func Check(t testing.TB, name, got string) {
	t.Helper()
	CheckFile(t, name+".golden", got)
}

// CheckFile is Check for a golden file named otherwise: testdata/FILE, for output whose file
// name says what it is (a man page, a completion script).
func CheckFile(t testing.TB, file, got string) {
	t.Helper()
	path := filepath.Join("testdata", file)
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
	if d := cmp.Diff(string(want), got); d != "" {
		t.Errorf("%s differs (-want +got; run go test -update to accept):\n%s", path, d)
	}
}
