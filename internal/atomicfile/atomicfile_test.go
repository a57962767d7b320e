package atomicfile

import (
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

func TestWrite(t *testing.T) {
	for _, tc := range []struct {
		name string
		o    Options
		mode fs.FileMode
	}{
		{"plain", Options{}, 0o600},
		{"synced", Options{Sync: true}, 0o644},
		{"prefixed and owned", Options{TempPrefix: ".x-", Owner: &Owner{UID: os.Getuid(), GID: os.Getgid()}}, 0o640},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "f.conf")
			victim := filepath.Join(dir, "victim")
			if err := os.WriteFile(victim, []byte("keep"), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(victim, path); err != nil {
				t.Fatal(err)
			}
			if err := Write(path, []byte("new\n"), tc.mode, tc.o); err != nil {
				t.Fatalf("Write: %v", err)
			}
			fi, err := os.Lstat(path)
			if err != nil {
				t.Fatal(err)
			}
			if !fi.Mode().IsRegular() || fi.Mode().Perm() != tc.mode {
				t.Errorf("mode %v, want a regular file with %v", fi.Mode(), tc.mode)
			}
			if st := fi.Sys().(*syscall.Stat_t); int(st.Uid) != os.Getuid() {
				t.Errorf("owner %d, want %d", st.Uid, os.Getuid())
			}
			if b, _ := os.ReadFile(path); string(b) != "new\n" {
				t.Errorf("content %q, want %q", b, "new\n")
			}
			if b, _ := os.ReadFile(victim); string(b) != "keep" {
				t.Errorf("the symlink's target was written: %q", b)
			}
			entries, _ := os.ReadDir(dir)
			if len(entries) != 2 {
				t.Errorf("%d entries in the directory, want 2 (no temporary file left)", len(entries))
			}
		})
	}
}

func TestWriteFailureLeavesNothing(t *testing.T) {
	dir := t.TempDir()
	// A directory at the target: the rename fails after the temporary file was written.
	path := filepath.Join(dir, "f")
	if err := os.Mkdir(path, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := Write(path, []byte("new"), 0o600, Options{Sync: true}); err == nil {
		t.Fatal("Write over a directory succeeded")
	}
	if fi, err := os.Lstat(path); err != nil || !fi.IsDir() {
		t.Errorf("the target changed: %v, %v", fi, err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("%d entries, want 1 (the temporary file removed)", len(entries))
	}
}
