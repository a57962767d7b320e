package dnsbind

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// LinkDir is the directory that Enter binds over /etc, shared by every namespace and kept by
// Enter itself: for each entry of the host's /etc a symlink to it (see the package
// documentation). Its parent is wgns's runtime directory. It holds no secret and nothing
// specific to a namespace, and is left in place when tunnels go down. Removing it while programs
// run inside leaves them without the entries of /etc, resolv.conf included: lookups fail rather
// than reach the host's resolver.
const LinkDir = "/run/wgns/etc"

// Reserved names in LinkDir, and so in a namespace's /etc. A host's /etc entry whose name starts
// with reservedPrefix is not linked.
const (
	reservedPrefix = ".wgns-"
	hostEtcDir     = ".wgns-host"  // mount point of the host's /etc
	viewDir        = ".wgns-view"  // holds the mount points of the namespace's files
	emptyDir       = ".wgns-empty" // an empty directory, bound over HiddenPaths
	stampLink      = ".wgns-stamp" // its target identifies the state of the host's /etc linked
	tempLink       = ".wgns-new-"  // prefix of symlinks being renamed into place
)

// openLinks opens the directory links and checks that it belongs to root and that only root
// can write to it, creating it if needed, and brings it up to date with the host's etc (open
// as hostFd) when the stamp it holds differs from etc's device, inode, mtime and ctime. The
// caller closes the descriptor returned.
func openLinks(links, etc string, hostFd int) (int, error) {
	var st unix.Stat_t
	if err := unix.Fstat(hostFd, &st); err != nil {
		return -1, &fs.PathError{Op: "fstat", Path: etc, Err: err}
	}
	stamp := fmt.Sprintf("%d:%d:%d.%09d:%d.%09d", st.Dev, st.Ino, st.Mtim.Sec, st.Mtim.Nsec, st.Ctim.Sec, st.Ctim.Nsec)

	const flags = unix.O_RDONLY | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_CLOEXEC
	fd, err := unix.Open(links, flags, 0)
	if err == unix.ENOENT {
		if err := os.MkdirAll(filepath.Dir(links), 0o700); err != nil {
			return -1, err
		}
		if err := unix.Mkdir(links, 0o755); err != nil && err != unix.EEXIST {
			return -1, &fs.PathError{Op: "mkdir", Path: links, Err: err}
		}
		fd, err = unix.Open(links, flags, 0)
	}
	if err != nil {
		return -1, openError(links, err)
	}
	ok := false
	defer func() {
		if !ok {
			unix.Close(fd)
		}
	}()
	if err := checkSafe(links, fd, unix.S_IFDIR); err != nil {
		return -1, err
	}
	if readStamp(fd) != stamp {
		if err := unix.Flock(fd, unix.LOCK_EX); err != nil {
			return -1, fmt.Errorf("locking %s: %w", links, err)
		}
		// Another Enter may have brought it up to date while this one waited.
		if readStamp(fd) != stamp {
			err = syncLinks(fd, links, hostFd, etc, stamp)
		}
		unix.Flock(fd, unix.LOCK_UN)
		if err != nil {
			return -1, fmt.Errorf("linking %s to the host's %s: %w", links, etc, err)
		}
	}
	ok = true
	return fd, nil
}

// readStamp returns the stamp of the link directory open as fd, or "" if it has none.
func readStamp(fd int) string {
	buf := make([]byte, 128)
	n, err := unix.Readlinkat(fd, stampLink, buf)
	if err != nil {
		return ""
	}
	return string(buf[:n])
}

// listDir returns the entries of the directory open as fd, without moving fd's offset.
func listDir(fd int, path string) ([]fs.DirEntry, error) {
	dfd, err := unix.Openat(fd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	f := os.NewFile(uintptr(dfd), path)
	defer f.Close()
	return f.ReadDir(-1)
}

// linkTarget returns the target of the symlink name in the directory fd (at path).
func linkTarget(fd int, path, name string, buf []byte) (string, error) {
	n, err := unix.Readlinkat(fd, name, buf)
	if err != nil {
		return "", &fs.PathError{Op: "readlink", Path: path + "/" + name, Err: err}
	}
	return string(buf[:n]), nil
}

// syncLinks makes the directory linkFd (at links) hold, for each entry NAME of the host's etc
// (open as hostFd), a symlink: to viewDir/NAME for the files of viewFiles (present or not), a
// copy of it if it is itself a symlink (its relative target would resolve one level too deep
// from hostEtcDir), to hostEtcDir/NAME otherwise; plus the directories hostEtcDir, emptyDir
// (empty) and viewDir with an empty file for each of viewFiles to mount on, and stamp last.
// Symlinks that change are replaced by rename, so that a program already using links sees the
// old one or the new one.
func syncLinks(linkFd int, links string, hostFd int, etc, stamp string) error {
	hostEntries, err := listDir(hostFd, etc)
	if err != nil {
		return err
	}
	buf := make([]byte, unix.PathMax)
	want := make(map[string]string, len(hostEntries)+len(viewFiles))
	for _, e := range hostEntries {
		n := e.Name()
		switch {
		case strings.HasPrefix(n, reservedPrefix):
		case e.Type() == fs.ModeSymlink:
			if want[n], err = linkTarget(hostFd, etc, n, buf); err != nil {
				return err
			}
		default:
			want[n] = hostEtcDir + "/" + n
		}
	}
	for _, n := range viewFiles {
		want[n] = viewDir + "/" + n
	}

	have, err := listDir(linkFd, links)
	if err != nil {
		return err
	}
	dirs := map[string]uint32{hostEtcDir: 0o555, viewDir: 0o755, emptyDir: 0o555}
	replace := make(map[string]string)
	for _, e := range have {
		n := e.Name()
		if _, ok := dirs[n]; ok && e.IsDir() {
			continue
		}
		if n == stampLink {
			continue
		}
		target, ok := want[n]
		if ok && e.Type() == fs.ModeSymlink {
			got, err := linkTarget(linkFd, links, n, buf)
			if err != nil {
				return err
			}
			delete(want, n)
			if got != target {
				replace[n] = target
			}
			continue
		}
		// Not wanted, or not a symlink.
		if err := os.RemoveAll(links + "/" + n); err != nil {
			return err
		}
	}
	for n, target := range want {
		if err := unix.Symlinkat(target, linkFd, n); err != nil {
			return fmt.Errorf("linking %s/%s to %s: %w", links, n, target, err)
		}
	}
	for n, target := range replace {
		if err := replaceLink(linkFd, links, n, target); err != nil {
			return err
		}
	}
	for d, mode := range dirs {
		if err := makeDir(linkFd, links, d, mode); err != nil {
			return err
		}
	}
	if err := makeEmpty(links + "/" + emptyDir); err != nil {
		return err
	}
	for _, n := range viewFiles {
		if err := makeMountFile(links+"/"+viewDir, n); err != nil {
			return err
		}
	}
	return replaceLink(linkFd, links, stampLink, stamp)
}

// makeDir makes name in the directory fd (at path) a directory of the given mode.
func makeDir(fd int, path, name string, mode uint32) error {
	if err := unix.Mkdirat(fd, name, mode); err != nil && err != unix.EEXIST {
		return &fs.PathError{Op: "mkdir", Path: path + "/" + name, Err: err}
	}
	// Whatever the umask.
	if err := unix.Fchmodat(fd, name, mode, 0); err != nil {
		return &fs.PathError{Op: "chmod", Path: path + "/" + name, Err: err}
	}
	return nil
}

// makeEmpty empties the directory dir.
func makeEmpty(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if err := os.RemoveAll(dir + "/" + e.Name()); err != nil {
			return err
		}
	}
	return nil
}

// makeMountFile makes dir/name an empty regular file of mode 0644, for a file to be mounted on.
func makeMountFile(dir, name string) error {
	path := dir + "/" + name
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err == nil && st.Mode&unix.S_IFMT != unix.S_IFREG {
		if err := os.RemoveAll(path); err != nil {
			return err
		}
	}
	fd, err := unix.Open(path, unix.O_WRONLY|unix.O_CREAT|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o644)
	if err != nil {
		return &fs.PathError{Op: "create", Path: path, Err: err}
	}
	defer unix.Close(fd)
	if err := unix.Ftruncate(fd, 0); err != nil {
		return &fs.PathError{Op: "truncate", Path: path, Err: err}
	}
	if err := unix.Fchmod(fd, 0o644); err != nil {
		return &fs.PathError{Op: "chmod", Path: path, Err: err}
	}
	return nil
}

// replaceLink makes name in the directory fd (at path) a symlink to target, by rename.
func replaceLink(fd int, path, name, target string) error {
	tmp := tempLink + name
	unix.Unlinkat(fd, tmp, 0)
	if err := unix.Symlinkat(target, fd, tmp); err != nil {
		return fmt.Errorf("linking %s/%s to %s: %w", path, tmp, target, err)
	}
	if err := unix.Renameat(fd, tmp, fd, name); err != nil {
		return fmt.Errorf("renaming %s/%s to %s: %w", path, tmp, name, err)
	}
	return nil
}
