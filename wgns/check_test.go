package wgns

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"

	"github.com/google/go-cmp/cmp"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"github.com/wgns/wgns/dnsbind"
	"github.com/wgns/wgns/firewall"
	"github.com/wgns/wgns/nsmgr"
	"github.com/wgns/wgns/wgns/config"
)

// Fixed keys, so that the golden text is stable.
var (
	testOwnKey  = wgtypes.Key{1: 1, 31: 0x40}
	testPeerKey = wgtypes.Key{2: 2, 31: 0x40}
	testPeerPub = testPeerKey.PublicKey()
)

var testNow = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

func testConfig(t *testing.T, extra string) *config.Config {
	t.Helper()
	cfg, err := config.Parse("/etc/wgns/work.conf", []byte(testConfigText(extra)))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// testConfigText is the text of testConfig's config.
func testConfigText(extra string) string {
	return fmt.Sprintf(`[Interface]
PrivateKey = %s
Address = 192.0.2.2/24, fd00:192:0:2::2/64
DNS = 192.0.2.1

[Peer]
PublicKey = %s
AllowedIPs = 0.0.0.0/0, ::/0
Endpoint = 198.51.100.2:51820
PersistentKeepalive = 25
%s`, testOwnKey, testPeerPub, extra)
}

func defaultRuleList() []netlink.Rule {
	var out []netlink.Rule
	for _, d := range defaultRules {
		r := *netlink.NewRule()
		r.Family, r.Priority, r.Table = d.family, d.priority, d.table
		r.Protocol = unix.RTPROT_KERNEL
		out = append(out, r)
	}
	return out
}

// healthyFacts is what gather finds for a healthy userspace tunnel "work".
func healthyFacts(t *testing.T) *checkFacts {
	id := nsmgr.ID{Dev: 4, Ino: 4026532465}
	v4 := func(s string) netip.Prefix { return netip.MustParsePrefix(s) }
	return &checkFacts{
		now:         testNow,
		state:       &State{Name: "work", Mode: ModeUserspace, Config: "/etc/wgns/work.conf", Step: "ready", Ready: true, Netns: id, PID: 4242, Start: 99},
		cfg:         testConfig(t, ""),
		nsID:        id,
		holderAlive: true,
		links: []linkFact{
			{name: "lo", kind: "device", up: true, addrs: []string{"127.0.0.1/8", "::1/128"}},
			{name: "work", kind: "tuntap", up: true, addrs: []string{"192.0.2.2/24", "fd00:192:0:2::2/64"}},
		},
		routes: []routeFact{
			{family: netlink.FAMILY_V4, table: unix.RT_TABLE_MAIN, typ: unix.RTN_UNICAST, dst: v4("0.0.0.0/0"), devs: []string{"work"}},
			{family: netlink.FAMILY_V4, table: unix.RT_TABLE_MAIN, typ: unix.RTN_UNICAST, dst: v4("192.0.2.0/24"), devs: []string{"work"}},
			{family: netlink.FAMILY_V4, table: unix.RT_TABLE_LOCAL, typ: unix.RTN_LOCAL, dst: v4("127.0.0.0/8"), devs: []string{"lo"}},
			{family: netlink.FAMILY_V4, table: unix.RT_TABLE_LOCAL, typ: unix.RTN_LOCAL, dst: v4("192.0.2.2/32"), devs: []string{"work"}},
			{family: netlink.FAMILY_V6, table: unix.RT_TABLE_MAIN, typ: unix.RTN_UNICAST, dst: v4("::/0"), devs: []string{"work"}},
			{family: netlink.FAMILY_V6, table: unix.RT_TABLE_LOCAL, typ: unix.RTN_MULTICAST, dst: v4("ff00::/8"), devs: []string{"work"}},
		},
		rules:     defaultRuleList(),
		fw:        firewall.State{Present: true, Matches: true, Dropped: 3},
		viewsSeen: 2,
		peers:     []peerFact{{key: testPeerPub.String(), lastHandshake: testNow.Add(-42 * time.Second), keepalive: 25 * time.Second}},
		nameservers: []nameserverFact{{server: netip.MustParseAddr("192.0.2.1"), rtt: 12 * time.Millisecond,
			rcode: dnsmessage.RCodeSuccess}},
	}
}

func TestCheckHealthyText(t *testing.T) {
	r := evaluate("work", healthyFacts(t))
	want := `ok    config      /etc/wgns/work.conf
ok    namespace   /run/netns/work is the namespace wgns made (4:4026532465), ready
ok    process     the embedded WireGuard runs as PID 4242
ok    interfaces  only lo and work
ok    routes      all 6 routes via lo or work; AllowedIPs routed: 0.0.0.0/0, ::/0
ok    rules       only the default rules (lookup local, main, default)
ok    firewall    table inet wgns as wgns installed it; 3 packets dropped
ok    dns         /etc/netns/work/resolv.conf and nsswitch.conf as written (nameserver 192.0.2.1)
ok    views       all 2 processes inside see the namespace's DNS view and no host resolver
ok    nameserver  192.0.2.1 answered through the tunnel in 12.0 ms (Success)
ok    handshake   peer ` + testPeerPub.String() + `: latest handshake 42s ago
work: all 11 checks ok
`
	if d := cmp.Diff(want, r.Text()); d != "" {
		t.Errorf("text (-want +got):\n%s", d)
	}
	if !r.OK {
		t.Error("OK is false for a healthy tunnel")
	}
}

func TestCheckBrokenText(t *testing.T) {
	f := healthyFacts(t)
	f.links = append(f.links, linkFact{name: "vx", kind: "veth", up: true, addrs: []string{"203.0.113.2/24"}})
	f.routes = append(f.routes, routeFact{family: netlink.FAMILY_V4, table: unix.RT_TABLE_MAIN, typ: unix.RTN_UNICAST,
		dst: netip.MustParsePrefix("0.0.0.0/0"), gw: "203.0.113.1", devs: []string{"vx"}},
		routeFact{family: netlink.FAMILY_V4, table: unix.RT_TABLE_LOCAL, typ: unix.RTN_LOCAL,
			dst: netip.MustParsePrefix("203.0.113.2/32"), devs: []string{"vx"}})
	f.dns = []string{"/etc/netns/work/resolv.conf: content differs (- on disk, + wanted):\n\t-nameserver 9.9.9.9"}
	f.views = []viewFact{{pid: 4711, comm: "transmission-da", faults: []string{"/etc/resolv.conf is the host's file",
		"the host's /run/systemd/resolve is visible (systemd-resolved's socket /run/systemd/resolve/io.systemd.Resolve can be reached)"}}}
	f.resolvers = []dnsbind.ResolverSocket{{Daemon: "nscd", Path: "/run/nscd/socket"}}
	r := evaluate("work", f)
	want := `ok    config      /etc/wgns/work.conf
ok    namespace   /run/netns/work is the namespace wgns made (4:4026532465), ready
ok    process     the embedded WireGuard runs as PID 4242
FAIL  interfaces  extra interface vx (veth, up, 203.0.113.2/24)
FAIL  routes      not via the tunnel: default via 203.0.113.1 dev vx, local 203.0.113.2 dev vx table local
ok    rules       only the default rules (lookup local, main, default)
ok    firewall    table inet wgns as wgns installed it; 3 packets dropped
FAIL  dns         /etc/netns/work/resolv.conf: content differs (- on disk, + wanted):
                  -nameserver 9.9.9.9
FAIL  views       PID 4711 (transmission-da): /etc/resolv.conf is the host's file, the host's /run/systemd/resolve is visible (systemd-resolved's socket /run/systemd/resolve/io.systemd.Resolve can be reached)
ok    nameserver  192.0.2.1 answered through the tunnel in 12.0 ms (Success)
ok    handshake   peer ` + testPeerPub.String() + `: latest handshake 42s ago
warn  nscd's socket /run/nscd/socket exists: a program run with ` + "`ip netns exec work`" + ` would resolve names through it, outside the tunnel (` + "`wgns exec`" + ` and services confined with ` + "`wgns unit install`" + ` cannot reach it)
work: 4 of 11 checks FAILED (interfaces, routes, dns, views)
`
	if d := cmp.Diff(want, r.Text()); d != "" {
		t.Errorf("text (-want +got):\n%s", d)
	}
	if r.OK {
		t.Error("OK is true with failed checks")
	}
}

// TestCheckJSONShape pins the JSON field names, which scripts rely on.
func TestCheckJSONShape(t *testing.T) {
	r := &CheckReport{Name: "work", OK: false, Checks: []CheckResult{
		{Name: CheckInterfaces, OK: false, Detail: "extra interface vx (veth, up)"},
		{Name: CheckHandshake, OK: true, Detail: "peer K: latest handshake 1s ago"},
	}}
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"name":"work","ok":false,"checks":[{"name":"interfaces","ok":false,"detail":"extra interface vx (veth, up)"},{"name":"handshake","ok":true,"detail":"peer K: latest handshake 1s ago"}]}`
	if string(b) != want {
		t.Errorf("JSON:\n got %s\nwant %s", b, want)
	}
	r.Warnings = []string{"nscd's socket /run/nscd/socket exists"}
	if b, err = json.Marshal(r); err != nil {
		t.Fatal(err)
	}
	if want := strings.TrimSuffix(want, "}") + `,"warnings":["nscd's socket /run/nscd/socket exists"]}`; string(b) != want {
		t.Errorf("JSON with a warning:\n got %s\nwant %s", b, want)
	}
}

// TestCheckOrder: the checks come in the documented order, each once, whatever fails.
func TestCheckOrder(t *testing.T) {
	want := []string{CheckConfig, CheckNamespace, CheckProcess, CheckInterfaces, CheckRoutes, CheckRules,
		CheckFirewall, CheckDNS, CheckViews, CheckNameserver, CheckHandshake}
	for _, f := range []*checkFacts{healthyFacts(t), {now: testNow, state: &State{Name: "work"}, cfgErr: errors.New("x"), nsErr: errors.New("y")}} {
		var got []string
		for _, c := range evaluate("work", f).Checks {
			got = append(got, c.Name)
		}
		if !slices.Equal(got, want) {
			t.Errorf("checks %v, want %v", got, want)
		}
	}
}

func TestCheckFaults(t *testing.T) {
	prefix := netip.MustParsePrefix
	route := func(table, typ int, dst string, devs ...string) routeFact {
		return routeFact{family: netlink.FAMILY_V4, table: table, typ: typ, dst: prefix(dst), devs: devs}
	}
	rule := func(fam, prio, table int, edit func(*netlink.Rule)) netlink.Rule {
		r := *netlink.NewRule()
		r.Family, r.Priority, r.Table = fam, prio, table
		if edit != nil {
			edit(&r)
		}
		return r
	}
	tests := []struct {
		name   string
		edit   func(t *testing.T, f *checkFacts)
		failed map[string]string // check name -> a part of its detail
		passed map[string]string // checks that must pass, with a part of their detail
	}{
		{
			name:   "healthy",
			edit:   func(*testing.T, *checkFacts) {},
			passed: map[string]string{CheckInterfaces: "only lo and work"},
		},
		{
			name:   "extra interface, even down and without addresses",
			edit:   func(_ *testing.T, f *checkFacts) { f.links = append(f.links, linkFact{name: "eth0", kind: "veth"}) },
			failed: map[string]string{CheckInterfaces: "extra interface eth0 (veth, down)"},
		},
		{
			name: "tunnel interface deleted (its routes went with it)",
			edit: func(_ *testing.T, f *checkFacts) {
				f.links = f.links[:1]
				f.routes = slices.DeleteFunc(f.routes, func(r routeFact) bool { return slices.Contains(r.devs, "work") })
				f.wgErr = errors.New(`reading WireGuard interface "work": file does not exist`)
			},
			failed: map[string]string{
				CheckInterfaces: "tunnel interface work is missing",
				CheckRoutes:     "missing route 0.0.0.0/0 dev work; missing route ::/0 dev work",
				CheckHandshake:  "no WireGuard device to ask",
			},
		},
		{
			name: "something else named like the tunnel",
			edit: func(_ *testing.T, f *checkFacts) {
				f.links[1].kind = "veth"
			},
			failed: map[string]string{CheckInterfaces: "interface work is a veth device, not the tuntap device wgns made (userspace mode)"},
		},
		{
			name:   "tunnel down",
			edit:   func(_ *testing.T, f *checkFacts) { f.links[1].up = false },
			failed: map[string]string{CheckInterfaces: "tunnel interface work is down"},
		},
		{
			name: "kernel mode wants a wireguard link",
			edit: func(_ *testing.T, f *checkFacts) {
				f.state.Mode = ModeKernel
			},
			failed: map[string]string{CheckInterfaces: "not the wireguard device wgns made (kernel mode)"},
			passed: map[string]string{CheckProcess: "the supervisor runs as PID 4242"},
		},
		{
			// A kernel tunnel works on without its supervisor, but nothing watches it.
			name: "kernel mode, supervisor gone",
			edit: func(_ *testing.T, f *checkFacts) {
				f.state.Mode = ModeKernel
				f.holderAlive = false
				f.links[1].kind = "wireguard"
			},
			failed: map[string]string{CheckProcess: "the supervisor (PID 4242) is gone: kernel WireGuard works on, unwatched"},
		},
		{
			name: "route out of another interface",
			edit: func(_ *testing.T, f *checkFacts) {
				r := route(unix.RT_TABLE_MAIN, unix.RTN_UNICAST, "203.0.113.0/24", "vx")
				r.gw = "198.51.100.1"
				f.routes = append(f.routes, r)
			},
			failed: map[string]string{CheckRoutes: "not via the tunnel: 203.0.113.0/24 via 198.51.100.1 dev vx"},
		},
		{
			name: "route in another table",
			edit: func(_ *testing.T, f *checkFacts) {
				f.routes = append(f.routes, route(100, unix.RTN_UNICAST, "0.0.0.0/0", "vx"))
			},
			failed: map[string]string{CheckRoutes: "default dev vx table 100"},
		},
		{
			name: "multipath route with one hop outside",
			edit: func(_ *testing.T, f *checkFacts) {
				f.routes = append(f.routes, route(unix.RT_TABLE_MAIN, unix.RTN_UNICAST, "192.0.2.128/25", "work", "vx"))
			},
			failed: map[string]string{CheckRoutes: "192.0.2.128/25 dev work dev vx"},
		},
		{
			name: "unicast route without a device (nexthop object)",
			edit: func(_ *testing.T, f *checkFacts) {
				f.routes = append(f.routes, route(unix.RT_TABLE_MAIN, unix.RTN_UNICAST, "192.0.2.128/25"))
			},
			failed: map[string]string{CheckRoutes: "192.0.2.128/25 (no device)"},
		},
		{
			name: "routes that drop are fine",
			edit: func(_ *testing.T, f *checkFacts) {
				f.routes = append(f.routes, route(unix.RT_TABLE_MAIN, unix.RTN_BLACKHOLE, "192.0.2.128/25"),
					route(100, unix.RTN_UNREACHABLE, "0.0.0.0/0"), route(unix.RT_TABLE_MAIN, unix.RTN_PROHIBIT, "203.0.113.0/24"))
			},
			passed: map[string]string{CheckRoutes: "all 9 routes via lo or work"},
		},
		{
			name: "many bad routes are summed up",
			edit: func(_ *testing.T, f *checkFacts) {
				for i := range 8 {
					f.routes = append(f.routes, route(unix.RT_TABLE_MAIN, unix.RTN_UNICAST, fmt.Sprintf("203.0.113.%d/32", i), "vx"))
				}
			},
			failed: map[string]string{CheckRoutes: "203.0.113.5 dev vx and 2 more"},
		},
		{
			name: "an AllowedIPs route is missing",
			edit: func(_ *testing.T, f *checkFacts) {
				f.routes = slices.DeleteFunc(f.routes, func(r routeFact) bool { return r.dst == prefix("::/0") })
			},
			failed: map[string]string{CheckRoutes: "missing route ::/0 dev work"},
		},
		{
			name: "extra policy rule",
			edit: func(_ *testing.T, f *checkFacts) {
				f.rules = append(f.rules, rule(netlink.FAMILY_V4, 100, 200, func(r *netlink.Rule) { r.Mark = 1 }))
			},
			failed: map[string]string{CheckRules: "unexpected: -4 100: from all fwmark 0x1 lookup 200"},
		},
		{
			name: "a default rule with a selector is not the default rule",
			edit: func(_ *testing.T, f *checkFacts) {
				f.rules[1].IifName = "vx"
			},
			failed: map[string]string{CheckRules: "unexpected: -4 32766: from all iif vx lookup main; missing: -4 32766: from all lookup main"},
		},
		{
			name: "a default rule twice",
			edit: func(_ *testing.T, f *checkFacts) {
				f.rules = append(f.rules, f.rules[3])
			},
			failed: map[string]string{CheckRules: "unexpected: -6 0: from all lookup local"},
		},
		{
			name: "rule without table (blackhole)",
			edit: func(_ *testing.T, f *checkFacts) {
				f.rules = append(f.rules, rule(netlink.FAMILY_V6, 5, 0, func(r *netlink.Rule) {
					r.Src = &net.IPNet{IP: net.ParseIP("fd00::"), Mask: net.CIDRMask(8, 128)}
				}))
			},
			failed: map[string]string{CheckRules: "-6 5: from fd00::/8 (no table"},
		},
		{
			name:   "firewall missing",
			edit:   func(_ *testing.T, f *checkFacts) { f.fw = firewall.State{Diff: []string{"table inet wgns is missing"}} },
			failed: map[string]string{CheckFirewall: "table inet wgns is missing"},
		},
		{
			name: "firewall altered",
			edit: func(_ *testing.T, f *checkFacts) {
				f.fw = firewall.State{Present: true, Diff: []string{"chain output: policy accept, want drop", "chain input is missing"}}
			},
			failed: map[string]string{CheckFirewall: "table inet wgns was altered: chain output: policy accept, want drop; chain input is missing"},
		},
		{
			name:   "firewall unreadable",
			edit:   func(_ *testing.T, f *checkFacts) { f.fwErr = errors.New("netlink: permission denied") },
			failed: map[string]string{CheckFirewall: "could not check: netlink: permission denied"},
		},
		{
			name: "firewall off by config",
			edit: func(t *testing.T, f *checkFacts) {
				f.cfg = testConfig(t, "[Namespace]\nFirewall = off\n")
				f.fw = firewall.State{}
			},
			passed: map[string]string{CheckFirewall: "off, as the config says"},
		},
		{
			name: "opened ports are shown",
			edit: func(t *testing.T, f *checkFacts) {
				f.cfg = testConfig(t, "[Namespace]\nAllowInbound = 51413/tcp, 51413/udp\n")
			},
			passed: map[string]string{CheckFirewall: "inbound open on 51413/tcp, 51413/udp"},
		},
		{
			name: "the provider's forwarded port is shown",
			edit: func(t *testing.T, f *checkFacts) {
				f.cfg = testConfig(t, "[Namespace]\nPortForward = natpmp:192.0.2.1\n")
				f.fw.Forwarded = []firewall.Port{{Port: 40000, Proto: "tcp"}, {Port: 40000, Proto: "udp"}}
			},
			passed: map[string]string{CheckFirewall: "forwarded port open: 40000/tcp, 40000/udp"},
		},
		{
			name: "no forwarded port yet",
			edit: func(t *testing.T, f *checkFacts) {
				f.cfg = testConfig(t, "[Namespace]\nPortForward = natpmp:192.0.2.1\n")
			},
			passed: map[string]string{CheckFirewall: "forwarded port open: none yet"},
		},
		{
			name:   "DNS files differ",
			edit:   func(_ *testing.T, f *checkFacts) { f.dns = []string{"/etc/netns/work/nsswitch.conf: missing", "x: y"} },
			failed: map[string]string{CheckDNS: "/etc/netns/work/nsswitch.conf: missing; x: y"},
		},
		{
			name: "no DNS configured",
			edit: func(t *testing.T, f *checkFacts) {
				f.cfg = testConfig(t, "")
				f.cfg.Interface.DNS = nil
			},
			passed: map[string]string{CheckDNS: "no DNS server: lookups fail"},
		},
		{
			name: "config unreadable",
			edit: func(_ *testing.T, f *checkFacts) {
				f.cfg, f.cfgErr = nil, fmt.Errorf("reading config /etc/wgns/work.conf: %w", fs.ErrNotExist)
			},
			failed: map[string]string{
				CheckConfig:     "reading config /etc/wgns/work.conf: file does not exist",
				CheckFirewall:   "not checked: the config cannot be read",
				CheckDNS:        "not checked: the config cannot be read",
				CheckNameserver: "not checked: the config cannot be read",
			},
			passed: map[string]string{CheckRoutes: "all 6 routes via lo or work"},
		},
		{
			name: "a DNS server does not answer through the tunnel",
			edit: func(_ *testing.T, f *checkFacts) {
				f.nameservers = append(f.nameservers, nameserverFact{server: netip.MustParseAddr("192.0.2.53"), err: errors.New("no answer in 2s")})
			},
			failed: map[string]string{CheckNameserver: "192.0.2.53 did not answer through the tunnel: no answer in 2s (programs inside cannot resolve names through it)"},
			passed: map[string]string{},
		},
		{
			name: "no DNS server to ask",
			edit: func(_ *testing.T, f *checkFacts) {
				f.cfg.Interface.DNS, f.nameservers = nil, nil
			},
			passed: map[string]string{CheckNameserver: "no DNS server in the config"},
		},
		{
			// A peer without an Endpoint roams: it handshakes when it sends, and is not failed
			// for not having done so yet.
			name: "a roaming peer without a handshake",
			edit: func(_ *testing.T, f *checkFacts) {
				f.cfg.Peers[0].Endpoint, f.cfg.Peers[0].EndpointHost = "", ""
				f.peers[0].lastHandshake = time.Time{}
			},
			passed: map[string]string{CheckHandshake: "no handshake yet (it has no Endpoint: it roams, and handshakes when it sends)"},
		},
		{
			name: "no handshake yet",
			edit: func(_ *testing.T, f *checkFacts) {
				f.peers[0].lastHandshake = time.Time{}
			},
			failed: map[string]string{CheckHandshake: "peer " + testPeerPub.String() + ": no handshake yet"},
		},
		{
			name: "handshake too old",
			edit: func(_ *testing.T, f *checkFacts) {
				f.peers[0].lastHandshake = testNow.Add(-HandshakeMaxAge - time.Second)
			},
			failed: map[string]string{CheckHandshake: ": latest handshake 3m1s ago, more than 3m0s"},
		},
		{
			name: "handshake just young enough",
			edit: func(_ *testing.T, f *checkFacts) {
				f.peers[0].lastHandshake = testNow.Add(-HandshakeMaxAge)
			},
			passed: map[string]string{CheckHandshake: "latest handshake 3m0s ago"},
		},
		{
			name: "a stricter age from the options",
			edit: func(_ *testing.T, f *checkFacts) {
				f.maxAge = 10 * time.Second
			},
			failed: map[string]string{CheckHandshake: "latest handshake 42s ago, more than 10s"},
		},
		{
			name: "an idle tunnel without keepalive gets a hint",
			edit: func(_ *testing.T, f *checkFacts) {
				f.peers[0].lastHandshake = testNow.Add(-time.Hour)
				f.peers[0].keepalive = 0
			},
			failed: map[string]string{CheckHandshake: "without PersistentKeepalive"},
		},
		{
			name: "one of two peers silent",
			edit: func(_ *testing.T, f *checkFacts) {
				f.peers = append(f.peers, peerFact{key: "SECOND", lastHandshake: testNow.Add(-time.Hour), keepalive: time.Second})
			},
			failed: map[string]string{CheckHandshake: "peer SECOND: latest handshake 1h0m0s ago"},
		},
		{
			name:   "no peers",
			edit:   func(_ *testing.T, f *checkFacts) { f.peers = nil },
			failed: map[string]string{CheckHandshake: "no peer"},
		},
		{
			name: "holder killed",
			edit: func(_ *testing.T, f *checkFacts) {
				f.holderAlive = false
				f.links = f.links[:1]
				f.routes = nil
				f.wgErr = errors.New("gone")
			},
			failed: map[string]string{
				CheckProcess:    "the embedded WireGuard's process (PID 4242) is gone",
				CheckInterfaces: "tunnel interface work is missing",
				CheckRoutes:     "missing route 0.0.0.0/0 dev work",
				CheckHandshake:  "no WireGuard device to ask: gone",
			},
		},
		{
			name: "namespace replaced",
			edit: func(_ *testing.T, f *checkFacts) {
				f.nsID = nsmgr.ID{Dev: 4, Ino: 1}
			},
			failed: map[string]string{CheckNamespace: "/run/netns/work is namespace 4:1, not 4:4026532465 that wgns made"},
		},
		{
			name: "not ready",
			edit: func(_ *testing.T, f *checkFacts) {
				f.state.Ready, f.state.Step = false, "peers"
			},
			failed: map[string]string{CheckNamespace: `not ready: up stopped at step "peers"`},
		},
		{
			name: "namespace gone",
			edit: func(_ *testing.T, f *checkFacts) {
				*f = checkFacts{now: f.now, state: f.state, cfg: f.cfg, holderAlive: true,
					nsErr: fmt.Errorf(`opening network namespace "work": %w`, fs.ErrNotExist)}
			},
			failed: map[string]string{
				CheckNamespace:  `opening network namespace "work": file does not exist`,
				CheckInterfaces: "not checked: the namespace could not be opened",
				CheckRoutes:     "not checked",
				CheckRules:      "not checked",
				CheckFirewall:   "not checked",
				CheckViews:      "not checked",
				CheckNameserver: "not checked",
				CheckHandshake:  "not checked",
			},
		},
		{
			name:   "no process inside",
			edit:   func(_ *testing.T, f *checkFacts) { f.viewsSeen = 0 },
			passed: map[string]string{CheckViews: "no process inside"},
		},
		{
			name:   "one process inside",
			edit:   func(_ *testing.T, f *checkFacts) { f.viewsSeen = 1 },
			passed: map[string]string{CheckViews: "the process inside sees the namespace's DNS view"},
		},
		{
			name: "views detached, in two processes",
			edit: func(_ *testing.T, f *checkFacts) {
				f.viewsSeen = 3
				f.views = []viewFact{
					{pid: 10, comm: "sleep", faults: []string{"/etc/nsswitch.conf is not the namespace's file"}},
					{pid: 12, comm: "getent", faults: []string{"the host's /run/nscd is visible (a socket nscd makes there would be reached)"}},
				}
			},
			failed: map[string]string{CheckViews: "PID 10 (sleep): /etc/nsswitch.conf is not the namespace's file; " +
				"PID 12 (getent): the host's /run/nscd is visible (a socket nscd makes there would be reached)"},
		},
		{
			name:   "processes not listed",
			edit:   func(_ *testing.T, f *checkFacts) { f.viewsErr = errors.New("listing processes: EACCES") },
			failed: map[string]string{CheckViews: "could not check: listing processes: EACCES"},
		},
		{
			name: "netlink unreadable",
			edit: func(_ *testing.T, f *checkFacts) {
				err := errors.New("opening netlink in the namespace: EPERM")
				f.linksErr, f.routesErr, f.rulesErr = err, err, err
			},
			failed: map[string]string{
				CheckInterfaces: "could not check: opening netlink",
				CheckRoutes:     "could not check: opening netlink",
				CheckRules:      "could not check: opening netlink",
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := healthyFacts(t)
			tc.edit(t, f)
			r := evaluate("work", f)
			var failed []string
			for _, c := range r.Checks {
				if want, ok := tc.failed[c.Name]; ok {
					failed = append(failed, c.Name)
					if c.OK || !strings.Contains(c.Detail, want) {
						t.Errorf("%s: ok=%v %q, want FAIL containing %q", c.Name, c.OK, c.Detail, want)
					}
					continue
				}
				if !c.OK {
					t.Errorf("%s: unexpected FAIL: %s", c.Name, c.Detail)
				}
				if want, ok := tc.passed[c.Name]; ok && !strings.Contains(c.Detail, want) {
					t.Errorf("%s: detail %q, want it to contain %q", c.Name, c.Detail, want)
				}
			}
			if len(failed) != len(tc.failed) {
				t.Errorf("failed checks %v, want %v", failed, tc.failed)
			}
			if r.OK != (len(tc.failed) == 0) {
				t.Errorf("report OK = %v with %d failures", r.OK, len(failed))
			}
			if !slices.Equal(r.Failed(), failed) {
				t.Errorf("Failed() = %v, want %v", r.Failed(), failed)
			}
		})
	}
}

// TestCheckInvalidName: a bad name is refused before anything is read.
func TestCheckInvalidName(t *testing.T) {
	for _, name := range []string{"", "a/b", "..", "sixteen-chars-xx"} {
		if _, err := Check(name); !errors.Is(err, nsmgr.ErrInvalidName) {
			t.Errorf("Check(%q): %v, want ErrInvalidName", name, err)
		}
	}
}
