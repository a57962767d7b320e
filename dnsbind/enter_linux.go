package dnsbind

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// ErrUnsafe is wrapped by the error Enter returns when a file of the DNS view could be replaced
// by someone other than root: a symlink, not a regular file (or directory), not owned by root,
// or writable by group or others.
var ErrUnsafe = errors.New("refused: not safe to use")

// HiddenPaths are the directories of host services that resolve names on the host's network
// or answer for those that do; Enter covers each that exists with an empty read-only tmpfs, so
// their sockets cannot be reached from the namespace (a unix socket with a path crosses network
// namespaces):
//
//   - /run/nscd: nscd's socket, which glibc asks before any NSS module (hosts, passwd, group),
//     whatever nsswitch.conf says;
//   - /run/systemd/resolve: systemd-resolved's varlink socket io.systemd.Resolve (nss-resolve)
//     and its stub-resolv.conf, which points at 127.0.0.53, the host's stub;
//   - /run/avahi-daemon: avahi's socket, which nss-mdns asks for .local names (mDNS on the
//     host's LAN).
//
// The /var/run spellings are listed for hosts where /var/run is not a symlink to /run; a
// directory reached twice is covered once. Directories are covered rather than socket files
// because a daemon re-creates its socket on restart (unlink and bind), which would detach a
// mount on the old one; a directory of /run is rarely removed (if the host removes and
// re-creates one while a program runs inside, that program sees the new one). A directory that
// does not exist when the program starts is not covered.
//
// Left visible on purpose: the system D-Bus (/run/dbus). systemd-resolved and avahi also answer
// over it (org.freedesktop.resolve1, org.freedesktop.Avahi), but only to programs that ask them
// by name (resolvectl, avahi-browse), and hiding the bus breaks ordinary programs. No NSS module
// that nsswitch.conf's "hosts: files dns" names uses it. /run/NetworkManager and
// /run/resolvconf hold only files (copies of the host's resolv.conf, which the namespace's
// /etc/resolv.conf replaces), and dnsmasq listens on the host's network only.
var HiddenPaths = []string{
	"/run/nscd",
	"/var/run/nscd",
	"/run/systemd/resolve",
	"/var/run/systemd/resolve",
	"/run/avahi-daemon",
	"/var/run/avahi-daemon",
}

// HostEtc is the name, inside the namespace's /etc, of the bind mount of the host's /etc that the
// symlinks in it point into (see the package documentation).
const HostEtc = ".wgns-host"

// viewFiles are the files of EtcDir/NAME that Enter puts in /etc, and whether each is required.
// Nothing else in EtcDir/NAME is used.
var viewFiles = []struct {
	name     string
	required bool
}{
	{resolvConf, true},
	{nsswitchConf, true},
	{hostsFile, false},
}

// maxViewFile is the size limit of a file of the DNS view.
const maxViewFile = 64 << 10

// Enter puts the DNS view of the namespace name in place for the calling thread: /etc becomes a
// small read-only tmpfs holding the view's resolv.conf, nsswitch.conf (and hosts, if EtcDir/NAME
// has one) and, for every other entry of the host's /etc, a symlink into a bind mount of the
// host's /etc; every existing directory of HiddenPaths is covered by an empty read-only tmpfs.
// The files of EtcDir/NAME are opened without following symlinks and refused (ErrUnsafe) unless
// they are regular files owned by root and not writable by group or others; what is copied is
// read from the descriptor that was checked.
//
// The calling thread must be locked (runtime.LockOSThread) and already in a mount namespace of
// its own whose mounts are slaves of the host's (unshare(CLONE_NEWNS) and / made MS_REC|MS_SLAVE),
// as nsmgr's Exec does before it calls its Mounts function. Enter needs CAP_SYS_ADMIN there. On
// error the thread's mount namespace is left part-way and must not run a program.
func Enter(name string) error {
	if err := checkName(name); err != nil {
		return err
	}
	view, err := readView(filepath.Join(EtcDir, name))
	if err != nil {
		return fmt.Errorf("entering the DNS view of %q: %w", name, err)
	}
	if err := coverEtc("/etc", view); err != nil {
		return fmt.Errorf("entering the DNS view of %q: %w", name, err)
	}
	if err := hide(HiddenPaths); err != nil {
		return fmt.Errorf("entering the DNS view of %q: %w", name, err)
	}
	return nil
}

// viewFile is a file of the DNS view read through its checked descriptor.
type viewFile struct {
	name string
	data []byte
}

// readView opens dir and the files of viewFiles in it without following symlinks, checks each
// through its descriptor, and returns their contents. A missing optional file is skipped.
func readView(dir string) ([]viewFile, error) {
	dfd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, openError(dir, err)
	}
	defer unix.Close(dfd)
	if err := checkSafe(dir, dfd, unix.S_IFDIR); err != nil {
		return nil, err
	}
	view := make([]viewFile, 0, len(viewFiles))
	for _, vf := range viewFiles {
		path := dir + "/" + vf.name
		// O_NONBLOCK: opening a FIFO planted here must not hang; it is refused below.
		fd, err := unix.Openat(dfd, vf.name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC|unix.O_NOCTTY, 0)
		if err != nil {
			if err == unix.ENOENT && !vf.required {
				continue
			}
			return nil, openError(path, err)
		}
		data, err := readChecked(path, fd)
		unix.Close(fd)
		if err != nil {
			return nil, err
		}
		view = append(view, viewFile{vf.name, data})
	}
	return view, nil
}

// openError explains a failed open of a view file.
func openError(path string, err error) error {
	if err == unix.ELOOP || err == unix.ENOTDIR {
		// O_NOFOLLOW on a symlink gives ELOOP; O_DIRECTORY|O_NOFOLLOW on one gives ENOTDIR.
		var st unix.Stat_t
		if unix.Lstat(path, &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFLNK {
			return fmt.Errorf("%s is a symlink: %w", path, ErrUnsafe)
		}
	}
	return &fs.PathError{Op: "open", Path: path, Err: err}
}

// checkSafe checks the file open as fd (at path): of type typ, owned by root, not writable by
// group or others.
func checkSafe(path string, fd int, typ uint32) error {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return &fs.PathError{Op: "fstat", Path: path, Err: err}
	}
	switch {
	case st.Mode&unix.S_IFMT != typ:
		want := "a regular file"
		if typ == unix.S_IFDIR {
			want = "a directory"
		}
		return fmt.Errorf("%s is not %s: %w", path, want, ErrUnsafe)
	case st.Uid != 0:
		return fmt.Errorf("%s is owned by uid %d, not root: %w", path, st.Uid, ErrUnsafe)
	case st.Mode&0o022 != 0:
		return fmt.Errorf("%s is writable by group or others (mode %04o): %w", path, st.Mode&0o7777, ErrUnsafe)
	}
	return nil
}

// readChecked checks the file open as fd and reads it whole.
func readChecked(path string, fd int) ([]byte, error) {
	if err := checkSafe(path, fd, unix.S_IFREG); err != nil {
		return nil, err
	}
	buf := make([]byte, 0, 4096)
	for {
		if len(buf) == cap(buf) {
			if len(buf) > maxViewFile {
				return nil, fmt.Errorf("%s is larger than %d bytes", path, maxViewFile)
			}
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := unix.Read(fd, buf[len(buf):cap(buf)])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, &fs.PathError{Op: "read", Path: path, Err: err}
		}
		if n == 0 {
			return buf, nil
		}
		buf = buf[:len(buf)+n]
	}
}

// coverEtc mounts over etc a tmpfs holding the files of view and, for each other entry of the
// host's etc, a symlink to it: a relative one into HostEtc, a bind mount (with its submounts) of
// the host's etc inside the tmpfs, or for an entry that is itself a symlink, a copy of it. The
// tmpfs is then made read-only.
func coverEtc(etc string, view []viewFile) error {
	hostFd, err := unix.Open(etc, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return &fs.PathError{Op: "open", Path: etc, Err: err}
	}
	host := os.NewFile(uintptr(hostFd), etc)
	defer host.Close()
	entries, err := host.ReadDir(-1)
	if err != nil {
		return fmt.Errorf("listing the host's %s: %w", etc, err)
	}
	type link struct{ name, target string }
	links := make([]link, 0, len(entries))
	ours := make(map[string]bool, len(view)+1)
	ours[HostEtc] = true
	for _, f := range view {
		ours[f.name] = true
	}
	buf := make([]byte, unix.PathMax)
	for _, e := range entries {
		n := e.Name()
		if ours[n] {
			continue
		}
		target := HostEtc + "/" + n
		if e.Type() == fs.ModeSymlink {
			// A relative target ("../usr/share/zoneinfo/UTC") would resolve from HostEtc, one
			// level too deep: copy the symlink instead.
			k, err := unix.Readlinkat(hostFd, n, buf)
			if err != nil {
				return &fs.PathError{Op: "readlink", Path: etc + "/" + n, Err: err}
			}
			target = string(buf[:k])
		}
		links = append(links, link{n, target})
	}

	// Clone the host's etc and its submounts before the tmpfs covers it: a clone taken after
	// would hold the tmpfs too, a submount at its root.
	tree, err := unix.OpenTree(hostFd, "", unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC|unix.AT_RECURSIVE|unix.AT_EMPTY_PATH)
	if err != nil {
		return fmt.Errorf("cloning the mount of the host's %s: %w", etc, err)
	}
	defer unix.Close(tree)
	if err := unix.Mount("tmpfs", etc, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "mode=0755,size=1m"); err != nil {
		return fmt.Errorf("mounting a tmpfs on %s: %w", etc, err)
	}
	tfd, err := unix.Open(etc, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return &fs.PathError{Op: "open", Path: etc + " (tmpfs)", Err: err}
	}
	defer unix.Close(tfd)
	if err := unix.Mkdirat(tfd, HostEtc, 0o555); err != nil {
		return &fs.PathError{Op: "mkdir", Path: etc + "/" + HostEtc, Err: err}
	}
	if err := unix.MoveMount(tree, "", tfd, HostEtc, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
		return fmt.Errorf("mounting the host's %s on %s/%s: %w", etc, etc, HostEtc, err)
	}
	for _, l := range links {
		if err := unix.Symlinkat(l.target, tfd, l.name); err != nil {
			return fmt.Errorf("linking %s/%s to %s: %w", etc, l.name, l.target, err)
		}
	}
	for _, f := range view {
		if err := writeNew(tfd, etc, f); err != nil {
			return err
		}
	}
	if err := unix.Mount("", etc, "", unix.MS_REMOUNT|unix.MS_BIND|unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return fmt.Errorf("making the tmpfs on %s read-only: %w", etc, err)
	}
	return nil
}

// writeNew creates f in the directory dfd (etc), mode 0644 whatever the umask.
func writeNew(dfd int, etc string, f viewFile) error {
	path := etc + "/" + f.name
	fd, err := unix.Openat(dfd, f.name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o644)
	if err != nil {
		return &fs.PathError{Op: "create", Path: path, Err: err}
	}
	defer unix.Close(fd)
	for b := f.data; len(b) > 0; {
		n, err := unix.Write(fd, b)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return &fs.PathError{Op: "write", Path: path, Err: err}
		}
		b = b[n:]
	}
	if err := unix.Fchmod(fd, 0o644); err != nil {
		return &fs.PathError{Op: "chmod", Path: path, Err: err}
	}
	return nil
}

// hide covers each existing directory of paths with an empty read-only tmpfs, once per directory.
func hide(paths []string) error {
	type key struct{ dev, ino uint64 }
	seen := make(map[key]bool, len(paths))
	for _, p := range paths {
		var st unix.Stat_t
		if err := unix.Stat(p, &st); err != nil {
			if err == unix.ENOENT || err == unix.ENOTDIR {
				continue
			}
			return &fs.PathError{Op: "stat", Path: p, Err: err}
		}
		k := key{st.Dev, st.Ino}
		if st.Mode&unix.S_IFMT != unix.S_IFDIR || seen[k] {
			continue
		}
		seen[k] = true
		if err := unix.Mount("tmpfs", p, "tmpfs", unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "mode=0755,size=4k"); err != nil {
			return fmt.Errorf("hiding %s under an empty tmpfs: %w", p, err)
		}
	}
	return nil
}
