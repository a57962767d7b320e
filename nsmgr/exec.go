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

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/wgns/wgns/internal/envlist"
	"github.com/wgns/wgns/internal/osthread"
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

// ExecOptions says what Exec and Start run and how.
type ExecOptions struct {
	// Path is the executable. If empty, Argv[0] is looked up as LookPath does, in the PATH of
	// Env, on Exec's thread after the credential switch, so that what the lookup can see, and
	// the errors it gives, are those of the user the program runs as (a command in a directory
	// that user cannot search is "permission denied" whether it exists or not). A relative Path
	// is relative to Dir if Dir is set.
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
	// View, if set, is the part of the mounts that is the same for every program run in the
	// namespace (package dnsbind's Entry: the DNS view), which Exec makes once and keeps; see
	// Viewer. Mounts then runs after it, for what is particular to this run.
	View Viewer
	// Cred, if set, is the user and groups to run the program as; nil keeps them.
	Cred *Credential
	// Umask, if set, is the program's umask, set on Exec's thread after Mounts (the thread has
	// a file system context of its own from its mount namespace on, so this process's umask,
	// with which Mounts makes files, stays as it was); nil keeps this process's.
	Umask *uint32
	// NoNewPrivs sets no_new_privs, so that the program and its children cannot gain
	// privileges through set-user-ID files or file capabilities.
	NoNewPrivs bool
	// Check, if set, runs on Exec's thread once the program is found, as the user it runs as,
	// inside the namespaces, just before it is executed; path is the program's file. An error
	// stops the program from running: Exec fails with it (status 125). It is where a caller
	// refuses a program that would hand its work to a process outside the namespace (package
	// handoff). The same rules as for Mounts apply.
	Check func(path string) error
	// Final (Exec only) says the caller exits as soon as Exec fails: Exec then runs on the
	// calling goroutine, locking it to its thread for good, instead of starting a thread of its
	// own. It saves `wgns exec` a thread start; a caller that goes on after a failure must not
	// set it.
	Final bool
	// InInit (with Final) says the caller runs during the initialization of package main, when
	// the runtime keeps the main goroutine on the main thread: Exec then does not lock it with
	// runtime.LockOSThread, whose first call starts the runtime's template thread (the thread
	// new threads are made from while one is locked: about 60µs here). Until then a thread the
	// runtime makes is a copy of the calling one, in whatever namespaces it entered; nothing
	// Exec runs makes one, and the process execs or exits soon after. Exec locks the goroutine
	// (so that the template thread starts in this process's mount namespace) before it makes a
	// view that another thread must keep (see Viewer).
	InInit bool
}

// Child says how Start runs the program as a child of this process: Files are its descriptors
// 0, 1, 2, ... (a nil entry is closed in the child); with Setsid it is the leader of a new
// session, whose controlling terminal is Files[Ctty] when Ctty >= 0 (Ctty is ignored without
// Setsid; use -1 for none).
type Child struct {
	Files  []*os.File
	Setsid bool
	Ctty   int
}

// ExecError is the error of Exec, Start and LookPath. Code is the exit status a runner of
// programs should use: 127 if the command was not found, 126 if it was found but could not be
// executed (permissions, a directory, a bad format), 125 for any other failure.
type ExecError struct {
	Code int
	Err  error
}

// Error returns the text of Err.
func (e *ExecError) Error() string { return e.Err.Error() }

// Unwrap returns Err.
func (e *ExecError) Unwrap() error { return e.Err }

// Exec replaces this process with a program running inside the network namespace ns (open, for
// instance, by Open; name labels it in messages and in /proc/mounts) as `ip netns exec` would.
// On a goroutine locked to a thread that is never unlocked (and is not the main thread, so that
// a failure leaves nothing behind), it enters ns (setns), gives the thread a mount namespace of
// its own (unshare(CLONE_NEWNS)) with "/" a recursive slave so that nothing propagates back,
// mounts a /sys that describes the namespace (with opts.View: enters a copy of the mount
// namespace kept with the view in place, made so the first time), runs opts.Mounts, marks
// every file descriptor above 2 close-on-exec, switches the thread's credentials
// (supplementary groups, then group, then user), sets no_new_privs if asked, changes directory,
// looks the program up (as the new user) unless opts.Path says where it is, and calls execve
// from that thread: the new program keeps the thread's namespaces and credentials and this
// process's PID.
//
// Credentials are switched for Exec's thread only, not for the whole process: the thread either
// becomes the program (execve ends every other thread) or ends. The calling goroutine's thread
// is never switched. Exec does not close ns. It returns only on failure, with an *ExecError; the
// caller should only report the error and exit with its Code.
func Exec(name string, ns netns.NsHandle, opts ExecOptions) error {
	if err := checkOptions(name, &opts); err != nil {
		return err
	}
	if opts.Final {
		if !opts.InInit {
			runtime.LockOSThread() // never unlocked: the caller exits if this returns
		}
		return execLocked(name, ns, &opts)
	}
	var err error
	osthread.Disposable(func() {
		// Never unlocked: this thread either becomes the program or ends with this goroutine.
		if e := execLocked(name, ns, &opts); e != nil {
			err = e
		}
	})
	return err
}

// Start runs a program inside the network namespace ns as a child of this process, prepared
// exactly as Exec prepares it (opts.Final aside), with its files and session as child says. The
// child is forked from the prepared thread, which then ends: this process's other threads stay
// in their own namespaces, with their own credentials (the caller can go on signalling and
// waiting for the child as the user it is). Start does not close ns or the files of child. The
// error is an *ExecError.
func Start(name string, ns netns.NsHandle, opts ExecOptions, child Child) (*os.Process, error) {
	if err := checkOptions(name, &opts); err != nil {
		return nil, err
	}
	var (
		p   *os.Process
		err error
	)
	osthread.Disposable(func() {
		// Never unlocked: this thread ends with this goroutine.
		path, e := prepareLocked(name, ns, &opts)
		if e != nil {
			err = e
			return
		}
		sys := &syscall.SysProcAttr{Setsid: child.Setsid}
		if child.Setsid && child.Ctty >= 0 {
			sys.Setctty, sys.Ctty = true, child.Ctty
		}
		var serr error
		p, serr = os.StartProcess(path, opts.Argv, &os.ProcAttr{Env: opts.Env, Files: child.Files, Sys: sys})
		if serr != nil {
			var pe *os.PathError
			if errors.As(serr, &pe) {
				serr = pe.Err
			}
			err = &ExecError{failureCode(serr), fmt.Errorf("executing %q in network namespace %q: %w", path, name, serr)}
		}
	})
	return p, err
}

// checkOptions checks name and fills opts' defaults.
func checkOptions(name string, opts *ExecOptions) error {
	if opts.Path == "" && len(opts.Argv) == 0 {
		return &ExecError{codeNotFound, errors.New("running a command in a network namespace: no command given")}
	}
	if err := ValidateName(name); err != nil {
		return &ExecError{codeFailed, fmt.Errorf("running a command in a network namespace: %w", err)}
	}
	if opts.Argv == nil {
		opts.Argv = []string{opts.Path}
	}
	if opts.Env == nil {
		opts.Env = syscall.Environ()
	}
	return nil
}

// execLocked does Exec's work on a thread that is locked and never unlocked. It returns only on
// failure.
func execLocked(name string, ns netns.NsHandle, opts *ExecOptions) *ExecError {
	path, e := prepareLocked(name, ns, opts)
	if e != nil {
		return e
	}
	err := syscall.Exec(path, opts.Argv, opts.Env)
	return &ExecError{failureCode(err), fmt.Errorf("executing %q in network namespace %q: %w", path, name, err)}
}

// prepareLocked does the work of Exec up to execve on the calling thread, which must be locked
// and never unlocked, and returns the program's path.
func prepareLocked(name string, ns netns.NsHandle, opts *ExecOptions) (string, *ExecError) {
	cmd := opts.Path
	if cmd == "" {
		cmd = opts.Argv[0]
	}
	fail := func(act string, err error) *ExecError {
		return &ExecError{codeFailed, fmt.Errorf("running %q in network namespace %q: %s: %w", cmd, name, act, err)}
	}
	if err := unix.Setns(int(ns), unix.CLONE_NEWNET); err == unix.EINVAL {
		return "", fail("entering it", errors.New("not a network namespace"))
	} else if err != nil {
		return "", fail("entering it", err)
	}
	if opts.View != nil {
		if err := enterView(name, opts.View); err != nil {
			return "", fail("putting the view in place", err)
		}
	} else if act, err := newMounts(name); err != nil {
		return "", fail(act, err)
	}
	if opts.Mounts != nil {
		if err := opts.Mounts(); err != nil {
			return "", fail("setting up mounts", err)
		}
	}
	if opts.Umask != nil {
		unix.Umask(int(*opts.Umask & 0o777))
	}
	if err := cloexecAbove2(); err != nil {
		return "", fail("marking file descriptors close-on-exec", err)
	}
	if c := opts.Cred; c != nil {
		if err := switchThreadCred(c); err != nil {
			return "", fail("switching to user "+strconv.FormatUint(uint64(c.UID), 10), err)
		}
	}
	if opts.NoNewPrivs {
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			return "", fail("setting no_new_privs", err)
		}
	}
	if opts.Dir != "" {
		// unix.Chdir, not os.Chdir: only this thread (which has its own working directory
		// since the unshare) changes directory.
		if err := unix.Chdir(opts.Dir); err != nil {
			return "", fail("changing directory to "+opts.Dir, err)
		}
	}
	path := opts.Path
	if path == "" {
		p, err := LookPath(opts.Argv[0], envlist.Value(opts.Env, "PATH"))
		if err != nil {
			return "", err.(*ExecError)
		}
		path = p
	}
	if opts.Check != nil {
		if err := opts.Check(path); err != nil {
			return "", &ExecError{codeFailed, err}
		}
	}
	return path, nil
}

// newMounts gives the calling thread a mount namespace of its own, with "/" a recursive slave
// (so that nothing propagates back) and a /sys of its network namespace. On error it returns
// the act that failed.
func newMounts(name string) (string, error) {
	if err := unix.Unshare(unix.CLONE_NEWNS); err != nil {
		return "unsharing the mount namespace", err
	}
	if err := unix.Mount("", "/", "none", unix.MS_SLAVE|unix.MS_REC, ""); err != nil {
		return "making / a recursive slave mount", err
	}
	if err := remountSys(name); err != nil {
		return "mounting /sys", err
	}
	return "", nil
}

// switchThreadCred gives the calling thread the credential c: supplementary groups, then group,
// then user (real, effective and saved), with the raw system calls, which act on the calling
// thread only (the syscall package's act on every thread of the process).
func switchThreadCred(c *Credential) error {
	groups := make([]int, len(c.Groups))
	for i, g := range c.Groups {
		groups[i] = int(g)
	}
	if err := unix.Setgroups(groups); err != nil { // a raw setgroups: this thread only
		return fmt.Errorf("setting supplementary groups %v: %w", c.Groups, err)
	}
	gid, uid := uintptr(c.GID), uintptr(c.UID)
	if _, _, e := unix.RawSyscall(sysSetresgid, gid, gid, gid); e != 0 {
		return fmt.Errorf("setting group ID %d: %w", c.GID, e)
	}
	if _, _, e := unix.RawSyscall(sysSetresuid, uid, uid, uid); e != 0 {
		return fmt.Errorf("setting user ID %d: %w", c.UID, e)
	}
	return nil
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
// path (a PATH value) rather than this process's PATH, with the rights of the calling thread. A file containing a slash is not searched
// for; it is made absolute against the current directory. Entries of path that are not absolute
// (including empty ones, which mean the current directory to a shell) are skipped, as sudo's
// ignore_dot does. The error is an *ExecError: Code 127 if nothing was found, 126 if only files
// that cannot be executed were; it shows the PATH searched.
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
		return "", &ExecError{codeNotExecutable, fmt.Errorf("finding command %q in PATH %s: %w", file, path, denied)}
	}
	return "", &ExecError{codeNotFound, fmt.Errorf("finding command %q in PATH %s: %w", file, path, unix.ENOENT)}
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
