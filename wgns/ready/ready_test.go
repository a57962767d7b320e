package ready

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/wgns/wgns/nsmgr"
)

func idOf(t *testing.T, path string) nsmgr.ID {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return nsmgr.ID{Dev: st.Dev, Ino: st.Ino}
}

// TestOpen: Open enters only a namespace file whose ID is the marker's, and returns the
// descriptor it checked; each other state gets its own error. A plain file stands in for the
// namespace: the check is by device and inode, which any file has.
func TestOpen(t *testing.T) {
	root := t.TempDir()
	d := dirs{run: filepath.Join(root, "run"), netns: filepath.Join(root, "netns")}
	for _, dir := range []string{d.run, d.netns} {
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write := func(path, content string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	nsFile := filepath.Join(d.netns, "vpn")
	write(nsFile, "")
	other := filepath.Join(d.netns, "other")
	write(other, "")
	marker := filepath.Join(d.run, "vpn.ready")

	cases := []struct {
		name  string
		setup func()
		err   string // "" for success
		is    error
	}{
		{"ready", func() { write(marker, string(Marker(idOf(t, nsFile)))) }, "", nil},
		{"not up", func() {}, `tunnel "vpn" is not up`, ErrNotUp},
		{"being set up", func() { write(filepath.Join(d.run, "vpn.json"), "{}") },
			"tunnel \"vpn\" is not ready (being set up, or left half-made: run `wgns repair vpn`)", ErrNotReady},
		{"another namespace under the name", func() { write(marker, string(Marker(idOf(t, other)))) },
			`tunnel "vpn": ` + nsFile + ` is no longer the namespace wgns made; refusing to enter it`, ErrForeign},
		{"a marker without its newline", func() { write(marker, string(Marker(idOf(t, nsFile)))[:len(Marker(idOf(t, nsFile)))-1]) },
			`tunnel "vpn": ` + nsFile + ` is no longer the namespace wgns made; refusing to enter it`, ErrForeign},
		{"namespace gone", func() {
			write(marker, string(Marker(idOf(t, nsFile))))
			os.Remove(nsFile)
		}, `tunnel "vpn": its namespace ` + nsFile + " is gone (no such file or directory); run `wgns repair vpn`", ErrForeign},
		{"marker a symlink", func() {
			write(nsFile, "")
			write(filepath.Join(root, "elsewhere"), string(Marker(idOf(t, nsFile))))
			os.Symlink(filepath.Join(root, "elsewhere"), marker)
		}, `tunnel "vpn": opening ` + marker + `: too many levels of symbolic links`, unix.ELOOP},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			os.Remove(marker)
			os.Remove(filepath.Join(d.run, "vpn.json"))
			tc.setup()
			h, err := d.open("vpn")
			if tc.err != "" {
				if err == nil || err.Error() != tc.err || !errors.Is(err, tc.is) {
					t.Fatalf("open = %v, %v; want error %q wrapping %v", h, err, tc.err, tc.is)
				}
				if h.IsOpen() {
					t.Errorf("open returned an open handle with its error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer h.Close()
			var st unix.Stat_t
			if err := unix.Fstat(int(h), &st); err != nil {
				t.Fatal(err)
			}
			if (nsmgr.ID{Dev: st.Dev, Ino: st.Ino}) != idOf(t, nsFile) {
				t.Errorf("the handle is not the namespace file that was checked")
			}
		})
	}
}

func TestMarker(t *testing.T) {
	if got := string(Marker(nsmgr.ID{Dev: 4, Ino: 4026532281})); got != "4:4026532281\n" {
		t.Errorf("Marker = %q", got)
	}
	if Path("vpn") != "/run/wgns/vpn.ready" {
		t.Errorf("Path = %q", Path("vpn"))
	}
}
