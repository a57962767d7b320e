package wgns

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/wgns/wgns/wgns/config"
)

// The real system (hostSystem, the backends, wgctrl) is exercised here without root: TestMain
// runs the package's tests in a user namespace of their own, with network and mount namespaces
// of their own, a tmpfs on /run and an overlay on /etc, in which this process may make network
// namespaces, TUN devices, nftables tables and DNS views that no one else sees. Where the kernel
// allows no user namespaces, those tests say so and skip. The root tests in integration/ do the
// same against real peers.

const unitWorldEnv = "WGNS_UNIT_WORLD"

// inWorld reports whether this test process runs in the private world.
var inWorld bool

func TestMain(m *testing.M) {
	switch os.Getenv(unitWorldEnv) {
	case "":
		cmd := exec.Command("/proc/self/exe", os.Args[1:]...)
		cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
		cmd.Env = append(os.Environ(), unitWorldEnv+"=1")
		cmd.SysProcAttr = &syscall.SysProcAttr{
			Cloneflags:                 syscall.CLONE_NEWUSER | syscall.CLONE_NEWNS | syscall.CLONE_NEWNET,
			UidMappings:                []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getuid(), Size: 1}},
			GidMappings:                []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getgid(), Size: 1}},
			GidMappingsEnableSetgroups: false,
			Pdeathsig:                  syscall.SIGKILL,
		}
		err := cmd.Run()
		var ee *exec.ExitError
		switch {
		case err == nil:
			os.Exit(0)
		case errors.As(err, &ee):
			os.Exit(ee.ExitCode())
		}
		// No user namespaces here: the tests that need the world skip.
		fmt.Fprintf(os.Stderr, "wgns tests: no private world (%v): tests of the real system skip\n", err)
		os.Exit(m.Run())
	case "1":
		if err := setUpWorld(); err != nil {
			fmt.Fprintln(os.Stderr, "wgns tests: setting up the private world:", err)
			os.Exit(2)
		}
		inWorld = true
		os.Exit(m.Run())
	}
}

// setUpWorld makes the mounts of the private world: / private, tmpfs on /run (netns files,
// wgns's records, control sockets), an overlay on /etc whose upper layer is in that tmpfs, and
// /etc/netns in it; and brings lo up.
func setUpWorld() error {
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("making / private: %w", err)
	}
	if err := unix.Mount("tmpfs", "/run", "tmpfs", 0, "mode=0755"); err != nil {
		return fmt.Errorf("mounting a tmpfs on /run: %w", err)
	}
	for _, d := range []string{"/run/etc/upper", "/run/etc/work", "/run/wireguard"} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	if err := unix.Mount("overlay", "/etc", "overlay", 0, "lowerdir=/etc,upperdir=/run/etc/upper,workdir=/run/etc/work"); err != nil {
		return fmt.Errorf("mounting an overlay on /etc: %w", err)
	}
	if err := os.MkdirAll("/etc/netns", 0o755); err != nil {
		return err
	}
	uapiDir = "/run/wireguard"
	lo, err := netlink.LinkByName("lo")
	if err != nil {
		return err
	}
	return netlink.LinkSetUp(lo)
}

func needWorld(t *testing.T) {
	t.Helper()
	if !inWorld {
		t.Skip("no private world (user namespaces are not allowed here)")
	}
}

// A userspace tunnel made and held by this process, through the real system: up, status, a
// second up refused, the peers greeted and pointed afresh, the interface deleted and made again,
// repair's dry run finding nothing, and down leaving nothing. There is no peer: nothing answers.
func TestRealTunnel(t *testing.T) {
	needWorld(t)
	text := strings.Replace(testConfigText("[Namespace]\nAllowInbound = 51413/tcp\n"), "198.51.100.2:51820", "localhost:51820", 1)
	if err := os.MkdirAll("/etc/wgns", 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile("/etc/wgns/work.conf", []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load("/etc/wgns/work.conf")
	if err != nil {
		// Run by a user, / and /etc belong to no one this world knows (root outside it), so
		// wgns does not trust a config under them.
		t.Skipf("the world's /etc/wgns is not trusted here: %v", err)
	}
	var warnings []string
	tun, err := Up(UpOptions{Name: "work", Config: cfg, Mode: ModeUserspace, Warn: func(s string) { warnings = append(warnings, s) }})
	if err != nil {
		t.Fatal(err)
	}
	defer tun.Down()
	if _, err := Up(UpOptions{Name: "work", Config: cfg, Mode: ModeUserspace}); !errors.Is(err, ErrAlreadyUp) {
		t.Errorf("a second up: %v", err)
	}
	s, err := GetStatus("work", false)
	if err != nil {
		t.Fatal(err)
	}
	if s.State != "ready" || s.Firewall != "on" || len(s.Peers) != 1 || s.PublicKey != cfg.Interface.PublicKey.String() ||
		strings.Join(s.Addresses, ",") != "192.0.2.2/24,fd00:192:0:2::2/64" || strings.Join(s.DNS, ",") != "192.0.2.1" {
		t.Errorf("status %+v", s)
	}
	// The embedded TUN has no IPv6 link-local address (kernel WireGuard's has none either): the
	// kernel would send router solicitations into the tunnel.
	if v, err := openNS("work"); err == nil {
		l, _ := v.h.LinkByName("work")
		addrs, _ := v.h.AddrList(l, netlink.FAMILY_V6)
		for _, a := range addrs {
			if a.IP.IsLinkLocalUnicast() {
				t.Errorf("the tunnel interface has the link-local address %s", a.IPNet)
			}
		}
		v.close()
	}
	names, err := Names()
	if err != nil || strings.Join(names, ",") != "work" {
		t.Errorf("Names() = %v, %v", names, err)
	}
	if ok := tun.NamedEndpoints(); !ok {
		t.Error("localhost is not a named endpoint")
	}
	ctx := context.Background()
	if _, err := tun.Reresolve(ctx); err != nil {
		t.Errorf("Reresolve: %v", err)
	}
	if done, err := tun.Rehandshake(ctx); err != nil || len(done) != 2 {
		t.Errorf("Rehandshake: %q, %v", done, err)
	}
	tun.UplinkChanged()

	// The interface is deleted: the device dies, and recovery makes it again in the same,
	// still firewalled, namespace.
	v, err := openNS("work")
	if err != nil {
		t.Fatal(err)
	}
	l, err := v.h.LinkByName("work")
	if err != nil {
		t.Fatal(err)
	}
	if err := v.h.LinkDel(l); err != nil {
		t.Fatal(err)
	}
	v.close()
	select {
	case <-tun.Dead():
	case <-time.After(10 * time.Second):
		t.Fatal("the device did not notice its interface was deleted")
	}
	actions, err := tun.Recover()
	if err != nil || len(actions) == 0 {
		t.Fatalf("Recover: %q, %v", actions, err)
	}
	res, err := Repair("work", true)
	if err != nil || len(res.Actions) != 0 {
		t.Errorf("repair --dry-run after recovery: %+v, %v", res, err)
	}
	report, err := CheckWith("work", CheckOptions{MaxHandshakeAge: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range report.Checks {
		// There is no peer: no handshake, and the DNS server cannot answer.
		if !c.OK && c.Name != CheckHandshake && c.Name != CheckConfig && c.Name != CheckNameserver {
			t.Errorf("check %s: %s", c.Name, c.Detail)
		}
	}
	if err := tun.Down(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat("/run/netns/work"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("down left /run/netns/work: %v", err)
	}
	if wasUp, err := Down("work", DownOptions{}); wasUp || err != nil {
		t.Errorf("down of a tunnel that is down: %v, %v", wasUp, err)
	}
}

// Kernel WireGuard where the kernel has none: a clear error, and nothing left.
func TestRealKernelModeWithoutKernelWireGuard(t *testing.T) {
	needWorld(t)
	if KernelWireGuard() {
		t.Skip("this kernel has WireGuard")
	}
	_, err := Up(UpOptions{Name: "kern", Config: testConfig(t, ""), Mode: ModeKernel})
	if err == nil || !strings.Contains(err.Error(), `creating interface "kern": the kernel has no WireGuard support (use --userspace)`) {
		t.Errorf("up: %v", err)
	}
	if _, err := os.Stat("/run/netns/kern"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a failed up left /run/netns/kern: %v", err)
	}
}
