package units

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"github.com/coreos/go-systemd/v22/unit"

	"github.com/wgns/wgns/internal/atomicfile"
)

// dropInMode is the mode of an installed drop-in.
const dropInMode fs.FileMode = 0o644

// DropInPath returns where the drop-in confining unitName to tunnel name
// lives: dir/UNIT.d/50-wgns-ESCAPED_NAME.conf, with dir "" meaning
// DefaultDir. It checks nothing; Install, Remove and Show do.
func DropInPath(dir, name, unitName string) string {
	if dir == "" {
		dir = DefaultDir
	}
	return filepath.Join(dir, unitName+".d", "50-wgns-"+unit.UnitNameEscape(name)+".conf")
}

// TunnelDropInPath returns where the tunnel's side of the confinement of
// unitName lives: dir/wgns@ESCAPED_NAME.service.d/50-wgns-UNIT.conf (see
// TunnelDropIn). It checks nothing.
func TunnelDropInPath(dir, name, unitName string) string {
	if dir == "" {
		dir = DefaultDir
	}
	return filepath.Join(dir, InstanceName(name)+".d", "50-wgns-"+unitName+".conf")
}

// Install writes the drop-in that confines the service unitName to tunnel
// name (see DropIn) and the tunnel's side of it (TunnelDropIn) under dir (""
// means DefaultDir), creating the .d directories as needed. Each file is
// replaced atomically (written beside it, synced, renamed), mode 0644 and
// owned by the caller (root, for wgns). It returns the paths of both and the
// ones it wrote: a file that already holds exactly its text with that mode is
// left alone. systemd sees the change only after a daemon-reload (Reload).
func Install(dir, name, unitName string, style Style) (paths, written []string, err error) {
	text, err := DropIn(name, unitName, style)
	if err != nil {
		return nil, nil, err
	}
	files := []struct{ path, text string }{
		{DropInPath(dir, name, unitName), text},
		{TunnelDropInPath(dir, name, unitName), TunnelDropIn(name, unitName)},
	}
	for _, f := range files {
		paths = append(paths, f.path)
		if fi, err := os.Lstat(f.path); err == nil && fi.Mode().IsRegular() && fi.Mode().Perm() == dropInMode {
			old, err := os.ReadFile(f.path)
			if err == nil && bytes.Equal(old, []byte(f.text)) {
				continue
			}
		}
		if err := os.MkdirAll(filepath.Dir(f.path), 0o755); err != nil {
			return paths, written, fmt.Errorf("installing drop-in for %s: creating its directory: %w", unitName, err)
		}
		// Synced: systemd must find the drop-in after a crash that follows the
		// install. The temporary file's name starts with a dot and does not end in
		// .conf, so systemd never loads one left behind by a crash.
		if err := atomicfile.Write(f.path, []byte(f.text), dropInMode, atomicfile.Options{Sync: true}); err != nil {
			return paths, written, fmt.Errorf("installing drop-in for %s: %w", unitName, err)
		}
		written = append(written, f.path)
	}
	return paths, written, nil
}

// Remove deletes the drop-in that confines unitName to tunnel name under dir
// ("" means DefaultDir) and the tunnel's side of it, and each .d directory
// that is left empty. It returns both paths and those it removed (none when
// there was nothing to remove, which is not an error). systemd sees the
// change only after a daemon-reload (Reload).
func Remove(dir, name, unitName string) (paths, removed []string, err error) {
	if err := checkName(name); err != nil {
		return nil, nil, err
	}
	if err := checkUnitName(unitName); err != nil {
		return nil, nil, err
	}
	for _, path := range []string{DropInPath(dir, name, unitName), TunnelDropInPath(dir, name, unitName)} {
		paths = append(paths, path)
		if err := os.Remove(path); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			return paths, removed, fmt.Errorf("removing drop-in for %s: %w", unitName, err)
		}
		removed = append(removed, path)
		parent := filepath.Dir(path)
		if err := atomicfile.SyncDir(parent); err != nil {
			return paths, removed, fmt.Errorf("removing drop-in for %s: %w", unitName, err)
		}
		// Only an empty directory goes; other drop-ins keep it.
		if err := os.Remove(parent); err != nil && !errors.Is(err, syscall.ENOTEMPTY) &&
			!errors.Is(err, syscall.EEXIST) && !errors.Is(err, fs.ErrNotExist) {
			return paths, removed, fmt.Errorf("removing drop-in for %s: removing the empty %s: %w", unitName, parent, err)
		}
	}
	return paths, removed, nil
}

// Show returns the text of the installed drop-in that confines unitName to
// tunnel name under dir ("" means DefaultDir). When there is none, the error
// wraps fs.ErrNotExist.
func Show(dir, name, unitName string) (string, error) {
	if err := checkName(name); err != nil {
		return "", err
	}
	if err := checkUnitName(unitName); err != nil {
		return "", err
	}
	path := DropInPath(dir, name, unitName)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("showing drop-in for %s: tunnel %q has none at %s: %w", unitName, name, path, fs.ErrNotExist)
	}
	if err != nil {
		return "", fmt.Errorf("showing drop-in for %s: %w", unitName, err)
	}
	return string(b), nil
}
