package nsmgr

import (
	"errors"
	"testing"

	"github.com/vishvananda/netns"
)

func TestValidateName(t *testing.T) {
	tests := []struct {
		name string
		ok   bool
	}{
		{"work", true},
		{"a", true},
		{"A-Z_0.9=+", true},
		{"123456789012345", true}, // 15
		{"..a", true},
		{"-", true},
		{"wg.0", true},
		{"", false},
		{".", false},
		{"..", false},
		{"1234567890123456", false}, // 16
		{"a/b", false},
		{"../x", false},
		{"/", false},
		{"a b", false},
		{"tab\t", false},
		{"nl\n", false},
		{"wörk", false},
		{"работа", false},
		{"名前", false},
		{"a:b", false},
		{"a@b", false},
		{"nul\x00", false},
		{"\u00e9", false}, // é, 2 bytes: short enough, still not allowed
	}
	for _, tt := range tests {
		err := ValidateName(tt.name)
		if (err == nil) != tt.ok {
			t.Errorf("ValidateName(%q) = %v, want ok=%v", tt.name, err, tt.ok)
		}
		if err != nil && !errors.Is(err, ErrInvalidName) {
			t.Errorf("ValidateName(%q) = %v, does not wrap ErrInvalidName", tt.name, err)
		}
	}
}

func TestValidateNameMessage(t *testing.T) {
	got := ValidateName("../x").Error()
	want := `invalid name "../x": a name is 1-15 characters of letters, digits and _=+.-, and not "." or ".."`
	if got != want {
		t.Errorf("ValidateName(\"../x\") error:\n got %s\nwant %s", got, want)
	}
}

func TestPath(t *testing.T) {
	if got, want := Path("work"), "/run/netns/work"; got != want {
		t.Errorf("Path(\"work\") = %q, want %q", got, want)
	}
}

// TestInvalidNamesRejected covers the calls that are harmless even if validation were missing;
// Create and Delete are covered in the integration world.
func TestInvalidNamesRejected(t *testing.T) {
	for _, name := range []string{"../etc", "..", ""} {
		if _, err := Open(name); !errors.Is(err, ErrInvalidName) {
			t.Errorf("Open(%q) = %v, want ErrInvalidName", name, err)
		}
		if _, err := IDByName(name); !errors.Is(err, ErrInvalidName) {
			t.Errorf("IDByName(%q) = %v, want ErrInvalidName", name, err)
		}
		var ee *ExecError
		if err := Exec(name, netns.None(), ExecOptions{Path: "/bin/true"}); !errors.As(err, &ee) || ee.Code != 125 || !errors.Is(err, ErrInvalidName) {
			t.Errorf("Exec(%q) = %v, want a 125 ExecError wrapping ErrInvalidName", name, err)
		}
	}
}
