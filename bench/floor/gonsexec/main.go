// Command gonsexec is `ip netns exec` written in Go with nothing else: gonsexec NAME PROGRAM
// [ARG...] enters /run/netns/NAME, unshares the mount namespace, makes / a recursive slave,
// mounts a /sys of the namespace, binds each file of /etc/netns/NAME over its /etc namesake and
// executes PROGRAM (an absolute path). The bench measures it next to `wgns exec` to show the
// least a Go implementation of the exec path can cost.
package main

import (
	"os"

	"golang.org/x/sys/unix"
)

// init does all the work: while package main is initialized the runtime keeps its goroutine on
// the main thread, which then executes PROGRAM, without runtime.LockOSThread (whose first call
// starts one more thread), as wgns's front does.
func init() { run() }

func main() {}

func fail(what string, err error) {
	os.Stderr.WriteString("gonsexec: " + what + ": " + err.Error() + "\n")
	os.Exit(125)
}

func run() {
	if len(os.Args) < 3 {
		os.Stderr.WriteString("usage: gonsexec NAME PROGRAM [ARG...]\n")
		os.Exit(125)
	}
	name := os.Args[1]
	fd, err := unix.Open("/run/netns/"+name, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		fail("opening the namespace", err)
	}
	if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
		fail("entering the namespace", err)
	}
	unix.Close(fd)
	if err := unix.Unshare(unix.CLONE_NEWNS); err != nil {
		fail("unsharing the mount namespace", err)
	}
	if err := unix.Mount("", "/", "none", unix.MS_SLAVE|unix.MS_REC, ""); err != nil {
		fail("making / a slave", err)
	}
	unix.Unmount("/sys", unix.MNT_DETACH)
	if err := unix.Mount(name, "/sys", "sysfs", 0, ""); err != nil {
		fail("mounting /sys", err)
	}
	dir := "/etc/netns/" + name
	if ents, err := os.ReadDir(dir); err == nil {
		for _, e := range ents {
			if err := unix.Mount(dir+"/"+e.Name(), "/etc/"+e.Name(), "none", unix.MS_BIND, ""); err != nil {
				fail("binding "+e.Name(), err)
			}
		}
	}
	err = unix.Exec(os.Args[2], os.Args[2:], os.Environ())
	fail("executing "+os.Args[2], err)
}
