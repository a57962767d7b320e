package nsmgr

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// OpenPath opens a namespace by any path (a CNI runtime's), needs no privileges for this
// process's own, and refuses what is not a network namespace, as Open does.
func TestOpenPath(t *testing.T) {
	h, err := OpenPath("/proc/self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	id, err := IDOf(h)
	if err != nil {
		t.Fatal(err)
	}
	self, err := Self()
	if err != nil {
		t.Fatal(err)
	}
	if id != self {
		t.Errorf("OpenPath(/proc/self/ns/net) is %v, Self is %v", id, self)
	}

	plain := filepath.Join(t.TempDir(), "plain")
	if err := os.WriteFile(plain, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]string{
		plain:               "opening network namespace " + plain + ": not a network namespace",
		"/proc/self/ns/uts": "opening network namespace /proc/self/ns/uts: not a network namespace",
	} {
		if _, err := OpenPath(path); err == nil || err.Error() != want {
			t.Errorf("OpenPath(%s) = %v, want %q", path, err, want)
		}
	}
	missing := filepath.Join(t.TempDir(), "gone")
	if _, err := OpenPath(missing); !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), missing) {
		t.Errorf("OpenPath of a missing file = %v, want fs.ErrNotExist naming the path", err)
	}
}
