// Command wgns-front is the `wgns` that users run (installed as PREFIX/bin/wgns): it runs
// `wgns exec` itself, and hands every other command line, unchanged, to the full wgns
// (cmd/wgns, installed as PREFIX/libexec/wgns/wgns) by executing it in its place. The full wgns is
// found next to this program's own file, at ../libexec/wgns/ under this program's name (so that a
// test build, bin/wgns-test, runs libexec/wgns/wgns-test); never through PATH.
//
// Why two programs: `wgns exec` runs before every command confined to a tunnel, often in loops
// and scripts, and it should cost what `ip netns exec` costs. A Go program pays at every start
// for the size of its binary and for the initialisation of every package it links, whichever
// command it runs; the full wgns links WireGuard, netlink, nftables, D-Bus and kong for the
// other commands. This one links only what exec needs (package execcmd), and is a few times
// smaller. The other commands pay one more execve (about a millisecond), which nothing notices.
package main

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"github.com/wgns/wgns/cmd/internal/execcmd"
)

// coreDir is the directory of the full wgns, relative to this program's own directory.
const coreDir = "../libexec/wgns"

// init runs `wgns exec` while the runtime initializes package main, the last thing before main:
// the main goroutine is on the main thread then, so exec need not lock it to its thread, which
// would start one more thread (nsmgr's ExecOptions.InInit). Every package it uses is initialized
// by then.
func init() {
	if len(os.Args) > 1 && os.Args[1] == "exec" {
		if cmd, ok := execcmd.Parse(os.Args[2:]); ok {
			os.Exit(cmd.ExecuteInInit())
		}
	}
}

func main() {
	err := handOff()
	fmt.Fprintln(os.Stderr, "wgns:", err)
	if len(os.Args) > 1 && os.Args[1] == "exec" {
		os.Exit(125) // exec's own failure, as env and sudo report theirs
	}
	os.Exit(1)
}

// handOff executes the full wgns in place of this process, with the same arguments and
// environment. It returns only on failure.
func handOff() error {
	// /proc/self/exe is this program's file itself, symlinks resolved, whatever argv[0] says
	// and whatever PATH is.
	self, err := os.Readlink("/proc/self/exe")
	if err != nil {
		return fmt.Errorf("finding this program's file: %w", err)
	}
	core := core(self)
	err = syscall.Exec(core, os.Args, os.Environ())
	return fmt.Errorf("running the full wgns, %s: %w (it is installed with this one: `make install` puts both in place)", core, err)
}

// core returns the full wgns's path for this program's path self.
func core(self string) string {
	return filepath.Join(filepath.Dir(self), coreDir, filepath.Base(self))
}
