package integration

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The second server of the failover tests: its own veth to the test world, the same tunnel
// addresses as the first (a provider's gateway answers through every one of its servers).
var failoverUnderlay = underlay{"203.0.113.65", "203.0.113.66", "fd00:203:113:64::1", "fd00:203:113:64::2", 30, 64}

// failoverStatus is what the failover tests read of `wgns status --json`.
type failoverStatus struct {
	State        string    `json:"state"`
	ListenPort   int       `json:"listen_port"`
	Failovers    *int      `json:"failovers"`
	LastFailover time.Time `json:"last_failover"`
	Peers        []struct {
		PublicKey  string   `json:"public_key"`
		AllowedIPs []string `json:"allowed_ips"`
		Group      int      `json:"group"`
		Active     *bool    `json:"active"`
	} `json:"peers"`
	Groups []struct {
		Group     int       `json:"group"`
		Peers     []string  `json:"peers"`
		Active    string    `json:"active"`
		Check     string    `json:"check"`
		Failovers int       `json:"failovers"`
		DownSince time.Time `json:"down_since"`
	} `json:"failover_groups"`
}

// active is the peer that status says holds group 1's AllowedIPs, "" if none does.
func (s failoverStatus) active() string {
	if len(s.Groups) == 0 {
		return ""
	}
	return s.Groups[0].Active
}

// down reports whether status says group 1 has no live peer.
func (s failoverStatus) down() bool { return len(s.Groups) > 0 && !s.Groups[0].DownSince.IsZero() }

// failoverWorld is two Debian wireguard-go servers of one provider (both with the gateway
// 192.0.2.1, both accepting the client's key), each behind a veth of its own (the host's
// uplinks, captured throughout), and a tunnel whose config lists both with Failover = on.
type failoverWorld struct {
	name     string
	a, b     *peer
	config   string
	captures []*tcpdumpCapture
}

func newFailoverWorld(t *testing.T, name, extra string) *failoverWorld {
	t.Helper()
	w := &failoverWorld{name: name}
	w.a = newPeer(t, name)
	w.b = newPeerAt(t, name+"2", failoverUnderlay, w.a.ClientKey)
	// Both servers answer DNS on the gateway's address, as a provider's do.
	startDNS(t, w.a, dnsName, dnsAddr)
	startDNS(t, w.b, dnsName, dnsAddr)
	w.config = filepath.Join(t.TempDir(), name+".conf")
	conf := fmt.Sprintf(`[Interface]
PrivateKey = %s
Address = %s/24, %s/64
DNS = %s

[Peer]
PublicKey = %s
AllowedIPs = 0.0.0.0/0, ::/0
Endpoint = %s:%d
PersistentKeepalive = 25

[Peer]
PublicKey = %s
AllowedIPs = ::/0, 0.0.0.0/0
Endpoint = %s:%d
PersistentKeepalive = 25

[Namespace]
Failover = on
%s`, w.a.ClientKey, clientTunnel4, clientTunnel6, peerTunnel4, w.a.Key.PublicKey(), w.a.Underlay.Peer4, peerPort,
		w.b.Key.PublicKey(), w.b.Underlay.Peer4, peerPort, extra)
	if err := os.WriteFile(w.config, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, p := range []*peer{w.a, w.b} {
		waitDADSettled(t, w.uplink(p))
		// iperf3 servers on the gateway address of each server.
		srv := exec.Command("ip", "netns", "exec", p.NS, "iperf3", "-s", "-p", "5201")
		startUntilEnd(t, srv)
	}
	return w
}

// uplink is the host world's side of p's veth.
func (w *failoverWorld) uplink(p *peer) string {
	if p == w.a {
		return ifname("vh-" + w.name)
	}
	return ifname("vh-" + w.name + "2")
}

// up brings the tunnel up (with whatever WireGuard `wgns up` picks) and starts capturing on
// both uplinks.
func (w *failoverWorld) up(t *testing.T) {
	t.Helper()
	for _, p := range []*peer{w.a, w.b} {
		w.captures = append(w.captures, startCapture(t, w.uplink(p)))
	}
	if _, e, code := wgnsRun(t, "up", w.config); code != 0 {
		t.Fatalf("up: exit %d: %s", code, e)
	}
	t.Cleanup(func() { wgnsRun(t, "down", "--force", w.name) })
}

// pinger is a ping(8) running inside the tunnel, five a second, whose replies are timestamped.
type pinger struct {
	cmd  *exec.Cmd
	mu   sync.Mutex
	seen []time.Time // when each reply came
	done chan struct{}
}

var pingReply = regexp.MustCompile(`^\[(\d+)\.(\d+)\] \d+ bytes from `)

func startPinger(t *testing.T, name string) *pinger {
	t.Helper()
	p := &pinger{done: make(chan struct{})}
	p.cmd = exec.Command(wgnsBin, "exec", name, "--", "ping", "-n", "-D", "-i", "0.2", "-W", "1", peerTunnel4)
	out, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(p.done)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			m := pingReply.FindStringSubmatch(sc.Text())
			if m == nil {
				continue
			}
			sec, _ := strconv.ParseInt(m[1], 10, 64)
			usec, _ := strconv.ParseInt((m[2] + "000000")[:6], 10, 64)
			p.mu.Lock()
			p.seen = append(p.seen, time.Unix(sec, usec*1000))
			p.mu.Unlock()
		}
	}()
	t.Cleanup(p.stop)
	return p
}

func (p *pinger) stop() {
	p.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		p.cmd.Process.Kill()
	}
	p.cmd.Wait()
}

// firstAfter is the first reply that came after t0, if one did.
func (p *pinger) firstAfter(t0 time.Time) (time.Time, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, at := range p.seen {
		if at.After(t0) {
			return at, true
		}
	}
	return time.Time{}, false
}

// iperf runs a TCP transfer of secs seconds at 20 Mbit/s from inside the tunnel to the gateway.
func iperf(name string, secs int) *exec.Cmd {
	return exec.Command(wgnsBin, "exec", name, "--", "iperf3", "-c", peerTunnel4, "-p", "5201", "-b", "20M", "-t", strconv.Itoa(secs))
}

// wireGuardOnly returns the packets of a capture on an uplink that are not WireGuard's UDP
// between the host world's end of u and the peer's port, from the tunnel's own port, the peer's
// kernel refusing it (a stopped server), or the link's own address resolution.
func wireGuardOnly(lines []string, u underlay, port int) (foreign []string, wg int) {
	q := regexp.QuoteMeta
	out := regexp.MustCompile(fmt.Sprintf(`^IP %s\.%d > %s\.%d: UDP, length \d+$`, q(u.Host4), port, q(u.Peer4), peerPort))
	in := regexp.MustCompile(fmt.Sprintf(`^IP %s\.%d > %s\.%d: UDP, length \d+$`, q(u.Peer4), peerPort, q(u.Host4), port))
	refused := regexp.MustCompile(fmt.Sprintf(`^IP %s > %s: ICMP %s udp port %d unreachable, length \d+$`, q(u.Peer4), q(u.Host4), q(u.Peer4), peerPort))
	ends := "(" + q(u.Host4) + "|" + q(u.Peer4) + ")"
	arp := regexp.MustCompile(`^ARP, (Request who-has ` + ends + ` tell ` + ends + `|Reply ` + ends + ` is-at [0-9a-f:]+), length \d+$`)
	for _, l := range lines {
		switch m := leakND6.FindStringSubmatch(l); {
		case out.MatchString(l), in.MatchString(l):
			wg++
		case refused.MatchString(l), arp.MatchString(l):
		case m != nil && (strings.HasPrefix(m[1], "fe80:") || m[1] == "::" || m[1] == u.Host6 || m[1] == u.Peer6):
		default:
			foreign = append(foreign, l)
		}
	}
	return foreign, wg
}

// TestIntegrationFailover: a tunnel to two servers of one provider (Debian's wireguard-go each)
// with Failover = on. The first carries the traffic; when it is killed while a ping and a TCP
// transfer run inside, the ping resumes through the second within the configured time (2 s by
// default, plus a probe interval and the handshake), and new connections work; the first coming
// back changes nothing (no flapping). With both killed, status and check say that the group has
// no live peer and nothing gets out, probes of every kind included; once the second is back,
// traffic returns. Throughout, the two uplinks carry nothing but WireGuard's UDP.
func TestIntegrationFailover(t *testing.T) {
	const name = "fo"
	w := newFailoverWorld(t, name, "")
	w.up(t)
	a, b := w.a.Key.PublicKey().String(), w.b.Key.PublicKey().String()

	st := statusAs[failoverStatus](t, name)
	if st.Failovers == nil || *st.Failovers != 0 || len(st.Groups) != 1 || st.active() != a || st.Groups[0].Check != peerTunnel4 {
		t.Fatalf("status after up: %+v", st)
	}
	for _, p := range st.Peers {
		if p.Group != 1 || p.Active == nil || *p.Active != (p.PublicKey == a) || (len(p.AllowedIPs) > 0) != *p.Active {
			t.Errorf("status after up, peer %s: group %d, active %v, allowed IPs %v", p.PublicKey, p.Group, p.Active, p.AllowedIPs)
		}
	}
	port := st.ListenPort

	// Traffic through the first server: a ping, five a second, and a TCP transfer.
	ping := startPinger(t, name)
	waitFor(t, 10*time.Second, "ping replies through the first server", func() bool { _, ok := ping.firstAfter(time.Now().Add(-time.Second)); return ok })
	assertCheck(t, name, nil)
	transfer := iperf(name, 60)
	var transferOut bytes.Buffer
	transfer.Stdout, transfer.Stderr = &transferOut, &transferOut
	startUntilEnd(t, transfer)
	time.Sleep(500 * time.Millisecond) // the transfer under way

	// The first server dies.
	killed := time.Now()
	w.a.stop(t)
	waitFor(t, 15*time.Second, "the ping to resume through the second server", func() bool { _, ok := ping.firstAfter(killed); return ok })
	resumed, _ := ping.firstAfter(killed)
	gap := resumed.Sub(killed)
	t.Logf("the ping resumed through the second server %s after the first was killed", gap.Round(time.Millisecond))
	if limit := 2*time.Second + 3*time.Second; gap > limit {
		t.Errorf("the ping resumed %s after the first server was killed; want at most %s (FailoverTimeout 2 s, a probe interval, a handshake, and slack)", gap, limit)
	}
	st = statusAs[failoverStatus](t, name)
	if st.active() != b || *st.Failovers != 1 || st.LastFailover.Before(killed) || st.down() {
		t.Errorf("status after the failover: active %s, failovers %d, last %s, group %+v", st.active(), *st.Failovers, st.LastFailover, st.Groups)
	}
	assertCheck(t, name, nil)
	// The transfer through the dead server cannot go on (the second has none of its state);
	// a new one goes through the second.
	transfer.Process.Kill()
	transfer.Wait()
	if out, err := iperf(name, 2).CombinedOutput(); err != nil {
		t.Errorf("a TCP transfer through the second server: %v\n%s", err, out)
	}

	// The first comes back: the tunnel stays with the second.
	w.a.start(t)
	back := time.Now()
	time.Sleep(3 * 2 * time.Second) // three timeouts: time enough to flap, if it would
	st = statusAs[failoverStatus](t, name)
	if st.active() != b || *st.Failovers != 1 {
		t.Errorf("the first server came back %s ago: active %s, failovers %d; want the second, 1", time.Since(back).Round(time.Second), st.active(), *st.Failovers)
	}

	// Both die: the group goes round them, status and check say no peer answers, and nothing
	// gets out.
	both := time.Now()
	w.a.stop(t)
	w.b.stop(t)
	waitFor(t, 30*time.Second, "status to say the group is down", func() bool { return statusAs[failoverStatus](t, name).down() })
	t.Logf("status said the group is down %s after both servers were killed", time.Since(both).Round(time.Millisecond))
	text := mustWgns(t, "status", name)
	if !strings.Contains(text, "failover group 1: DOWN since") || !strings.Contains(text, "none of its 2 peers answers") {
		t.Errorf("status with both servers down:\n%s", text)
	}
	res := runCheck(name)
	rep := res.report(t)
	if res.code != 1 || rep.OK {
		t.Errorf("check with both servers down: exit %d, ok %v", res.code, rep.OK)
	}
	for _, c := range rep.Checks {
		switch {
		case c.Name == "failover" && (c.OK || !strings.Contains(c.Detail, "none of its 2 peers answers")):
			t.Errorf("check failover with both servers down: ok %v, %s", c.OK, c.Detail)
		case c.Name != "failover" && c.Name != "handshake" && c.Name != "nameserver" && !c.OK:
			t.Errorf("check %s with both servers down: FAIL %s", c.Name, c.Detail)
		}
	}
	// A UDP probe only says its datagram left (into the tunnel: the captures say where it went);
	// every other kind needs an answer.
	for label, ok := range runOutsideProbes(t, name) {
		if ok && !strings.HasSuffix(label, ":udp") && !strings.HasSuffix(label, ":dns-udp") {
			t.Errorf("with both servers down, probe %s got an answer", label)
		}
	}

	// The second comes back: traffic returns.
	w.b.start(t)
	restarted := time.Now()
	waitFor(t, 20*time.Second, "the ping to resume through the second server, back", func() bool { _, ok := ping.firstAfter(restarted); return ok })
	resumed, _ = ping.firstAfter(restarted)
	t.Logf("the ping resumed %s after the second server came back", resumed.Sub(restarted).Round(time.Millisecond))
	waitFor(t, 10*time.Second, "status to say the group is up", func() bool {
		st := statusAs[failoverStatus](t, name)
		return !st.down() && st.active() == b
	})
	assertCheck(t, name, nil)

	// Throughout, the uplinks carried WireGuard's UDP from the tunnel's port, and nothing else.
	ping.stop()
	for i, p := range []*peer{w.a, w.b} {
		lines := w.captures[i].stop(t, false)
		foreign, wg := wireGuardOnly(lines, p.Underlay, port)
		if wg == 0 {
			t.Errorf("the capture on %s holds no WireGuard packet (%d lines): the judge sees nothing", w.uplink(p), len(lines))
		}
		if len(foreign) > 0 {
			t.Errorf("on %s, packets that are not WireGuard's UDP (%d of %d):\n%s", w.uplink(p), len(foreign), len(lines), strings.Join(foreign, "\n"))
		}
	}
}

// TestIntegrationFailoverJudge: the judge of the uplink captures lets through only WireGuard's
// UDP of the tunnel's port to that uplink's server, its refusal, and the link's housekeeping.
func TestIntegrationFailoverJudge(t *testing.T) {
	u := failoverUnderlay
	allowed := []string{
		"IP 203.0.113.65.40000 > 203.0.113.66.51820: UDP, length 148",
		"IP 203.0.113.66.51820 > 203.0.113.65.40000: UDP, length 92",
		"IP 203.0.113.66 > 203.0.113.65: ICMP 203.0.113.66 udp port 51820 unreachable, length 176",
		"ARP, Request who-has 203.0.113.66 tell 203.0.113.65, length 28",
		"ARP, Reply 203.0.113.66 is-at 02:00:00:00:00:02, length 28",
		"IP6 fe80::1 > ff02::2: ICMP6, router solicitation, length 16",
		"IP6 :: > ff02::16: HBH ICMP6, multicast listener report v2, 2 group record(s), length 48",
	}
	leaks := []string{
		"IP 203.0.113.65.40001 > 203.0.113.66.51820: UDP, length 148", // not the tunnel's port
		"IP 203.0.113.65.40000 > 203.0.113.66.53: UDP, length 33",
		"IP 203.0.113.65.40000 > 198.51.100.2.51820: UDP, length 148", // the other uplink's server
		"IP 192.0.2.2.40000 > 203.0.113.66.51820: UDP, length 148",
		"IP 192.0.2.2 > 192.0.2.1: ICMP echo request, id 1, seq 1, length 64",
		"IP 203.0.113.65.41000 > 203.0.113.66.5201: Flags [S], seq 1, win 64240, length 0",
		"IP6 fd00:192:0:2::2 > ff02::2: ICMP6, router solicitation, length 16",
		"ARP, Request who-has 203.0.113.9 tell 203.0.113.65, length 28",
	}
	foreign, wg := wireGuardOnly(append(append([]string{}, allowed...), leaks...), u, 40000)
	if strings.Join(foreign, "\n") != strings.Join(leaks, "\n") || wg != 2 {
		t.Errorf("judge: foreign %q (%d WireGuard packets), want %q (2)", foreign, wg, leaks)
	}
}

// TestIntegrationFailoverWithoutProbes: a group with no address to probe (FailoverCheck = none)
// still fails over, on WireGuard's own evidence: traffic sent to the first server and nothing
// back for 15 s. The record says the group is judged by WireGuard's counters.
func TestIntegrationFailoverWithoutProbes(t *testing.T) {
	const name = "fw"
	w := newFailoverWorld(t, name, "FailoverCheck = none\n")
	w.up(t)
	b := w.b.Key.PublicKey().String()
	ping := startPinger(t, name)
	waitFor(t, 10*time.Second, "ping replies through the first server", func() bool { _, ok := ping.firstAfter(time.Now().Add(-time.Second)); return ok })
	if st := statusAs[failoverStatus](t, name); len(st.Groups) != 1 || st.Groups[0].Check != "" {
		t.Fatalf("status: %+v", st.Groups)
	}
	killed := time.Now()
	w.a.stop(t)
	waitFor(t, 40*time.Second, "the ping to resume through the second server", func() bool { _, ok := ping.firstAfter(killed); return ok })
	resumed, _ := ping.firstAfter(killed)
	gap := resumed.Sub(killed)
	t.Logf("the ping resumed through the second server %s after the first was killed", gap.Round(time.Millisecond))
	if gap < 15*time.Second || gap > 15*time.Second+5*time.Second {
		t.Errorf("the ping resumed %s after the first server was killed; want 15 s (WireGuard's evidence) and a little", gap)
	}
	if st := statusAs[failoverStatus](t, name); st.active() != b || *st.Failovers != 1 {
		t.Errorf("status after the failover: active %s, failovers %d", st.active(), *st.Failovers)
	}
	ping.stop()
	port := statusAs[failoverStatus](t, name).ListenPort
	for i, p := range []*peer{w.a, w.b} {
		if foreign, _ := wireGuardOnly(w.captures[i].stop(t, false), p.Underlay, port); len(foreign) > 0 {
			t.Errorf("on %s, packets that are not WireGuard's UDP:\n%s", w.uplink(p), strings.Join(foreign, "\n"))
		}
	}
}

// TestIntegrationFailoverRecordIsRootOnly: the supervisor's failover record, which status and
// check trust, is root's alone: another local user can neither read it nor put a record of
// their own in its place, and a record left by another holder is not believed.
func TestIntegrationFailoverRecordIsRootOnly(t *testing.T) {
	const name = "fr"
	w := newFailoverWorld(t, name, "")
	w.up(t)
	rec := "/run/wgns/" + name + ".failover.json"
	fi, err := os.Stat(rec)
	if err != nil {
		t.Fatal(err)
	}
	if st := fi.Sys().(*syscall.Stat_t); st.Uid != 0 || fi.Mode().Perm() != 0o600 {
		t.Errorf("%s: uid %d, mode %v; want root's, 0600", rec, st.Uid, fi.Mode().Perm())
	}
	for _, c := range [][]string{
		{"cat", rec},
		{"sh", "-c", "echo '{\"version\":1,\"groups\":[]}' > " + rec},
		{"sh", "-c", "echo '{}' > /run/wgns/" + name + ".failover.json.tmp && mv /run/wgns/" + name + ".failover.json.tmp " + rec},
		{"ln", "-sf", "/etc/shadow", rec},
		{"rm", "-f", rec},
	} {
		if out, err := asNobody(c[0], c[1:]...).CombinedOutput(); err == nil {
			t.Errorf("as nobody, %q succeeded:\n%s", c, out)
		}
	}
	if _, err := os.Stat(rec); err != nil {
		t.Fatalf("the record after the attempts: %v", err)
	}
	// A record that names another holder (one written by a holder that died, say) is not shown.
	b, err := os.ReadFile(rec)
	if err != nil {
		t.Fatal(err)
	}
	forged := regexp.MustCompile(`"holder_pid": \d+`).ReplaceAll(b, []byte(`"holder_pid": 1`))
	if err := os.WriteFile(rec, forged, 0o600); err != nil {
		t.Fatal(err)
	}
	if st := statusAs[failoverStatus](t, name); st.Failovers != nil || len(st.Groups) != 0 {
		t.Errorf("status believed a record of another holder: %+v", st)
	}
}
