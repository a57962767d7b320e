package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"github.com/wgns/wgns/internal/procstat"
)

// The throughput section's addresses: its peer is upstream wireguard-go (the release wgns
// embeds), so both tunnels measured have the same WireGuard at both ends.
const (
	tpPeerDev    = "wgpt"
	tpPeerPort   = 51821
	tpPeer4      = "203.0.113.1"
	tpWgnsClient = "203.0.113.2"
	tpPlainDev   = "wgplain"
	tpPlain4     = "203.0.113.3"
	tpTunnel     = "tp"
	tpNoFwClient = "203.0.113.4"
	tpNoFwTunnel = "tpnofw" // the same, with [Namespace] Firewall = off
)

// iperfResult is the part of iperf3's JSON report used here.
type iperfResult struct {
	End struct {
		SumReceived struct {
			BitsPerSecond float64 `json:"bits_per_second"`
		} `json:"sum_received"`
		CPU struct {
			HostTotal   float64 `json:"host_total"`
			RemoteTotal float64 `json:"remote_total"`
		} `json:"cpu_utilization_percent"`
	} `json:"end"`
	Error string `json:"error"`
}

// benchThroughput measures TCP throughput (iperf3) through a wgns tunnel, through a tunnel
// between two plain upstream wireguard-go devices, and over the bare veth.
func benchThroughput(w *world) *Section {
	wgnsKey, noFwKey, plainKey := newKey(), newKey(), newKey()
	peer := startPeerDev(w.upstreamWG, tpPeerDev, tpPeerPort, []string{tpPeer4 + "/24"}, []peerEntry{
		{Key: wgnsKey.PublicKey(), AllowedIPs: []string{tpWgnsClient + "/32"}},
		{Key: noFwKey.PublicKey(), AllowedIPs: []string{tpNoFwClient + "/32"}},
		{Key: plainKey.PublicKey(), AllowedIPs: []string{tpPlain4 + "/32"}},
	})
	defer peer.stop()

	// The wgns tunnels: as users have them, and without wgns's firewall (to show its cost).
	for _, t := range []struct {
		name, addr string
		key        wgtypes.Key
		extra      string
	}{
		{tpTunnel, tpWgnsClient, wgnsKey, ""},
		{tpNoFwTunnel, tpNoFwClient, noFwKey, "\n[Namespace]\nFirewall = off\n"},
	} {
		conf := filepath.Join(runDir, t.name+".conf")
		c := clientConf{Key: t.key, Addresses: []string{t.addr + "/24"}, DNS: tpPeer4, Peer: peer.Key.PublicKey(),
			AllowedIPs: "0.0.0.0/0", Endpoint: fmt.Sprintf("%s:%d", peerUnderlay4, tpPeerPort), Keepalive: 25}
		if err := os.WriteFile(conf, []byte(c.text()+t.extra), 0o600); err != nil {
			fatalf("writing %s: %v", conf, err)
		}
		w.sp.mustRun([]string{w.wgns, "up", "--userspace", conf}, w.env)
		defer w.sp.run([]string{w.wgns, "down", "--force", t.name}, w.env, false)
	}

	// The plain client: upstream wireguard-go in the world, configured with wg(8).
	plain := exec.Command(w.upstreamWG, "-f", tpPlainDev)
	plain.Env = append(os.Environ(), "LOG_LEVEL=error")
	if err := plain.Start(); err != nil {
		fatalf("starting upstream wireguard-go: %v", err)
	}
	defer func() { plain.Process.Kill(); plain.Wait() }()
	sock := "/var/run/wireguard/" + tpPlainDev + ".sock"
	mustWaitFor(5*time.Second, sock, func() bool { return exists(sock) })
	pc := fmt.Sprintf("[Interface]\nPrivateKey = %s\n\n[Peer]\nPublicKey = %s\nAllowedIPs = %s/32\nEndpoint = %s:%d\nPersistentKeepalive = 25\n",
		plainKey, peer.Key.PublicKey(), tpPeer4, peerUnderlay4, tpPeerPort)
	pcPath := filepath.Join(runDir, tpPlainDev+".conf")
	if err := os.WriteFile(pcPath, []byte(pc), 0o600); err != nil {
		fatalf("writing %s: %v", pcPath, err)
	}
	mustRun("wg", "setconf", tpPlainDev, pcPath)
	mustRun("ip", "addr", "add", tpPlain4+"/32", "dev", tpPlainDev)
	mustRun("ip", "link", "set", tpPlainDev, "up")
	mustRun("ip", "route", "add", tpPeer4+"/32", "dev", tpPlainDev)
	mtuWgns := strings.TrimSpace(mustRun("ip", "-n", tpTunnel, "-o", "link", "show", tpTunnel))
	mtuPlain := strings.TrimSpace(mustRun("ip", "-o", "link", "show", tpPlainDev))

	// The iperf3 server, in the peer namespace, on all its addresses.
	srv := exec.Command("ip", "netns", "exec", peerNS, "iperf3", "-s")
	if err := srv.Start(); err != nil {
		fatalf("starting iperf3 -s: %v", err)
	}
	defer func() { srv.Process.Kill(); srv.Wait() }()
	mustWaitFor(5*time.Second, "iperf3's listener", func() bool {
		out, _ := run("ip", "netns", "exec", peerNS, "ss", "-ltnH", "sport", "= :5201")
		return strings.Contains(out, "LISTEN")
	})

	secs := strconv.Itoa(w.opts.iperfSecs)
	iperf := lookPath("iperf3")
	type path struct {
		label     string
		argv      []string
		clientPID int // the client end's WireGuard process, 0 for none
		bps       []float64
		clientCPU []float64 // % of one core over the run
		peerCPU   []float64
	}
	peerPID := peer.proc.Process.Pid // ip netns exec executes wireguard-go in place
	paths := []*path{
		{label: "wgns tunnel (embedded WireGuard ↔ upstream wireguard-go)", clientPID: holderPID(tpTunnel),
			argv: []string{w.wgns, "exec", tpTunnel, "--", iperf, "-c", tpPeer4, "-t", secs, "-O", "1", "-J"}},
		{label: "plain pair (upstream wireguard-go ↔ upstream wireguard-go)", clientPID: plain.Process.Pid,
			argv: []string{iperf, "-c", tpPeer4, "-t", secs, "-O", "1", "-J"}},
		{label: "bare veth (no tunnel)", argv: []string{iperf, "-c", peerUnderlay4, "-t", secs, "-O", "1", "-J"}},
		{label: "wgns tunnel with `Firewall = off` (no nftables, no conntrack in the namespace)", clientPID: holderPID(tpNoFwTunnel),
			argv: []string{w.wgns, "exec", tpNoFwTunnel, "--", iperf, "-c", tpPeer4, "-t", secs, "-O", "1", "-J"}},
	}
	var fns []func()
	for _, p := range paths {
		fns = append(fns, func() {
			var c0, p0 float64
			res, r := runIperf(w, p.argv, func() { c0, p0 = procCPU(p.clientPID), procCPU(peerPID) })
			p.bps = append(p.bps, res.End.SumReceived.BitsPerSecond/1e9)
			wall := r.Elapsed.Seconds()
			p.clientCPU = append(p.clientCPU, 100*(procCPU(p.clientPID)-c0)/wall)
			p.peerCPU = append(p.peerCPU, 100*(procCPU(peerPID)-p0)/wall)
		})
	}
	rounds := w.opts.iperfRounds
	progressf("throughput: %d rounds of %d paths, %s s each", rounds, len(paths), secs)
	interleave(rounds, fns, func(r int) { progressf("throughput: round %d/%d", r, rounds) })

	plainStat := Summarize(paths[1].bps)
	t := &Table{Header: []string{"path", "Gbit/s median", "min", "max", "× plain pair", "× plain pair, per round (median, min-max)",
		"client WireGuard CPU %", "client CPU % per Gbit/s", "peer WireGuard CPU %"}}
	perGbit := func(p *path) []float64 {
		var v []float64
		for i := range p.bps {
			if p.bps[i] > 0 {
				v = append(v, p.clientCPU[i]/p.bps[i])
			}
		}
		return v
	}
	for _, p := range paths {
		s := Summarize(p.bps)
		// Each round's figure against the plain pair's of the same round: less sensitive to
		// the machine's load changing between rounds than the ratio of medians.
		var paired []float64
		for i := range p.bps {
			if i < len(paths[1].bps) && paths[1].bps[i] > 0 {
				paired = append(paired, p.bps[i]/paths[1].bps[i])
			}
		}
		ps := Summarize(paired)
		cc, cg := "-", "-"
		if p.clientPID != 0 {
			cc, cg = fmtNum(Summarize(p.clientCPU).Median), fmtNum(Summarize(perGbit(p)).Median)
		}
		t.add(append(append([]string{p.label}, statCells(s)...), fmtRatio(Ratio(s, plainStat)),
			fmt.Sprintf("%s (%s-%s)", fmtRatio(ps.Median), fmtRatio(ps.Min), fmtRatio(ps.Max)), cc, cg, fmtNum(Summarize(p.peerCPU).Median))...)
	}
	var notes []string
	wgnsPer, plainPer := Summarize(perGbit(paths[0])).Median, Summarize(perGbit(paths[1])).Median
	if plainPer > 0 {
		text := fmt.Sprintf("The wgns holder spends %s%% of a core per Gbit/s against %s%% for the plain wireguard-go client (%s×); "+
			"both run the same wireguard-go code.", fmtNum(wgnsPer), fmtNum(plainPer), fmtRatio(wgnsPer/plainPer))
		if noFw := Summarize(perGbit(paths[3])).Median; wgnsPer/plainPer > 1.1 {
			if noFw < wgnsPer*0.93 {
				text += fmt.Sprintf(" Without the firewall the holder spends %s%% per Gbit/s: with it, its writes to the TUN also carry the "+
					"namespace's input path (nftables, conntrack) for the packets it delivers, in its own CPU time.", fmtNum(noFw))
			} else {
				text += fmt.Sprintf(" Without the firewall it spends %s%% per Gbit/s, so the firewall is not what costs; what differs from "+
					"the plain pair is that the TUN, and the TCP sender, are in another namespace than the UDP socket, and that the "+
					"device runs inside wgns's process.", fmtNum(noFw))
			}
		}
		notes = append(notes, text)
	}
	return &Section{
		Title: "throughput: TCP through a tunnel",
		Method: fmt.Sprintf(`iperf3 (%s s, the first second omitted, receiver's figure) from the world to an iperf3 server
in the peer namespace. Both tunnels have upstream wireguard-go (%s) as the peer, %q in the
peer namespace: the wgns tunnel %q (`+"`wgns exec %s -- iperf3 -c %s`"+`), and a second upstream
wireguard-go device %q in the world (configured with wg(8), route to %s via it). The ceiling is
the same veth without a tunnel; the last row is a second wgns tunnel whose config says
`+"`[Namespace] Firewall = off`"+`, to show what wgns's nftables table (and the conntrack it
enables in the namespace) costs. Paths interleaved, %d rounds. Both ends share this machine's %d
cores with iperf3 itself, so every figure is CPU-bound; "CPU %%" is the user+system time of the
client's and the peer's WireGuard process over the run (100 = one core). Links: wgns %q; plain %q.`,
			secs, firstLine(mustOut(w.upstreamWG, "--version")), tpPeerDev, tpTunnel, tpTunnel, tpPeer4, tpPlainDev, tpPeer4, rounds, numCPU(),
			fieldsMTU(mtuWgns), fieldsMTU(mtuPlain)),
		Tables: []*Table{t},
		Notes:  notes,
		Goals:  []Goal{{What: "wgns / plain upstream wireguard-go pair, TCP throughput (median)", Ratio: Ratio(Summarize(paths[0].bps), plainStat), Limit: 0.95}},
	}
}

// fieldsMTU extracts "mtu N" from a line of `ip -o link show`.
func fieldsMTU(line string) string {
	f := strings.Fields(line)
	for i := 0; i+1 < len(f); i++ {
		if f[i] == "mtu" {
			return "mtu " + f[i+1]
		}
	}
	return "?"
}

// runIperf runs the iperf3 client argv (with -J) and returns its report. It tries up to four
// times, 200 ms apart, calling before just before each try, and exits the harness if the last
// try fails.
func runIperf(w *world, argv []string, before func()) (iperfResult, result) {
	var res iperfResult
	var r result
	for attempt := 0; ; attempt++ {
		before()
		r = w.sp.run(argv, w.env, true)
		res = iperfResult{}
		json.Unmarshal([]byte(r.Output), &res)
		// iperf3's server takes one test at a time and may still be finishing the last.
		if r.Code == 0 && res.Error == "" || attempt == 3 {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if r.Code != 0 || res.Error != "" {
		fatalf("%s: exit %d: %s\n%s", strings.Join(argv, " "), r.Code, res.Error, r.Output)
	}
	return res, r
}

// procCPU returns the user+system CPU seconds a process (all its threads, living or gone) has
// used, or 0 for pid 0 or a process that is gone.
func procCPU(pid int) float64 {
	if pid == 0 {
		return 0
	}
	f := procstat.Fields(pid)
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (u + st) / 100 // USER_HZ
}
