package nsmgr

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/wgns/wgns/internal/flock"
	"github.com/wgns/wgns/internal/osthread"
)

// Create makes a new network namespace named name, as `ip netns add` does: it makes RunDir (mode
// 0755) a shared mount (see makeRunDirShared), so that later unmounts propagate to other mount
// namespaces; creates the empty file Path(name); and bind-mounts onto it a new namespace made by
// unshare on a thread of its own (never the main thread), which then exits instead of returning
// to the Go runtime. On failure nothing is left behind. If the file already exists, the error
// wraps fs.ErrExist. No lock that another user can take delays it for more than
// iprouteLockWait.
//
// It returns an open handle to the new namespace; the caller must Close it. The calling
// goroutine's thread stays where it was.
func Create(name string) (netns.NsHandle, error) {
	if err := ValidateName(name); err != nil {
		return netns.None(), fmt.Errorf("creating network namespace: %w", err)
	}
	if err := makeRunDirShared(); err != nil {
		return netns.None(), fmt.Errorf("creating network namespace %q: %w", name, err)
	}
	path := Path(name)
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CREAT|unix.O_EXCL|unix.O_CLOEXEC, 0)
	if err != nil {
		return netns.None(), fmt.Errorf("creating network namespace %q: %s: %w", name, path, err)
	}
	unix.Close(fd)

	var h netns.NsHandle
	osthread.Disposable(func() {
		// Never unlocked: once unshared, this thread is in the new namespace, so it must end
		// with this goroutine rather than run anything else.
		h, err = unshareAndMount(path)
	})
	if err != nil {
		unix.Unlink(path)
		return netns.None(), fmt.Errorf("creating network namespace %q: %w", name, err)
	}
	return h, nil
}

// unshareAndMount moves the calling thread, which must be locked and never unlocked, into a new
// network namespace, bind-mounts that namespace onto path and returns a handle to it.
func unshareAndMount(path string) (netns.NsHandle, error) {
	if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
		return netns.None(), fmt.Errorf("unsharing the network namespace: %w", err)
	}
	self := "/proc/self/task/" + strconv.Itoa(unix.Gettid()) + "/ns/net"
	fd, err := unix.Open(self, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return netns.None(), fmt.Errorf("opening %s: %w", self, err)
	}
	if err := unix.Mount(self, path, "none", unix.MS_BIND, ""); err != nil {
		unix.Close(fd)
		return netns.None(), fmt.Errorf("bind-mounting %s onto %s: %w", self, path, err)
	}
	return netns.NsHandle(fd), nil
}

// runDirLock serialises wgns processes that make RunDir a mount point. Only root can open it,
// so no other user can hold it.
const runDirLock = "/run/wgns/netns.lock"

// Bounds of the waits of makeRunDirShared: for another wgns (runDirLock), and for iproute2's
// lock on RunDir, which any user can hold.
const (
	runDirLockWait  = 10 * time.Second
	iprouteLockWait = 2 * time.Second
)

// makeRunDirShared creates RunDir and makes it a shared mount point, binding it onto itself
// first if it is not a mount point, as iproute2 does (ip/ipnetns.c netns_add, iproute2 6.1).
//
// iproute2 does all of it under an exclusive flock on RunDir itself, so that concurrent
// `ip netns add`s do not stack bind mounts (Debian bug 949235). RunDir is open to everyone, so
// any user can hold that lock (`flock -s /run/netns sleep infinity`), and a blocking flock would
// wait for as long as they like. wgns therefore locks only for the one step that needs it:
// making RunDir shared again when it is already a mount point (always so after the first
// namespace of a boot) is idempotent and stacks nothing, so it is done without a lock. Only
// when RunDir is not a mount point yet does wgns take runDirLock (which serialises wgns, bounded
// by runDirLockWait, and names the holder if that runs out), then iproute2's lock on RunDir for
// at most iprouteLockWait: an `ip netns add` holds it for microseconds, so waiting longer than
// that means a user holds it, and wgns goes on without it rather than stall. At worst, an
// `ip netns add` doing the same step at the same instant adds a second bind mount.
func makeRunDirShared() error {
	if err := unix.Mkdir(RunDir, 0o755); err != nil && err != unix.EEXIST {
		return fmt.Errorf("creating %s: %w", RunDir, err)
	}
	err := unix.Mount("", RunDir, "none", unix.MS_SHARED|unix.MS_REC, "")
	if err != unix.EINVAL {
		if err != nil {
			return fmt.Errorf("making %s a shared mount: %w", RunDir, err)
		}
		return nil
	}

	// Not a mount point yet.
	if err := os.MkdirAll(filepath.Dir(runDirLock), 0o700); err != nil {
		return err
	}
	own, err := flock.OpenPrivate(runDirLock)
	if err != nil {
		return err
	}
	defer unix.Close(own) // closing releases the lock
	if err := flock.Lock(own, runDirLock, unix.LOCK_EX, runDirLockWait); err != nil {
		return err
	}
	if ip, err := unix.Open(RunDir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0); err == nil {
		defer unix.Close(ip)
		// Held longer than an `ip netns add` would hold it: go on without it.
		_ = flock.Lock(ip, RunDir, unix.LOCK_EX, iprouteLockWait)
	}
	for bound := false; ; bound = true {
		err := unix.Mount("", RunDir, "none", unix.MS_SHARED|unix.MS_REC, "")
		if err == nil {
			return nil
		}
		if err != unix.EINVAL || bound {
			return fmt.Errorf("making %s a shared mount: %w", RunDir, err)
		}
		// Not a mount point yet: make it one.
		if err := unix.Mount(RunDir, RunDir, "none", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return fmt.Errorf("bind-mounting %s onto itself: %w", RunDir, err)
		}
	}
}

// Open returns a handle to the named network namespace; the caller must Close it. If there is no
// such file the error wraps fs.ErrNotExist; if the file is not a network namespace (a plain file
// left behind, or another kind of namespace), the error says "not a network namespace".
func Open(name string) (netns.NsHandle, error) {
	if err := ValidateName(name); err != nil {
		return netns.None(), fmt.Errorf("opening network namespace: %w", err)
	}
	return openNetNS(Path(name), name)
}

// OpenPath returns a handle to the network namespace at path, one wgns did not make (a
// container's, which a CNI runtime names by /var/run/netns/..., /proc/PID/ns/net, ...); the
// caller must Close it. If there is no such file the error wraps fs.ErrNotExist; if the file is
// not a network namespace, the error says "not a network namespace".
func OpenPath(path string) (netns.NsHandle, error) { return openNetNS(path, "") }

// openNetNS opens path and checks that it is a network namespace. Its errors name the namespace
// by name, or by path when name is "" (and by both when the file is not a network namespace).
func openNetNS(path, name string) (netns.NsHandle, error) {
	what := path
	if name != "" {
		what = strconv.Quote(name)
	}
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return netns.None(), fmt.Errorf("opening network namespace %s: %w", what, err)
	}
	isNet, err := isNetNS(fd)
	if err == nil && !isNet {
		err = errors.New("not a network namespace")
	}
	if err != nil {
		unix.Close(fd)
		if name != "" {
			what += ": " + path
		}
		return netns.None(), fmt.Errorf("opening network namespace %s: %w", what, err)
	}
	return netns.NsHandle(fd), nil
}

// Self returns the ID of the network namespace the calling thread is in (for wgns, the host's:
// it never runs elsewhere outside Do).
func Self() (ID, error) {
	var st unix.Stat_t
	p := fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid())
	if err := unix.Stat(p, &st); err != nil {
		return ID{}, fmt.Errorf("identifying this process's network namespace: %w", err)
	}
	return ID{Dev: st.Dev, Ino: st.Ino}, nil
}

// isNetNS reports whether fd refers to a network namespace: a file of nsfs (not, say, a plain
// file left behind by a crash) whose namespace type is CLONE_NEWNET.
func isNetNS(fd int) (bool, error) {
	var st unix.Statfs_t
	if err := unix.Fstatfs(fd, &st); err != nil {
		return false, err
	}
	if st.Type != unix.NSFS_MAGIC {
		return false, nil
	}
	t, err := unix.IoctlRetInt(fd, unix.NS_GET_NSTYPE)
	if err != nil {
		return false, err
	}
	return t == unix.CLONE_NEWNET, nil
}

// Delete removes the named network namespace as `ip netns delete` does: it detaches the mount
// and removes the file. A file with nothing mounted on it is just removed. If there is no such
// file the error wraps fs.ErrNotExist. The namespace itself lives on while processes or open
// handles still use it.
func Delete(name string) error {
	if err := ValidateName(name); err != nil {
		return fmt.Errorf("deleting network namespace: %w", err)
	}
	path := Path(name)
	if err := unix.Unmount(path, unix.MNT_DETACH); err != nil && err != unix.EINVAL {
		return fmt.Errorf("deleting network namespace %q: unmounting %s: %w", name, path, err)
	}
	if err := unix.Unlink(path); err != nil {
		return fmt.Errorf("deleting network namespace %q: removing %s: %w", name, path, err)
	}
	return nil
}

// ID identifies a namespace: the device and inode of its nsfs file. Two handles, paths or
// /proc/PID/ns/net links refer to the same namespace exactly when their IDs are equal.
type ID struct{ Dev, Ino uint64 }

// IDOf returns the ID of the namespace h refers to.
func IDOf(h netns.NsHandle) (ID, error) {
	var st unix.Stat_t
	if err := unix.Fstat(int(h), &st); err != nil {
		return ID{}, fmt.Errorf("identifying network namespace handle %d: %w", int(h), err)
	}
	return ID{Dev: st.Dev, Ino: st.Ino}, nil
}

// IDByName returns the ID of the named network namespace, with the errors of Open.
func IDByName(name string) (ID, error) {
	h, err := Open(name)
	if err != nil {
		return ID{}, err
	}
	defer h.Close()
	return IDOf(h)
}

// OpenHeld returns a handle to the network namespace id through a descriptor that process pid
// holds open: a namespace whose file was removed (`ip netns delete`) lives on while something
// holds it, and this is the way back to it. The caller must Close the handle. If pid holds no
// descriptor of that namespace, the error wraps fs.ErrNotExist.
func OpenHeld(pid int, id ID) (netns.NsHandle, error) {
	dir := "/proc/" + strconv.Itoa(pid) + "/fd"
	ents, err := os.ReadDir(dir)
	if err != nil {
		return netns.None(), fmt.Errorf("looking for network namespace %d:%d among the descriptors of process %d: %w", id.Dev, id.Ino, pid, err)
	}
	for _, e := range ents {
		// stat follows the link without opening what it leads to (a pipe, a device). The link's
		// text is no guide: a descriptor opened through /run/netns/NAME reads "/" once the
		// name's mount is gone.
		p := dir + "/" + e.Name()
		var st unix.Stat_t
		if err := unix.Stat(p, &st); err != nil || st.Dev != id.Dev || st.Ino != id.Ino {
			continue
		}
		fd, err := unix.Open(p, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			continue // closed meanwhile
		}
		h := netns.NsHandle(fd)
		if got, err := IDOf(h); err == nil && got == id {
			if ok, err := isNetNS(fd); err == nil && ok {
				return h, nil
			}
		}
		h.Close()
	}
	return netns.None(), fmt.Errorf("process %d holds no descriptor of network namespace %d:%d: %w", pid, id.Dev, id.Ino, fs.ErrNotExist)
}

// Attach makes Path(name) name the network namespace h refers to, as `ip netns attach` does,
// with RunDir prepared as Create prepares it. If the file exists the error wraps fs.ErrExist; on
// failure nothing is left behind.
func Attach(name string, h netns.NsHandle) error {
	if err := ValidateName(name); err != nil {
		return fmt.Errorf("attaching network namespace: %w", err)
	}
	if err := makeRunDirShared(); err != nil {
		return fmt.Errorf("attaching network namespace %q: %w", name, err)
	}
	path := Path(name)
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CREAT|unix.O_EXCL|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("attaching network namespace %q: %s: %w", name, path, err)
	}
	unix.Close(fd)
	src := "/proc/self/fd/" + strconv.Itoa(int(h))
	if err := unix.Mount(src, path, "none", unix.MS_BIND, ""); err != nil {
		unix.Unlink(path)
		return fmt.Errorf("attaching network namespace %q: bind-mounting it onto %s: %w", name, path, err)
	}
	return nil
}
