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

// The publish section's names and addresses. The veth of the DNAT variant gets a /30 of its own
// in TEST-NET-3, clear of the throughput section's addresses.
const (
	pbTunnel    = "pub"           // the wgns tunnel whose config publishes the servers' ports
	pbDnatNS    = "bdnat"         // the namespace of the veth + DNAT variant
	pbWorldVeth = "vd-w"          // its veth, the world's end
	pbNSVeth    = "vd-n"          // the namespace's end
	pbWorld4    = "203.0.113.129" // the world's end's address
	pbNS4       = "203.0.113.130" // the namespace's
	pbIperf     = 5201            // iperf3 -s inside each namespace
	pbEcho      = 7007            // the one-byte echo inside each namespace
	pbPubIperf  = 19080           // 127.0.0.1:PORT on the world's side, published by wgns
	pbPubEcho   = 19082
	pbDnatIperf = 19081 // 127.0.0.1:PORT on the world's side, DNATed to the veth namespace
	pbDnatEcho  = 19083
	pbConnects  = 200 // connections timed per path and round
)

// pbDnatRuleset is the veth + DNAT variant as VPN-Confinement makes it for a port mapping, with
// nftables instead of iptables: the world's own connections to 127.0.0.1:PORT are DNATed in the
// output hook to the namespace's address, and masqueraded out of the veth (route_localnet lets
// packets from 127.0.0.1 leave lo at all).
var pbDnatRuleset = fmt.Sprintf(`table ip wgns_bench_dnat {
	chain output {
		type nat hook output priority -100; policy accept;
		ip daddr 127.0.0.1 tcp dport %d dnat to %s:%d
		ip daddr 127.0.0.1 tcp dport %d dnat to %s:%d
	}
	chain postrouting {
		type nat hook postrouting priority 100; policy accept;
		oifname %q masquerade
	}
}
`, pbDnatIperf, pbNS4, pbIperf, pbDnatEcho, pbNS4, pbEcho, pbWorldVeth)

// benchPublish measures a published port against a veth with DNAT: TCP throughput (iperf3, both
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

	// The veth + DNAT variant.
	mustRun("ip", "netns", "add", pbDnatNS)
	defer run("ip", "netns", "del", pbDnatNS)
	mustRun("ip", "link", "add", pbWorldVeth, "type", "veth", "peer", "name", pbNSVeth, "netns", pbDnatNS)
	defer run("ip", "link", "del", pbWorldVeth)
	mustRun("ip", "addr", "add", pbWorld4+"/30", "dev", pbWorldVeth)
	mustRun("ip", "link", "set", pbWorldVeth, "up")
	mustRun("ip", "-n", pbDnatNS, "addr", "add", pbNS4+"/30", "dev", pbNSVeth)
	mustRun("ip", "-n", pbDnatNS, "link", "set", pbNSVeth, "up")
	mustRun("ip", "-n", pbDnatNS, "link", "set", "lo", "up")
	ruleset := filepath.Join(runDir, "dnat.nft")
	if err := os.WriteFile(ruleset, []byte(pbDnatRuleset), 0o600); err != nil {
		fatalf("writing %s: %v", ruleset, err)
	}
	mustRun("nft", "-f", ruleset)
	defer run("nft", "delete", "table", "ip", "wgns_bench_dnat")
	mustRun("sysctl", "-qw", "net.ipv4.conf.all.route_localnet=1")
	defer run("sysctl", "-qw", "net.ipv4.conf.all.route_localnet=0")

	// The servers: iperf3 and the echo, the same in both namespaces; wgns's on the namespace's
	// loopback (where a published port leads), the other on its veth address.
	for _, s := range []struct{ ns, addr string }{{pbTunnel, "127.0.0.1"}, {pbDnatNS, pbNS4}} {
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
	var paths []*path
	for _, reverse := range []bool{false, true} {
		dir := "into the namespace"
		if reverse {
			dir = "out of the namespace (-R)"
		}
		paths = append(paths,
			&path{label: "Publish, " + dir, port: pbPubIperf, reverse: reverse},
			&path{label: "veth + DNAT, " + dir, port: pbDnatIperf, reverse: reverse})
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

	tt := &Table{Header: []string{"path", "Gbit/s median", "min", "max", "× veth + DNAT", "× veth + DNAT, per round (median, min-max)", "supervisor CPU %"}}
	var goals []Goal
	for i := 0; i < len(paths); i += 2 {
		pub, dnat := paths[i], paths[i+1]
		ps, ds := Summarize(pub.bps), Summarize(dnat.bps)
		// Each round's figure against the other path's of the same round: less sensitive to the
		// machine's load changing between rounds than the ratio of medians.
		var paired []float64
		for j := range pub.bps {
			if j < len(dnat.bps) && dnat.bps[j] > 0 {
				paired = append(paired, pub.bps[j]/dnat.bps[j])
			}
		}
		pr := Summarize(paired)
		tt.add(append(append([]string{pub.label}, statCells(ps)...), fmtRatio(Ratio(ps, ds)),
			fmt.Sprintf("%s (%s-%s)", fmtRatio(pr.Median), fmtRatio(pr.Min), fmtRatio(pr.Max)), fmtNum(Summarize(pub.cpu).Median))...)
		tt.add(append(append([]string{dnat.label}, statCells(ds)...), "1.00", "", "-")...)
		what := "into the namespace"
		if pub.reverse {
			what = "out of the namespace"
		}
		goals = append(goals, Goal{What: "Publish / veth + DNAT, TCP throughput " + what + " (median)", Ratio: Ratio(ps, ds), Limit: 0.9})
	}

	// Connection set-up: connect, one byte there and back, close; in the bench's own process.
	type setup struct {
		label string
		port  int
		us    []float64
	}
	setups := []*setup{{label: "Publish", port: pbPubEcho}, {label: "veth + DNAT", port: pbDnatEcho}}
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
	ct := &Table{Header: []string{"path", "µs median", "min", "max", "× veth + DNAT"}}
	dnatSetup := Summarize(setups[1].us)
	for _, s := range setups {
		st := Summarize(s.us)
		ct.add(append(append([]string{s.label}, statCells(st)...), fmtRatio(Ratio(st, dnatSetup)))...)
	}
	ct.Caption = "Connection set-up: connect, one byte there and back, close"

	return &Section{
		Title: "publish: a service inside, reached from the host",
		Method: fmt.Sprintf(`A wgns tunnel %q (%s WireGuard; its peer need not answer, a published port never goes
through the tunnel) whose config says `+"`Publish = %d:%d, %d:%d`"+`: its supervisor listens on
127.0.0.1 in the world and carries each connection to the namespace's own loopback, spliced. Against
it, what VPN-Confinement does for a port mapping: a namespace %q joined to the world by a veth
(%s world, %s inside), the world's connections to 127.0.0.1:PORT DNATed in nftables' output hook
to the namespace's address and masqueraded out of the veth (`+"`route_localnet=1`"+` in the world).
The same servers run in both namespaces: iperf3 -s, and a one-byte echo in the bench's process
(its listener made inside). Throughput: iperf3 -c 127.0.0.1 -p PORT (%s s, the first second
omitted, the receiver's figure), both directions, %d rounds interleaved. Set-up: %d connections
per path and round from the bench's process, each timed from before connect to after close
(the byte's round trip makes the time include the way in: for Publish, the supervisor's connection
inside). All ends share this machine's %d cores.`,
			pbTunnel, mode, pbPubIperf, pbIperf, pbPubEcho, pbEcho, pbDnatNS, pbWorld4, pbNS4, secs, rounds, pbConnects, numCPU()),
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
