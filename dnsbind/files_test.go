package dnsbind

import (
	"errors"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/wgns/wgns/internal/golden"
	"github.com/wgns/wgns/internal/linediff"
)

// debianNsswitch is Debian 12's /etc/nsswitch.conf with libnss-mdns and libnss-systemd.
const debianNsswitch = `# /etc/nsswitch.conf
#
# Example configuration of GNU Name Service Switch functionality.
# If you have the ` + "`glibc-doc-reference' and `info'" + ` packages installed, try:
# ` + "`info libc \"Name Service Switch\"'" + ` for information about this file.

passwd:         files systemd
group:          files systemd
shadow:         files systemd
gshadow:        files systemd

hosts:          files mdns4_minimal [NOTFOUND=return] dns myhostname
networks:       files

protocols:      db files
services:       db files
ethers:         db files
rpc:            db files

netgroup:       nis
`

func TestDeriveNsswitch(t *testing.T) {
	cases := []struct {
		name string
		host string // "-" for no host file
	}{
		{"debian", debianNsswitch},
		{"resolve", "passwd: files systemd\nhosts: files resolve [!UNAVAIL=return] dns myhostname\n"},
		{"mdns-mymachines", "hosts:\tfiles mdns4_minimal [NOTFOUND=return] dns mymachines\ngroup: files\n"},
		{"no-hosts-line", "passwd: files\ngroup: files\n"},
		{"comments", "# hosts: files mdns4 resolve\n" +
			"hosts: files wins # the trailing comment goes\n" +
			"  HOSTS :  dns mdns\n" +
			"hostsfoo: kept as is\n" +
			"hosts:files\n" +
			"passwd: files # kept\n"},
		{"no-final-newline", "passwd: files\nhosts: files resolve"},
		{"empty", ""},
		{"missing", "-"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var host []byte
			if tc.host != "-" {
				host = []byte(tc.host)
			}
			got := deriveNsswitch("work", host)
			golden.Check(t, "nsswitch-"+tc.name, string(got))
			// Whatever the input, exactly the lines that configure hosts say "files dns".
			n := 0
			for line := range strings.Lines(string(got)) {
				if _, ok := hostsPrefix(line); ok {
					n++
					if f := strings.Fields(line); !slices.Equal(f[len(f)-2:], []string{"files", "dns"}) || strings.ContainsAny(line, "[#") {
						t.Errorf("hosts line %q, want only files dns", line)
					}
				}
			}
			if n == 0 {
				t.Error("no hosts line")
			}
		})
	}
}

func TestHostsPrefix(t *testing.T) {
	cases := []struct {
		line, prefix string
		ok           bool
	}{
		{"hosts:          files dns\n", "hosts:          ", true},
		{"hosts:files\n", "hosts: ", true},
		{"hosts:\n", "hosts: ", true},
		{"\tHosts : dns", "\tHosts : ", true},
		{"hostsfoo: dns\n", "", false},
		{"# hosts: dns\n", "", false},
		{"host: dns\n", "", false},
		{"passwd: files\n", "", false},
		{"hosts files dns\n", "", false},
	}
	for _, tc := range cases {
		prefix, ok := hostsPrefix(tc.line)
		if prefix != tc.prefix || ok != tc.ok {
			t.Errorf("hostsPrefix(%q) = %q, %v; want %q, %v", tc.line, prefix, ok, tc.prefix, tc.ok)
		}
	}
}

func TestRenderResolvConf(t *testing.T) {
	cases := []struct {
		name string
		view View
	}{
		{"servers-search", View{
			Servers: []netip.Addr{netip.MustParseAddr("198.51.100.53"), netip.MustParseAddr("fd00:53::1"),
				netip.MustParseAddr("::ffff:203.0.113.5"), netip.MustParseAddr("fe80::1%wg0")},
			Search: []string{"corp.example", "example.org"},
		}},
		{"servers-only", View{Servers: []netip.Addr{netip.MustParseAddr("192.0.2.1")}}},
		{"no-servers", View{Search: []string{"corp.example"}}},
		{"empty", View{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := renderResolvConf("work", tc.view)
			if err != nil {
				t.Fatal(err)
			}
			golden.Check(t, "resolv-"+tc.name, string(got))
		})
	}
}

func TestRenderResolvConfRefuses(t *testing.T) {
	cases := []struct {
		name string
		view View
		want string
	}{
		{"zero address", View{Servers: []netip.Addr{{}}}, `name server "invalid IP" is not a usable address`},
		{"unspecified", View{Servers: []netip.Addr{netip.IPv6Unspecified()}}, `name server "::" is not a usable address`},
		{"injected line", View{Search: []string{"a.example\nnameserver 192.0.2.66"}}, `search domain "a.example\nnameserver 192.0.2.66" is not a domain name`},
		{"blank", View{Search: []string{"a b"}}, `search domain "a b" is not a domain name`},
		{"comment", View{Search: []string{"a#b"}}, `search domain "a#b" is not a domain name`},
		{"empty", View{Search: []string{""}}, `search domain "" is not a domain name`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := renderResolvConf("work", tc.view)
			if !errors.Is(err, ErrInvalidView) || !strings.HasSuffix(err.Error(), tc.want) {
				t.Errorf("got %v, want an ErrInvalidView ending in %q", err, tc.want)
			}
		})
	}
}

// fakeLinks stands for the link farms: it counts updates, and reports faults until updated.
type fakeLinks struct {
	updates int
	broken  []string // what faults reports before the next update
	err     error    // what update returns
}

func (l *fakeLinks) update() error {
	l.updates++
	if l.err == nil {
		l.broken = nil
	}
	return l.err
}

func (l *fakeLinks) faults() []string { return l.broken }

// testFiles returns a files writing under a temporary directory, owned by the caller, with
// host as the host's nsswitch.conf ("-" for none), and fake link farms.
func testFiles(t *testing.T, host string) files {
	dir := t.TempDir()
	f := files{
		dir:          filepath.Join(dir, "netns"),
		hostNsswitch: filepath.Join(dir, "nsswitch.conf"),
		links:        &fakeLinks{},
		uid:          os.Getuid(),
		gid:          os.Getgid(),
	}
	if host != "-" {
		if err := os.WriteFile(f.hostNsswitch, []byte(host), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

var testView = View{Servers: []netip.Addr{netip.MustParseAddr("198.51.100.53")}, Search: []string{"corp.example"}}

func TestWriteCheckRemove(t *testing.T) {
	f := testFiles(t, debianNsswitch)
	links := f.links.(*fakeLinks)
	dir := filepath.Join(f.dir, "work")
	if err := f.write("work", testView); err != nil {
		t.Fatal(err)
	}
	resolv, nsswitch, err := f.render("work", testView)
	if err != nil {
		t.Fatal(err)
	}
	for _, file := range []struct {
		name string
		want []byte
	}{{"resolv.conf", resolv}, {"nsswitch.conf", nsswitch}} {
		got, err := os.ReadFile(filepath.Join(dir, file.name))
		if err != nil || string(got) != string(file.want) {
			t.Errorf("%s: %q, %v; want %q", file.name, got, err, file.want)
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		fi, _ := e.Info()
		want := fs.FileMode(0o644)
		if fi.Mode() != want || (e.Name() != "resolv.conf" && e.Name() != "nsswitch.conf") {
			t.Errorf("%s: mode %v, want only resolv.conf and nsswitch.conf of mode %v", e.Name(), fi.Mode(), want)
		}
	}
	if fi, err := os.Lstat(dir); err != nil || fi.Mode() != fs.ModeDir|0o755 {
		t.Errorf("%s: %v, %v; want a directory of mode 0755", dir, fi.Mode(), err)
	}
	if links.updates != 1 {
		t.Errorf("write updated the link farms %d times, want once", links.updates)
	}
	if diffs, err := f.check("work", testView); err != nil || len(diffs) != 0 {
		t.Errorf("check after write: %q, %v", diffs, err)
	}

	// A different view, a changed host nsswitch.conf, a leftover temporary file.
	other := View{Servers: []netip.Addr{netip.MustParseAddr("203.0.113.53")}}
	if err := os.WriteFile(f.hostNsswitch, []byte("hosts: files dns\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, tempPrefix+"resolv.conf-1"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	links.broken = []string{"/run/wgns/etc: not mounted"}
	diffs, err := f.check("work", other)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		dir + ": mode drwx------, want drwxr-xr-x",
		dir + "/resolv.conf: content differs (- on disk, + wanted):\n\t-nameserver 198.51.100.53\n\t-search corp.example\n\t+nameserver 203.0.113.53",
		dir + "/nsswitch.conf: content differs (- on disk, + wanted):\n" +
			strings.TrimSuffix(linediff.Diff(string(nsswitch), string(deriveNsswitch("work", []byte("hosts: files dns\n"))), "\t"), "\n"),
		dir + "/" + tempPrefix + "resolv.conf-1: leftover temporary file",
		"/run/wgns/etc: not mounted",
	}
	if d := cmp.Diff(want, diffs); d != "" {
		t.Errorf("check of a changed view (-want +got):\n%s", d)
	}
	// Write converges: mode fixed, temporary file gone, links updated, nothing left to report.
	if err := f.write("work", other); err != nil {
		t.Fatal(err)
	}
	if links.updates != 2 {
		t.Errorf("the second write left the link farms as they were (%d updates in all)", links.updates)
	}
	if diffs, err := f.check("work", other); err != nil || len(diffs) != 0 {
		t.Errorf("check after a second write: %q, %v", diffs, err)
	}

	// A file replaced by a symlink, a missing file.
	os.Remove(filepath.Join(dir, "resolv.conf"))
	os.Symlink("/etc/resolv.conf", filepath.Join(dir, "resolv.conf"))
	os.Remove(filepath.Join(dir, "nsswitch.conf"))
	diffs, err = f.check("work", other)
	want = []string{dir + "/resolv.conf: is a symlink, want a regular file", dir + "/nsswitch.conf: missing"}
	if err != nil || !slices.Equal(diffs, want) {
		t.Errorf("check: %q, %v; want %q", diffs, err, want)
	}

	// Remove keeps a file it did not write, with the directory.
	if err := os.WriteFile(filepath.Join(dir, "hosts"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := f.remove("work"); err != nil {
		t.Fatal(err)
	}
	entries, _ = os.ReadDir(dir)
	if len(entries) != 1 || entries[0].Name() != "hosts" {
		t.Errorf("after remove, %s holds %v, want only hosts", dir, entries)
	}
	os.Remove(filepath.Join(dir, "hosts"))
	if err := f.remove("work"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(dir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("after remove, %s: %v", dir, err)
	}
	if err := f.remove("work"); err != nil {
		t.Errorf("remove of nothing: %v", err)
	}
	if diffs, err := f.check("work", other); err != nil || !slices.Equal(diffs, []string{dir + ": missing"}) {
		t.Errorf("check after remove: %q, %v", diffs, err)
	}
}

func TestWriteNoHostNsswitch(t *testing.T) {
	f := testFiles(t, "-")
	if err := f.write("work", View{}); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(f.dir, "work", "nsswitch.conf"))
	if err != nil {
		t.Fatal(err)
	}
	golden.Check(t, "nsswitch-missing", string(got))
}

func TestWriteRefuses(t *testing.T) {
	f := testFiles(t, "-")
	for _, name := range []string{"", ".", "..", "a/b", "a\x00b"} {
		if err := f.write(name, testView); err == nil {
			t.Errorf("write(%q) succeeded", name)
		}
		if _, err := f.check(name, testView); err == nil {
			t.Errorf("check(%q) succeeded", name)
		}
		if err := f.remove(name); err == nil {
			t.Errorf("remove(%q) succeeded", name)
		}
	}
	if err := os.MkdirAll(f.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(t.TempDir(), filepath.Join(f.dir, "linked")); err != nil {
		t.Fatal(err)
	}
	err := f.write("linked", testView)
	if err == nil || !strings.Contains(err.Error(), "is not a directory (L---------)") {
		t.Errorf("write into a symlinked directory: %v", err)
	}
	if err := f.write("bad", View{Search: []string{"a b"}}); !errors.Is(err, ErrInvalidView) {
		t.Errorf("write of an invalid view: %v", err)
	}
}

func TestCheckOwner(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("changing a file's owner needs root")
	}
	f := testFiles(t, "-")
	if err := f.write("work", testView); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(f.dir, "work", "resolv.conf")
	if err := os.Chown(path, 1000, 1000); err != nil {
		t.Fatal(err)
	}
	diffs, err := f.check("work", testView)
	want := []string{path + ": owner 1000:1000, want 0:0"}
	if err != nil || !slices.Equal(diffs, want) {
		t.Errorf("check: %q, %v; want %q", diffs, err, want)
	}
	if err := f.write("work", testView); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Sys().(*syscall.Stat_t).Uid != 0 {
		t.Errorf("after write, %s is not root's: %v", path, err)
	}
}

// TestWriteLinksFail: when the link farms cannot be brought up to date, Write says so, and
// Check goes on reporting what is wrong with them.
func TestWriteLinksFail(t *testing.T) {
	f := testFiles(t, debianNsswitch)
	links := f.links.(*fakeLinks)
	links.err = errors.New("linking /run/wgns/links/etc to the host's /etc: no space left on device")
	links.broken = []string{"/run/wgns/etc: missing"}
	err := f.write("work", testView)
	if want := `writing the DNS view of "work": linking /run/wgns/links/etc to the host's /etc: no space left on device`; err == nil || err.Error() != want {
		t.Errorf("write: %v, want %q", err, want)
	}
	if diffs, err := f.check("work", testView); err != nil || !slices.Equal(diffs, links.broken) {
		t.Errorf("check: %q, %v; want %q", diffs, err, links.broken)
	}
}
