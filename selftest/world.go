package selftest

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/wgns/wgns/internal/linediff"
	"github.com/wgns/wgns/internal/world"
)

// worldLimit bounds the whole self-test: past it the world is killed, and everything in it dies.
const worldLimit = 90 * time.Second

// Run is `wgns selftest`: it re-executes this binary as PID 1 of a private world (new network,
// mount and PID namespaces), which runs the steps and prints them to out as they finish. Then it
// checks that the host's network looks as it did before, and prints the closing line
// "selftest: N passed, M failed". It returns the number of failed steps; err is set only when
// the self-test could not start at all.
//
// It needs root. Nothing it makes outlives the world: when the world's PID 1 exits, the kernel
// ends every process in it, and its namespaces and mounts go with them.
func Run(out io.Writer) (failed int, err error) {
	hostNS, err := nsIDOf("/proc/self/ns/net")
	if err != nil {
		return 0, fmt.Errorf("identifying the host's network namespace: %w", err)
	}
	before, err := snapshotNetwork()
	if err != nil {
		return 0, err
	}
	r := newReport(out)
	r.note("wgns selftest: a private world with its own namespaces, a local WireGuard peer and DNS server;")
	r.note("nothing of this host's network is touched.")

	cmd := world.Command([]string{CmdWorld}, hostNSEnv+"="+hostNS)
	cmd.Stdin, cmd.Stdout = nil, nil
	cmd.Dir = "/"
	pipe, err := cmd.StdoutPipe()
	if err != nil {
		return 0, err
	}
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("starting the private world (new network, mount and PID namespaces): %w", err)
	}
	timer := time.AfterFunc(worldLimit, func() { cmd.Process.Kill() })
	passed := 0
	sc := bufio.NewScanner(pipe)
	for sc.Scan() {
		line := sc.Text()
		switch stepKind(line) {
		case 1:
			passed++
		case -1:
			failed++
		}
		fmt.Fprintln(out, line)
	}
	werr := cmd.Wait()
	if !timer.Stop() {
		werr = fmt.Errorf("killed after %v: %w", worldLimit, werr)
	}
	r.passed, r.failed = passed, failed
	if werr != nil && failed == 0 {
		r.fail("the private world", werr, "")
	}

	after, err := snapshotNetwork()
	switch {
	case err != nil:
		r.fail("the host's network is untouched", err, "")
	case after != before:
		r.fail("the host's network is untouched", errors.New("it changed while the self-test ran (perhaps something else changed it)"),
			linediff.Diff(before, after, ""))
	default:
		r.ok("the host's network is untouched: same interfaces, addresses, routes and /run/netns as before")
	}
	passed, failed = r.counts()
	r.note("%s", summary(passed, failed))
	return failed, nil
}

// RunWorld is PID 1 of the private world (hidden command CmdWorld). It makes the world's mounts
// and starts the steps (CmdSteps) as its child, reaps every orphan (wgns's detached WireGuard
// holder becomes one), and returns the steps' exit status. When it returns, the kernel ends every
// process of the world.
func RunWorld() int {
	if err := checkWorld(roleInit); err != nil {
		fmt.Fprintln(os.Stderr, "wgns "+CmdWorld+":", err)
		return 2
	}
	if err := world.Setup(); err != nil {
		fmt.Fprintln(os.Stderr, "wgns selftest: setting up the private world:", err)
		return 2
	}
	cmd := exec.Command("/proc/self/exe", CmdSteps)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	cmd.Dir = "/"
	return world.Init(cmd)
}

// worldRole is which process of the private world checkWorld checks.
type worldRole int

const (
	roleInit   worldRole = iota // the world's PID 1
	roleSteps                   // the steps, PID 1's child
	roleHelper                  // any other process of the world (the peer)
)

// checkWorld refuses to go on unless this process is in the private world that Run made: a
// network namespace other than the host's (which Run names in the environment), in the PID
// namespace whose PID 1 is the world's (or is it, for roleInit). Without it, a hidden command
// run by hand could rewrite the host's /etc/resolv.conf and add interfaces to the host.
func checkWorld(role worldRole) error {
	hostNS := os.Getenv(hostNSEnv)
	if hostNS == "" {
		return errors.New("this is an internal command of `wgns selftest`; run `wgns selftest`")
	}
	self, err := nsIDOf("/proc/self/ns/net")
	if err != nil {
		return err
	}
	if self == hostNS {
		return errors.New("refusing to run in the host's network namespace; run `wgns selftest`")
	}
	if role == roleInit {
		if os.Getpid() != 1 {
			return errors.New("not PID 1 of a new PID namespace; run `wgns selftest`")
		}
		return nil
	}
	if role == roleSteps && os.Getppid() != 1 {
		return errors.New("not started by the private world's PID 1; run `wgns selftest`")
	}
	cmdline, err := os.ReadFile("/proc/1/cmdline")
	if err != nil {
		return fmt.Errorf("checking the private world's PID 1: %w", err)
	}
	if args := strings.Split(string(cmdline), "\x00"); len(args) < 2 || args[1] != CmdWorld {
		return errors.New("PID 1 is not the private world's; run `wgns selftest`")
	}
	return nil
}

// nsIDOf identifies the namespace at path (a /proc/PID/ns/ link) as "DEV:INODE".
func nsIDOf(path string) (string, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return "", fmt.Errorf("identifying namespace %s: %w", path, err)
	}
	return strconv.FormatUint(st.Dev, 10) + ":" + strconv.FormatUint(st.Ino, 10), nil
}

// installSelf copies this process's executable to dir/wgns (mode 0755) and returns that path.
// The steps run the copy: it is reachable in the world whatever the original's path (a path
// under /run is covered by the world's tmpfs), and by the invoking user that `wgns exec` runs
// the probe as (the original may sit in a directory only root can enter).
func installSelf(dir string) (string, error) {
	src, err := os.Open("/proc/self/exe")
	if err != nil {
		return "", fmt.Errorf("opening this program's executable: %w", err)
	}
	defer src.Close()
	path := filepath.Join(dir, "wgns")
	dst, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o755)
	if err != nil {
		return "", fmt.Errorf("copying this program to %s: %w", path, err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		dst.Close()
		return "", fmt.Errorf("copying this program to %s: %w", path, err)
	}
	if err := dst.Close(); err != nil {
		return "", fmt.Errorf("copying this program to %s: %w", path, err)
	}
	return path, nil
}
