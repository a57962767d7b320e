package nsmgr

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/vishvananda/netns"
)

func TestLookPath(t *testing.T) {
	dir := t.TempDir()
	mk := func(rel string, mode os.FileMode) string {
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("#!/bin/sh\n"), mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	a, b, c, rel := filepath.Join(dir, "a"), filepath.Join(dir, "b"), filepath.Join(dir, "c"), filepath.Join(dir, "rel")
	exe := mk("b/tool", 0o755)
	mk("a/tool", 0o644)             // not executable, earlier in PATH
	mk("a/plain", 0o644)            // only ever not executable
	mk("c/plain", 0o600)            // also not executable
	mk("rel/onlyhere", 0o755)       // reachable only through a relative PATH entry
	mk("b/sub/x", 0o755)            // b/sub is a directory
	abExe := mk("b/only-b", 0o755)  // for PATH order
	aFirst := mk("a/only-b", 0o755) // same name, earlier
	t.Chdir(dir)

	tests := []struct {
		file, path string
		want       string // "" when an error is wanted
		code       int
	}{
		{"tool", a + ":" + b, exe, 0},                                    // skips the non-executable one
		{"only-b", a + ":" + b, aFirst, 0},                               // first match wins
		{"only-b", b + ":" + a, abExe, 0},                                //
		{"tool", b, exe, 0},                                              //
		{"missing", a + ":" + b, "", 127},                                //
		{"tool", "", "", 127},                                            // empty PATH
		{"plain", a + ":" + c, "", 126},                                  // found, never executable
		{"plain", a + "::" + "/nonexistent", "", 126},                    //
		{"sub", b, "", 126},                                              // a directory
		{"onlyhere", "rel", "", 127},                                     // relative entries are skipped
		{"onlyhere", ":" + a, "", 127},                                   // as is an empty one (cwd is dir, not rel)
		{"onlyhere", "." + ":" + rel, filepath.Join(rel, "onlyhere"), 0}, //
		{exe, "", exe, 0},                                                // absolute: PATH not used
		{"b/tool", "/nonexistent", exe, 0},                               // relative with a slash: made absolute
		{"./b/tool", "", exe, 0},                                         //
		{"b/missing", a, "", 127},                                        //
		{"b/tool/x", a, "", 127},                                         // ENOTDIR
		{"a/plain", b, "", 126},                                          //
		{"b/sub", "", "", 126},                                           // a directory
		{"", a, "", 127},                                                 //
	}
	for _, tt := range tests {
		got, err := LookPath(tt.file, tt.path)
		if tt.want != "" {
			if err != nil || got != tt.want {
				t.Errorf("LookPath(%q, %q) = %q, %v; want %q", tt.file, tt.path, got, err, tt.want)
			}
			continue
		}
		var ee *ExecError
		if !errors.As(err, &ee) || ee.Code != tt.code {
			t.Errorf("LookPath(%q, %q) = %q, %v; want an ExecError with code %d", tt.file, tt.path, got, err, tt.code)
			continue
		}
		if tt.file != "" && !strings.Contains(err.Error(), tt.file) {
			t.Errorf("LookPath(%q, %q) error %q does not name the command", tt.file, tt.path, err)
		}
		if tt.code == 126 && errors.Is(err, fs.ErrNotExist) {
			t.Errorf("LookPath(%q, %q) error %v wraps fs.ErrNotExist for a file that exists", tt.file, tt.path, err)
		}
	}
}

func TestLookPathMessages(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "f"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct{ file, path, want string }{
		{"nope", "/nonexistent:/usr/x", `finding command "nope" in PATH /nonexistent:/usr/x: no such file or directory`},
		{"nope", "", `finding command "nope" in PATH : no such file or directory`},
		{"f", dir, `finding command "f" in PATH ` + dir + `: ` + dir + `/f: permission denied`},
		{dir + "/g", "", `finding command "` + dir + `/g": ` + dir + `/g: no such file or directory`},
	}
	for _, tt := range tests {
		_, err := LookPath(tt.file, tt.path)
		if err == nil || err.Error() != tt.want {
			t.Errorf("LookPath(%q, %q) error:\n got %v\nwant %s", tt.file, tt.path, err, tt.want)
		}
	}
}

func TestFailureCode(t *testing.T) {
	tests := []struct {
		err  error
		want int
	}{
		{syscall.ENOENT, 127},
		{syscall.ENOTDIR, 127},
		{syscall.EACCES, 126},
		{syscall.ENOEXEC, 126},
		{syscall.EISDIR, 126},
		{syscall.ETXTBSY, 126},
		{syscall.E2BIG, 126},
		{syscall.EPERM, 126},
	}
	for _, tt := range tests {
		if got := failureCode(tt.err); got != tt.want {
			t.Errorf("failureCode(%v) = %d, want %d", tt.err, got, tt.want)
		}
	}
}

func TestExecError(t *testing.T) {
	inner := syscall.EACCES
	var err error = &ExecError{Code: 126, Err: inner}
	if err.Error() != inner.Error() {
		t.Errorf("Error() = %q, want %q", err.Error(), inner.Error())
	}
	if !errors.Is(err, fs.ErrPermission) {
		t.Errorf("errors.Is(%v, fs.ErrPermission) = false, want true", err)
	}
}

func TestExecNoCommand(t *testing.T) {
	var ee *ExecError
	if err := Exec("work", netns.None(), ExecOptions{}); !errors.As(err, &ee) || ee.Code != 127 {
		t.Errorf("Exec without a Path or Argv = %v, want a 127 ExecError", err)
	}
	if _, err := Start("work", netns.None(), ExecOptions{}, Child{}); !errors.As(err, &ee) || ee.Code != 127 {
		t.Errorf("Start without a Path or Argv = %v, want a 127 ExecError", err)
	}
}
