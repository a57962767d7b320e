package integration

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/wgns/wgns/internal/linediff"
	"github.com/wgns/wgns/internal/syncbuf"
)

// The leak tests prove the kill switch the way VPN clients are audited: probes of every kind
// from inside the namespace, to every kind of address outside the tunnel, while tcpdump records
// what reaches the host world's uplink (the veth to the peer). In every state of the tunnel
// (before the first handshake, connected, with an extra interface moved in, its interface
// deleted, the peer stopped, the embedded WireGuard killed or kernel WireGuard's module
// unloaded) the uplink carries nothing but WireGuard's UDP between the host world and the
// endpoint.

// Addresses the leak tests add (TEST-NET and ULA only).
const (
	leakOutside6    = "fd00:203:0:113::9" // like outside4: reachable from the host world, in no AllowedIPs
	leakExtraWorld4 = "203.0.113.1"       // the host world's side of an extra veth moved into a namespace
	leakExtraNS4    = "203.0.113.2"
	leakExtraWorld6 = "fd00:203:1::1"
	leakExtraNS6    = "fd00:203:1::2"
	leakDNSName     = "probe.leak.test" // answered by the peer's DNS server, through the tunnel only
	leakDNSAddr     = "192.0.2.53"
)

// leakWorld is a peer plus a client config whose AllowedIPs cover only the peer's tunnel
// networks, so that the host world can reach addresses (outside4, leakOutside6, the underlay) that
// the tunnel does not route.
type leakWorld struct {
	p      *peer
	name   string
	uplink string // the host world's side of the veth to the peer
	config string
	ports  map[string]bool // the tunnel's UDP ports seen so far (a recovered device gets a new one)
	lls    map[string]bool // link-local addresses of the uplink's two ends
}

func newLeakWorld(t *testing.T, name string) *leakWorld {
	t.Helper()
	p := newPeer(t, name)
	w := &leakWorld{p: p, name: name, uplink: ifname("vh-" + name), ports: map[string]bool{}, lls: map[string]bool{}}
	// An IPv6 address outside the tunnel, reachable from the host world (outside4's twin).
	mustRun(t, "ip", "-n", p.NS, "addr", "add", leakOutside6+"/128", "dev", "lo")
	mustRun(t, "ip", "-6", "route", "add", leakOutside6+"/128", "via", peerUnderlay6)
	// A DNS server on the peer's tunnel address: a name lookup inside succeeds only through the
	// tunnel.
	startDnsmasq(t, p.NS, "the tunnel's DNS", []string{peerTunnel4}, "/leak.test/"+leakDNSAddr)
	w.config = filepath.Join(t.TempDir(), name+".conf")
	conf := fmt.Sprintf(`[Interface]
PrivateKey = %s
Address = %s/24, %s/64
DNS = %s

[Peer]
PublicKey = %s
AllowedIPs = 192.0.2.0/24, fd00:192:0:2::/64
Endpoint = %s:%d
PersistentKeepalive = 25
`, p.ClientKey, clientTunnel4, clientTunnel6, peerTunnel4, p.Key.PublicKey(), peerUnderlay4, peerPort)
	if err := os.WriteFile(w.config, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	waitDADSettled(t, w.uplink)
	for _, ns := range []string{"", p.NS} {
		args := []string{"-6", "-o", "addr", "show", "scope", "link"}
		if ns != "" {
			args = append([]string{"-n", ns}, args...)
		}
		for _, f := range strings.Fields(mustRun(t, "ip", args...)) {
			if strings.HasPrefix(f, "fe80:") {
				w.lls[strings.SplitN(f, "/", 2)[0]] = true
			}
		}
	}
	return w
}

// waitDADSettled waits until the host world's interface iface has finished duplicate address
// detection on its IPv6 addresses, so that a snapshot taken now stays the same.
func waitDADSettled(t *testing.T, iface string) {
	t.Helper()
	waitFor(t, 10*time.Second, "IPv6 duplicate address detection on "+iface, func() bool {
		out, _ := run("ip", "-6", "-o", "addr", "show", "dev", iface, "tentative")
		return strings.TrimSpace(out) == ""
	})
}

// ifname is s cut to the 15 bytes an interface name may have.
func ifname(s string) string {
	if len(s) > 15 {
		return s[:15]
	}
	return s
}

// leakTarget is an address a probe is sent to.
type leakTarget struct {
	group string // a: outside AllowedIPs, b: the peer's underlay, c: the host world, t: the tunnel
	addr  string
}

// leakTargets are the addresses outside the tunnel: (a) reachable from the host world but in no
// AllowedIPs, (b) the peer's underlay address, (c) the host world's own addresses (the extra
// veth's world side too, which exists only in one state).
var leakTargets = []leakTarget{
	{"a", outside4}, {"a", leakOutside6},
	{"b", peerUnderlay4}, {"b", peerUnderlay6},
	{"c", hostUnderlay4}, {"c", hostUnderlay6}, {"c", leakExtraWorld4}, {"c", leakExtraWorld6},
}

// outsideProbes returns shell commands, by label, that each probe one target one way: ICMP echo,
// a TCP connect, a UDP datagram, and DNS over UDP and TCP. Each exits 0 only if the probe got
// through (a reply, a connection) or, for UDP, if the datagram was sent.
func outsideProbes() map[string]string {
	dnsQuery := `\022\064\001\000\000\001\000\000\000\000\000\000\005probe\004leak\004test\000\000\001\000\001`
	probes := map[string]string{}
	for _, tg := range leakTargets {
		l := tg.group + ":" + tg.addr
		probes[l+":icmp"] = "ping -c1 -W1 " + tg.addr
		probes[l+":tcp"] = "nc -z -w1 " + tg.addr + " 80"
		probes[l+":udp"] = fmt.Sprintf(`bash -c 'echo probe >/dev/udp/%s/9'`, tg.addr)
		probes[l+":dns-udp"] = fmt.Sprintf(`bash -c 'printf "%s" >/dev/udp/%s/53'`, dnsQuery, tg.addr)
		probes[l+":dns-tcp"] = "nc -z -w1 " + tg.addr + " 53"
	}
	// Controls: the same kinds of probe to the peer's tunnel addresses, and a name lookup through
	// resolv.conf. They succeed when the tunnel carries traffic, which shows the probes can.
	probes["t:"+peerTunnel4+":icmp"] = "ping -c1 -W1 " + peerTunnel4
	probes["t:"+peerTunnel6+":icmp"] = "ping -c1 -W1 " + peerTunnel6
	probes["t:dns:lookup"] = "env RES_OPTIONS='timeout:1 attempts:1' getent ahostsv4 " + leakDNSName
	return probes
}

// runOutsideProbes runs every probe at once inside the tunnel namespace and returns, by label,
// whether it got through.
func runOutsideProbes(t *testing.T, name string) map[string]bool {
	t.Helper()
	probes := outsideProbes()
	out, errOut, code := wgnsRun(t, "exec", name, "--", "sh", "-c", parallelProbes(probes))
	if code != 0 {
		t.Fatalf("running the probes in %s: exit %d\n%s", name, code, errOut)
	}
	return probeResults(t, out, probes)
}

// parallelProbes is a shell script that runs every probe at once, each for at most 5 s, and prints
// a line "LABEL STATUS" for each.
func parallelProbes(probes map[string]string) string {
	var script strings.Builder
	for label, cmd := range probes {
		fmt.Fprintf(&script, "( timeout 5 %s >/dev/null 2>&1; echo \"%s $?\" ) &\n", cmd, label)
	}
	script.WriteString("wait\n")
	return script.String()
}

// probeResults reads parallelProbes's output: by label, whether the probe got through (exited 0).
// It fails the test unless each probe printed one well-formed line.
func probeResults(t *testing.T, out string, probes map[string]string) map[string]bool {
	t.Helper()
	got := map[string]bool{}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(l)
		if len(f) != 2 {
			t.Fatalf("probe output line %q", l)
		}
		got[f[0]] = f[1] == "0"
	}
	if len(got) != len(probes) {
		t.Fatalf("%d probe results for %d probes:\n%s", len(got), len(probes), out)
	}
	return got
}

// tcpdumpCapture is a tcpdump on one interface of the host world, writing every packet to a file.
type tcpdumpCapture struct {
	iface string
	file  string
	cmd   *exec.Cmd
	done  chan struct{}
	log   syncbuf.Buffer
}

// startCapture starts tcpdump on iface and returns once tcpdump says it is listening.
func startCapture(t *testing.T, iface string) *tcpdumpCapture {
	t.Helper()
	c := &tcpdumpCapture{iface: iface, file: filepath.Join(t.TempDir(), iface+".pcap"), done: make(chan struct{})}
	c.cmd = exec.Command("tcpdump", "-i", iface, "-nn", "-U", "--immediate-mode", "-Z", "root", "-w", c.file)
	stderr, err := c.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.cmd.Start(); err != nil {
		t.Fatalf("starting tcpdump on %s: %v", iface, err)
	}
	t.Cleanup(func() { c.cmd.Process.Kill(); <-c.done })
	listening := make(chan struct{})
	go func() {
		defer close(c.done)
		sc := bufio.NewScanner(stderr)
		said := false
		for sc.Scan() {
			c.log.Write([]byte(sc.Text() + "\n"))
			if !said && strings.Contains(sc.Text(), "listening on") {
				said = true
				close(listening)
			}
		}
		c.cmd.Wait()
	}()
	select {
	case <-listening:
	case <-c.done:
		t.Fatalf("tcpdump on %s ended: %s", iface, c.stderr())
	case <-time.After(scaled(10 * time.Second)):
		t.Fatalf("tcpdump on %s did not start listening: %s", iface, c.stderr())
	}
	return c
}

func (c *tcpdumpCapture) stderr() string {
	return c.log.String()
}

// stop ends the capture and returns its packets as `tcpdump -nn -t` prints them, with the
// link-level header (-e) when linkLevel.
func (c *tcpdumpCapture) stop(t *testing.T, linkLevel bool) []string {
	t.Helper()
	c.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-c.done:
	case <-time.After(scaled(10 * time.Second)):
		t.Fatalf("tcpdump on %s did not stop", c.iface)
	}
	args := []string{"-r", c.file, "-nn", "-t"}
	if linkLevel {
		args = append(args, "-e")
	}
	out, err := exec.Command("tcpdump", args...).Output()
	if err != nil {
		t.Fatalf("reading the capture of %s: %v (%s)", c.iface, err, c.stderr())
	}
	s := strings.TrimSpace(string(out))
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

var (
	// WireGuard's UDP between the host world and the endpoint, either way.
	leakWGOut4 = regexp.MustCompile(`^IP ` + regexp.QuoteMeta(hostUnderlay4) + `\.(\d+) > ` + regexp.QuoteMeta(peerUnderlay4) + `\.51820: UDP, length \d+$`)
	leakWGIn4  = regexp.MustCompile(`^IP ` + regexp.QuoteMeta(peerUnderlay4) + `\.51820 > ` + regexp.QuoteMeta(hostUnderlay4) + `\.(\d+): UDP, length \d+$`)
	// The stopped peer's kernel refusing WireGuard's UDP.
	leakWGRefused4 = regexp.MustCompile(`^IP ` + regexp.QuoteMeta(peerUnderlay4) + ` > ` + regexp.QuoteMeta(hostUnderlay4) + `: ICMP ` + regexp.QuoteMeta(peerUnderlay4) + ` udp port 51820 unreachable, length \d+$`)
	// Address resolution between the two ends of the uplink.
	leakARPUplink = regexp.MustCompile(`^ARP, (Request who-has (198\.51\.100\.[12]) tell (198\.51\.100\.[12])|Reply (198\.51\.100\.[12]) is-at [0-9a-f:]+), length \d+$`)
	// IPv6 link housekeeping of the uplink's own two ends (neighbour discovery, duplicate address
	// detection, router solicitations, multicast listener reports).
	leakND6 = regexp.MustCompile(`^IP6 (\S+) > (\S+): (HBH )?ICMP6, (neighbor solicitation|neighbor advertisement|router solicitation|multicast listener report v2), `)
)

// uplinkForeign returns the packets of an uplink capture that are not WireGuard's UDP between
// the host world and the endpoint (from one of the tunnel's own ports), nor the uplink's own
// address resolution.
func (w *leakWorld) uplinkForeign(lines []string) (foreign []string, wg int) {
	for _, l := range lines {
		if m := leakWGOut4.FindStringSubmatch(l); m != nil && w.ports[m[1]] {
			wg++
			continue
		}
		if m := leakWGIn4.FindStringSubmatch(l); m != nil && w.ports[m[1]] {
			wg++
			continue
		}
		if leakWGRefused4.MatchString(l) || leakARPUplink.MatchString(l) {
			continue
		}
		// A packet from "::" cannot have been routed here from the namespace: it is one of the
		// uplink's ends announcing itself.
		if m := leakND6.FindStringSubmatch(l); m != nil && (w.lls[m[1]] || m[1] == "::" || m[1] == hostUnderlay6 || m[1] == peerUnderlay6) {
			continue
		}
		foreign = append(foreign, l)
	}
	return foreign, wg
}

// TestIntegrationLeakJudge: the judges of the captures let through only what they should, so a
// leak in a capture cannot go unnoticed.
func TestIntegrationLeakJudge(t *testing.T) {
	w := &leakWorld{ports: map[string]bool{"40000": true}, lls: map[string]bool{"fe80::1": true}}
	allowed := []string{
		"IP 198.51.100.1.40000 > 198.51.100.2.51820: UDP, length 148",
		"IP 198.51.100.2.51820 > 198.51.100.1.40000: UDP, length 92",
		"IP 198.51.100.2 > 198.51.100.1: ICMP 198.51.100.2 udp port 51820 unreachable, length 184",
		"ARP, Request who-has 198.51.100.2 tell 198.51.100.1, length 28",
		"ARP, Reply 198.51.100.2 is-at 02:00:00:00:00:02, length 28",
		"IP6 fe80::1 > ff02::2: ICMP6, router solicitation, length 16",
		"IP6 :: > ff02::16: HBH ICMP6, multicast listener report v2, 2 group record(s), length 48",
		"IP6 :: > ff02::1:ff00:2: ICMP6, neighbor solicitation, who has fe80::1, length 32",
	}
	leaks := []string{
		"IP 198.51.100.1.40001 > 198.51.100.2.51820: UDP, length 148", // not the tunnel's port
		"IP 198.51.100.1.40000 > 198.51.100.2.53: UDP, length 33",     // not the endpoint's port
		"IP 198.51.100.1.40000 > 203.0.113.9.51820: UDP, length 148",  // not the endpoint
		"IP 192.0.2.2.40000 > 198.51.100.2.51820: UDP, length 148",    // not from the host world
		"IP 198.51.100.1 > 198.51.100.2: ICMP echo request, id 1, seq 1, length 64",
		"IP 198.51.100.1.41000 > 198.51.100.2.80: Flags [S], seq 1, win 64240, length 0",
		"IP6 fd00:198:51:100::1.40000 > fd00:198:51:100::2.53: 4660+ A? probe.leak.test. (33)",
		"IP6 fd00:192:0:2::2 > ff02::2: ICMP6, router solicitation, length 16",
		"IP6 fe80::1 > fd00:198:51:100::2: ICMP6, echo request, id 1, seq 1, length 64",
		"ARP, Request who-has 203.0.113.9 tell 198.51.100.1, length 28",
	}
	foreign, wg := w.uplinkForeign(append(append([]string{}, allowed...), leaks...))
	if !slices.Equal(foreign, leaks) || wg != 2 {
		t.Errorf("uplink judge: foreign %q (%d WireGuard packets), want %q (2)", foreign, wg, leaks)
	}
	const mac = "02:00:00:00:00:01"
	extra := []string{
		mac + " > ff:ff:ff:ff:ff:ff, ethertype IPv4 (0x0800), length 98: 203.0.113.1 > 203.0.113.255: ICMP echo request",
		"02:00:00:00:00:02 > " + mac + ", ethertype ARP (0x0806), length 42: Reply 203.0.113.2 is-at 02:00:00:00:00:02",
	}
	if got := extraFromInside(extra, mac); !slices.Equal(got, extra[1:]) {
		t.Errorf("extra veth judge: %q, want %q", got, extra[1:])
	}
}

// extraFromInside returns the frames of a capture on the world's side of an extra veth (read
// with their link-level headers) that the namespace's side sent: every frame must come from the
// world side's MAC address.
func extraFromInside(lines []string, worldMAC string) []string {
	var inside []string
	for _, l := range lines {
		if !strings.HasPrefix(l, worldMAC+" > ") {
			inside = append(inside, l)
		}
	}
	return inside
}

// leakState is one state of the tunnel in the matrix.
type leakState struct {
	name   string
	tunnel bool // the tunnel carries traffic: its control probes must get through
	// handshaking: the tunnel's WireGuard is trying to reach the peer (its UDP port is allowed
	// on the uplink, as when it carries traffic).
	handshaking bool
	extra       string            // the host world's side of an extra veth whose other end is inside
	checkArgs   []string          // extra arguments of wgns check
	failing     map[string]string // checks that must FAIL, with a part of their detail
}

// learnPort records the tunnel's current UDP port (a device made again gets a new one).
func (w *leakWorld) learnPort(t *testing.T) {
	t.Helper()
	st := status(t, w.name)
	if st.ListenPort == 0 {
		t.Fatalf("wgns status of %s shows no listen port", w.name)
	}
	w.ports[strconv.Itoa(st.ListenPort)] = true
}

// probe runs one state: captures on the uplink (and the extra veth), probes from inside,
// wgns check, and the rulesets inside and in the host world. It returns the check report.
func (w *leakWorld) probe(t *testing.T, s leakState) checkReport {
	t.Helper()
	if s.tunnel || s.handshaking {
		w.learnPort(t)
	}
	caps := []*tcpdumpCapture{startCapture(t, w.uplink)}
	if s.extra != "" {
		caps = append(caps, startCapture(t, s.extra))
	}
	// wgns check runs while the probes do (it may wait for a WireGuard process that does not
	// answer), and so does, on an extra veth, a broadcast from the world side that shows that
	// capture works (the namespace, which drops it, answers nothing).
	checked := make(chan checkResult, 1)
	go func() { checked <- runCheck(w.name, s.checkArgs...) }()
	var bcast *exec.Cmd
	if s.extra != "" {
		bcast = exec.Command("ping", "-b", "-c1", "-W1", "-I", s.extra, "203.0.113.255")
		if err := bcast.Start(); err != nil {
			t.Fatal(err)
		}
	}
	got := runOutsideProbes(t, w.name)
	report := assertCheckResult(t, <-checked, s.failing)
	if bcast != nil {
		bcast.Wait()
	}
	var packets [][]string
	for i, c := range caps {
		packets = append(packets, c.stop(t, i > 0))
	}

	// Probes outside the tunnel never get through; the controls do exactly when the tunnel works.
	labels := make([]string, 0, len(got))
	for l := range got {
		labels = append(labels, l)
	}
	sort.Strings(labels)
	for _, l := range labels {
		if strings.HasPrefix(l, "t:") {
			if got[l] != s.tunnel {
				t.Errorf("control probe %s through the tunnel: got through = %v, want %v", l, got[l], s.tunnel)
			}
			continue
		}
		if got[l] {
			t.Errorf("LEAK: probe %s got through", l)
		}
	}
	foreign, wg := w.uplinkForeign(packets[0])
	for _, l := range foreign {
		t.Errorf("LEAK on the uplink %s: %s", w.uplink, l)
	}
	if s.tunnel && wg == 0 {
		t.Errorf("the uplink capture shows no WireGuard packet although the tunnel carried the controls:\n%s", strings.Join(packets[0], "\n"))
	}
	if s.extra != "" {
		mac := macOf(t, "", s.extra)
		if !slices.ContainsFunc(packets[1], func(l string) bool { return strings.Contains(l, "ICMP echo request") }) {
			t.Errorf("the capture on %s did not see the world's own broadcast ping", s.extra)
		}
		for _, l := range extraFromInside(packets[1], mac) {
			t.Errorf("LEAK on the extra veth %s: %s", s.extra, l)
		}
	}
	if inside := mustRun(t, "ip", "netns", "exec", w.name, "nft", "list", "ruleset"); !strings.Contains(inside, "table inet wgns {") {
		t.Errorf("nft list ruleset in %s shows no table inet wgns:\n%s", w.name, inside)
	}
	if host := mustRun(t, "nft", "list", "ruleset"); strings.TrimSpace(host) != "" {
		t.Errorf("the host world has an nftables ruleset:\n%s", host)
	}
	if t.Failed() {
		for i, c := range caps {
			t.Logf("capture on %s:\n%s", c.iface, strings.Join(packets[i], "\n"))
		}
	}
	return report
}

// macOf returns the MAC address of an interface of namespace ns ("" for the host world).
func macOf(t *testing.T, ns, iface string) string {
	t.Helper()
	args := []string{"-o", "link", "show", "dev", iface}
	if ns != "" {
		args = append([]string{"-n", ns}, args...)
	}
	f := strings.Fields(mustRun(t, "ip", args...))
	if i := slices.Index(f, "link/ether"); i >= 0 && i+1 < len(f) {
		return f[i+1]
	}
	t.Fatalf("no MAC address for %s", iface)
	return ""
}

// holderPID returns the PID of the tunnel's supervisor (which holds the embedded WireGuard,
// if that is the tunnel's).
func holderPID(t *testing.T, name string) int {
	t.Helper()
	st := status(t, name)
	if st.PID == 0 {
		t.Fatalf("no holder PID in wgns status of %s", name)
	}
	return st.PID
}

// waitTunnel waits until a ping through the tunnel of name gets an answer.
func waitTunnel(t *testing.T, name string) {
	t.Helper()
	waitFor(t, 15*time.Second, "a ping through the tunnel "+name, func() bool {
		_, _, code := wgnsRun(t, "exec", name, "--", "ping", "-c1", "-W1", peerTunnel4)
		return code == 0
	})
}

var leakDroppedRe = regexp.MustCompile(`(\d+) packets dropped`)

// firewallDrops returns the count of dropped packets the firewall check of r reports.
func firewallDrops(t *testing.T, r checkReport) int {
	t.Helper()
	for _, c := range r.Checks {
		if c.Name == "firewall" {
			if m := leakDroppedRe.FindStringSubmatch(c.Detail); m != nil {
				n, _ := strconv.Atoi(m[1])
				return n
			}
		}
	}
	t.Fatalf("no drop count in the firewall check: %+v", r.Checks)
	return 0
}

// TestIntegrationLeak is the matrix: in every state, probes from inside to addresses outside the
// tunnel fail, the uplink carries only WireGuard's UDP, wgns check names the fault, the wgns
// table is in place inside and the host world has no ruleset; after down, the host world is as
// it was.
func TestIntegrationLeak(t *testing.T) { runLeakMatrix(t, "lk", "", nil) }

// runLeakMatrix runs the matrix for tunnel name, with extra appended to the config; whileConnected,
// if not nil, runs as a subtest of its own once the tunnel is connected.
func runLeakMatrix(t *testing.T, name, extra string, whileConnected func(t *testing.T)) {
	w := newLeakWorld(t, name)
	p := w.p
	if extra != "" {
		f, err := os.OpenFile(w.config, os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		_, err = f.WriteString(extra)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	before := hostSnapshot(t)

	// Before the first handshake: the peer does not know our key, so nothing answers.
	clientPub := p.ClientKey.PublicKey().String()
	mustRun(t, "ip", "netns", "exec", p.NS, "wg", "set", p.Dev, "peer", clientPub, "remove")
	mustWgns(t, "up", "--name", name, w.config)
	t.Cleanup(func() { wgnsRun(t, "down", "--force", name) })
	t.Run("before the first handshake", func(t *testing.T) {
		// Only WireGuard's handshake initiations (up greets the peer, and WireGuard retries
		// every 5 s) to the endpoint may be seen.
		w.probe(t, leakState{handshaking: true, failing: map[string]string{"handshake": "no handshake yet", "nameserver": "192.0.2.1 did not answer through the tunnel"}})
	})

	// Connected: the peer learns our key.
	mustRun(t, "ip", "netns", "exec", p.NS, "wg", "set", p.Dev, "peer", clientPub,
		"allowed-ips", clientTunnel4+"/32,"+clientTunnel6+"/128")
	waitTunnel(t, name)
	var connected checkReport
	t.Run("connected", func(t *testing.T) {
		connected = w.probe(t, leakState{tunnel: true})
	})
	if whileConnected != nil {
		t.Run("while connected", whileConnected)
	}

	// An extra veth moved into the namespace, with addresses and default routes out of it.
	t.Run("extra veth with routes", func(t *testing.T) {
		xw, xn := "xw-"+name, "xn-"+name
		mustRun(t, "ip", "link", "add", xw, "type", "veth", "peer", "name", xn, "netns", name)
		t.Cleanup(func() { run("ip", "link", "del", xw) })
		mustRun(t, "ip", "addr", "add", leakExtraWorld4+"/24", "dev", xw)
		mustRun(t, "ip", "-6", "addr", "add", leakExtraWorld6+"/64", "dev", xw, "nodad")
		mustRun(t, "ip", "link", "set", xw, "up")
		mustRun(t, "ip", "-n", name, "addr", "add", leakExtraNS4+"/24", "dev", xn)
		mustRun(t, "ip", "-n", name, "-6", "addr", "add", leakExtraNS6+"/64", "dev", xn, "nodad")
		mustRun(t, "ip", "-n", name, "link", "set", xn, "up")
		mustRun(t, "ip", "-n", name, "route", "add", "default", "via", leakExtraWorld4, "dev", xn)
		mustRun(t, "ip", "-n", name, "-6", "route", "add", "default", "via", leakExtraWorld6, "dev", xn)
		r := w.probe(t, leakState{tunnel: true, extra: xw, failing: map[string]string{
			"interfaces": "extra interface " + xn + " (veth, up, " + leakExtraNS4 + "/24, " + leakExtraNS6 + "/64)",
			"routes":     "not via the tunnel: default via " + leakExtraWorld4 + " dev " + xn,
		}})
		// The firewall is what stopped the probes that the routes sent out of the veth.
		r, _ = checkReportOf(t, name)
		if c, d := firewallDrops(t, connected), firewallDrops(t, r); d <= c {
			t.Errorf("the firewall's drop counters went from %d to %d while probes were routed out of %s", c, d, xn)
		}
		mustRun(t, "ip", "link", "del", xw)
		assertCheck(t, name, nil)
	})

	// The tunnel interface deleted. The tunnel's supervisor would make a new device at once, so
	// it is stopped first: the namespace stays without its tunnel for as long as the test looks.
	// Kernel WireGuard answers for itself: its handshake check finds no device, where the
	// embedded one's stopped process gives no answer.
	t.Run("tunnel interface deleted", func(t *testing.T) {
		pid := holderPID(t, name)
		if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		resumed := false
		resume := func() {
			if !resumed {
				syscall.Kill(pid, syscall.SIGCONT)
				resumed = true
			}
		}
		t.Cleanup(resume)
		mustRun(t, "ip", "-n", name, "link", "del", name)
		handshake := "no answer in"
		if kernelMode() {
			handshake = "no WireGuard device to ask"
		}
		w.probe(t, leakState{failing: map[string]string{
			"interfaces": "tunnel interface " + name + " is missing",
			"routes":     "missing route 192.0.2.0/24 dev " + name,
			"nameserver": "192.0.2.1 did not answer through the tunnel",
			"handshake":  handshake,
		}})
		// Resumed, the supervisor makes the device again in the same namespace.
		resume()
		waitTunnel(t, name)
		w.learnPort(t)
		waitFor(t, 10*time.Second, "wgns check to pass after the holder recovered", func() bool {
			_, code := checkReportOf(t, name)
			return code == 0
		})
	})

	// The peer stopped: its wireguard-go is gone. The last handshake is younger than 3 minutes,
	// so the default check cannot tell yet; a stricter --max-handshake-age shows that the
	// handshake check names it once it is old enough.
	t.Run("peer stopped", func(t *testing.T) {
		p.proc.Process.Kill()
		p.proc.Wait()
		waitFor(t, 10*time.Second, "the latest handshake to be over half a second old", func() bool {
			last := status(t, name).Peers[0].LastHandshake
			return !last.IsZero() && time.Since(last) > 600*time.Millisecond
		})
		w.probe(t, leakState{checkArgs: []string{"--max-handshake-age", "500ms"},
			failing: map[string]string{"handshake": "more than 500ms", "nameserver": "192.0.2.1 did not answer through the tunnel"}})
	})

	// The embedded WireGuard's process killed with SIGKILL: its interface and routes vanish, the
	// namespace and its firewall stay. Kernel WireGuard outlives its supervisor: its interface
	// stays, as it was with the peer stopped, and check says that nothing watches it.
	t.Run("holder killed", func(t *testing.T) {
		pid := holderPID(t, name)
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		if kernelMode() {
			waitFor(t, 5*time.Second, "the tunnel's process to be gone", func() bool { return !processLives(pid) })
			mustRun(t, "ip", "-n", name, "link", "show", name)
			w.probe(t, leakState{failing: map[string]string{"process": fmt.Sprintf("the supervisor (PID %d) is gone", pid), "nameserver": "192.0.2.1 did not answer through the tunnel"}})
			return
		}
		waitFor(t, 5*time.Second, "the tunnel interface to vanish", func() bool {
			_, err := run("ip", "-n", name, "link", "show", name)
			return err != nil
		})
		w.probe(t, leakState{failing: map[string]string{
			"process":    fmt.Sprintf("(PID %d) is gone", pid),
			"interfaces": "tunnel interface " + name + " is missing",
			"routes":     "missing route 192.0.2.0/24 dev " + name,
			"nameserver": "192.0.2.1 did not answer through the tunnel",
			"handshake":  "no WireGuard device to ask",
		}})
	})

	// Kernel WireGuard's equivalent of the embedded one's death: its module unloaded, which
	// deletes every WireGuard interface of the machine. A live supervisor would make the interface
	// again (loading the module), so it is stopped first; the one killed above is not.
	t.Run("kernel module unloaded", func(t *testing.T) {
		if !kernelMode() {
			t.Skip("the embedded WireGuard needs no module")
		}
		supervisor := status(t, name).PID
		if supervisor != 0 && processLives(supervisor) {
			if err := syscall.Kill(supervisor, syscall.SIGSTOP); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { syscall.Kill(supervisor, syscall.SIGCONT) })
		}
		mustRun(t, "rmmod", "wireguard")
		waitFor(t, 5*time.Second, "the tunnel interface to vanish", func() bool {
			_, err := run("ip", "-n", name, "link", "show", name)
			return err != nil
		})
		w.probe(t, leakState{failing: map[string]string{
			// The supervisor was killed above: check says so.
			"process":    fmt.Sprintf("the supervisor (PID %d) is gone", supervisor),
			"interfaces": "tunnel interface " + name + " is missing",
			"routes":     "missing route 192.0.2.0/24 dev " + name,
			"nameserver": "192.0.2.1 did not answer through the tunnel",
			"handshake":  "no WireGuard device to ask",
		}})
	})

	mustWgns(t, "down", "--force", name)
	if after := hostSnapshot(t); after != before {
		t.Errorf("the host world changed between before up and after down:\n%s", lineDiff(before, after))
	}
}

// TestIntegrationLeakAllowInbound: [Namespace] AllowInbound reaches the firewall: from the peer,
// through the tunnel, a new connection to an opened port gets in, to another port it does not
// (TCP over IPv4 and IPv6, UDP).
func TestIntegrationLeakAllowInbound(t *testing.T) {
	const name = "li"
	p := newPeer(t, name)
	startDNS(t, p, dnsName, dnsAddr)
	p.writeConfig(t, p.ConfigPath, "\n[Namespace]\nAllowInbound = 8080/tcp, 5353/udp\n")
	tunnelUp(t, p, name)
	waitTunnel(t, name)

	dir := t.TempDir()
	listen := func(args ...string) {
		cmd := exec.Command(wgnsBin, append([]string{"exec", name, "--", "socat", "-u"}, args...)...)
		startUntilEnd(t, cmd)
	}
	for _, port := range []string{"8080", "8081"} {
		listen("TCP6-LISTEN:"+port+",ipv6only=0,reuseaddr,fork", "OPEN:/dev/null")
	}
	for _, port := range []string{"5353", "5354"} {
		listen("UDP6-RECV:"+port+",ipv6only=0", "OPEN:"+filepath.Join(dir, port)+",creat,append")
	}
	waitFor(t, 5*time.Second, "the listeners inside", func() bool {
		tcp, _ := run("ip", "netns", "exec", name, "ss", "-ltnH")
		udp, _ := run("ip", "netns", "exec", name, "ss", "-lunH")
		return strings.Count(tcp, ":808") == 2 && strings.Count(udp, ":535") == 2
	})

	fromPeer := func(args ...string) bool {
		_, err := run("ip", append([]string{"netns", "exec", p.NS}, args...)...)
		return err == nil
	}
	var wg sync.WaitGroup
	for _, addr := range []string{clientTunnel4, clientTunnel6} {
		wg.Add(2)
		go func() {
			defer wg.Done()
			if !fromPeer("nc", "-z", "-w2", addr, "8080") {
				t.Errorf("TCP from the peer to the opened port %s 8080: refused or dropped", addr)
			}
		}()
		go func() {
			defer wg.Done()
			if fromPeer("nc", "-z", "-w1", addr, "8081") {
				t.Errorf("TCP from the peer to %s 8081, a port not opened: connected", addr)
			}
		}()
	}
	wg.Wait()
	// The datagram to the closed port goes first; once the one to the opened port (sent after it
	// on the same path) has arrived, the first would have too.
	fromPeer("bash", "-c", "echo closed >/dev/udp/"+clientTunnel4+"/5354")
	waitFor(t, 5*time.Second, "a datagram to the opened port 5353/udp", func() bool {
		fromPeer("bash", "-c", "echo open >/dev/udp/"+clientTunnel4+"/5353")
		b, _ := os.ReadFile(filepath.Join(dir, "5353"))
		return strings.Contains(string(b), "open")
	})
	if b, _ := os.ReadFile(filepath.Join(dir, "5354")); len(b) > 0 {
		t.Errorf("a datagram to 5354/udp, a port not opened, arrived: %q", b)
	}
	assertCheck(t, name, nil)
	r, _ := checkReportOf(t, name)
	for _, c := range r.Checks {
		if c.Name == "firewall" && !strings.Contains(c.Detail, "inbound open on 8080/tcp, 5353/udp") {
			t.Errorf("check firewall: %q does not show the opened ports", c.Detail)
		}
	}
	if out := mustRun(t, "ip", "netns", "exec", name, "nft", "list", "table", "inet", "wgns"); !strings.Contains(out, "tcp dport 8080") ||
		!strings.Contains(out, "udp dport 5353") || strings.Contains(out, "8081") {
		t.Errorf("table inet wgns does not open exactly the configured ports:\n%s", out)
	}
}

// TestIntegrationLeakHostUntouched: the host world's interfaces, addresses, routes, rules,
// nftables ruleset and network sysctls are the same before up, while the tunnel is up and
// carries traffic, and after down.
func TestIntegrationLeakHostUntouched(t *testing.T) {
	const name = "lh"
	p := newPeer(t, name)
	waitDADSettled(t, ifname("vh-"+name))
	before := hostSnapshot(t)
	mustWgns(t, "up", "--name", name, p.ConfigPath)
	t.Cleanup(func() { wgnsRun(t, "down", "--force", name) })
	waitTunnel(t, name)
	mustWgns(t, "exec", name, "--", "ping", "-6", "-c1", "-W5", peerTunnel6)
	if during := hostSnapshot(t); during != before {
		t.Errorf("the host world changed while the tunnel is up:\n%s", lineDiff(before, during))
	}
	mustWgns(t, "down", name)
	if after := hostSnapshot(t); after != before {
		t.Errorf("the host world changed between before up and after down:\n%s", lineDiff(before, after))
	}
}

// hostSnapshot is the host world's network configuration as text: interfaces, addresses,
// routes of every table, policy rules, the nftables ruleset and the network sysctls.
func hostSnapshot(t *testing.T) string {
	t.Helper()
	var b strings.Builder
	for _, args := range [][]string{
		{"-o", "link", "show"},
		{"-o", "addr", "show"},
		{"-4", "route", "show", "table", "all"},
		{"-6", "route", "show", "table", "all"},
		{"-4", "rule", "show"},
		{"-6", "rule", "show"},
	} {
		fmt.Fprintf(&b, "## ip %s\n%s", strings.Join(args, " "), mustRun(t, "ip", args...))
	}
	fmt.Fprintf(&b, "## nft list ruleset\n%s", mustRun(t, "nft", "list", "ruleset"))
	var files []string
	for _, pattern := range []string{"/proc/sys/net/ipv4/*", "/proc/sys/net/ipv6/*", "/proc/sys/net/ipv4/conf/*/*",
		"/proc/sys/net/ipv6/conf/*/*", "/proc/sys/net/core/*"} {
		m, _ := filepath.Glob(pattern)
		files = append(files, m...)
	}
	slices.Sort(files)
	b.WriteString("## sysctls\n")
	n := 0
	for _, f := range files {
		if fi, err := os.Stat(f); err != nil || fi.IsDir() {
			continue
		}
		v, err := os.ReadFile(f)
		if err != nil {
			continue // write-only or refused (stable_secret unset)
		}
		n++
		fmt.Fprintf(&b, "%s = %s\n", strings.TrimPrefix(f, "/proc/sys/"), strings.TrimSpace(string(v)))
	}
	if n < 100 || !strings.Contains(b.String(), "net/ipv4/ip_forward = ") || !strings.Contains(b.String(), "net/ipv6/conf/all/forwarding = ") {
		t.Fatalf("the sysctl snapshot read only %d values:\n%s", n, b.String())
	}
	return b.String()
}

// lineDiff lists the lines that differ between the snapshots a and b.
func lineDiff(a, b string) string { return linediff.Diff(a, b, "") }
