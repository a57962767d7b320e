package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/wgns/wgns/nsmgr"
)

// The publish section's names and addresses. Each veth variant's addresses are in TEST-NET-3,
// clear of the throughput section's.
const (
	pbTunnel   = "pub" // the wgns tunnel whose config publishes the servers' ports
	pbIperf    = 5201  // iperf3 -s inside each namespace
	pbEcho     = 7007  // the one-byte echo inside each namespace
	pbPubIperf = 19080 // 127.0.0.1:PORT on the world's side, published by wgns
	pbPubEcho  = 19082
	pbConnects = 200 // connections timed per path and round
)

// A vethVariant is a namespace joined to the world by a veth, whose servers the world reaches
// at 127.0.0.1:PORT through DNAT: what users of other tools set up instead of Publish.
type vethVariant struct {
	label           string
	ns              string // its namespace
	worldIf, nsIf   string // the veth's ends
	bridge          string // if set, the world's end is a port of this bridge, which has world4
	world4, ns4     string // the world's (or bridge's) and the namespace's addresses, in prefix
	prefix          string
	iperf, echo     int    // 127.0.0.1:PORT on the world's side, DNATed to the namespace's servers
	inside, insideW string // the namespace's nftables ruleset, and what it says, if any
}

// vethVariants: the baseline the goal is judged against first, then a bare one.
//
// VPN-Confinement (its modules/vpn-up.nix at 880b3bd) puts the world's end of the veth in a
// bridge that has the world's address (192.168.15.5/24 there), gives the namespace an iptables
// firewall (INPUT policy DROP; lo, conntrack ESTABLISHED,RELATED and each mapped port on the
// veth accepted; INVALID dropped; FORWARD policy DROP; DNS out only to the configured servers),
// and DNATs each port mapping in the world's PREROUTING chain: a connection the world itself
// makes never passes PREROUTING, so it does not DNAT the world's own connections to
// 127.0.0.1:PORT at all. For those, both variants DNAT in the output hook and masquerade out of
// the veth (route_localnet=1), the least that makes them work.
var vethVariants = []*vethVariant{{
	label: "veth + DNAT as VPN-Confinement sets it up (bridge, firewall inside)",
	ns:    "bvpnc", worldIf: "vc-w", nsIf: "vc-n", bridge: "vc-br",
	world4: "203.0.113.137", ns4: "203.0.113.138", prefix: "/29",
	iperf: 19084, echo: 19085,
	inside: `table inet vpnc {
	chain input {
		type filter hook input priority filter; policy drop;
		iif "lo" accept
		ct state invalid drop
		ct state established,related accept
		iifname "vc-n" tcp dport { 5201, 7007 } accept
	}
	chain forward {
		type filter hook forward priority filter; policy drop;
	}
	chain output {
		type filter hook output priority filter; policy accept;
		udp dport 53 drop
	}
}
`,
	insideW: "its firewall as iptables rules in nftables",
}, {
	label: "bare veth + DNAT (no bridge, no firewall inside)",
	ns:    "bdnat", worldIf: "vd-w", nsIf: "vd-n",
	world4: "203.0.113.129", ns4: "203.0.113.130", prefix: "/30",
	iperf: 19081, echo: 19083,
}}

// dnatRuleset is the world's nftables table for the variants: each one's ports on 127.0.0.1
// DNATed in the output hook to its namespace's address, and masqueraded out of its veth.
func dnatRuleset(vs []*vethVariant) string {
	var b strings.Builder
	b.WriteString("table ip wgns_bench_dnat {\n\tchain output {\n\t\ttype nat hook output priority -100; policy accept;\n")
	for _, v := range vs {
		fmt.Fprintf(&b, "\t\tip daddr 127.0.0.1 tcp dport %d dnat to %s:%d\n", v.iperf, v.ns4, pbIperf)
		fmt.Fprintf(&b, "\t\tip daddr 127.0.0.1 tcp dport %d dnat to %s:%d\n", v.echo, v.ns4, pbEcho)
	}
	b.WriteString("\t}\n\tchain postrouting {\n\t\ttype nat hook postrouting priority 100; policy accept;\n")
	for _, v := range vs {
		out := v.worldIf
		if v.bridge != "" {
			out = v.bridge
		}
		fmt.Fprintf(&b, "\t\toifname %q masquerade\n", out)
	}
	b.WriteString("\t}\n}\n")
	return b.String()
}

// setUp makes the variant's namespace, links, addresses and firewall; the returned function
// removes them.
func (v *vethVariant) setUp() func() {
	mustRun("ip", "netns", "add", v.ns)
	undo := []func(){func() { run("ip", "netns", "del", v.ns) }}
	mustRun("ip", "link", "add", v.worldIf, "type", "veth", "peer", "name", v.nsIf, "netns", v.ns)
	undo = append(undo, func() { run("ip", "link", "del", v.worldIf) })
	world := v.worldIf
	if v.bridge != "" {
		mustRun("ip", "link", "add", v.bridge, "type", "bridge")
		undo = append(undo, func() { run("ip", "link", "del", v.bridge) })
		mustRun("ip", "link", "set", v.worldIf, "master", v.bridge)
		mustRun("ip", "link", "set", v.worldIf, "up")
		world = v.bridge
	}
	mustRun("ip", "addr", "add", v.world4+v.prefix, "dev", world)
	mustRun("ip", "link", "set", world, "up")
	mustRun("ip", "-n", v.ns, "addr", "add", v.ns4+v.prefix, "dev", v.nsIf)
	mustRun("ip", "-n", v.ns, "link", "set", v.nsIf, "up")
	mustRun("ip", "-n", v.ns, "link", "set", "lo", "up")
	if v.inside != "" {
		f := filepath.Join(runDir, v.ns+".nft")
		if err := os.WriteFile(f, []byte(v.inside), 0o600); err != nil {
			fatalf("writing %s: %v", f, err)
		}
		mustRun("ip", "netns", "exec", v.ns, "nft", "-f", f)
	}
	return func() {
		for i := len(undo) - 1; i >= 0; i-- {
			undo[i]()
		}
	}
}

// benchPublish measures a published port against veths with DNAT: TCP throughput (iperf3, both
// directions) and connection set-up (connect, one byte there and back, close) from the world to
// a server inside.
func benchPublish(w *world) *Section {
	// The wgns tunnel, whatever WireGuard up picks; its peer need not answer: a published port
	// never goes through WireGuard.
	conf := filepath.Join(runDir, pbTunnel+".conf")
	c := clientConf{Key: newKey(), Addresses: []string{"192.0.2.9/32"}, Peer: newKey().PublicKey(),
		AllowedIPs: "0.0.0.0/0", Endpoint: peerUnderlay4 + ":51899"}
	extra := fmt.Sprintf("\n[Namespace]\nPublish = %d:%d, %d:%d\n", pbPubIperf, pbIperf, pbPubEcho, pbEcho)
	if err := os.WriteFile(conf, []byte(c.text()+extra), 0o600); err != nil {
		fatalf("writing %s: %v", conf, err)
	}
	w.sp.mustRun([]string{w.wgns, "up", conf}, w.env)
	defer w.sp.run([]string{w.wgns, "down", "--force", pbTunnel}, w.env, false)
	mode := "?"
	if b, err := os.ReadFile(statePathOf(pbTunnel)); err == nil {
		var st struct {
			Mode string `json:"mode"`
		}
		json.Unmarshal(b, &st)
		mode = st.Mode
	}

	// The veth variants.
	for _, v := range vethVariants {
		defer v.setUp()()
	}
	ruleset := filepath.Join(runDir, "dnat.nft")
	if err := os.WriteFile(ruleset, []byte(dnatRuleset(vethVariants)), 0o600); err != nil {
		fatalf("writing %s: %v", ruleset, err)
	}
	mustRun("nft", "-f", ruleset)
	defer run("nft", "delete", "table", "ip", "wgns_bench_dnat")
	mustRun("sysctl", "-qw", "net.ipv4.conf.all.route_localnet=1")
	defer run("sysctl", "-qw", "net.ipv4.conf.all.route_localnet=0")

	// The servers: iperf3 and the echo, the same in every namespace; wgns's on the namespace's
	// loopback (where a published port leads), the others on their veth addresses.
	servers := []struct{ ns, addr string }{{pbTunnel, "127.0.0.1"}}
	for _, v := range vethVariants {
		servers = append(servers, struct{ ns, addr string }{v.ns, v.ns4})
	}
	for _, s := range servers {
		srv := exec.Command("ip", "netns", "exec", s.ns, "iperf3", "-s", "-B", s.addr, "-p", strconv.Itoa(pbIperf))
		if err := srv.Start(); err != nil {
			fatalf("starting iperf3 -s in %s: %v", s.ns, err)
		}
		defer func() { srv.Process.Kill(); srv.Wait() }()
		mustWaitFor(5*time.Second, "iperf3's listener in "+s.ns, func() bool {
			out, _ := run("ip", "netns", "exec", s.ns, "ss", "-ltnH", "sport", "= :"+strconv.Itoa(pbIperf))
			return strings.Contains(out, "LISTEN")
		})
		l := echoIn(s.ns, fmt.Sprintf("%s:%d", s.addr, pbEcho))
		defer l.Close()
	}

	secs := strconv.Itoa(w.opts.iperfSecs)
	iperf := lookPath("iperf3")
	holder := holderPID(pbTunnel)
	type path struct {
		label   string
		port    int
		reverse bool
		bps     []float64
		cpu     []float64 // the wgns supervisor's % of a core (Publish only)
	}
	// For each direction: Publish, then each veth variant.
	var paths []*path
	per := 1 + len(vethVariants)
	for _, reverse := range []bool{false, true} {
		dir := "into the namespace"
		if reverse {
			dir = "out of the namespace (-R)"
		}
		paths = append(paths, &path{label: "Publish, " + dir, port: pbPubIperf, reverse: reverse})
		for _, v := range vethVariants {
			paths = append(paths, &path{label: v.label + ", " + dir, port: v.iperf, reverse: reverse})
		}
	}
	var fns []func()
	for _, p := range paths {
		fns = append(fns, func() {
			argv := []string{iperf, "-c", "127.0.0.1", "-p", strconv.Itoa(p.port), "-t", secs, "-O", "1", "-J"}
			if p.reverse {
				argv = append(argv, "-R")
			}
			var c0 float64
			res, r := runIperf(w, argv, func() { c0 = procCPU(holder) })
			p.bps = append(p.bps, res.End.SumReceived.BitsPerSecond/1e9)
			if p.port == pbPubIperf {
				p.cpu = append(p.cpu, 100*(procCPU(holder)-c0)/r.Elapsed.Seconds())
			}
		})
	}
	rounds := w.opts.iperfRounds
	progressf("publish: %d rounds of %d transfers, %s s each", rounds, len(paths), secs)
	interleave(rounds, fns, func(r int) { progressf("publish: transfers, round %d/%d", r, rounds) })

	// Each path's ratio to the first variant (the baseline), and Publish's to each variant. A
	// per-round ratio (each round's figure against the other path's of the same round) is less
	// sensitive to the machine's load changing between rounds than the ratio of medians.
	tt := &Table{Header: []string{"path", "Gbit/s median", "min", "max", "× VPN-Confinement's", "Publish / this, per round (median, min-max)", "supervisor CPU %"}}
	var goals []Goal
	for i := 0; i < len(paths); i += per {
		pub, base := paths[i], paths[i+1]
		ps, bs := Summarize(pub.bps), Summarize(base.bps)
		for j, p := range paths[i : i+per] {
			st := Summarize(p.bps)
			perRound, cpu := "", "-"
			if j == 0 {
				cpu = fmtNum(Summarize(pub.cpu).Median)
			} else {
				var paired []float64
				for k := range pub.bps {
					if k < len(p.bps) && p.bps[k] > 0 {
						paired = append(paired, pub.bps[k]/p.bps[k])
					}
				}
				pr := Summarize(paired)
				perRound = fmt.Sprintf("%s (%s-%s)", fmtRatio(pr.Median), fmtRatio(pr.Min), fmtRatio(pr.Max))
			}
			tt.add(append(append([]string{p.label}, statCells(st)...), fmtRatio(Ratio(st, bs)), perRound, cpu)...)
		}
		what := "into the namespace"
		if pub.reverse {
			what = "out of the namespace"
		}
		goals = append(goals, Goal{What: "Publish / veth + DNAT as VPN-Confinement sets it up, TCP throughput " + what + " (median)", Ratio: Ratio(ps, bs), Limit: 0.9})
	}

	// Connection set-up: connect, one byte there and back, close; in the bench's own process.
	type setup struct {
		label string
		port  int
		us    []float64
	}
	setups := []*setup{{label: "Publish", port: pbPubEcho}}
	for _, v := range vethVariants {
		setups = append(setups, &setup{label: v.label, port: v.echo})
	}
	var cfns []func()
	for _, s := range setups {
		cfns = append(cfns, func() {
			addr := fmt.Sprintf("127.0.0.1:%d", s.port)
			for range pbConnects {
				start := time.Now()
				if err := echoOnce(addr); err != nil {
					fatalf("a connection to %s (%s): %v", addr, s.label, err)
				}
				s.us = append(s.us, float64(time.Since(start))/float64(time.Microsecond))
			}
		})
	}
	progressf("publish: %d rounds of %d connections per path", rounds, pbConnects)
	interleave(rounds, cfns, nil)
	ct := &Table{Header: []string{"path", "µs median", "min", "max", "× VPN-Confinement's"}}
	baseSetup := Summarize(setups[1].us)
	for _, s := range setups {
		st := Summarize(s.us)
		ct.add(append(append([]string{s.label}, statCells(st)...), fmtRatio(Ratio(st, baseSetup)))...)
	}
	ct.Caption = "Connection set-up: connect, one byte there and back, close"

	vpnc, bare := vethVariants[0], vethVariants[1]
	return &Section{
		Title: "publish: a service inside, reached from the host",
		Method: fmt.Sprintf(`A wgns tunnel %q (%s WireGuard; its peer need not answer, a published port never goes
through the tunnel) whose config says `+"`Publish = %d:%d, %d:%d`"+`: its supervisor listens on
127.0.0.1 in the world and carries each connection to the namespace's own loopback, spliced.
Against it, what users of other tools set up instead, a namespace joined to the world by a veth,
in two forms. First, the goals' baseline, as VPN-Confinement sets it up (modules/vpn-up.nix at
880b3bd): the veth's world end in a bridge that has the world's address (%s, the namespace %s),
and in the namespace %q %s: input policy drop; lo, established and related connections and
the mapped ports on the veth accepted; invalid dropped; forward policy drop; DNS out dropped.
Second, a bare veth (%s world, %s inside, namespace %q) with no bridge and no firewall: less
than any tool that confines a service sets up. VPN-Confinement DNATs its port mappings in
PREROUTING, which the world's own connections never pass (from the host itself it reaches a
service only at the namespace's address); here, for both, the world's connections to
127.0.0.1:PORT are DNATed in nftables' output hook to the namespace's address and masqueraded
out of the veth (`+"`route_localnet=1`"+` in the world), the least that makes them work.
The same servers run in every namespace: iperf3 -s, and a one-byte echo in the bench's process
(its listener made inside). Throughput: iperf3 -c 127.0.0.1 -p PORT (%s s, the first second
omitted, the receiver's figure), both directions, %d rounds interleaved. Set-up: %d connections
per path and round from the bench's process, each timed from before connect to after close
(the byte's round trip makes the time include the way in: for Publish, the supervisor's connection
inside). All ends share this machine's %d cores.`,
			pbTunnel, mode, pbPubIperf, pbIperf, pbPubEcho, pbEcho, vpnc.world4, vpnc.ns4, vpnc.ns, vpnc.insideW,
			bare.world4, bare.ns4, bare.ns, secs, rounds, pbConnects, numCPU()),
		Tables: []*Table{tt, ct},
		Goals:  goals,
		Notes: []string{"Publish adds no interface, route, NAT rule or sysctl; the veth variant needs all four, and a veth into " +
			"a tunnel's namespace is a second way out of it that the tunnel's firewall must then close."},
	}
}

// echoIn starts a server that answers each connection's byte with the same byte, on addr inside
// namespace ns: its listening socket is made there (nsmgr.Do), and served from the bench's
// process. The caller closes it.
func echoIn(ns, addr string) net.Listener {
	h, err := nsmgr.Open(ns)
	if err != nil {
		fatalf("%v", err)
	}
	defer h.Close()
	var l net.Listener
	if err := nsmgr.Do(h, func() (err error) { l, err = net.Listen("tcp4", addr); return err }); err != nil {
		fatalf("listening on %s in %s: %v", addr, ns, err)
	}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				b := make([]byte, 1)
				if _, err := io.ReadFull(c, b); err == nil {
					c.Write(b)
				}
			}()
		}
	}()
	return l
}

// echoOnce connects to addr, sends a byte, reads it back and closes.
func echoOnce(addr string) error {
	c, err := net.DialTimeout("tcp4", addr, 5*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte{'x'}); err != nil {
		return err
	}
	b := make([]byte, 1)
	_, err = io.ReadFull(c, b)
	return err
}
