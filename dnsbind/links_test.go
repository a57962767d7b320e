package dnsbind

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// dumpTree renders the tree at root, one line per entry in path order: symlinks with their
// targets, directories and files with their modes.
func dumpTree(t *testing.T, root string) string {
	t.Helper()
	var lines []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || path == root {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		fi, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.Type() == fs.ModeSymlink:
			target, _ := os.Readlink(path)
			lines = append(lines, rel+" -> "+target)
		case d.IsDir():
			lines = append(lines, fmt.Sprintf("%s/ %04o", rel, fi.Mode().Perm()))
		default:
			lines = append(lines, fmt.Sprintf("%s %04o %d bytes", rel, fi.Mode().Perm(), fi.Size()))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n") + "\n"
}

// testFarm makes a host directory like /run (a file, a directory, a symlink, nscd's directory
// with its socket, systemd's with resolve in it) and a farm over it, as runFarm is over /run.
func testFarm(t *testing.T) (f farm, host string) {
	t.Helper()
	dir := t.TempDir()
	host = filepath.Join(dir, "run")
	for _, d := range []string{"user/1000", "nscd", "systemd/resolve", "systemd/journal"} {
		if err := os.MkdirAll(filepath.Join(host, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, file := range []string{"utmp", "nscd/socket", "systemd/resolve/io.systemd.Resolve", "systemd/notify"} {
		if err := os.WriteFile(filepath.Join(host, file), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("systemd/notify", filepath.Join(host, "initctl")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/dev/shm", filepath.Join(host, "shm")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(host, ".wgns-reserved"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	f = farm{
		host:   host,
		links:  filepath.Join(dir, "links"),
		hidden: []string{"nscd", "systemd/resolve", "avahi-daemon"},
		extra:  map[string]node{hostDir: {dir: &plan{mode: 0o555}}},
	}
	if err := os.Mkdir(f.links, 0o755); err != nil {
		t.Fatal(err)
	}
	return f, host
}

func syncTestFarm(t *testing.T, f farm) {
	t.Helper()
	fd, err := unix.Open(f.links, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	stamp, err := f.stamp()
	if err != nil {
		t.Fatal(err)
	}
	if err := f.sync(fd, stamp); err != nil {
		t.Fatal(err)
	}
	if got := readStamp(fd); got != stamp {
		t.Errorf("the farm's stamp is %q, want %q", got, stamp)
	}
}

// TestFarmSync: the farm mirrors the host's directory with symlinks, copies the host's
// symlinks, hides the hidden paths (also those the host lacks) behind empty directories with
// links to the rest of their parents, and follows the host's changes, keeping the directories
// it keeps (they are mount points elsewhere) and replacing a changed link.
func TestFarmSync(t *testing.T) {
	f, host := testFarm(t)
	syncTestFarm(t, f)
	want := `.wgns-host/ 0555
.wgns-stamp -> ` + "STAMP" + `
avahi-daemon/ 0555
initctl -> systemd/notify
nscd/ 0555
shm -> /dev/shm
systemd/ 0755
systemd/journal -> ../.wgns-host/systemd/journal
systemd/notify -> ../.wgns-host/systemd/notify
systemd/resolve/ 0555
user -> .wgns-host/user
utmp -> .wgns-host/utmp
`
	stamp, _ := f.stamp()
	if got := dumpTree(t, f.links); got != strings.Replace(want, "STAMP", stamp, 1) {
		t.Errorf("the farm:\n%s\nwant:\n%s", got, want)
	}

	// The host changes: an entry goes, one comes, a symlink points elsewhere, systemd's
	// directory gains an entry; something was left in a hidden directory and in .wgns-host.
	var before unix.Stat_t
	if err := unix.Stat(filepath.Join(f.links, "nscd"), &before); err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(host, "utmp"))
	os.Mkdir(filepath.Join(host, "cups"), 0o755)
	os.Remove(filepath.Join(host, "initctl"))
	os.Symlink("/elsewhere", filepath.Join(host, "initctl"))
	os.Mkdir(filepath.Join(host, "systemd", "users"), 0o755)
	os.WriteFile(filepath.Join(f.links, "nscd", "socket"), nil, 0o644)
	os.Chmod(filepath.Join(f.links, hostDir), 0o755)
	os.WriteFile(filepath.Join(f.links, hostDir, "x"), nil, 0o644)
	os.Chmod(filepath.Join(f.links, hostDir), 0o555)
	if newStamp, _ := f.stamp(); newStamp == stamp {
		t.Fatal("the stamp did not change with the host's directory")
	}
	syncTestFarm(t, f)
	want = `.wgns-host/ 0555
.wgns-stamp -> STAMP
avahi-daemon/ 0555
cups -> .wgns-host/cups
initctl -> /elsewhere
nscd/ 0555
shm -> /dev/shm
systemd/ 0755
systemd/journal -> ../.wgns-host/systemd/journal
systemd/notify -> ../.wgns-host/systemd/notify
systemd/resolve/ 0555
systemd/users -> ../.wgns-host/systemd/users
user -> .wgns-host/user
`
	stamp, _ = f.stamp()
	if got := dumpTree(t, f.links); got != strings.Replace(want, "STAMP", stamp, 1) {
		t.Errorf("the farm after the host changed:\n%s\nwant:\n%s", got, want)
	}
	var after unix.Stat_t
	if err := unix.Stat(filepath.Join(f.links, "nscd"), &after); err != nil {
		t.Fatal(err)
	}
	if after.Ino != before.Ino {
		t.Errorf("the hidden directory nscd was re-created (inode %d, was %d): a mount on it would be detached", after.Ino, before.Ino)
	}
}

// TestFarmStamp: the stamp changes when an entry is added to the host's directory or to the
// parent of a hidden path, and when that parent appears.
func TestFarmStamp(t *testing.T) {
	f, host := testFarm(t)
	os.RemoveAll(filepath.Join(host, "systemd"))
	steps := []struct {
		what string
		do   func() error
	}{
		{"systemd's directory appears", func() error { return os.Mkdir(filepath.Join(host, "systemd"), 0o755) }},
		{"an entry in it", func() error { return os.Mkdir(filepath.Join(host, "systemd", "resolve"), 0o755) }},
		{"an entry at the top", func() error { return os.WriteFile(filepath.Join(host, "new"), nil, 0o644) }},
	}
	prev, err := f.stamp()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(prev, stampVersion) {
		t.Errorf("stamp %q lacks the version %q", prev, stampVersion)
	}
	for _, s := range steps {
		if err := s.do(); err != nil {
			t.Fatal(err)
		}
		got, err := f.stamp()
		if err != nil {
			t.Fatal(err)
		}
		if got == prev {
			t.Errorf("%s: the stamp stayed %q", s.what, got)
		}
		prev = got
	}
}

// TestEtcFarmPlan: the /etc farm points resolv.conf and nsswitch.conf into .wgns-view, where
// empty files wait for the namespace's files, whatever the host's are (a symlink here).
func TestEtcFarmPlan(t *testing.T) {
	dir := t.TempDir()
	host := filepath.Join(dir, "etc")
	os.Mkdir(host, 0o755)
	os.WriteFile(filepath.Join(host, "passwd"), []byte("root:x:0:0::/root:/bin/sh\n"), 0o644)
	os.Symlink("../run/systemd/resolve/stub-resolv.conf", filepath.Join(host, "resolv.conf"))
	os.Symlink("../usr/share/zoneinfo/UTC", filepath.Join(host, "localtime"))
	f := etcFarm
	f.host, f.links = host, filepath.Join(dir, "links")
	os.Mkdir(f.links, 0o755)
	syncTestFarm(t, f)
	stamp, _ := f.stamp()
	want := `.wgns-empty/ 0555
.wgns-host/ 0555
.wgns-stamp -> ` + stamp + `
.wgns-view/ 0755
.wgns-view/nsswitch.conf 0644 0 bytes
.wgns-view/resolv.conf 0644 0 bytes
localtime -> ../usr/share/zoneinfo/UTC
nsswitch.conf -> .wgns-view/nsswitch.conf
passwd -> .wgns-host/passwd
resolv.conf -> .wgns-view/resolv.conf
`
	if got := dumpTree(t, f.links); got != want {
		t.Errorf("the /etc farm:\n%s\nwant:\n%s", got, want)
	}
}
