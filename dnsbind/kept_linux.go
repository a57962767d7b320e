package dnsbind

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/wgns/wgns/internal/flock"
	"github.com/wgns/wgns/internal/testhook"
)

// keptDir holds the mount namespaces in which Enter made a namespace's view, one per network
// namespace and state of the view, each bound on a file NAME@KEY (see Entry), for nsmgr's Exec
// to start later runs from. It is a mount of its own with private propagation: a bound mount
// namespace must not propagate into another mount namespace, which could then hold it (and a
// namespace it was made from) alive, or into itself, which the kernel refuses.
const keptDir = "/run/wgns/views"

// keptLock serializes keeping and dropping.
const keptLock = keptDir + "/lock"

// nsfsMagic is the file system type of a namespace file (NSFS_MAGIC).
const nsfsMagic = 0x6e736673

// Entry is the DNS view of the namespace Name as nsmgr's Exec makes and keeps it (its Viewer):
// made by Enter in a mount namespace of its own, and kept in keptDir until the view changes,
// the network namespace goes, or Remove drops it. Its key names the network namespace by its
// cookie (never reused, unlike an inode number) and every file and directory the view binds
// by device and inode, so a kept view is used only while it is still what Enter would make.
type Entry struct{ Name string }

// Key checks the namespace's view files as Enter does (by their status: Enter opens them), has
// the link farms brought up to date with the host's /etc and /run if either's stamp differs,
// and returns the key of the view Enter would make now in the calling thread's network
// namespace. It returns "" on a kernel that has no network namespace cookie. It runs before
// every program, kept view or not: it makes a dozen system calls.
func (e Entry) Key() (string, error) {
	if err := checkName(e.Name); err != nil {
		return "", err
	}
	fail := func(err error) (string, error) {
		return "", fmt.Errorf("entering the DNS view of %q: %w", e.Name, err)
	}
	dir := EtcDir + "/" + e.Name
	var dirSt unix.Stat_t
	var st [4]unix.Stat_t // the view files', then the farms'
	if err := lstatSafe(dir, &dirSt, unix.S_IFDIR); err != nil {
		return fail(err)
	}
	for i, n := range viewFiles {
		if err := lstatSafe(dir+"/"+n, &st[i], unix.S_IFREG); err != nil {
			return fail(err)
		}
	}
	current := true
	for i, f := range []*farm{&etcFarm, &runFarm} {
		stamp, err := f.stamp()
		if err != nil {
			return fail(err)
		}
		if lstatSafe(f.links, &st[2+i], unix.S_IFDIR) != nil || readStampAt(unix.AT_FDCWD, f.links+"/"+stampLink) != stamp {
			current = false
		}
	}
	if !current {
		etcFd, runFd, err := openLinks(false) // under the lock, and checked
		if err != nil {
			return fail(err)
		}
		errs := []error{unix.Fstat(etcFd, &st[2]), unix.Fstat(runFd, &st[3])}
		closeFds(etcFd, runFd)
		if err := errors.Join(errs...); err != nil {
			return fail(err)
		}
	}
	return key(st[:])
}

// lstatSafe gets the status of path, not following a symlink, into st and checks it as
// checkSafe does.
func lstatSafe(path string, st *unix.Stat_t, typ uint32) error {
	if err := unix.Lstat(path, st); err != nil {
		return openError(path, err)
	}
	return checkStat(path, st, typ)
}

// Made returns the key of the view in place in the calling thread's mount namespace, from the
// files there, as Key says it.
func (Entry) Made() (string, error) {
	paths := make([]string, 0, len(viewFiles)+2)
	for _, n := range viewFiles {
		paths = append(paths, "/etc/"+viewDir+"/"+n)
	}
	paths = append(paths, "/etc", "/run")
	st := make([]unix.Stat_t, len(paths))
	for i, p := range paths {
		if err := unix.Stat(p, &st[i]); err != nil {
			return "", fmt.Errorf("identifying the DNS view: %w", &fs.PathError{Op: "stat", Path: p, Err: err})
		}
	}
	return key(st)
}

// key says the cookie of the calling thread's network namespace, then the device and inode of
// each file whose status is in st, in a name that fits a file name; "" without a cookie.
func key(st []unix.Stat_t) (string, error) {
	cookie, err := netnsCookie()
	if err != nil {
		return "", nil
	}
	b := strconv.AppendUint(make([]byte, 0, 96), cookie, 16)
	for _, s := range st {
		b = appendID(append(b, '-'), s)
	}
	return string(b), nil
}

// appendID appends the device and inode of st, in hex, as a key says them.
func appendID(b []byte, st unix.Stat_t) []byte {
	b = strconv.AppendUint(b, st.Dev, 16)
	return strconv.AppendUint(append(b, '.'), st.Ino, 16)
}

// netnsCookie returns the cookie of the calling thread's network namespace.
func netnsCookie() (uint64, error) {
	s, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return 0, err
	}
	defer unix.Close(s)
	return unix.GetsockoptUint64(s, unix.SOL_SOCKET, unix.SO_NETNS_COOKIE)
}

// Make puts the view in place (Enter), and leaves out keptDir: no program in the namespace
// has any business with the kept views, and a kept view that held the others would hold them
// alive after Remove drops them.
func (e Entry) Make() error {
	if err := Enter(e.Name); err != nil {
		return err
	}
	// The host's /run is at /run/hostDir in the view (see Enter).
	inView := "/run/" + hostDir + strings.TrimPrefix(keptDir, "/run")
	if err := unix.Unmount(inView, unix.MNT_DETACH); err != nil && err != unix.EINVAL && err != unix.ENOENT {
		return fmt.Errorf("leaving the kept views out of the DNS view of %q: %w", e.Name, err)
	}
	return nil
}

// keptPath returns the file of the view of name kept for key.
func keptPath(name, key string) string { return keptDir + "/" + name + "@" + key }

// Open returns a descriptor of the mount namespace kept for key, or -1.
func (e Entry) Open(key string) int {
	fd, err := unix.Open(keptPath(e.Name, key), unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1
	}
	var st unix.Statfs_t
	if unix.Fstatfs(fd, &st) != nil || st.Type != nsfsMagic {
		unix.Close(fd)
		return -1
	}
	return fd
}

// Keep binds the mount namespace open as mntns on keptDir/NAME@KEY, if the view files are
// still the ones key names, and drops the views kept for the namespace's other keys. It does
// nothing when another wgns holds the lock: that one keeps a view now.
func (e Entry) Keep(key string, mntns int) error {
	testhook.Pause("keep") // a test build: the race with a rewrite, or a Remove, of the view
	if err := makeKeptDir(); err != nil {
		return err
	}
	lock, err := flock.OpenPrivate(keptLock)
	if err != nil {
		return err
	}
	defer unix.Close(lock)
	if err := unix.Flock(lock, unix.LOCK_EX|unix.LOCK_NB); err != nil {
		return nil
	}
	// Remove takes the lock after it removes the files: if it has, they are gone now.
	if !e.current(key) {
		return nil
	}
	path := keptPath(e.Name, key)
	if fd := e.Open(key); fd >= 0 {
		unix.Close(fd)
		return nil
	}
	if err := unix.Unlink(path); err != nil && err != unix.ENOENT { // a leftover of a crash
		return &fs.PathError{Op: "unlink", Path: path, Err: err}
	}
	fd, err := unix.Open(path, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return &fs.PathError{Op: "create", Path: path, Err: err}
	}
	unix.Close(fd)
	if err := unix.Mount("/proc/self/fd/"+strconv.Itoa(mntns), path, "", unix.MS_BIND, ""); err != nil {
		unix.Unlink(path)
		return fmt.Errorf("keeping the DNS view of %q on %s: %w", e.Name, path, err)
	}
	return dropKept(e.Name, path)
}

// current reports whether the view files of the namespace are still those key names.
func (e Entry) current(key string) bool {
	parts := strings.Split(key, "-")
	if len(parts) < 1+len(viewFiles) {
		return false
	}
	for i, n := range viewFiles {
		var st unix.Stat_t
		if unix.Lstat(EtcDir+"/"+e.Name+"/"+n, &st) != nil || string(appendID(nil, st)) != parts[1+i] {
			return false
		}
	}
	return true
}

// makeKeptDir makes keptDir, for root alone, a mount of its own with private propagation.
func makeKeptDir() error {
	if err := makeLinkRoot(); err != nil { // makes its parent
		return err
	}
	if err := unix.Mkdir(keptDir, 0o700); err != nil && err != unix.EEXIST {
		return &fs.PathError{Op: "mkdir", Path: keptDir, Err: err}
	}
	fd, err := openFarm(keptDir) // a directory of root's that only root can write to
	if err != nil {
		return err
	}
	unix.Close(fd)
	err = unix.Mount("", keptDir, "", unix.MS_PRIVATE, "")
	if err == unix.EINVAL { // not a mount point yet
		if err = unix.Mount(keptDir, keptDir, "", unix.MS_BIND, ""); err == nil {
			err = unix.Mount("", keptDir, "", unix.MS_PRIVATE, "")
		}
	}
	if err != nil {
		return fmt.Errorf("making %s a private mount: %w", keptDir, err)
	}
	return nil
}

// dropKept unmounts and removes the views kept for the namespace name, but for the file keep.
func dropKept(name, keep string) error {
	entries, err := os.ReadDir(keptDir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return err
	}
	var errs []error
	for _, d := range entries {
		path := keptDir + "/" + d.Name()
		if !strings.HasPrefix(d.Name(), name+"@") || path == keep {
			continue
		}
		if err := unix.Unmount(path, unix.MNT_DETACH|unix.UMOUNT_NOFOLLOW); err != nil && err != unix.EINVAL {
			errs = append(errs, &fs.PathError{Op: "unmount", Path: path, Err: err})
			continue
		}
		if err := unix.Unlink(path); err != nil && err != unix.ENOENT {
			errs = append(errs, &fs.PathError{Op: "unlink", Path: path, Err: err})
		}
	}
	return errors.Join(errs...)
}

// drop drops every view kept for the namespace name, under the lock.
func drop(name string) error {
	if _, err := os.Stat(keptDir); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	lock, err := flock.OpenPrivate(keptLock)
	if err != nil {
		return err
	}
	defer unix.Close(lock)
	if err := flock.Lock(lock, keptLock, unix.LOCK_EX, lockWait); err != nil {
		return err
	}
	if err := dropKept(name, ""); err != nil {
		return fmt.Errorf("dropping the kept DNS views of %q: %w", name, err)
	}
	return nil
}
