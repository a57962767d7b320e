package main

import (
	"fmt"
	"os"
	"os/exec"
	"syscall"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// worldEnv tells a re-executed bench binary which part of the world it plays.
const worldEnv = "WGNS_BENCH_WORLD"

// enterWorld re-executes this binary as PID 1 of a new network, mount and pid namespace, which
// plays the host: the machine's own interfaces, routes, firewall, /run and /etc are never seen
// or touched. It returns the exit status of the run.
func enterWorld() int {
	cmd := exec.Command("/proc/self/exe", os.Args[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Env = append(os.Environ(), worldEnv+"=init")
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags: syscall.CLONE_NEWNET | syscall.CLONE_NEWNS | syscall.CLONE_NEWPID,
		Pdeathsig:  syscall.SIGKILL,
	}
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
	if err := setupWorld(); err != nil {
		fmt.Fprintln(os.Stderr, "bench: setting up the private world:", err)
		return 2
	}
	cmd := exec.Command("/proc/self/exe", os.Args[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Env = append(os.Environ(), worldEnv+"=run")
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "bench: starting the run:", err)
		return 2
	}
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, 0, nil)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return 2
		}
		if pid == cmd.Process.Pid {
			if ws.Signaled() {
				return 128 + int(ws.Signal())
			}
			return ws.ExitStatus()
		}
	}
}

// setupWorld makes the world's mounts: / private, fresh /proc and /sys, tmpfs on /run, a
// writable overlay on /etc whose upper layer is in the world's /run (so /etc/wireguard and
// /etc/netns can be written without touching the machine's /etc), and lo up.
func setupWorld() error {
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("making / private: %w", err)
	}
	if err := unix.Mount("proc", "/proc", "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return fmt.Errorf("mounting /proc: %w", err)
	}
	if err := unix.Mount("sysfs", "/sys", "sysfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return fmt.Errorf("mounting /sys: %w", err)
	}
	if err := unix.Mount("tmpfs", "/run", "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=0755"); err != nil {
		return fmt.Errorf("mounting tmpfs on /run: %w", err)
	}
	for _, d := range []string{"/run/.world-etc/upper", "/run/.world-etc/work", "/run/lock"} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	opts := "lowerdir=/etc,upperdir=/run/.world-etc/upper,workdir=/run/.world-etc/work"
	if err := unix.Mount("overlay", "/etc", "overlay", 0, opts); err != nil {
		return fmt.Errorf("mounting an overlay on /etc: %w", err)
	}
	if err := os.MkdirAll("/etc/netns", 0o755); err != nil {
		return err
	}
	if err := unix.Mount("tmpfs", "/etc/netns", "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=0755"); err != nil {
		return fmt.Errorf("mounting tmpfs on /etc/netns: %w", err)
	}
	for _, d := range []string{"/etc/wgns", "/etc/wireguard"} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return err
		}
	}
	lo, err := netlink.LinkByName("lo")
	if err != nil {
		return fmt.Errorf("finding lo: %w", err)
	}
	if err := netlink.LinkSetUp(lo); err != nil {
		return fmt.Errorf("bringing lo up: %w", err)
	}
	return nil
}
