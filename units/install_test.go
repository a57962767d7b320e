package units

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

func TestDropInPath(t *testing.T) {
	tests := []struct {
		dir, name, unit, want string
	}{
		{"", "work", "transmission-daemon.service", "/etc/systemd/system/transmission-daemon.service.d/50-wgns-work.conf"},
		{"/tmp/u", "my-vpn", "foo@bar.service", `/tmp/u/foo@bar.service.d/50-wgns-my\x2dvpn.conf`},
		{"/tmp/u", "a+b=c.d", "foo@.service", `/tmp/u/foo@.service.d/50-wgns-a\x2bb\x3dc.d.conf`},
	}
	for _, tt := range tests {
		if got := DropInPath(tt.dir, tt.name, tt.unit); got != tt.want {
			t.Errorf("DropInPath(%q, %q, %q) = %q, want %q", tt.dir, tt.name, tt.unit, got, tt.want)
		}
	}
}

// tree lists every file under dir with its mode, and the target of symlinks.
func tree(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == dir {
			return nil
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		line := rel + " " + fi.Mode().String()
		if fi.Mode()&fs.ModeSymlink != 0 {
			target, _ := os.Readlink(p)
			line += " -> " + target
		}
		out = append(out, line)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

func wantTree(t *testing.T, dir string, want ...string) {
	t.Helper()
	got := tree(t, dir)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("files under %s:\n%s\nwant:\n%s", dir, strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestInstallRemoveShow(t *testing.T) {
	dir := t.TempDir()
	const svc = "transmission-daemon.service"
	path := filepath.Join(dir, svc+".d", `50-wgns-my\x2dvpn.conf`)
	tunnelPath := filepath.Join(dir, `wgns@my\x2dvpn.service.d`, "50-wgns-"+svc+".conf")
	pathText, _ := DropIn("my-vpn", svc, StylePath)
	joinsText, _ := DropIn("my-vpn", svc, StyleJoins)
	tunnelText := TunnelDropIn("my-vpn", svc)
	tunnelDir := `wgns@my\x2dvpn.service.d`

	install := func(style Style, wantWritten []string, wantText string) {
		t.Helper()
		paths, written, err := Install(dir, "my-vpn", svc, style)
		if err != nil {
			t.Fatalf("Install(%s): %v", style, err)
		}
		if strings.Join(paths, " ") != path+" "+tunnelPath || strings.Join(written, " ") != strings.Join(wantWritten, " ") {
			t.Errorf("Install(%s) = %q, wrote %q; want wrote %q", style, paths, written, wantWritten)
		}
		got, err := Show(dir, "my-vpn", svc)
		if err != nil {
			t.Fatalf("Show: %v", err)
		}
		if got != wantText {
			t.Errorf("Show after Install(%s) =\n%s\nwant\n%s", style, got, wantText)
		}
		if b, _ := os.ReadFile(tunnelPath); string(b) != tunnelText {
			t.Errorf("the tunnel's drop-in after Install(%s) =\n%s\nwant\n%s", style, b, tunnelText)
		}
		wantTree(t, dir, svc+".d drwxr-xr-x", filepath.Join(svc+".d", filepath.Base(path))+" -rw-r--r--",
			tunnelDir+" drwxr-xr-x", filepath.Join(tunnelDir, filepath.Base(tunnelPath))+" -rw-r--r--")
	}

	install(StylePath, []string{path, tunnelPath}, pathText)
	install(StylePath, nil, pathText) // same text: untouched
	install(StyleJoins, []string{path}, joinsText)
	install(StyleJoins, nil, joinsText)

	// A wrong mode is repaired even when the text is right.
	if err := os.Chmod(path, 0o600); err != nil {
		t.Fatal(err)
	}
	install(StyleJoins, []string{path}, joinsText)

	// A symlink in its place is replaced, and its target left alone.
	outside := filepath.Join(t.TempDir(), "outside.conf")
	if err := os.WriteFile(outside, []byte(joinsText), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, path); err != nil {
		t.Fatal(err)
	}
	install(StyleJoins, []string{path}, joinsText)
	if b, _ := os.ReadFile(outside); string(b) != joinsText {
		t.Errorf("the symlink's target was written: %q", b)
	}

	// A second tunnel's drop-in for the same service keeps UNIT.d alive.
	other, _, err := Install(dir, "wg0", svc, StylePath)
	if err != nil {
		t.Fatal(err)
	}
	paths, removed, err := Remove(dir, "my-vpn", svc)
	if err != nil || strings.Join(removed, " ") != strings.Join(paths, " ") || len(paths) != 2 {
		t.Fatalf("Remove = %q, %q, %v; want both removed", paths, removed, err)
	}
	wantTree(t, dir, svc+".d drwxr-xr-x", filepath.Join(svc+".d", filepath.Base(other[0]))+" -rw-r--r--",
		"wgns@wg0.service.d drwxr-xr-x", filepath.Join("wgns@wg0.service.d", filepath.Base(other[1]))+" -rw-r--r--")

	_, err = Show(dir, "my-vpn", svc)
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Show after Remove: error %v does not wrap fs.ErrNotExist", err)
	}
	wantErr := `showing drop-in for transmission-daemon.service: tunnel "my-vpn" has none at ` + path + `: file does not exist`
	if err == nil || err.Error() != wantErr {
		t.Errorf("Show after Remove: error\n got: %v\nwant: %s", err, wantErr)
	}

	// Removing what is not there is no error.
	if _, removed, err = Remove(dir, "my-vpn", svc); err != nil || len(removed) != 0 {
		t.Errorf("second Remove removed %q, %v; want nothing, nil", removed, err)
	}

	// The last drop-ins take their empty .d directories with them.
	if _, removed, err := Remove(dir, "wg0", svc); err != nil || len(removed) != 2 {
		t.Fatalf("Remove(wg0) = %v, %v", removed, err)
	}
	wantTree(t, dir)
}

func TestInstallRefuses(t *testing.T) {
	dir := t.TempDir()
	for _, tt := range []struct {
		name, unit string
		style      Style
	}{
		{"", "foo.service", StylePath},
		{"../../etc", "foo.service", StylePath},
		{"wg0", "../foo.service", StylePath},
		{"wg0", "foo", StylePath},
		{"wg0", "foo.service", "nope"},
	} {
		if _, written, err := Install(dir, tt.name, tt.unit, tt.style); err == nil {
			t.Errorf("Install(%q, %q, %q) wrote %q, want an error", tt.name, tt.unit, tt.style, written)
		}
		if _, _, err := Remove(dir, tt.name, tt.unit); err == nil && tt.style == StylePath {
			t.Errorf("Remove(%q, %q) gave no error", tt.name, tt.unit)
		}
		if _, err := Show(dir, tt.name, tt.unit); err == nil && tt.style == StylePath {
			t.Errorf("Show(%q, %q) gave no error", tt.name, tt.unit)
		}
	}
	wantTree(t, dir)
}

func TestInstallFails(t *testing.T) {
	dir := t.TempDir()
	// UNIT.d is a file: the error says what was being done to what.
	blocker := filepath.Join(dir, "foo.service.d")
	if err := os.WriteFile(blocker, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	_, written, err := Install(dir, "wg0", "foo.service", StylePath)
	want := "installing drop-in for foo.service: creating its directory: mkdir " + blocker + ": not a directory"
	if err == nil || err.Error() != want || len(written) != 0 {
		t.Errorf("Install over a file: wrote %q, error\n got: %v\nwant: %s", written, err, want)
	}
	_, err = Show(dir, "wg0", "foo.service")
	if err == nil || errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Show with UNIT.d a file: error %v, want one that is not fs.ErrNotExist", err)
	}
}
