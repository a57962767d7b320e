// Command dnsview runs a program with the DNS view of a namespace in place, the way wgns exec
// does it but without switching the network namespace, for the dnsbind integration tests:
//
//	dnsview NAME PROGRAM [ARG...]             unshare the mount namespace, make / a recursive
//	                                          slave, dnsbind.Enter(NAME), exec PROGRAM
//	dnsview -plain-bind NAME PROGRAM [ARG...] the same with `ip netns exec`'s single bind mount
//	                                          of EtcDir/NAME/resolv.conf instead of Enter (the
//	                                          control the tests compare against)
//	dnsview connect PATH...                   try to connect to each unix socket PATH and print
//	                                          "PATH: connected" or "PATH: failed: ERROR"
//
// Failures before the exec print to stderr and exit with status 111.
package main

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"

	"golang.org/x/sys/unix"

	"github.com/wgns/wgns/dnsbind"
)

func init() {
	// Keep main on the initial thread: the mount namespace is unshared for that thread only.
	runtime.LockOSThread()
}

func main() {
	args := os.Args[1:]
	if len(args) >= 1 && args[0] == "connect" {
		for _, p := range args[1:] {
			c, err := net.Dial("unix", p)
			if err != nil {
				fmt.Printf("%s: failed: %v\n", p, err)
				continue
			}
			c.Close()
			fmt.Printf("%s: connected\n", p)
		}
		return
	}
	plain := len(args) >= 1 && args[0] == "-plain-bind"
	if plain {
		args = args[1:]
	}
	if len(args) < 2 {
		fail(fmt.Errorf("usage: dnsview [-plain-bind] NAME PROGRAM [ARG...] | dnsview connect PATH..."))
	}
	name, argv := args[0], args[1:]
	if err := unix.Unshare(unix.CLONE_NEWNS); err != nil {
		fail(fmt.Errorf("unsharing the mount namespace: %w", err))
	}
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_SLAVE, ""); err != nil {
		fail(fmt.Errorf("making / a recursive slave: %w", err))
	}
	if plain {
		src := dnsbind.EtcDir + "/" + name + "/resolv.conf"
		if err := unix.Mount(src, "/etc/resolv.conf", "", unix.MS_BIND, ""); err != nil {
			fail(fmt.Errorf("binding %s: %w", src, err))
		}
	} else if err := dnsbind.Enter(name); err != nil {
		fail(err)
	}
	path, err := exec.LookPath(argv[0])
	if err != nil {
		fail(err)
	}
	fail(unix.Exec(path, argv, os.Environ()))
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "dnsview:", err)
	os.Exit(111)
}
