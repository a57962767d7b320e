// Package world builds a private network world: a process tree in network, mount and pid
// namespaces of its own that plays "the host", so that wgns can be exercised end to end (by
// `wgns selftest`, the root tests and the benchmarks) without seeing or touching the machine's
// interfaces, routes, firewall, /run or /etc.
//
// The shape is always the same: the caller re-executes itself with Cloneflags (Command), that
// process (PID 1 of the world) calls Setup and then Init with the process that does the work.
// When PID 1 returns, the kernel ends every process of the world.
package world

import (
	"fmt"
	"os"
	"os/exec"
	"syscall"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Cloneflags are the namespaces a world gets: network, mount and pid.
const Cloneflags = syscall.CLONE_NEWNET | syscall.CLONE_NEWNS | syscall.CLONE_NEWPID

// Command returns a command that runs /proc/self/exe with args as PID 1 of a new world, with
// env added to this process's environment and this process's standard streams. It dies with
// its parent.
func Command(args []string, env ...string) *exec.Cmd {
	cmd := exec.Command("/proc/self/exe", args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: Cloneflags, Pdeathsig: syscall.SIGKILL}
	return cmd
}

// Setup makes the world's mounts and brings lo up. It must run in the world's PID 1, before
// anything else: / becomes a private mount so that nothing propagates to the host; /proc and
// /sys are mounted afresh for the world's pid and network namespaces; a tmpfs covers /run
// (/run/netns, /run/wgns and /var/run/wireguard live there) and /var/run where that is a
// directory of its own; a writable overlay covers /etc, its upper layer in that tmpfs, so that
// /etc/resolv.conf, /etc/nsswitch.conf and users can be changed inside; a tmpfs covers
// /etc/netns; /etc/wgns and /etc/wireguard exist.
func Setup() error {
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("making / a private mount: %w", err)
	}
	if err := unix.Mount("proc", "/proc", "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return fmt.Errorf("mounting /proc: %w", err)
	}
	if err := unix.Mount("sysfs", "/sys", "sysfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return fmt.Errorf("mounting /sys: %w", err)
	}
	if err := unix.Mount("tmpfs", "/run", "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=0755"); err != nil {
		return fmt.Errorf("mounting a tmpfs on /run: %w", err)
	}
	// /var/run is a symlink to /run on Debian; where it is a directory of its own, cover it too.
	if fi, err := os.Lstat("/var/run"); err == nil && fi.IsDir() {
		if err := unix.Mount("tmpfs", "/var/run", "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=0755"); err != nil {
			return fmt.Errorf("mounting a tmpfs on /var/run: %w", err)
		}
	}
	const upper, work = "/run/.world-etc/upper", "/run/.world-etc/work"
	for _, d := range []string{upper, work, "/run/lock"} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	if err := unix.Mount("overlay", "/etc", "overlay", 0, "lowerdir=/etc,upperdir="+upper+",workdir="+work); err != nil {
		return fmt.Errorf("mounting an overlay on /etc (upper layer in the world's /run): %w", err)
	}
	if err := os.MkdirAll("/etc/netns", 0o755); err != nil {
		return err
	}
	if err := unix.Mount("tmpfs", "/etc/netns", "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=0755"); err != nil {
		return fmt.Errorf("mounting a tmpfs on /etc/netns: %w", err)
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

// Init does the job of a world's PID 1: it starts cmd, reaps every process of the world that
// ends (detached wgns holders, orphans) until cmd ends, and returns cmd's exit status (128+N
// for a death by signal N), or 2 if cmd could not start.
func Init(cmd *exec.Cmd) int {
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "starting the world's work:", err)
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
