// Package atomicfile replaces files so that a reader sees the old content or the new, never a
// part: the data goes to a temporary file in the same directory, which is then renamed over the
// target. A symlink at the target is replaced, not followed.
package atomicfile

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// Options says how Write treats the file.
type Options struct {
	// Sync makes the new content and the rename durable (fsync of the file and its directory)
	// before Write returns; files under /run do not need it.
	Sync bool
	// TempPrefix starts the temporary file's name; "" gives "." + the target's base name + ".",
	// which no loader of *.conf, *.json or *.service files picks up if a crash leaves it behind.
	TempPrefix string
	// Owner, if not nil, is given the file before it is renamed into place.
	Owner *Owner
}

// Owner is the user and group IDs a written file is given.
type Owner struct{ UID, GID int }

// Write replaces path with data, with the given permission bits. On failure the target is
// unchanged and no temporary file is left behind.
func Write(path string, data []byte, mode fs.FileMode, o Options) (err error) {
	dir := filepath.Dir(path)
	prefix := o.TempPrefix
	if prefix == "" {
		prefix = "." + filepath.Base(path) + "."
	}
	f, err := os.CreateTemp(dir, prefix+"*.tmp")
	if err != nil {
		return fmt.Errorf("creating a temporary file in %s: %w", dir, err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("writing %s: %w", tmp, err)
	}
	if err := f.Chmod(mode); err != nil {
		return fmt.Errorf("setting the mode of %s: %w", tmp, err)
	}
	if o.Owner != nil {
		if err := f.Chown(o.Owner.UID, o.Owner.GID); err != nil {
			return fmt.Errorf("setting the owner of %s: %w", tmp, err)
		}
	}
	if o.Sync {
		if err := f.Sync(); err != nil {
			return fmt.Errorf("syncing %s: %w", tmp, err)
		}
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("closing %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("renaming %s to %s: %w", tmp, path, err)
	}
	if o.Sync {
		return SyncDir(dir)
	}
	return nil
}

// SyncDir makes the renames and removals done in dir durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("opening %s to sync it: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("syncing %s: %w", dir, err)
	}
	return nil
}
