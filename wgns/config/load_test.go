package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// writeFile writes data to dir/name with mode perm (whatever the umask).
func writeFile(t *testing.T, dir, name, data string, perm fs.FileMode) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(data), perm); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, perm); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadRefuses(t *testing.T) {
	dir := t.TempDir()
	good := writeFile(t, dir, "good.conf", expand(t, ifc+peerB), 0o600)
	if err := os.Mkdir(filepath.Join(dir, "dir.conf"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(dir, "fifo.conf"), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, target := range map[string]string{"todir.conf": "dir.conf", "dangling.conf": "nothing.conf", "link.conf": good} {
		if err := os.Symlink(target, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	big := writeFile(t, dir, "big.conf", expand(t, ifc+peerB)+strings.Repeat("#", MaxSize), 0o600)
	bigSize := MaxSize + len(expand(t, ifc+peerB))

	tests := []struct {
		path     string
		want     string
		notExist bool
	}{
		{path: dir + "/missing.conf", want: fmt.Sprintf("reading config %q: no such file or directory", dir+"/missing.conf"), notExist: true},
		{path: dir + "/dangling.conf", want: fmt.Sprintf("reading config %q: no such file or directory", dir+"/dangling.conf"), notExist: true},
		{path: dir + "/dir.conf", want: dir + "/dir.conf: not a regular file (directory)"},
		{path: dir + "/todir.conf", want: dir + "/todir.conf: not a regular file (directory)"},
		{path: dir + "/fifo.conf", want: dir + "/fifo.conf: not a regular file (named pipe)"},
		{path: "/dev/null", want: "/dev/null: not a regular file (character device)"},
		{path: big, want: fmt.Sprintf("%s: too large (%d bytes; the limit is 1048576)", big, bigSize)},
	}
	for _, tt := range tests {
		t.Run(filepath.Base(tt.path), func(t *testing.T) {
			_, err := Load(tt.path)
			if err == nil {
				t.Fatal("Load succeeded")
			}
			if err.Error() != tt.want {
				t.Errorf("error:\n got %s\nwant %s", err, tt.want)
			}
			if got := errors.Is(err, fs.ErrNotExist); got != tt.notExist {
				t.Errorf("errors.Is(err, fs.ErrNotExist) = %t, want %t", got, tt.notExist)
			}
		})
	}
}

func TestLoadFollowsSymlinkAndWarnsAboutReadableKeys(t *testing.T) {
	dir := t.TempDir()
	conf := expand(t, ifc+peerB+"PresharedKey = {PSK}\n")
	private := writeFile(t, dir, "private.conf", conf, 0o600)
	open := writeFile(t, dir, "open.conf", conf, 0o644)
	if err := os.Symlink("private.conf", filepath.Join(dir, "link.conf")); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		path string
		want []string
	}{
		{path: private},
		{path: filepath.Join(dir, "link.conf")},
		{path: open, want: []string{
			open + ":2: PrivateKey is in a file readable by group or others (mode 0644); chmod 600 it, or move the key to a PrivateKeyFile",
			open + ":7: PresharedKey is in a file readable by group or others (mode 0644); chmod 600 it, or move the key to a PresharedKeyFile",
		}},
	} {
		cfg, err := Load(tt.path)
		if err != nil {
			t.Fatalf("Load(%s): %v", tt.path, err)
		}
		if cfg.Path != tt.path || cfg.Interface.PrivateKey.Key() != mustKey(t, keyA) {
			t.Errorf("Load(%s): Path %q, or wrong key", tt.path, cfg.Path)
		}
		if got, want := strings.Join(cfg.Warnings, "\n"), strings.Join(tt.want, "\n"); got != want {
			t.Errorf("Load(%s) warnings:\n%s\nwant:\n%s", tt.path, got, want)
		}
	}
}

// TestLoadKeyFiles checks the real key file reader: ownership, mode, type.
func TestLoadKeyFiles(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: key files must be owned by root")
	}
	dir := t.TempDir()
	conf := "[Interface]\nPrivateKeyFile = %s\nAddress = 192.0.2.2/32\n" + peerB
	writeFile(t, dir, "ok.key", "\n"+keyA+"\n", 0o600)
	writeFile(t, dir, "readable.key", keyA, 0o640)
	writeFile(t, dir, "nobody.key", keyA, 0o600)
	if err := os.Chown(filepath.Join(dir, "nobody.key"), 65534, 65534); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("ok.key", filepath.Join(dir, "link.key")); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(dir, "fifo.key"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ keyFile, want string }{
		{"ok.key", ""},
		{filepath.Join(dir, "ok.key"), ""},
		{"readable.key", `readable by group or others (mode 0640); chmod 600 it`},
		{"nobody.key", `owned by uid 65534, not root; chown root it`},
		{"link.key", `not a regular file (symbolic link)`},
		{"fifo.key", `not a regular file (named pipe)`},
		{"missing.key", `no such file or directory`},
	} {
		t.Run(tt.keyFile, func(t *testing.T) {
			path := writeFile(t, dir, "wg0.conf", expand(t, fmt.Sprintf(conf, tt.keyFile)), 0o600)
			cfg, err := Load(path)
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if cfg.Interface.PrivateKey.Key() != mustKey(t, keyA) {
					t.Error("wrong key")
				}
				return
			}
			want := fmt.Sprintf("%s:2: PrivateKeyFile %q: %s", path, filepath.Join(dir, filepath.Base(tt.keyFile)), tt.want)
			if err == nil || err.Error() != want {
				t.Errorf("error:\n got %v\nwant %s", err, want)
			}
		})
	}
}
