// Package vm runs a command in a QEMU guest that boots a Debian kernel on the host's own root
// file system, so that the root tests can run against a kernel that this machine's kernel is
// not (kernel WireGuard, here), with the host's own binaries and test peers.
//
// The guest has no disk image: the host's / is exported read-only over 9p, and the guest puts an
// overlay with a tmpfs upper layer on top of it and switches to it; a second 9p share carries
// the kernel's modules tree, a third, writable one the command to run and its results. QEMU
// runs with TCG (nested KVM hangs on this machine kind). The guest ends itself once the command
// has ended; its exit status comes back through the share, not through QEMU's.
package vm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/wgns/wgns/internal/shellquote"
)

// Guest is one boot of a kernel that runs one command.
type Guest struct {
	Kernel  *Kernel
	Busybox string        // a static busybox for the initramfs (default /bin/busybox)
	CPUs    int           // default 2
	Memory  int           // MiB, default 2048
	Timeout time.Duration // for the whole boot and the command (default 30m)
	// Dir holds the initramfs, the share and console.log; it must exist, and stays after Run
	// so that a failure can be looked into.
	Dir string
	// Output receives the command's standard output and error as they come. Log receives the
	// runner's own messages (boot time, failures with the console log). Nil discards.
	Output, Log io.Writer
	// QEMU is the emulator (default qemu-system-x86_64).
	QEMU string
	// Hostname is the guest's (default this machine's, which its /etc/hosts, shared with the
	// guest, resolves; sudo, for one, wants to resolve it).
	Hostname string
}

// Command is what the guest runs: Argv in directory Dir (default /), with exactly Env plus a
// PATH and HOME when Env has none. The guest's root is the host's, so paths are the host's.
type Command struct {
	Argv []string
	Dir  string
	Env  []string
}

// Result is what a guest run produced.
type Result struct {
	ExitCode int           // the command's exit status (128+N for a death by signal N)
	Boot     time.Duration // from starting QEMU to the guest starting the command
	Total    time.Duration // from starting QEMU to its end
}

// ConsolePath is the guest's console log of a run in dir.
func ConsolePath(dir string) string { return filepath.Join(dir, "console.log") }

// pollEvery is how often Run looks at the share for the guest's progress.
const pollEvery = 200 * time.Millisecond

// shutdownWait bounds how long Run waits for the guest to power off after its command ended.
const shutdownWait = 60 * time.Second

// Run boots the guest, runs cmd in it and returns its result. An error means the guest did not
// report a result (it failed to boot, crashed, or ran out of time); the error then carries the
// console log's end, and the whole log stays in ConsolePath(g.Dir).
func (g *Guest) Run(ctx context.Context, cmd Command) (*Result, error) {
	if len(cmd.Argv) == 0 {
		return nil, errors.New("no command to run in the guest")
	}
	g.defaults()
	share := filepath.Join(g.Dir, "share")
	if err := os.RemoveAll(share); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(share, 0o755); err != nil {
		return nil, err
	}
	initrd := filepath.Join(g.Dir, "initramfs.cpio")
	var ir bytes.Buffer
	if err := writeInitramfs(&ir, g.Busybox, g.Kernel); err != nil {
		return nil, fmt.Errorf("building the initramfs: %w", err)
	}
	if err := os.WriteFile(initrd, ir.Bytes(), 0o644); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(share, "run.sh"), []byte(runScript(cmd, g.Hostname)), 0o755); err != nil {
		return nil, err
	}
	console, err := os.Create(ConsolePath(g.Dir))
	if err != nil {
		return nil, err
	}
	defer console.Close()

	ctx, cancel := context.WithTimeout(ctx, g.Timeout)
	defer cancel()
	q := exec.Command(g.QEMU, qemuArgs(g, initrd, share)...)
	q.Stdout, q.Stderr = console, console
	start := time.Now()
	if err := q.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", g.QEMU, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- q.Wait() }()
	stop := func() {
		q.Process.Kill()
		<-exited
	}

	out := &follower{path: filepath.Join(share, "output"), w: g.Output}
	res := &Result{}
	tick := time.NewTicker(pollEvery)
	defer tick.Stop()
	booted := false
	started := func() {
		if _, err := os.Stat(filepath.Join(share, "started")); err == nil && !booted {
			booted, res.Boot = true, time.Since(start)
			fmt.Fprintf(g.Log, "vm: guest (%s) booted in %.1fs; running %s\n", g.Kernel.Release, res.Boot.Seconds(), strings.Join(cmd.Argv, " "))
		}
	}
	for {
		select {
		case <-ctx.Done():
			stop()
			out.follow()
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return nil, g.failure(fmt.Errorf("the guest gave no result within %v", g.Timeout))
			}
			return nil, g.failure(fmt.Errorf("the guest was stopped: %w", ctx.Err()))
		case err := <-exited:
			started()
			out.follow()
			if code, ok := readStatus(share); ok {
				res.ExitCode, res.Total = code, time.Since(start)
				return res, nil
			}
			return nil, g.failure(fmt.Errorf("the guest ended without a result (qemu: %v)", err))
		case <-tick.C:
			started()
			out.follow()
			code, ok := readStatus(share)
			if !ok {
				continue
			}
			res.ExitCode = code
			select {
			case <-exited:
			case <-time.After(shutdownWait):
				fmt.Fprintf(g.Log, "vm: the guest did not power off within %v after its command ended; killing qemu\n", shutdownWait)
				stop()
			}
			out.follow()
			res.Total = time.Since(start)
			return res, nil
		}
	}
}

func (g *Guest) defaults() {
	if g.Busybox == "" {
		g.Busybox = "/bin/busybox"
	}
	if g.CPUs == 0 {
		g.CPUs = 2
	}
	if g.Memory == 0 {
		g.Memory = 2048
	}
	if g.Timeout == 0 {
		g.Timeout = 30 * time.Minute
	}
	if g.QEMU == "" {
		g.QEMU = "qemu-system-x86_64"
	}
	if g.Hostname == "" {
		g.Hostname, _ = os.Hostname()
	}
	if g.Output == nil {
		g.Output = io.Discard
	}
	if g.Log == nil {
		g.Log = io.Discard
	}
}

// consoleTail is how much of the console log an error carries.
const consoleTail = 200

// failure adds the end of the console log to err.
func (g *Guest) failure(err error) error {
	b, _ := os.ReadFile(ConsolePath(g.Dir))
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > consoleTail {
		lines = lines[len(lines)-consoleTail:]
	}
	return fmt.Errorf("%w\n--- the guest's console (%s), last %d lines:\n%s\n---", err, ConsolePath(g.Dir), len(lines), strings.Join(lines, "\n"))
}

// qemuArgs is QEMU's command line: TCG, no default devices, the serial console on stdout, the
// three 9p shares. The host's root is exported with multidevs=remap, because it spans several
// file systems whose inode numbers would otherwise collide in the guest.
func qemuArgs(g *Guest, initrd, share string) []string {
	return []string{
		"-accel", "tcg", "-smp", strconv.Itoa(g.CPUs), "-m", strconv.Itoa(g.Memory),
		"-nographic", "-no-reboot", "-nodefaults", "-serial", "stdio",
		"-kernel", g.Kernel.Image, "-initrd", initrd,
		"-append", "console=ttyS0 panic=-1 quiet",
		"-fsdev", "local,id=" + tagRoot + ",path=/,security_model=none,readonly=on,multidevs=remap",
		"-device", "virtio-9p-pci,fsdev=" + tagRoot + ",mount_tag=" + tagRoot,
		"-fsdev", "local,id=" + tagModules + ",path=" + g.Kernel.Modules + ",security_model=none,readonly=on",
		"-device", "virtio-9p-pci,fsdev=" + tagModules + ",mount_tag=" + tagModules,
		"-fsdev", "local,id=" + tagShare + ",path=" + share + ",security_model=none",
		"-device", "virtio-9p-pci,fsdev=" + tagShare + ",mount_tag=" + tagShare,
	}
}

// runScript is the guest's PID 1 once its root is in place (the host's /bin/sh runs it): it
// names the guest, mounts what a root test expects, marks the start, runs the command with its
// output into the share, writes its exit status there (by rename, so that it is never seen
// half-written), and powers the guest off.
func runScript(cmd Command, hostname string) string {
	env := append([]string(nil), cmd.Env...)
	if !hasVar(env, "PATH") {
		env = append(env, "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
	}
	if !hasVar(env, "HOME") {
		env = append(env, "HOME=/root")
	}
	dir := cmd.Dir
	if dir == "" {
		dir = "/"
	}
	var b strings.Builder
	fmt.Fprintf(&b, `#!/bin/sh
# PID 1 of a wgns test guest (written by internal/vm).
S=%[1]s
printf '%%s' %[5]s >/proc/sys/kernel/hostname
mkdir -p /dev/pts /dev/shm
mount -t devpts -o newinstance,ptmxmode=0666,mode=0620 devpts /dev/pts
ln -sf pts/ptmx /dev/ptmx
mount -t tmpfs -o mode=1777 tmpfs /dev/shm
ln -sf /proc/self/fd /dev/fd
# /dev/net/tun appears only once its module is loaded (nothing here runs kmod static-nodes).
modprobe tun
cat /proc/uptime >$S/started
(cd %[2]s && exec env -i %[3]s %[4]s) >$S/output 2>&1 </dev/null
echo $? >$S/status.new
mv $S/status.new $S/status
sync
echo o >/proc/sysrq-trigger
while :; do sleep 60; done
`, GuestShare, shellquote.Always(dir), shellJoin(env), shellJoin(cmd.Argv), shellquote.Always(hostname))
	return b.String()
}

func hasVar(env []string, name string) bool {
	for _, e := range env {
		if strings.HasPrefix(e, name+"=") {
			return true
		}
	}
	return false
}

func shellJoin(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = shellquote.Always(a)
	}
	return strings.Join(q, " ")
}

// readStatus returns the exit status the guest wrote into share, if it did.
func readStatus(share string) (int, bool) {
	b, err := os.ReadFile(filepath.Join(share, "status"))
	if err != nil {
		return 0, false
	}
	code, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0, false
	}
	return code, true
}

// follower copies what is appended to a file to w.
type follower struct {
	path string
	w    io.Writer
	off  int64
}

func (f *follower) follow() {
	fh, err := os.Open(f.path)
	if err != nil {
		return
	}
	defer fh.Close()
	n, _ := io.Copy(f.w, io.NewSectionReader(fh, f.off, 1<<62))
	f.off += n
}
