package nsmgr

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// Exit statuses of a program that runs another one, as env(1), sudo and shells use them.
const (
	codeFailed        = 125 // the runner itself failed
	codeNotExecutable = 126 // the command was found but could not be executed
	codeNotFound      = 127 // the command was not found
)

// Credential is the user and groups to run a program as.
type Credential struct {
	UID, GID uint32
	Groups   []uint32 // the complete list of supplementary groups; empty means none
}

// ExecOptions says what Exec runs and how.
type ExecOptions struct {
	// Path is the executable, already resolved (see LookPath). A relative Path is relative to
	// Dir if Dir is set.
	Path string
	// Argv is the argument list, Argv[0] included; nil means []string{Path}.
	Argv []string
	// Env is the complete environment of the program; nil means this process's environment.
	Env []string
	// Dir is the working directory of the program, entered after the credential switch (so as
	// the new user); if that fails, Exec fails. "" keeps the current one.
	Dir string
	// Mounts, if set, runs on Exec's thread after the switch into the network namespace and
	// into a fresh mount namespace of the thread's own, with "/" made a recursive slave and a
	// fresh /sys mounted; it puts the namespace's DNS view in place (package dnsbind provides
	// it). It must do its work on the calling goroutine: neither start goroutines for it nor
	// unlock the thread.
	Mounts func() error
	// Cred, if set, is the user and groups to run the program as; nil keeps them.
	Cred *Credential
	// NoNewPrivs sets no_new_privs, so that the program and its children cannot gain
	// privileges through set-user-ID files or file capabilities.
	NoNewPrivs bool
	// Final says the caller exits as soon as Exec fails: Exec then runs on the calling
	// goroutine, locking it to its thread for good, instead of starting a thread of its own.
	// It saves `wgns exec` a thread start; a caller that goes on after a failure must not set it.
	Final bool
}

// ExecError is the error of Exec and LookPath. Code is the exit status a runner of programs
// should use: 127 if the command was not found, 126 if it was found but could not be executed
// (permissions, a directory, a bad format), 125 for any other failure.
type ExecError struct {
	Code int
	Err  error
}

// Error returns the text of Err.
func (e *ExecError) Error() string { return e.Err.Error() }

// Unwrap returns Err.
func (e *ExecError) Unwrap() error { return e.Err }

// Exec replaces this process with the program opts.Path, running inside the named network
// namespace as `ip netns exec` would. On a goroutine locked to a thread that is never unlocked
// (and is not the main thread, so that a failure leaves nothing behind), it enters the namespace
// (setns), gives the thread a mount namespace of its own (unshare(CLONE_NEWNS)) with "/" a
// recursive slave so that nothing propagates back, mounts a /sys that describes the namespace,
// runs opts.Mounts, marks every file descriptor above 2 close-on-exec, switches credentials
// (supplementary groups, then group, then user, for every thread of the process), sets
// no_new_privs if asked, changes directory, and calls execve from that thread: the new program
// keeps the thread's namespaces and this process's PID.
//
// The calling goroutine's thread is never switched. Exec returns only on failure, with an
// *ExecError; by then credentials may already have been dropped for the whole process, so the
// caller should only report the error and exit with its Code.
func Exec(name string, opts ExecOptions) error {
	if opts.Path == "" {
		return &ExecError{codeNotFound, errors.New("running a command in a network namespace: no command given")}
	}
	if err := ValidateName(name); err != nil {
		return &ExecError{codeFailed, fmt.Errorf("running %q in a network namespace: %w", opts.Path, err)}
	}
	if opts.Argv == nil {
		opts.Argv = []string{opts.Path}
	}
	if opts.Env == nil {
		opts.Env = syscall.Environ()
	}
	if opts.Final {
		runtime.LockOSThread() // never unlocked: the caller exits if this returns
		return execLocked(name, &opts)
	}
	var err error
	onDisposableThread(func() {
		// Never unlocked: this thread either becomes the program or ends with this goroutine.
		if e := execLocked(name, &opts); e != nil {
			err = e
		}
	})
	return err
}

// execLocked does Exec's work on a thread that is locked and never unlocked. It returns only on
// failure.
func execLocked(name string, opts *ExecOptions) *ExecError {
	fail := func(act string, err error) *ExecError {
		return &ExecError{codeFailed, fmt.Errorf("running %q in network namespace %q: %s: %w", opts.Path, name, act, err)}
	}
	path := Path(name)
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fail("opening "+path, err)
	}
	err = unix.Setns(fd, unix.CLONE_NEWNET)
	unix.Close(fd)
	if err == unix.EINVAL {
		return fail("entering "+path, errors.New("not a network namespace"))
	}
	if err != nil {
		return fail("entering "+path, err)
	}
	if err := unix.Unshare(unix.CLONE_NEWNS); err != nil {
		return fail("unsharing the mount namespace", err)
	}
	if err := unix.Mount("", "/", "none", unix.MS_SLAVE|unix.MS_REC, ""); err != nil {
		return fail("making / a recursive slave mount", err)
	}
	if err := remountSys(name); err != nil {
		return fail("mounting /sys", err)
	}
	if opts.Mounts != nil {
		if err := opts.Mounts(); err != nil {
			return fail("setting up mounts", err)
		}
	}
	if err := cloexecAbove2(); err != nil {
		return fail("marking file descriptors close-on-exec", err)
	}
	if c := opts.Cred; c != nil {
		groups := make([]int, len(c.Groups))
		for i, g := range c.Groups {
			groups[i] = int(g)
		}
		if err := syscall.Setgroups(groups); err != nil {
			return fail(fmt.Sprintf("setting supplementary groups %v", c.Groups), err)
		}
		if err := syscall.Setgid(int(c.GID)); err != nil {
			return fail(fmt.Sprintf("setting group ID %d", c.GID), err)
		}
		if err := syscall.Setuid(int(c.UID)); err != nil {
			return fail(fmt.Sprintf("setting user ID %d", c.UID), err)
		}
	}
	if opts.NoNewPrivs {
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			return fail("setting no_new_privs", err)
		}
	}
	if opts.Dir != "" {
		// unix.Chdir, not os.Chdir: only this thread (which has its own working directory
		// since the unshare) changes directory.
		if err := unix.Chdir(opts.Dir); err != nil {
			return fail("changing directory to "+opts.Dir, err)
		}
	}
	err = syscall.Exec(opts.Path, opts.Argv, opts.Env)
	return &ExecError{failureCode(err), fmt.Errorf("executing %q in network namespace %q: %w", opts.Path, name, err)}
}

// remountSys replaces /sys with a sysfs of the thread's network namespace, as iproute2 does: a
// read-only /sys that cannot be unmounted is covered by a read-only one.
func remountSys(name string) error {
	flags := uintptr(unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC)
	if err := unix.Unmount("/sys", unix.MNT_DETACH); err != nil {
		var st unix.Statfs_t
		if unix.Statfs("/sys", &st) == nil && st.Flags&unix.ST_RDONLY != 0 {
			flags |= unix.MS_RDONLY
		}
	}
	return unix.Mount(name, "/sys", "sysfs", flags, "")
}

// cloexecAbove2 marks every file descriptor above 2 close-on-exec: with close_range, or on
// kernels without it (before 5.11) one by one from /proc/self/fd.
func cloexecAbove2() error {
	_, _, errno := unix.Syscall(unix.SYS_CLOSE_RANGE, 3, uintptr(^uint32(0)), unix.CLOSE_RANGE_CLOEXEC)
	if errno == 0 {
		return nil
	}
	if errno != unix.ENOSYS && errno != unix.EINVAL {
		return errno
	}
	d, err := os.Open("/proc/self/fd")
	if err != nil {
		return err
	}
	defer d.Close() // opened close-on-exec
	names, err := d.Readdirnames(-1)
	if err != nil {
		return err
	}
	for _, n := range names {
		fd, err := strconv.Atoi(n)
		if err != nil || fd <= 2 || fd == int(d.Fd()) {
			continue
		}
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETFD, unix.FD_CLOEXEC); err != nil && err != unix.EBADF {
			return err
		}
	}
	return nil
}

// failureCode returns the exit status for a command that execve or LookPath rejected: 127 if
// the file (or, for execve, its interpreter) does not exist, else 126.
func failureCode(err error) int {
	if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
		return codeNotFound
	}
	return codeNotExecutable
}

// LookPath finds the executable for file as exec.LookPath does, but searching the directories of
// path (a PATH value) rather than this process's PATH. A file containing a slash is not searched
// for; it is made absolute against the current directory. Entries of path that are not absolute
// (including empty ones, which mean the current directory to a shell) are skipped, as sudo's
// ignore_dot does. The error is an *ExecError: Code 127 if nothing was found, 126 if only files
// that cannot be executed were.
func LookPath(file, path string) (string, error) {
	if file == "" {
		return "", &ExecError{codeNotFound, fmt.Errorf("finding a command: no command given: %w", unix.ENOENT)}
	}
	if strings.Contains(file, "/") {
		abs, err := filepath.Abs(file)
		if err != nil {
			return "", &ExecError{codeFailed, fmt.Errorf("finding command %q: %w", file, err)}
		}
		if err := checkExecutable(abs); err != nil {
			return "", &ExecError{failureCode(err), fmt.Errorf("finding command %q: %s: %w", file, abs, err)}
		}
		return abs, nil
	}
	var denied error
	for _, dir := range strings.Split(path, ":") {
		if !filepath.IsAbs(dir) {
			continue
		}
		p := filepath.Join(dir, file)
		err := checkExecutable(p)
		if err == nil {
			return p, nil
		}
		if denied == nil && failureCode(err) != codeNotFound {
			denied = fmt.Errorf("%s: %w", p, err)
		}
	}
	if denied != nil {
		return "", &ExecError{codeNotExecutable, fmt.Errorf("finding command %q in PATH: %w", file, denied)}
	}
	return "", &ExecError{codeNotFound, fmt.Errorf("finding command %q in PATH: %w", file, unix.ENOENT)}
}

// checkExecutable returns nil if p is a file (not a directory) that this process could execute.
func checkExecutable(p string) error {
	var st unix.Stat_t
	if err := unix.Stat(p, &st); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		return unix.EISDIR
	}
	return unix.Faccessat(unix.AT_FDCWD, p, unix.X_OK, unix.AT_EACCESS)
}
