package dnsbind

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// headers are the first lines Write gives the files of the namespace name: a process that reads
// a file beginning so reads a version of the namespace's file (the one Write had written when
// the process started).
func headers(name string) map[string]string {
	return map[string]string{
		resolvConf:   fmt.Sprintf("# DNS of network namespace %q, written by wgns.", name),
		nsswitchConf: fmt.Sprintf("# Name services of network namespace %q, written by wgns", name),
	}
}

// Inspect reports how the DNS view that process pid sees differs from the view wgns gives a
// program in the namespace name, one line per fault ("/etc/resolv.conf is the host's file",
// "the host's /run/nscd is visible (nscd's socket /run/nscd/socket can be reached)"; a visible
// directory is a fault even while its daemon does not run, or its socket file is covered: a
// daemon that starts or restarts makes a socket there that the process reaches), none
// when it sees the namespace's resolv.conf and nsswitch.conf and none of the host's
// directories of HiddenPaths. It looks through /proc/PID/root, resolving every path inside the
// process's root (openat2 RESOLVE_IN_ROOT), so it sees what the process's own mounts show. A
// version of the namespace's file that Write has since replaced counts as the namespace's. It
// needs root. The error is for a process it could not look at: one that is gone wraps
// fs.ErrNotExist.
func Inspect(pid int, name string) ([]string, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	root, err := unix.Open("/proc/"+strconv.Itoa(pid)+"/root", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		if err == unix.ESRCH {
			err = unix.ENOENT
		}
		return nil, fmt.Errorf("looking at the DNS view of PID %d: %w", pid, &fs.PathError{Op: "open", Path: "/proc/" + strconv.Itoa(pid) + "/root", Err: err})
	}
	defer unix.Close(root)

	var faults []string
	hdr := headers(name)
	for _, file := range viewFiles {
		ours := EtcDir + "/" + name + "/" + file
		var want unix.Stat_t
		if err := unix.Stat(ours, &want); err != nil {
			return nil, fmt.Errorf("looking at the DNS view of PID %d: %w", pid, &fs.PathError{Op: "stat", Path: ours, Err: err})
		}
		if f := inspectFile(root, "/etc/"+file, want, hdr[file]); f != "" {
			faults = append(faults, f)
		}
	}
	for _, d := range HiddenPaths {
		if f := inspectHidden(root, d); f != "" {
			faults = append(faults, f)
		}
	}
	return faults, nil
}

// openIn opens path inside the root open as root, as the process whose root it is would.
func openIn(root int, path string, flags uint64) (int, error) {
	return unix.Openat2(root, path[1:], &unix.OpenHow{
		Flags:   flags | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS,
	})
}

// inspectFile says what is wrong with path as seen inside root, given the namespace's file
// (want) and the first line every version of it starts with; "" if nothing is.
func inspectFile(root int, path string, want unix.Stat_t, header string) string {
	fd, err := openIn(root, path, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_NOCTTY)
	if errors.Is(err, unix.ENOENT) {
		return path + " is missing"
	}
	if err != nil {
		return fmt.Sprintf("%s cannot be opened: %v", path, err)
	}
	defer unix.Close(fd)
	var got unix.Stat_t
	if err := unix.Fstat(fd, &got); err != nil {
		return fmt.Sprintf("%s cannot be read: %v", path, err)
	}
	if got.Dev == want.Dev && got.Ino == want.Ino {
		return ""
	}
	var host unix.Stat_t
	if unix.Stat(path, &host) == nil && host.Dev == got.Dev && host.Ino == got.Ino {
		return path + " is the host's file"
	}
	if got.Mode&unix.S_IFMT == unix.S_IFREG {
		buf := make([]byte, len(header))
		if n, _ := unix.Pread(fd, buf, 0); n == len(buf) && bytes.Equal(buf, []byte(header)) {
			return "" // a version of the namespace's file that Write has replaced since
		}
	}
	return path + " is not the namespace's file"
}

// inspectHidden says whether the host's directory dir is visible inside root, and whether the
// socket a resolver daemon has in it can be reached; "" if it is not visible.
func inspectHidden(root int, dir string) string {
	var host unix.Stat_t
	if err := unix.Stat(dir, &host); err != nil {
		return "" // the host has none: nothing to reach
	}
	fd, err := openIn(root, dir, unix.O_PATH|unix.O_DIRECTORY)
	if err != nil {
		return ""
	}
	var got unix.Stat_t
	err = unix.Fstat(fd, &got)
	unix.Close(fd)
	if err != nil || got.Dev != host.Dev || got.Ino != host.Ino {
		return ""
	}
	fault := "the host's " + dir + " is visible"
	for _, s := range ResolverSockets {
		if !strings.HasPrefix(s.Path, dir+"/") {
			continue
		}
		if sameFile(root, s.Path) {
			fault += fmt.Sprintf(" (%s's socket %s can be reached)", s.Daemon, s.Path)
		} else {
			fault += fmt.Sprintf(" (a socket %s makes there would be reached)", s.Daemon)
		}
	}
	return fault
}

// sameFile reports whether path inside root is the host's file at path.
func sameFile(root int, path string) bool {
	var host, got unix.Stat_t
	if unix.Stat(path, &host) != nil {
		return false
	}
	fd, err := openIn(root, path, unix.O_PATH)
	if err != nil {
		return false
	}
	defer unix.Close(fd)
	return unix.Fstat(fd, &got) == nil && got.Dev == host.Dev && got.Ino == host.Ino
}

// HostResolverSockets returns the entries of ResolverSockets whose socket exists on the host
// now (in the calling thread's mount namespace).
func HostResolverSockets() []ResolverSocket {
	var out []ResolverSocket
	for _, s := range ResolverSockets {
		var st unix.Stat_t
		if unix.Stat(s.Path, &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFSOCK {
			out = append(out, s)
		}
	}
	return out
}
