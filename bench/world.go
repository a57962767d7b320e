package main

import (
	"fmt"
	"os"
	"os/exec"

	privworld "github.com/wgns/wgns/internal/world"
)

// worldEnv tells a re-executed bench binary which part of the world it plays.
const worldEnv = "WGNS_BENCH_WORLD"

// enterWorld re-executes this binary as PID 1 of a new network, mount and pid namespace, which
// plays the host: the machine's own interfaces, routes, firewall, /run and /etc are never seen
// or touched. It returns the exit status of the run.
func enterWorld() int {
	cmd := privworld.Command(os.Args[1:], worldEnv+"=init")
	if err := cmd.Run(); err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode()
		}
		fmt.Fprintln(os.Stderr, "bench: entering the private world:", err)
		return 2
	}
	return 0
}

// worldInit runs as PID 1 of the world: it makes the mounts, starts the run as its child, reaps
// every orphan (detached wgns holders, wg-quick's wireguard-go) and returns the run's status.
// When it returns, the kernel ends every process of the world.
func worldInit() int {
	if err := privworld.Setup(); err != nil {
		fmt.Fprintln(os.Stderr, "bench: setting up the private world:", err)
		return 2
	}
	cmd := exec.Command("/proc/self/exe", os.Args[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Env = append(os.Environ(), worldEnv+"=run")
	return privworld.Init(cmd)
}
