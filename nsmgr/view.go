package nsmgr

import (
	"fmt"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/wgns/wgns/internal/osthread"
)

// Viewer makes and keeps a view of the file system that every program run in one network
// namespace shares (package dnsbind's Entry: the DNS view). Exec makes the view once, in a
// mount namespace of its own (made as without a Viewer: "/" a recursive slave, a /sys of the
// network namespace), and has it kept before any program runs there; each later run starts
// from a copy of that namespace (a setns and an unshare) instead of making the view again
// (some thirty system calls). Every run gets a copy, never the kept namespace itself, so that
// nothing a program changes in its mounts reaches the next one.
type Viewer interface {
	// Key identifies the view that Make would make now, for the calling thread's network
	// namespace; "" means that none may be kept. An error fails Exec.
	Key() (string, error)
	// Open returns a descriptor of the mount namespace kept for key, or -1 if there is none.
	Open(key string) int
	// Make puts the view in place in the calling thread's mount namespace, which is new.
	Make() error
	// Made returns the key of the view in place in the calling thread's mount namespace.
	Made() (string, error)
	// Keep keeps the mount namespace open as mntns as the view of key (a bind mount of it in
	// this process's mount namespace). It runs on a thread in this process's own mount
	// namespace (and, under ExecOptions.InInit, maybe in the network namespace entered).
	// A view that cannot be kept costs only speed: Exec ignores the error (the tests look for
	// the kept view itself).
	Keep(key string, mntns int) error
}

// enterView puts v's view in place for the calling thread (locked, already in the network
// namespace name): a copy of the kept mount namespace when there is one for v's key, or else
// a new mount namespace in which v makes the view, kept for later runs and then copied.
func enterView(name string, v Viewer) error {
	key, err := v.Key()
	if err != nil {
		return err
	}
	if key != "" {
		if fd := v.Open(key); fd >= 0 {
			entered, err := enterCopy(fd)
			unix.Close(fd)
			if entered || err != nil {
				return err
			}
		}
	}
	home, homeErr := mntnsID()
	// Keep runs on a thread the runtime makes. With the calling goroutine locked, that thread
	// comes from the template thread, which this starts, if it was not running, while the
	// calling thread is still in this process's mount namespace (see ExecOptions.InInit).
	runtime.LockOSThread()
	if act, err := newMounts(name); err != nil {
		return fmt.Errorf("%s: %w", act, err)
	}
	if err := v.Make(); err != nil {
		return err
	}
	if key == "" {
		return nil
	}
	if made, err := v.Made(); err != nil || made != key {
		return nil // changed while it was made: this run uses it, no later one
	}
	if homeErr == nil {
		if ok, err := newerThan(home); err != nil || !ok {
			return err
		}
	}
	fd, err := unix.Open("/proc/thread-self/ns/mnt", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil
	}
	osthread.Disposable(func() {
		// A thread in this process's own mount namespace, where the view is kept; it
		// changes nothing of its own.
		v.Keep(key, fd)
		unix.Close(fd)
		runtime.UnlockOSThread()
	})
	// The program runs in a copy, not in the namespace kept.
	if err := unix.Unshare(unix.CLONE_NEWNS); err != nil {
		return fmt.Errorf("unsharing the mount namespace: %w", err)
	}
	return nil
}

// nsGetMntnsID is the ioctl NS_GET_MNTNS_ID (Linux 6.8): the ID of a mount namespace.
const nsGetMntnsID = 0x8008b705

// mntnsID returns the ID of the calling thread's mount namespace.
func mntnsID() (uint64, error) {
	fd, err := unix.Open("/proc/thread-self/ns/mnt", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, err
	}
	defer unix.Close(fd)
	var id uint64
	if _, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), nsGetMntnsID, uintptr(unsafe.Pointer(&id))); e != 0 {
		return 0, e
	}
	return id, nil
}

// newerThan makes sure that the calling thread's mount namespace has an ID above home, the ID of
// the namespace that is to keep it: the kernel refuses to bind a mount namespace's file in one
// whose ID is not below it (a bound namespace could otherwise hold itself alive). IDs are handed
// out from per-CPU batches, so a namespace made after another on a different CPU can have the
// lower ID. When it does, newerThan moves the thread to each other CPU it may run on and makes a
// copy of its namespace there (the view is in place and no program has run in it yet), until a
// copy has an ID above home; then it gives the thread back its CPUs. It reports whether one
// did. An error means the thread's namespace is not the one it was, and must not be used.
func newerThan(home uint64) (bool, error) {
	id, err := mntnsID()
	if err != nil || id > home {
		return err == nil, nil
	}
	var cpus unix.CPUSet
	if err := unix.SchedGetaffinity(0, &cpus); err != nil {
		return false, nil
	}
	defer unix.SchedSetaffinity(0, &cpus)
	for cpu := 0; cpu < len(cpus)*64; cpu++ {
		if !cpus.IsSet(cpu) {
			continue
		}
		var one unix.CPUSet
		one.Set(cpu)
		if unix.SchedSetaffinity(0, &one) != nil {
			continue
		}
		if err := unix.Unshare(unix.CLONE_NEWNS); err != nil {
			return false, fmt.Errorf("unsharing the mount namespace: %w", err)
		}
		if id, err := mntnsID(); err == nil && id > home {
			return true, nil
		}
	}
	return false, nil
}

// enterCopy moves the calling thread into a copy of the mount namespace open as fd, keeping its
// working directory by path (setns makes it the namespace's root). It reports whether it did;
// when it did not and there is no error, the thread is in the mount namespace it was in. An
// error means the thread is in neither and must not run a program.
func enterCopy(fd int) (bool, error) {
	wd, err := unix.Getwd()
	if err != nil {
		wd = "/"
	}
	// setns into a mount namespace wants a file system context that no other thread shares.
	if err := unix.Unshare(unix.CLONE_FS); err != nil {
		return false, nil
	}
	if err := unix.Setns(fd, unix.CLONE_NEWNS); err != nil {
		return false, nil
	}
	if err := unix.Unshare(unix.CLONE_NEWNS); err != nil {
		return false, fmt.Errorf("unsharing the mount namespace: %w", err)
	}
	if unix.Chdir(wd) != nil {
		unix.Chdir("/")
	}
	return true, nil
}
