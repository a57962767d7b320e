// Command nsexec runs a command in a named network namespace through nsmgr.Exec, for the
// integration tests (which cannot call Exec themselves: it replaces the process).
//
//	nsexec -ns NAME [flags] [--] COMMAND [ARG...]
//
// It exits with the ExecError's code when Exec fails. Its main goroutine is locked to the main
// thread, so Exec's goroutine necessarily runs, and calls execve, on another thread of a
// multi-threaded process.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"

	"github.com/wgns/wgns/nsmgr"
	"golang.org/x/sys/unix"
)

func init() { runtime.LockOSThread() }

func main() {
	var (
		ns         = flag.String("ns", "", "namespace name")
		raw        = flag.Bool("raw", false, "pass COMMAND to Exec as is, without LookPath")
		uid        = flag.Int("uid", -1, "user ID to run as")
		gid        = flag.Int("gid", -1, "group ID to run as")
		groups     = flag.String("groups", "", "comma-separated supplementary group IDs")
		nnp        = flag.Bool("nnp", false, "set no_new_privs")
		dir        = flag.String("dir", "", "working directory")
		mark       = flag.String("mark", "", "Mounts mounts a tmpfs here and writes mark in it")
		mountsFail = flag.Bool("mountsfail", false, "Mounts fails")
		leakFD     = flag.Bool("leakfd", false, "open a file descriptor without close-on-exec first")
		threads    = flag.Int("threads", 0, "start this many extra threads first")
	)
	flag.Parse()
	args := flag.Args()
	if len(args) == 0 {
		fmt.Fprintln(os.Stderr, "nsexec: no command")
		os.Exit(2)
	}
	for range *threads {
		go func() {
			runtime.LockOSThread()
			select {}
		}()
	}
	if *leakFD {
		if _, err := syscall.Open("/dev/null", syscall.O_RDONLY, 0); err != nil {
			fail(err)
		}
	}
	opts := nsmgr.ExecOptions{Path: args[0], Argv: args, Dir: *dir, NoNewPrivs: *nnp}
	if !*raw {
		p, err := nsmgr.LookPath(args[0], os.Getenv("PATH"))
		if err != nil {
			fail(err)
		}
		opts.Path = p
	}
	if *uid >= 0 {
		c := &nsmgr.Credential{UID: uint32(*uid), GID: uint32(*gid)}
		for _, g := range strings.FieldsFunc(*groups, func(r rune) bool { return r == ',' }) {
			n, err := strconv.ParseUint(g, 10, 32)
			if err != nil {
				fail(err)
			}
			c.Groups = append(c.Groups, uint32(n))
		}
		opts.Cred = c
	}
	switch {
	case *mountsFail:
		opts.Mounts = func() error { return errors.New("mounts refused") }
	case *mark != "":
		opts.Mounts = func() error { return writeMark(*mark) }
	}
	h, err := nsmgr.Open(*ns)
	if err != nil {
		fail(&nsmgr.ExecError{Code: 125, Err: err}) // as wgns exec reports a namespace it cannot enter
	}
	fail(nsmgr.Exec(*ns, h, opts))
}

// writeMark mounts a tmpfs on dir and records in dir/mark the process, the thread and the
// thread's network namespace as Mounts sees them.
func writeMark(dir string) error {
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "mode=0755"); err != nil {
		return err
	}
	var st unix.Stat_t
	if err := unix.Stat("/proc/thread-self/ns/net", &st); err != nil {
		return err
	}
	s := fmt.Sprintf("markpid=%d\nmarktid=%d\nmarknet=%d:%d\n", os.Getpid(), unix.Gettid(), st.Dev, st.Ino)
	return os.WriteFile(dir+"/mark", []byte(s), 0o644)
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "nsexec:", err)
	var ee *nsmgr.ExecError
	if errors.As(err, &ee) {
		os.Exit(ee.Code)
	}
	os.Exit(2)
}
