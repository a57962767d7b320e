// Package integration holds the tests that need root and real namespaces.
//
// Every test here runs inside one hermetic world that TestMain builds before any test starts:
// a network, mount and pid namespace of its own, with tmpfs over /run (which holds /run/netns,
// /run/wgns and /var/run/wireguard), a writable overlay over /etc (so /etc/netns can exist and a
// test may point /etc/resolv.conf at a decoy without touching the machine's /etc), a fresh /proc
// and /sys, and lo up. The machine's own interfaces, routes, firewall and files are never seen.
//
// The world's PID 1 is this test binary too: it reaps orphans (detached wgns processes) and, when
// the test run ends, its exit takes every process of the world with it.
//
// The suite runs in two modes, named by WGNS_TEST_MODE, which the world sets from what the kernel
// can do (ip(8) makes a WireGuard interface in the world, or cannot): "userspace" on this
// machine's kernel, where `wgns up` picks the embedded WireGuard, and "kernel" in the QEMU guest
// of `make test-kernel` (integration/vm), where it picks kernel WireGuard by itself. Set from
// outside, WGNS_TEST_MODE is an expectation that the world checks. Most tests do not care; those
// that look at an implementation's details ask kernelMode(). WGNS_TEST_TIME_SCALE (a number,
// default 1) stretches the time limits of the helpers that wait, for slow machines such as that
// emulated guest.
package integration

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/wgns/wgns/internal/world"
)

const (
	worldEnv     = "WGNS_TEST_WORLD"
	modeEnv      = "WGNS_TEST_MODE"
	timeScaleEnv = "WGNS_TEST_TIME_SCALE"
)

// timeScale stretches the time limits of waitFor and the few other helpers that wait.
var timeScale = 1.0

// wgnsBin is the path of the wgns binary under test, built by TestMain (or given as WGNS_BIN):
// the front that users run.
var wgnsBin string

// wgnsCore returns the path of the full wgns that the front wgnsBin runs for every command but
// exec (and that starts the holders): ../libexec/wgns/ under the front's name.
func wgnsCore() string {
	return filepath.Join(filepath.Dir(wgnsBin), "..", "libexec", "wgns", filepath.Base(wgnsBin))
}

func TestMain(m *testing.M) {
	switch os.Getenv(worldEnv) {
	case "":
		if os.Geteuid() != 0 {
			// Not a silent ok: the one test that runs says why the others do not (go test -v,
			// -json: SKIP).
			flag.Set("test.run", "^TestIntegrationNeedsRoot$")
			os.Exit(m.Run())
		}
		os.Exit(enterWorld())
	case "init":
		os.Exit(worldInit())
	case "run":
		if v := os.Getenv(timeScaleEnv); v != "" {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil || f < 1 {
				fmt.Fprintf(os.Stderr, "%s=%q: want a number of at least 1\n", timeScaleEnv, v)
				os.Exit(2)
			}
			timeScale = f
		}
		if err := buildWgns(); err != nil {
			fmt.Fprintln(os.Stderr, "building wgns:", err)
			os.Exit(2)
		}
		os.Exit(m.Run())
	default:
		fmt.Fprintln(os.Stderr, "bad", worldEnv)
		os.Exit(2)
	}
}

// TestIntegrationNeedsRoot runs alone when the suite is not run as root, and is skipped: the
// root tests build a private network world, which needs root (sudo make integration).
func TestIntegrationNeedsRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the root tests need root: they build a private network world (sudo make integration); none ran")
	}
	t.Skip("run as root: the root tests run")
}

// enterWorld re-executes the test binary as PID 1 of a new network, mount and pid namespace.
func enterWorld() int {
	cmd := world.Command(os.Args[1:], worldEnv+"=init")
	if err := cmd.Run(); err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode()
		}
		fmt.Fprintln(os.Stderr, "entering the test world:", err)
		return 2
	}
	return 0
}

// worldInit runs as PID 1 of the world: it makes the mounts, starts the test run as its child,
// reaps every orphan, and returns the test run's exit status.
func worldInit() int {
	if err := world.Setup(); err != nil {
		fmt.Fprintln(os.Stderr, "setting up the test world:", err)
		return 2
	}
	mode := "userspace"
	if kernelWireGuard() {
		mode = "kernel"
	}
	if want := os.Getenv(modeEnv); want != "" && want != mode {
		fmt.Fprintf(os.Stderr, "%s=%s, but in this world `wgns up` would pick %s WireGuard (the mode follows the kernel; it cannot be chosen)\n", modeEnv, want, mode)
		return 2
	}
	fmt.Printf("test world: %s WireGuard (%s=%s)\n", mode, modeEnv, mode)
	cmd := exec.Command("/proc/self/exe", os.Args[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Env = append(os.Environ(), worldEnv+"=run", modeEnv+"="+mode)
	return world.Init(cmd)
}

// kernelWireGuard reports whether this kernel can make WireGuard interfaces, asking ip(8), not
// wgns: it makes one in the world's fresh network namespace and deletes it.
func kernelWireGuard() bool {
	const probe = "wgnsprobe0"
	if err := exec.Command("ip", "link", "add", probe, "type", "wireguard").Run(); err != nil {
		return false
	}
	exec.Command("ip", "link", "del", probe).Run()
	return true
}

// kernelMode reports whether the tunnels `wgns up` makes here without --userspace are kernel
// WireGuard (the guest of `make test-kernel`), not the embedded one.
func kernelMode() bool { return os.Getenv(modeEnv) == "kernel" }

// defaultMode is the mode `wgns up` picks here by itself, as wgns list and status name it.
func defaultMode() string {
	if kernelMode() {
		return "kernel"
	}
	return "userspace"
}

// scaled is a time limit stretched by WGNS_TEST_TIME_SCALE.
func scaled(d time.Duration) time.Duration { return time.Duration(float64(d) * timeScale) }

// copyWgns copies the binary under test, the front and the full wgns as they sit together, into
// a new directory of the world's /run that every user can enter (the originals may sit in one
// only root can), removed when the test ends, and returns the copy of the front.
func copyWgns(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("/run", "wgns-bin-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	front := filepath.Join(dir, "bin", "wgns")
	for _, f := range []struct{ from, to string }{
		{wgnsBin, front},
		{wgnsCore(), filepath.Join(dir, "libexec", "wgns", "wgns")},
	} {
		data, err := os.ReadFile(f.from)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Dir(f.to), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(f.to, data, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return front
}

// buildWgns builds the binary under test (a test build, with the WGNS_TEST_* hooks) unless
// WGNS_BIN names one: the front that users run (DIR/bin/wgns) and the full wgns it hands every
// command but exec to (DIR/libexec/wgns/wgns).
func buildWgns() error {
	if p := os.Getenv("WGNS_BIN"); p != "" {
		abs, err := filepath.Abs(p)
		wgnsBin = abs
		return err
	}
	dir, err := os.MkdirTemp("", "wgns-bin-")
	if err != nil {
		return err
	}
	wgnsBin = filepath.Join(dir, "bin", "wgns")
	for _, b := range []struct{ out, pkg string }{
		{filepath.Join(dir, "libexec", "wgns", "wgns"), "../cmd/wgns"},
		{wgnsBin, "../cmd/wgns-front"},
	} {
		cmd := exec.Command("go", "build", "-trimpath", "-tags", "wgnstest", "-o", b.out, b.pkg)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("%v\n%s", err, out)
		}
	}
	return nil
}

// TestIntegrationWorldIsPrivate checks the harness itself: the world has only lo, its own /run,
// and /etc/netns is writable without reaching the machine's /etc.
func TestIntegrationWorldIsPrivate(t *testing.T) {
	links, err := netlink.LinkList()
	if err != nil {
		t.Fatal(err)
	}
	if len(links) != 1 || links[0].Attrs().Name != "lo" {
		t.Fatalf("world has links %v, want only lo", links)
	}
	if os.Getpid() == 1 {
		t.Fatal("tests must not run as the world's PID 1")
	}
	p := filepath.Join("/etc/netns", "probe")
	if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	os.Remove(p)
}
