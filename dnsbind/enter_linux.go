package dnsbind

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// ErrUnsafe is wrapped by the error Enter returns when a file of the DNS view could be replaced
// by someone other than root: a symlink, not a regular file (or directory), not owned by root,
// or writable by group or others.
var ErrUnsafe = errors.New("refused: not safe to use")

// HiddenPaths are the directories of host services that resolve names on the host's network
// or answer for those that do. In the namespace's view each is an empty read-only directory,
// whether or not the host has it, so that their sockets cannot be reached from the namespace (a
// unix socket with a path crosses network namespaces):
//
//   - /run/nscd: nscd's socket, which glibc asks (as /var/run/nscd/socket) before any NSS module
//     (hosts, passwd, group), whatever nsswitch.conf says;
//   - /run/systemd/resolve: systemd-resolved's varlink socket io.systemd.Resolve (nss-resolve)
//     and its stub-resolv.conf, which points at 127.0.0.53, the host's stub;
//   - /run/avahi-daemon: avahi's socket, which nss-mdns asks for .local names (mDNS on the
//     host's LAN).
//
// Directories are hidden rather than socket files because a daemon re-creates its socket on
// restart (unlink and bind), which would detach a mount on the old one. See the package
// documentation for how Enter hides them from programs and units' drop-ins from services.
//
// Left visible on purpose: the system D-Bus (/run/dbus). systemd-resolved and avahi also answer
// over it (org.freedesktop.resolve1, org.freedesktop.Avahi), but only to programs that ask them
// by name (resolvectl, avahi-browse), and hiding the bus breaks ordinary programs. No NSS module
// that nsswitch.conf's "hosts: files dns" names uses it. /run/NetworkManager and
// /run/resolvconf hold only files (copies of the host's resolv.conf, which the namespace's
// /etc/resolv.conf replaces), and dnsmasq listens on the host's network only.
var HiddenPaths = []string{
	"/run/nscd",
	"/run/systemd/resolve",
	"/run/avahi-daemon",
}

// ResolverSocket is the socket through which a host daemon answers name lookups.
type ResolverSocket struct{ Daemon, Path string }

// ResolverSockets are the sockets of the host's resolver daemons in HiddenPaths: what a program
// that does not hide them (one run by `ip netns exec`) would ask.
var ResolverSockets = []ResolverSocket{
	{"nscd", "/run/nscd/socket"},
	{"systemd-resolved", "/run/systemd/resolve/io.systemd.Resolve"},
	{"avahi-daemon", "/run/avahi-daemon/socket"},
}

// viewFiles are the files of EtcDir/NAME that Enter puts in /etc, all required. Nothing else
// there is used: not even hosts, which `ip netns exec` would bind too; the namespace's
// /etc/hosts is the host's.
var viewFiles = []string{resolvConf, nsswitchConf}

// Enter puts the DNS view of the namespace name in place for the calling thread:
//
//   - /etc becomes a read-only bind mount of the /etc link farm (brought up to date with the
//     host's /etc first if that changed), in which every entry of the host's /etc is a symlink
//     into /etc/.wgns-host, a recursive bind mount of the host's /etc, except resolv.conf and
//     nsswitch.conf, which point into /etc/.wgns-view;
//   - /etc/.wgns-view/resolv.conf and nsswitch.conf are read-only bind mounts of
//     EtcDir/NAME/resolv.conf and nsswitch.conf;
//   - /run becomes a read-only bind mount of the /run link farm (brought up to date likewise),
//     in which every entry of the host's /run is a symlink into /run/.wgns-host, where the
//     host's /run is moved, except the directories of HiddenPaths, which are empty;
//   - if /var/run is a directory of its own rather than a symlink to /run, the existing
//     directories of HiddenPaths under it are covered by an empty read-only directory.
//
// The files of EtcDir/NAME (and the directory) are opened without following symlinks and
// refused (ErrUnsafe) unless they are regular files (a directory) owned by root and not writable
// by group or others; what is bound is the file that was checked, through its descriptor.
//
// The calling thread must be locked (runtime.LockOSThread) and already in a mount namespace of
// its own whose mounts are slaves of the host's (unshare(CLONE_NEWNS) and / made MS_REC|MS_SLAVE),
// as nsmgr's Exec does before it calls its Mounts function; Enter needs CAP_SYS_ADMIN there.
// It opens no descriptor that outlives it. On error the thread's mount namespace is left
// part-way and must not run a program. A lock that another wgns holds while it brings the link
// farms up to date is waited for at most 10 seconds.
func Enter(name string) error {
	if err := checkName(name); err != nil {
		return err
	}
	if err := enter(filepath.Join(EtcDir, name)); err != nil {
		return fmt.Errorf("entering the DNS view of %q: %w", name, err)
	}
	return nil
}

// enter binds the view in dir over /etc and /run, as Enter describes.
func enter(dir string) error {
	const etc, run = "/etc", "/run"
	view, err := openView(dir)
	defer closeFds(view...)
	if err != nil {
		return err
	}
	hostFd, err := unix.Open(etc, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return &fs.PathError{Op: "open", Path: etc, Err: err}
	}
	defer unix.Close(hostFd)
	linkFd, runFd, err := openLinks(false)
	if err != nil {
		return err
	}
	defer closeFds(linkFd, runFd)

	// Clone the host's etc and its submounts before anything covers it: a clone taken after
	// would hold the cover too.
	host, err := cloneMount(hostFd, "", true)
	if err != nil {
		return fmt.Errorf("cloning the mount of the host's %s: %w", etc, err)
	}
	defer unix.Close(host)
	if err := bindFd(linkFd, etcLinks, etc, true); err != nil {
		return err
	}
	// From here on, etc is the bind of the links.
	for i, name := range viewFiles {
		if err := bindFd(view[i], dir+"/"+name, etc+"/"+viewDir+"/"+name, true); err != nil {
			return err
		}
	}
	if err := unix.MoveMount(host, "", unix.AT_FDCWD, etc+"/"+hostDir, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
		return fmt.Errorf("mounting the host's %s on %s/%s: %w", etc, etc, hostDir, err)
	}
	if err := coverRun(runFd, run, etc+"/"+emptyDir); err != nil {
		return err
	}
	return hideVarRun(linkFd)
}

// coverRun puts the /run link farm (open as runFd) on run with the host's run below it at
// run/hostDir, moving the host's mount rather than cloning it (a clone would copy every mount
// below it, one per network namespace in /run/netns). The farm goes on temp first: the host's
// run cannot be moved below a mount that sits on it.
func coverRun(runFd int, run, temp string) error {
	if err := bindFd(runFd, runLinks, temp, true); err != nil {
		return err
	}
	below := temp + "/" + hostDir
	err := unix.MoveMount(unix.AT_FDCWD, run, unix.AT_FDCWD, below, 0)
	if err == unix.EINVAL {
		// The host's run is not a mount point of its own: make it one (which copies the mounts
		// below it), then move that.
		if err = unix.Mount(run, run, "", unix.MS_BIND|unix.MS_REC, ""); err == nil {
			err = unix.MoveMount(unix.AT_FDCWD, run, unix.AT_FDCWD, below, 0)
		}
	}
	if err != nil {
		return fmt.Errorf("moving the host's %s to %s: %w", run, below, err)
	}
	if err := unix.MoveMount(unix.AT_FDCWD, temp, unix.AT_FDCWD, run, 0); err != nil {
		return fmt.Errorf("moving %s from %s to %s: %w", runLinks, temp, run, err)
	}
	return nil
}

// hideVarRun covers the existing directories of HiddenPaths under /var/run with the empty
// directory of the link farm open as linkFd, if /var/run is a directory of its own; when it is
// a symlink to /run (every systemd system has it so), the /run link farm hides them already.
func hideVarRun(linkFd int) error {
	var st unix.Stat_t
	if err := unix.Lstat("/var/run", &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return nil
	}
	paths := make([]string, len(HiddenPaths))
	for i, p := range HiddenPaths {
		paths[i] = "/var" + p
	}
	return hide(linkFd, etcLinks, paths)
}

// openView opens dir and the files of viewFiles in it without following symlinks and checks
// each through its descriptor. It returns the descriptors of the files, in the order of
// viewFiles, even with an error; the caller closes them.
func openView(dir string) ([]int, error) {
	dfd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, openError(dir, err)
	}
	defer unix.Close(dfd)
	if err := checkSafe(dir, dfd, unix.S_IFDIR); err != nil {
		return nil, err
	}
	fds := make([]int, 0, len(viewFiles))
	for _, name := range viewFiles {
		path := dir + "/" + name
		// O_PATH: nothing is read, and a FIFO planted here cannot block the open.
		fd, err := unix.Openat(dfd, name, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return fds, openError(path, err)
		}
		fds = append(fds, fd)
		if err := checkSafe(path, fd, unix.S_IFREG); err != nil {
			return fds, err
		}
	}
	return fds, nil
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
// group or others. An O_PATH descriptor suffices.
func checkSafe(path string, fd int, typ uint32) error {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return &fs.PathError{Op: "fstat", Path: path, Err: err}
	}
	return checkStat(path, &st, typ)
}

// checkStat is checkSafe on the file whose status (not following a symlink) is st.
func checkStat(path string, st *unix.Stat_t, typ uint32) error {
	switch {
	case st.Mode&unix.S_IFMT == unix.S_IFLNK: // opened with O_PATH|O_NOFOLLOW
		return fmt.Errorf("%s is a symlink: %w", path, ErrUnsafe)
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

// cloneMount returns a detached bind mount of name in the directory fd ("" for fd itself),
// with its submounts if recursive. The caller closes it (which unmounts it if it was never
// attached).
func cloneMount(fd int, name string, recursive bool) (int, error) {
	flags := uint(unix.OPEN_TREE_CLONE | unix.OPEN_TREE_CLOEXEC)
	if name == "" {
		flags |= unix.AT_EMPTY_PATH
	}
	if recursive {
		flags |= unix.AT_RECURSIVE
	}
	return unix.OpenTree(fd, name, flags)
}

// bindFd mounts the file or directory open as fd (at src) on target, read-only if readOnly
// (always nosuid, nodev, noexec).
func bindFd(fd int, src, target string, readOnly bool) error {
	m, err := cloneMount(fd, "", false)
	if err != nil {
		return fmt.Errorf("binding %s: %w", src, err)
	}
	defer unix.Close(m)
	attr := unix.MountAttr{Attr_set: unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV | unix.MOUNT_ATTR_NOEXEC}
	if readOnly {
		attr.Attr_set |= unix.MOUNT_ATTR_RDONLY
	}
	if err := unix.MountSetattr(m, "", unix.AT_EMPTY_PATH, &attr); err != nil {
		return fmt.Errorf("setting the mount flags of %s: %w", src, err)
	}
	if err := unix.MoveMount(m, "", unix.AT_FDCWD, target, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
		return fmt.Errorf("mounting %s on %s: %w", src, target, err)
	}
	return nil
}

// hide covers each existing directory of paths, once per directory, with a read-only bind of
// the empty directory emptyDir of the link farm linkFd (at links).
func hide(linkFd int, links string, paths []string) error {
	// Find them all first: once one is covered, another path to it (through a symlink) would
	// lead to the cover instead.
	type key struct{ dev, ino uint64 }
	seen := make(map[key]bool, len(paths))
	dirs := make([]string, 0, len(paths))
	for _, p := range paths {
		var st unix.Stat_t
		if err := unix.Stat(p, &st); err != nil {
			if err == unix.ENOENT || err == unix.ENOTDIR {
				continue
			}
			return &fs.PathError{Op: "stat", Path: p, Err: err}
		}
		k := key{st.Dev, st.Ino}
		if st.Mode&unix.S_IFMT == unix.S_IFDIR && !seen[k] {
			seen[k] = true
			dirs = append(dirs, p)
		}
	}
	if len(dirs) == 0 {
		return nil
	}
	// A read-only bind of emptyDir, cloned for each directory (a bind of a read-only mount is
	// read-only).
	empty, err := cloneMount(linkFd, emptyDir, false)
	if err != nil {
		return fmt.Errorf("binding %s/%s: %w", links, emptyDir, err)
	}
	defer unix.Close(empty)
	attr := unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY | unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV | unix.MOUNT_ATTR_NOEXEC}
	if err := unix.MountSetattr(empty, "", unix.AT_EMPTY_PATH, &attr); err != nil {
		return fmt.Errorf("making the bind of %s/%s read-only: %w", links, emptyDir, err)
	}
	for i, p := range dirs {
		m := empty
		if i > 0 {
			if m, err = cloneMount(empty, "", false); err != nil {
				return fmt.Errorf("binding %s/%s: %w", links, emptyDir, err)
			}
			defer unix.Close(m)
		}
		if err := unix.MoveMount(m, "", unix.AT_FDCWD, p, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
			return fmt.Errorf("hiding %s under an empty directory: %w", p, err)
		}
	}
	return nil
}
