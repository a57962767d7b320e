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
		if got, want := strings.Join(withoutRootVerdict(cfg.Warnings), "\n"), strings.Join(tt.want, "\n"); got != want {
			t.Errorf("Load(%s) warnings:\n%s\nwant:\n%s", tt.path, got, want)
		}
	}
}

// withoutRootVerdict drops, when the test does not run as root, the
// warnings that root would refuse a file: the test's files are then the
// user's own (TestLoadTrust shows those warnings).
func withoutRootVerdict(warnings []string) []string {
	if os.Geteuid() == 0 {
		return warnings
	}
	var out []string
	for _, w := range warnings {
		if !strings.Contains(w, "as root, wgns would refuse it") {
			out = append(out, w)
		}
	}
	return out
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

// TestLoadTrust: Load takes only a config that no one but root (or the user
// wgns runs as) can change, reached through directories and links only they
// control; run as a user, it says what root would refuse.
func TestLoadTrust(t *testing.T) {
	conf := []byte(expand(t, ifc+peerB))
	file := func(mode fs.FileMode, uid uint32) fakeFile { return fakeFile{Mode: mode, UID: uid, Data: conf} }
	dir := func(mode fs.FileMode, uid uint32) fakeFile { return fakeFile{Mode: fs.ModeDir | mode, UID: uid} }
	link := func(target string, uid uint32) fakeFile {
		return fakeFile{Mode: fs.ModeSymlink | 0o777, UID: uid, Data: []byte(target)}
	}
	world := fakeFS{
		"/etc/wgns/ok.conf":         file(0o600, 0),
		"/etc/wgns/open.conf":       file(0o644, 0),
		"/etc/wgns/alice.conf":      file(0o600, 1000),
		"/etc/wgns/group.conf":      file(0o620, 0),
		"/etc/wgns/other.conf":      file(0o602, 0),
		"/etc/wgns/home.conf":       link("/home/alice/vpn.conf", 0),
		"/etc/wgns/tmp.conf":        link("../../tmp/root.conf", 0),
		"/etc/wgns/big.conf":        {Mode: 0o600, Data: make([]byte, MaxSize+1)},
		"/home/alice":               dir(0o755, 1000),
		"/home/alice/vpn.conf":      file(0o600, 1000),
		"/home/alice/root.conf":     file(0o600, 0),
		"/home/bob/vpn.conf":        file(0o600, 1002),
		"/tmp":                      dir(fs.ModeSticky|0o777, 0),
		"/tmp/root.conf":            file(0o600, 0),
		"/tmp/alice.conf":           link("/etc/wgns/ok.conf", 1000),
		"/srv/group":                dir(fs.ModeSetgid|0o775, 0),
		"/srv/group/vpn.conf":       file(0o600, 0),
		"/srv/dir.conf/placeholder": file(0o600, 0),
	}
	const tooLong = "/etc/wgns/big.conf: too large (1048577 bytes; the limit is 1048576)"
	for _, tt := range []struct {
		path string
		uid  uint32 // the user wgns runs as
		want string // the error, or the warnings
		ok   bool
	}{
		{path: "/etc/wgns/ok.conf", ok: true},
		{path: "/etc/wgns/open.conf", ok: true,
			want: "/etc/wgns/open.conf:2: PrivateKey is in a file readable by group or others (mode 0644); chmod 600 it, or move the key to a PrivateKeyFile"},
		{path: "/tmp/root.conf", ok: true},
		{path: "/etc/wgns/tmp.conf", ok: true},
		{path: "/etc/wgns/alice.conf", want: "/etc/wgns/alice.conf: owned by uid 1000, not root; chown root it"},
		{path: "/etc/wgns/group.conf", want: "/etc/wgns/group.conf: writable by group or others (mode 0620); chmod 600 it"},
		{path: "/etc/wgns/other.conf", want: "/etc/wgns/other.conf: writable by group or others (mode 0602); chmod 600 it"},
		{path: "/home/alice/root.conf",
			want: "/home/alice/root.conf: in directory /home/alice, owned by uid 1000, not root: that user could replace the file; move it to a directory only root can change, such as /etc/wgns"},
		{path: "/etc/wgns/home.conf",
			want: "/etc/wgns/home.conf: in directory /home/alice, owned by uid 1000, not root: that user could replace the file; move it to a directory only root can change, such as /etc/wgns"},
		{path: "/tmp/alice.conf",
			want: "/tmp/alice.conf: through symbolic link /tmp/alice.conf, owned by uid 1000, not root: that user could point it elsewhere"},
		{path: "/srv/group/vpn.conf",
			want: "/srv/group/vpn.conf: in directory /srv/group, writable by group or others (mode 2775): they could replace the file; chmod go-w /srv/group, or move the file to a directory only root can change"},
		{path: "/srv/dir.conf", want: "/srv/dir.conf: not a regular file (directory)"},
		{path: "/etc/wgns/big.conf", want: tooLong},
		{path: "/etc/wgns/none.conf", want: `reading config "/etc/wgns/none.conf": no such file or directory`},

		// Run as alice (a dry run, say): her own files are hers to check, and root's verdict is a warning.
		{path: "/home/alice/vpn.conf", uid: 1000, ok: true,
			want: "/home/alice/vpn.conf: as root, wgns would refuse it: in directory /home/alice, owned by uid 1000, not root: that user could replace the file; move it to a directory only root can change, such as /etc/wgns"},
		{path: "/etc/wgns/alice.conf", uid: 1000, ok: true,
			want: "/etc/wgns/alice.conf: as root, wgns would refuse it: owned by uid 1000, not root; chown root it"},
		{path: "/etc/wgns/ok.conf", uid: 1000, ok: true},
		{path: "/home/bob/vpn.conf", uid: 1000, want: "/home/bob/vpn.conf: owned by uid 1002, neither root nor you (uid 1000); chown root it"},
	} {
		t.Run(fmt.Sprintf("%s as %d", tt.path, tt.uid), func(t *testing.T) {
			cfg, err := newLoader(world, tt.uid).load(tt.path)
			if !tt.ok {
				if err == nil || err.Error() != tt.want {
					t.Errorf("error:\n got %v\nwant %s", err, tt.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.Join(cfg.Warnings, "\n"); got != tt.want {
				t.Errorf("warnings:\n got %s\nwant %s", got, tt.want)
			}
		})
	}
}

// TestLoadTrustOnDisk: the same rules on the real file system (as root: the
// files must belong to someone else).
func TestLoadTrustOnDisk(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: the files must be owned by another user")
	}
	dir := t.TempDir()
	conf := expand(t, ifc+peerB)
	userDir := filepath.Join(dir, "user")
	if err := os.Mkdir(userDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(userDir, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	inUserDir := writeFile(t, userDir, "vpn.conf", conf, 0o600)
	users := writeFile(t, dir, "users.conf", conf, 0o600)
	if err := os.Chown(users, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	writable := writeFile(t, dir, "writable.conf", conf, 0o660)
	viaLink := filepath.Join(dir, "link.conf")
	if err := os.Symlink(inUserDir, viaLink); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]string{
		inUserDir: inUserDir + ": in directory " + userDir + ", owned by uid 65534, not root: that user could replace the file; move it to a directory only root can change, such as /etc/wgns",
		viaLink:   viaLink + ": in directory " + userDir + ", owned by uid 65534, not root: that user could replace the file; move it to a directory only root can change, such as /etc/wgns",
		users:     users + ": owned by uid 65534, not root; chown root it",
		writable:  writable + ": writable by group or others (mode 0660); chmod 600 it",
	} {
		if _, err := Load(path); err == nil || err.Error() != want {
			t.Errorf("Load(%s):\n got %v\nwant %s", path, err, want)
		}
	}
}
