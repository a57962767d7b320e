package wgns

import (
	"errors"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
)

// The parts of the real system that need no root.

func TestResolveEndpoints(t *testing.T) {
	cfg := testConfig(t, "")
	cfg.Peers = append(cfg.Peers, cfg.Peers[0], cfg.Peers[0], cfg.Peers[0])
	cfg.Peers[1].Endpoint, cfg.Peers[1].EndpointHost, cfg.Peers[1].EndpointPort = "[fd00::1]:1", "fd00::1", 1
	cfg.Peers[2].Endpoint, cfg.Peers[2].EndpointHost = "", "" // roams to us
	cfg.Peers[3].Endpoint, cfg.Peers[3].EndpointHost, cfg.Peers[3].EndpointPort = "localhost:7", "localhost", 7
	eps, err := resolveEndpoints(cfg, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	got := make([]string, len(eps))
	for i, ep := range eps {
		got[i] = "<nil>"
		if ep != nil {
			got[i] = ep.String()
		}
	}
	// localhost has 127.0.0.1 and ::1 here: IPv4 is preferred, as wg(8) does.
	if want := "198.51.100.2:51820 [fd00::1]:1 <nil> 127.0.0.1:7"; strings.Join(got, " ") != want {
		t.Errorf("resolved %v, want %s", got, want)
	}
	cfg.Peers[3].Endpoint, cfg.Peers[3].EndpointHost, cfg.Peers[3].Line = "nowhere.invalid:7", "nowhere.invalid", 12
	_, err = resolveEndpoints(cfg, time.Second)
	if err == nil || !strings.HasPrefix(err.Error(), `/etc/wgns/work.conf:12: resolving endpoint "nowhere.invalid": `) {
		t.Errorf("an unresolvable endpoint: %v", err)
	}
}

func TestPrefixConversions(t *testing.T) {
	for _, s := range []string{"192.0.2.7/24", "fd00::7/64", "0.0.0.0/0", "::/0"} {
		p := netip.MustParsePrefix(s)
		back, ok := ipNetToPrefix(prefixToIPNet(p))
		if !ok || back != p {
			t.Errorf("%s -> %v -> %v", p, prefixToIPNet(p), back)
		}
	}
	if _, ok := ipNetToPrefix(nil); ok {
		t.Error("a nil net converts")
	}
	for _, tt := range []struct {
		r    netlink.Route
		want string
	}{
		{netlink.Route{Family: netlink.FAMILY_V4}, "0.0.0.0/0"},
		{netlink.Route{Family: netlink.FAMILY_V6}, "::/0"},
		{netlink.Route{Dst: &net.IPNet{IP: net.ParseIP("192.0.2.7"), Mask: net.CIDRMask(24, 32)}}, "192.0.2.0/24"},
	} {
		if p, ok := routeDst(tt.r); !ok || p.String() != tt.want {
			t.Errorf("routeDst(%+v) = %v", tt.r, p)
		}
	}
	if family(netip.MustParseAddr("fd00::1")) != netlink.FAMILY_V6 || family(netip.MustParseAddr("192.0.2.1")) != netlink.FAMILY_V4 {
		t.Error("family")
	}
}

func TestHostSystemReadsWithoutRoot(t *testing.T) {
	var sys hostSystem
	if k := sys.hostLink("wgns-no-such"); k != "" {
		t.Errorf("a missing interface has kind %q", k)
	}
	if _, err := sys.nsID("wgns-no-such"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("nsID of a missing namespace: %v", err)
	}
	if _, err := sys.nsOpen("wgns-no-such"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("nsOpen of a missing namespace: %v", err)
	}
	if sys.nsEmpty("wgns-no-such") {
		t.Error("a missing namespace is empty")
	}
	if ok, err := sys.dnsMatches("wgns-no-such", dnsView(testConfig(t, ""))); ok || err != nil {
		t.Errorf("a missing DNS view matches: %v, %v", ok, err)
	}
	sys.uplinkMTU(nil) // the default route's, or 0 without one: either is fine
	KernelWireGuard()
	if _, ok := sys.backend(ModeKernel).(*kernelBackend); !ok {
		t.Error("the kernel backend is not kernel WireGuard")
	}
	if pid, start := sys.self(); pid != os.Getpid() || start == 0 {
		t.Errorf("self = %d, %d", pid, start)
	}
	if killPending(os.Getpid()) {
		t.Error("this process has a SIGKILL pending")
	}
	cfg := testConfig(t, "")
	cfg.Path = filepath.Join(t.TempDir(), "missing.conf")
	if _, err := sys.loadConfig(cfg.Path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("loading a missing config: %v", err)
	}
}

// A control socket left by a dead holder is removed; one that a live process serves is not.
func TestRemoveStaleUAPI(t *testing.T) {
	old := uapiDir
	uapiDir = t.TempDir()
	t.Cleanup(func() { uapiDir = old })
	if err := removeStaleUAPI("work"); err != nil {
		t.Errorf("no socket: %v", err)
	}
	l, err := net.Listen("unix", uapiPath("work"))
	if err != nil {
		t.Fatal(err)
	}
	if err := removeStaleUAPI("work"); err == nil || !strings.Contains(err.Error(), "in use by a running WireGuard process") {
		t.Errorf("a live socket: %v", err)
	}
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	l.Close()
	if err := removeStaleUAPI("work"); err != nil {
		t.Errorf("a stale socket: %v", err)
	}
	if _, err := os.Lstat(uapiPath("work")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the stale socket is still there: %v", err)
	}
}

func TestPlainDNSError(t *testing.T) {
	for _, tt := range []struct {
		err  error
		want string
	}{
		{&net.DNSError{Err: "no such host", Name: "x.invalid", Server: "192.0.2.53:53", IsNotFound: true}, "no such host, says the host's resolver (192.0.2.53:53)"},
		{&net.DNSError{Err: "i/o timeout", Name: "x", Server: "192.0.2.53:53", IsTimeout: true}, "the host's resolver (192.0.2.53:53) did not answer in time"},
		{&net.DNSError{Err: "dial udp 192.0.2.53:53: connect: network is unreachable", Name: "x", Server: "192.0.2.53:53"},
			"the host's resolver (192.0.2.53:53) cannot be asked: network is unreachable"},
		{errors.New("other"), "other"},
	} {
		if got := plainDNSError(tt.err); got.Error() != tt.want || !errors.Is(got, tt.err) {
			t.Errorf("plainDNSError(%v) = %v, want %s (and still the error)", tt.err, got, tt.want)
		}
	}
}
