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

// OpenHeld finds a namespace through a descriptor a process holds (here this process's own,
// which needs no privileges), whatever else its descriptor table holds, and says fs.ErrNotExist
// once nothing holds it.
func TestOpenHeld(t *testing.T) {
	self, err := Self()
	if err != nil {
		t.Fatal(err)
	}
	r, w, err := os.Pipe() // a pipe and a plain file beside it: looked at, never opened
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	f, err := os.Open("/proc/self/ns/uts")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()

	hold, err := OpenPath("/proc/self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	h, err := OpenHeld(os.Getpid(), self)
	if err != nil {
		t.Fatal(err)
	}
	if id, err := IDOf(h); err != nil || id != self || int(h) == int(hold) {
		t.Errorf("OpenHeld = handle %d of %v (%v), want a new handle of %v", int(h), id, err, self)
	}
	h.Close()
	hold.Close()
	if _, err := OpenHeld(os.Getpid(), self); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("OpenHeld with nothing held = %v, want fs.ErrNotExist", err)
	}
	if _, err := OpenHeld(os.Getpid(), ID{Dev: self.Dev, Ino: self.Ino + 1}); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("OpenHeld of a namespace not held = %v, want fs.ErrNotExist", err)
	}
}
