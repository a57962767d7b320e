// Package flock takes flock(2) locks with a bounded wait, and names the processes holding a
// lock it could not get (from /proc/locks).
//
// A blocking flock waits for as long as the holder keeps the lock, and anyone who can open a
// file can lock it: wgns must never block on a lock that a user can take. Its locks are files
// no unprivileged process can open (see OpenPrivate), and every wait is bounded by Lock.
package flock

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// ErrTimeout is wrapped by the error of Lock when the lock was not free within its bound.
var ErrTimeout = errors.New("lock not free in time")

// ErrUnsafe is wrapped by the error of OpenPrivate for a lock file that someone else could
// open: not a regular file, not owned by the caller, or accessible to group or others.
var ErrUnsafe = errors.New("lock file not private")

// OpenPrivate opens (creating it with mode 0600 if needed) the lock file at path, without
// following a symlink, and checks through the descriptor that it is a regular file owned by the
// calling user (root, for wgns) that neither group nor others may access: so that no other
// user can open it, and so none can hold its lock. The directory must exist; the caller closes
// the descriptor, which also releases any lock taken on it.
func OpenPrivate(path string) (int, error) {
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_CREAT|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return -1, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return -1, &fs.PathError{Op: "fstat", Path: path, Err: err}
	}
	switch {
	case st.Mode&unix.S_IFMT != unix.S_IFREG:
		err = fmt.Errorf("%s is not a regular file: %w", path, ErrUnsafe)
	case int(st.Uid) != os.Geteuid():
		err = fmt.Errorf("%s is owned by uid %d, not %d: %w", path, st.Uid, os.Geteuid(), ErrUnsafe)
	case st.Mode&0o077 != 0:
		err = fmt.Errorf("%s is accessible to group or others (mode %04o): %w", path, st.Mode&0o7777, ErrUnsafe)
	}
	if err != nil {
		unix.Close(fd)
		return -1, err
	}
	return fd, nil
}

// Lock takes a lock of kind how (unix.LOCK_EX or unix.LOCK_SH) on the open file fd, which is at
// path, waiting at most timeout for it. It polls with LOCK_NB rather than blocking, so that the
// wait ends when its bound does. When it times out, the error wraps ErrTimeout and names the
// processes /proc/locks shows holding a lock on the file, when it shows any.
func Lock(fd int, path string, how int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	pause := time.Millisecond
	for {
		err := unix.Flock(fd, how|unix.LOCK_NB)
		switch {
		case err == nil:
			return nil
		case err == unix.EINTR:
			continue
		case err != unix.EWOULDBLOCK:
			return &fs.PathError{Op: "flock", Path: path, Err: err}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("locking %s: %w: %s", path, ErrTimeout, heldBy(fd, timeout))
		}
		time.Sleep(pause)
		pause = min(2*pause, 50*time.Millisecond)
	}
}

// heldBy says who holds a lock on the file open as fd, for an error after waiting d.
func heldBy(fd int, d time.Duration) string {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return fmt.Sprintf("held by another process for more than %v", d)
	}
	pids := Holders(st.Dev, st.Ino)
	if len(pids) == 0 {
		return fmt.Sprintf("held by another process for more than %v", d)
	}
	who := make([]string, len(pids))
	for i, pid := range pids {
		who[i] = Describe(pid)
	}
	return fmt.Sprintf("held by %s for more than %v", strings.Join(who, ", "), d)
}

// Holders returns the PIDs that /proc/locks lists as holding a flock or POSIX lock on the file
// with device dev and inode ino (waiters are left out), or none if it cannot be read.
func Holders(dev, ino uint64) []int {
	f, err := os.Open("/proc/locks")
	if err != nil {
		return nil
	}
	defer f.Close()
	return parseHolders(f, dev, ino)
}

// parseHolders reads /proc/locks text: lines like
//
//	1: FLOCK  ADVISORY  WRITE 4711 00:1a:12345 0 EOF
//	1: -> FLOCK  ADVISORY  WRITE 4712 00:1a:12345 0 EOF   (a waiter)
//
// whose device is MAJOR:MINOR in hex and inode in decimal.
func parseHolders(r io.Reader, dev, ino uint64) []int {
	want := fmt.Sprintf("%02x:%02x:%d", unix.Major(dev), unix.Minor(dev), ino)
	var pids []int
	s := bufio.NewScanner(r)
	for s.Scan() {
		f := strings.Fields(s.Text())
		if len(f) < 6 || f[1] == "->" {
			continue
		}
		if f[5] != want {
			continue
		}
		pid, err := strconv.Atoi(f[4])
		if err != nil || pid <= 0 {
			continue
		}
		pids = append(pids, pid)
	}
	return pids
}

// Describe names a process for a message: "PID 4711 (flock, uid 1000)", or "PID 4711" when
// /proc tells nothing more.
func Describe(pid int) string {
	dir := "/proc/" + strconv.Itoa(pid)
	comm, err := os.ReadFile(dir + "/comm")
	if err != nil {
		return "PID " + strconv.Itoa(pid)
	}
	desc := fmt.Sprintf("PID %d (%s", pid, strings.TrimSuffix(string(comm), "\n"))
	if status, err := os.ReadFile(dir + "/status"); err == nil {
		for line := range strings.Lines(string(status)) {
			if v, ok := strings.CutPrefix(line, "Uid:"); ok {
				if f := strings.Fields(v); len(f) > 0 {
					desc += ", uid " + f[0]
				}
				break
			}
		}
	}
	return desc + ")"
}
