package main

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"
)

// The failover section's world: two servers of one provider, each Debian's wireguard-go in a
// namespace of its own behind a veth of its own (IPv6 underlays, so that they clash with no
// other section's addresses), both with the gateway 192.0.2.1 that the client probes.
const (
	foTunnel  = "fo"
	foGateway = "192.0.2.1"
	foClient  = "192.0.2.2"
	foPort    = 51820
)

// foServer is one of the two servers.
type foServer struct {
	ns, dev    string
	world, end string // the world's and the server's ends of its veth (IPv6)
	key        wgtypes.Key
	proc       *exec.Cmd
}

// startFoServer makes server i's namespace and veth and starts its wireguard-go, accepting
// client.
func startFoServer(w *world, i int, client wgtypes.Key) *foServer {
	s := &foServer{ns: fmt.Sprintf("bfo%d", i), dev: fmt.Sprintf("wgfo%d", i),
		world: fmt.Sprintf("fd00:b0:%d::1", i), end: fmt.Sprintf("fd00:b0:%d::2", i), key: newKey()}
	vh, vp := fmt.Sprintf("vh-fo%d", i), fmt.Sprintf("vp-fo%d", i)
	mustRun("ip", "netns", "add", s.ns)
	mustRun("ip", "link", "add", vh, "type", "veth", "peer", "name", vp, "netns", s.ns)
	mustRun("ip", "-6", "addr", "add", s.world+"/64", "dev", vh, "nodad")
	mustRun("ip", "link", "set", vh, "up")
	mustRun("ip", "-n", s.ns, "-6", "addr", "add", s.end+"/64", "dev", vp, "nodad")
	mustRun("ip", "-n", s.ns, "link", "set", vp, "up")
	mustRun("ip", "-n", s.ns, "link", "set", "lo", "up")

	s.proc = exec.Command("ip", "netns", "exec", s.ns, w.debianWG, "-f", s.dev)
	s.proc.Env = append(os.Environ(), "WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD=1", "LOG_LEVEL=error")
	if err := s.proc.Start(); err != nil {
		fatalf("starting %s in %s: %v", w.debianWG, s.ns, err)
	}
	sock := "/var/run/wireguard/" + s.dev + ".sock"
	mustWaitFor(5*time.Second, sock, func() bool { return exists(sock) })
	conf := filepath.Join(runDir, s.dev+".conf")
	text := fmt.Sprintf("[Interface]\nPrivateKey = %s\nListenPort = %d\n\n[Peer]\nPublicKey = %s\nAllowedIPs = %s/32\n", s.key, foPort, client.PublicKey(), foClient)
	if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
		fatalf("writing %s: %v", conf, err)
	}
	mustRun("ip", "netns", "exec", s.ns, "wg", "setconf", s.dev, conf)
	mustRun("ip", "-n", s.ns, "addr", "add", foGateway+"/24", "dev", s.dev)
	mustRun("ip", "-n", s.ns, "link", "set", s.dev, "up")
	return s
}

// setLink takes the server down (wireguard-go closes its socket: the server stops answering,
// and its kernel refuses WireGuard's UDP) or back up.
func (s *foServer) setLink(up bool) {
	state := "down"
	if up {
		state = "up"
	}
	mustRun("ip", "-n", s.ns, "link", "set", s.dev, state)
}

func (s *foServer) stop() {
	s.proc.Process.Kill()
	s.proc.Wait()
}

// benchFailover measures how long traffic stops when the server a tunnel uses dies: a wgns
// tunnel to two servers with Failover = on (the defaults: FailoverTimeout 2 s, probing the DNS
// server, the gateway), an ICMP echo sent into it every 20 ms, the active server taken down,
// and the time until an echo is answered again (through the other). The server taken down comes
// back up before the next round, which takes down the other: the one active by then.
func benchFailover(w *world) *Section {
	rounds := w.opts.failoverRounds
	client := newKey()
	servers := []*foServer{startFoServer(w, 0, client), startFoServer(w, 1, client)}
	defer func() {
		for _, s := range servers {
			s.stop()
		}
	}()
	var conf strings.Builder
	fmt.Fprintf(&conf, "[Interface]\nPrivateKey = %s\nAddress = %s/24\nDNS = %s\n", client, foClient, foGateway)
	for _, s := range servers {
		fmt.Fprintf(&conf, "\n[Peer]\nPublicKey = %s\nAllowedIPs = 0.0.0.0/0\nEndpoint = [%s]:%d\nPersistentKeepalive = 25\n", s.key.PublicKey(), s.end, foPort)
	}
	conf.WriteString("\n[Namespace]\nFailover = on\n")
	path := filepath.Join(runDir, foTunnel+".conf")
	if err := os.WriteFile(path, []byte(conf.String()), 0o600); err != nil {
		fatalf("writing %s: %v", path, err)
	}
	w.sp.mustRun([]string{w.wgns, "up", path}, w.env) // the WireGuard `wgns up` picks on this kernel
	defer w.sp.run([]string{w.wgns, "down", "--force", foTunnel}, w.env, false)
	mode := "?"
	if st, err := os.ReadFile("/run/wgns/" + foTunnel + ".json"); err == nil {
		if strings.Contains(string(st), `"mode": "kernel"`) {
			mode = "kernel"
		} else if strings.Contains(string(st), `"mode": "userspace"`) {
			mode = "userspace"
		}
	}

	p, err := openPinger("/run/netns/"+foTunnel, netip.MustParseAddr(foGateway))
	if err != nil {
		fatalf("%v", err)
	}
	defer p.close()
	if !p.ping(10*time.Second, 20*time.Millisecond) {
		fatalf("no answer through the failover tunnel")
	}
	var gaps []float64
	active := 0
	for r := 0; r < rounds; r++ {
		// Settle, then take the active server down at a random moment of the prober's cycle.
		if !p.ping(10*time.Second, 20*time.Millisecond) {
			fatalf("round %d: no answer through the tunnel before taking a server down", r+1)
		}
		time.Sleep(time.Duration(rand.IntN(500)) * time.Millisecond)
		down := time.Now()
		servers[active].setLink(false)
		if !p.ping(30*time.Second, 20*time.Millisecond) {
			fatalf("round %d: no answer in 30 s after server %d went down", r+1, active)
		}
		gaps = append(gaps, ms(time.Since(down)))
		servers[active].setLink(true)
		active = 1 - active
		progressf("failover: round %d/%d: %.0f ms", r+1, rounds, gaps[len(gaps)-1])
	}
	st := Summarize(gaps)
	failovers := "?"
	if out, err := run(w.wgns, "status", foTunnel); err == nil {
		for _, l := range strings.Split(out, "\n") {
			if strings.Contains(l, "failovers:") {
				failovers = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(l), "failovers:"))
			}
		}
	}

	t := &Table{Header: []string{"", "runs", "median", "min", "max"}}
	t.add(append([]string{"server down → first echo answered through the other (ms)", fmt.Sprint(st.N)}, statCells(st)...)...)
	return &Section{
		Title: "Failover between redundant servers",
		Method: fmt.Sprintf(`A tunnel (%s WireGuard, as `+"`wgns up`"+` picks it here) to two servers of one provider, each
Debian's wireguard-go in a namespace of its own behind a veth of its own, both with the gateway
%s, with `+"`[Namespace] Failover = on`"+` and the defaults: FailoverTimeout 2 s, the DNS server (the
gateway) probed every 500 ms through the active server. An ICMP echo is sent into the tunnel every
20 ms (in-process, from a raw socket in its namespace). Each round takes the active server's
WireGuard interface down at a random moment (its wireguard-go closes its socket: it stops
answering, as a crashed server does), and times how long until an echo is answered again,
through the other server; then the server comes back up, and the next round takes down the other,
active by then (no flapping: wgns stays with the server that answers).`, mode, foGateway),
		Tables: []*Table{t},
		Goals: []Goal{
			{What: "failover: median time until traffic flows again (s)", Ratio: st.Median / 1000, Limit: 3, AtMost: true},
			{What: "failover: slowest time until traffic flows again (s)", Ratio: st.Max / 1000, Limit: 10, AtMost: true},
		},
		Notes: []string{
			fmt.Sprintf("The tunnel's status after the run: failovers: %s.", failovers),
			"The time is the detection (no answer through the active server for FailoverTimeout, counted from its last answer, seen at the next probe) plus one handshake with the other server. A group with nothing to probe (`FailoverCheck = none`, or no DNS server in its AllowedIPs) fails over on WireGuard's own evidence instead: traffic sent and nothing back for 15 s (the root test TestIntegrationFailoverWithoutProbes measures about 16.5 s).",
		},
	}
}
