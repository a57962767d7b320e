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
//	dnsview -exec NAME USER PROGRAM [ARG...]  what wgns exec does: identity.Resolve(USER) ("" for
//	                                          the caller), its Env, and nsmgr.Exec into network
//	                                          namespace NAME with dnsbind.Enter(NAME) as Mounts
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
	"github.com/wgns/wgns/identity"
	"github.com/wgns/wgns/nsmgr"
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
	if len(args) >= 4 && args[0] == "-exec" {
		execInNamespace(args[1], args[2], args[3:])
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

// execInNamespace runs argv in network namespace name as user, the way wgns exec does.
func execInNamespace(name, user string, argv []string) {
	who, err := identity.Resolve(user, os.Getenv, os.Getuid())
	if err != nil {
		fail(err)
	}
	env := who.Env(os.Environ())
	ns, err := nsmgr.Open(name)
	if err != nil {
		fail(err)
	}
	opts := nsmgr.ExecOptions{
		Argv:   argv,
		Env:    env,
		Mounts: func() error { return dnsbind.Enter(name) },
	}
	if !who.Root {
		opts.Cred = &nsmgr.Credential{UID: who.UID, GID: who.GID, Groups: who.Groups}
	}
	fail(nsmgr.Exec(name, ns, opts))
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "dnsview:", err)
	os.Exit(111)
}
