package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"github.com/wgns/wgns/internal/procstat"
	"github.com/wgns/wgns/internal/syncbuf"
)

// The throughput section's addresses: its peer is upstream wireguard-go (the release wgns
// embeds), so every tunnel measured has the same WireGuard at both ends.
const (
	tpPeerDev    = "wgpt"
	tpPeerPort   = 51821
	tpPeer4      = "203.0.113.1"  // the peer's tunnel address, reached through wgplain
	tpPeerFg4    = "203.0.113.11" // a second address of it, reached through wgplainfg
	tpWgnsClient = "203.0.113.2"
	tpPlainDev   = "wgplain" // upstream wireguard-go started in a session of its own
	tpPlain4     = "203.0.113.3"
	tpTunnel     = "tp"
	tpNoFwClient = "203.0.113.4"
	tpNoFwTunnel = "tpnofw"  // the same, with [Namespace] Firewall = off
	tpSplitDev   = "wgsplit" // upstream wireguard-go's device with wgns's namespace split (bench/floor/splitwg)
	tpSplitNS    = "tpsplit" // its TUN's namespace
	tpSplit4     = "203.0.113.5"
	tpPlainFgDev = "wgplainfg" // upstream wireguard-go -f, a child of the bench
	tpPlainFg4   = "203.0.113.6"
	tpFgTunnel   = "tpfg" // a wgns tunnel held by `wgns up --foreground`, a child of the bench
	tpFgClient   = "203.0.113.7"
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

// benchThroughput measures TCP throughput (iperf3) through wgns tunnels and through tunnels
// between plain upstream wireguard-go devices, each wgns tunnel against a plain pair whose client
// process is placed alike (a session of its own, or a child of the bench), beside a wgns tunnel
// without its firewall, the split floor (bench/floor/splitwg) and the bare veth.
func benchThroughput(w *world) *Section {
	wgnsKey, noFwKey, fgKey, plainKey, plainFgKey, splitKey := newKey(), newKey(), newKey(), newKey(), newKey(), newKey()
	peer := startPeerDev(w.upstreamWG, tpPeerDev, tpPeerPort, []string{tpPeer4 + "/24", tpPeerFg4 + "/32"}, []peerEntry{
		{Key: wgnsKey.PublicKey(), AllowedIPs: []string{tpWgnsClient + "/32"}},
		{Key: noFwKey.PublicKey(), AllowedIPs: []string{tpNoFwClient + "/32"}},
		{Key: fgKey.PublicKey(), AllowedIPs: []string{tpFgClient + "/32"}},
		{Key: plainKey.PublicKey(), AllowedIPs: []string{tpPlain4 + "/32"}},
		{Key: plainFgKey.PublicKey(), AllowedIPs: []string{tpPlainFg4 + "/32"}},
		{Key: splitKey.PublicKey(), AllowedIPs: []string{tpSplit4 + "/32"}},
	})
	defer peer.stop()

	// The wgns tunnels: as `wgns up` holds them (its supervisor in a session of its own), the
	// same without wgns's firewall (to show its cost), and as `wgns up --foreground` holds one
	// (in the caller's session, as systemd or wireguard-go -f would).
	writeConf := func(name, addr string, key wgtypes.Key, extra string) string {
		conf := filepath.Join(runDir, name+".conf")
		c := clientConf{Key: key, Addresses: []string{addr + "/24"}, DNS: tpPeer4, Peer: peer.Key.PublicKey(),
			AllowedIPs: "0.0.0.0/0", Endpoint: fmt.Sprintf("%s:%d", peerUnderlay4, tpPeerPort), Keepalive: 25}
		if err := os.WriteFile(conf, []byte(c.text()+extra), 0o600); err != nil {
			fatalf("writing %s: %v", conf, err)
		}
		return conf
	}
	for _, t := range []struct {
		name, addr string
		key        wgtypes.Key
		extra      string
	}{
		{tpTunnel, tpWgnsClient, wgnsKey, ""},
		{tpNoFwTunnel, tpNoFwClient, noFwKey, "\n[Namespace]\nFirewall = off\n"},
	} {
		w.sp.mustRun([]string{w.wgns, "up", "--userspace", writeConf(t.name, t.addr, t.key, t.extra)}, w.env)
		defer w.sp.run([]string{w.wgns, "down", "--force", t.name}, w.env, false)
	}
	fg := exec.Command(w.wgns, "up", "--foreground", "--userspace", writeConf(tpFgTunnel, tpFgClient, fgKey, ""))
	fg.Env = w.env
	var fgOut syncbuf.Buffer
	fg.Stdout, fg.Stderr = &fgOut, &fgOut
	if err := fg.Start(); err != nil {
		fatalf("starting wgns up --foreground: %v", err)
	}
	fgDone := make(chan struct{})
	go func() { fg.Wait(); close(fgDone) }()
	defer func() { fg.Process.Signal(syscall.SIGTERM); <-fgDone }()
	fgReady := "/run/wgns/" + tpFgTunnel + ".ready"
	mustWaitFor(10*time.Second, fgReady, func() bool {
		select {
		case <-fgDone:
			return true
		default:
			return exists(fgReady)
		}
	})
	if !exists(fgReady) {
		fatalf("wgns up --foreground %s did not become ready:\n%s", tpFgTunnel, fgOut.String())
	}

	// The plain clients: upstream wireguard-go in the world, configured with wg(8), one started
	// in a session of its own (as wgns up starts its supervisor), one with -f as a child of the
	// bench; each reaches its own address of the peer.
	plainConf := func(key wgtypes.Key, allowed string) string {
		return fmt.Sprintf("[Interface]\nPrivateKey = %s\n\n[Peer]\nPublicKey = %s\nAllowedIPs = %s\nEndpoint = %s:%d\nPersistentKeepalive = 25\n",
			key, peer.Key.PublicKey(), allowed, peerUnderlay4, tpPeerPort)
	}
	setconf := func(dev, conf string) {
		p := filepath.Join(runDir, dev+".conf")
		if err := os.WriteFile(p, []byte(conf), 0o600); err != nil {
			fatalf("writing %s: %v", p, err)
		}
		mustRun("wg", "setconf", dev, p)
	}
	startWG := func(bin string, ownSession bool, args ...string) *exec.Cmd {
		c := exec.Command(bin, args...)
		c.Env = append(os.Environ(), "LOG_LEVEL=error")
		if ownSession {
			c.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
		}
		if err := c.Start(); err != nil {
			fatalf("starting %s: %v", bin, err)
		}
		dev := args[len(args)-1]
		sock := "/var/run/wireguard/" + dev + ".sock"
		mustWaitFor(5*time.Second, sock, func() bool { return exists(sock) })
		return c
	}
	stop := func(c *exec.Cmd) { c.Process.Kill(); c.Wait() }
	var plainPID, plainFgPID int
	for _, p := range []struct {
		dev, addr, target string
		key               wgtypes.Key
		ownSession        bool
		pid               *int
	}{
		{tpPlainDev, tpPlain4, tpPeer4, plainKey, true, &plainPID},
		{tpPlainFgDev, tpPlainFg4, tpPeerFg4, plainFgKey, false, &plainFgPID},
	} {
		c := startWG(w.upstreamWG, p.ownSession, "-f", p.dev)
		defer stop(c)
		*p.pid = c.Process.Pid
		setconf(p.dev, plainConf(p.key, p.target+"/32"))
		mustRun("ip", "addr", "add", p.addr+"/32", "dev", p.dev)
		mustRun("ip", "link", "set", p.dev, "up")
		mustRun("ip", "route", "add", p.target+"/32", "dev", p.dev)
	}

	// The split floor: the same upstream code as the plain clients, its TUN made inside a
	// namespace of its own and its UDP socket in the world, as wgns's supervisor has them; a
	// child of the bench, like wireguard-go -f.
	mustRun("ip", "netns", "add", tpSplitNS)
	defer run("ip", "netns", "del", tpSplitNS)
	split := startWG(w.splitwg, false, tpSplitNS, tpSplitDev)
	defer stop(split)
	setconf(tpSplitDev, plainConf(splitKey, "0.0.0.0/0"))
	mustRun("ip", "-n", tpSplitNS, "addr", "add", tpSplit4+"/24", "dev", tpSplitDev)
	mustRun("ip", "-n", tpSplitNS, "link", "set", tpSplitDev, "up")
	mustRun("ip", "-n", tpSplitNS, "route", "add", "default", "dev", tpSplitDev)
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
		base      int // the index of the plain pair it is compared with
		bps       []float64
		clientCPU []float64 // % of one core over the run
		peerCPU   []float64
	}
	peerPID := peer.proc.Process.Pid // ip netns exec executes wireguard-go in place
	iperfTo := func(target string) []string { return []string{iperf, "-c", target, "-t", secs, "-O", "1", "-J"} }
	wgnsExec := func(tunnel string) []string {
		return append([]string{w.wgns, "exec", tunnel, "--"}, iperfTo(tpPeer4)...)
	}
	const own, child = 1, 3 // the plain pairs each path is compared with: the one placed as it is
	paths := []*path{
		{label: "wgns tunnel, held by `wgns up` (its supervisor in a session of its own)", clientPID: holderPID(tpTunnel), base: own,
			argv: wgnsExec(tpTunnel)},
		{label: "plain pair, its client in a session of its own", clientPID: plainPID, base: own, argv: iperfTo(tpPeer4)},
		{label: "wgns tunnel, held by `wgns up --foreground` (a child of the bench)", clientPID: holderPID(tpFgTunnel), base: child,
			argv: wgnsExec(tpFgTunnel)},
		{label: "plain pair, its client `wireguard-go -f` (a child of the bench)", clientPID: plainFgPID, base: child, argv: iperfTo(tpPeerFg4)},
		{label: "wgns tunnel with `Firewall = off` (no nftables, no conntrack in the namespace), held by `wgns up`",
			clientPID: holderPID(tpNoFwTunnel), base: own, argv: wgnsExec(tpNoFwTunnel)},
		{label: "split floor: upstream wireguard-go's device, its TUN in a namespace, its socket in the world (a child of the bench)",
			clientPID: split.Process.Pid, base: child, argv: append([]string{w.ip, "netns", "exec", tpSplitNS}, iperfTo(tpPeer4)...)},
		{label: "bare veth (no tunnel)", base: child, argv: iperfTo(peerUnderlay4)},
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

	t := &Table{Header: []string{"path", "Gbit/s median", "min", "max", "× the plain pair placed alike", "the same, per round (median, min-max)",
		"client WireGuard CPU %", "client CPU % per Gbit/s", "peer WireGuard CPU %"}}
	perGbit := func(p *path) float64 {
		var v []float64
		for i := range p.bps {
			if p.bps[i] > 0 {
				v = append(v, p.clientCPU[i]/p.bps[i])
			}
		}
		return Summarize(v).Median
	}
	ratio := func(p *path) float64 { return Ratio(Summarize(p.bps), Summarize(paths[p.base].bps)) }
	for _, p := range paths {
		base := paths[p.base]
		// Each round's figure against its plain pair's of the same round: less sensitive to the
		// machine's load changing between rounds than the ratio of medians.
		var paired []float64
		for i := range p.bps {
			if i < len(base.bps) && base.bps[i] > 0 {
				paired = append(paired, p.bps[i]/base.bps[i])
			}
		}
		ps := Summarize(paired)
		cc, cg := "-", "-"
		if p.clientPID != 0 {
			cc, cg = fmtNum(Summarize(p.clientCPU).Median), fmtNum(perGbit(p))
		}
		t.add(append(append([]string{p.label}, statCells(Summarize(p.bps))...), fmtRatio(ratio(p)),
			fmt.Sprintf("%s (%s-%s)", fmtRatio(ps.Median), fmtRatio(ps.Min), fmtRatio(ps.Max)), cc, cg, fmtNum(Summarize(p.peerCPU).Median))...)
	}
	splitNote := "the split costs nothing measurable"
	if r := ratio(paths[5]); r < 0.95 {
		splitNote = fmt.Sprintf("the split itself costs %.0f%%", 100*(1-r))
	}
	notes := []string{
		fmt.Sprintf("Placed alike, the wgns supervisor spends %s%% of a core per Gbit/s against the plain client's %s%% (sessions of their own), "+
			"and %s%% against %s%% (children of the bench); both run the same wireguard-go code. The split floor, the plain client's code "+
			"with its TUN in a namespace and its socket in the world, runs at %s× the plain pair placed alike: %s.",
			fmtNum(perGbit(paths[0])), fmtNum(perGbit(paths[1])), fmtNum(perGbit(paths[2])), fmtNum(perGbit(paths[3])), fmtRatio(ratio(paths[5])), splitNote),
		fmt.Sprintf("Placement: the same plain client runs at %s× in a session of its own what it runs as a child of the bench "+
			"(autogroup %s: the kernel schedules each session as a group of its own, so the tunnel's client then competes as one group "+
			"with the group of iperf3 and the peer, on %d cores). `wgns up` starts its supervisor in a session of its own, so that a "+
			"terminal's hang-up or ^C never reaches it; wireguard-go's own daemon stays in its caller's session. Under systemd each is "+
			"in its unit's cgroup.",
			fmtRatio(Ratio(Summarize(paths[1].bps), Summarize(paths[3].bps))), autogroupState(), numCPU()),
	}
	return &Section{
		Title: "throughput: TCP through a tunnel",
		Method: fmt.Sprintf(`iperf3 (%s s, the first second omitted, receiver's figure) from the world to an iperf3 server
in the peer namespace. Every tunnel has upstream wireguard-go (%s) as the peer, %q in the
peer namespace. The wgns tunnels run iperf3 with `+"`wgns exec NAME -- iperf3 -c %s`"+`; the plain
clients are upstream wireguard-go devices in the world (configured with wg(8), a route to the
peer's address via each). Where the tunnel's client process runs matters on a machine this
small, so each wgns tunnel is compared with a plain pair placed alike: %q started in a session of
its own, as `+"`wgns up`"+` starts its supervisor, and %q run with -f as a child of the bench, as
`+"`wgns up --foreground`"+` holds tunnel %q. The split floor (bench/floor/splitwg) is upstream
wireguard-go's device made the way wgns makes it, and nothing else. The ceiling is the same veth
without a tunnel. Paths interleaved, %d rounds. Every end shares this machine's %d cores with
iperf3 itself, so every figure is CPU-bound; "CPU %%" is the user+system time of the client's and
the peer's WireGuard process over the run (100 = one core). Links: wgns %q; plain %q.`,
			secs, firstLine(mustOut(w.upstreamWG, "--version")), tpPeerDev, tpPeer4, tpPlainDev, tpPlainFgDev, tpFgTunnel, rounds, numCPU(),
			fieldsMTU(mtuWgns), fieldsMTU(mtuPlain)),
		Tables: []*Table{t},
		Notes:  notes,
		Goals: []Goal{
			{What: "wgns / plain upstream wireguard-go pair, TCP throughput, each in a session of its own (median)", Ratio: ratio(paths[0]), Limit: 0.95},
			{What: "wgns / plain upstream wireguard-go pair, TCP throughput, each a child of the bench (median)", Ratio: ratio(paths[2]), Limit: 0.95},
		},
	}
}

// autogroupState says whether the kernel groups each session for scheduling
// (kernel.sched_autogroup_enabled).
func autogroupState() string {
	b, err := os.ReadFile("/proc/sys/kernel/sched_autogroup_enabled")
	switch {
	case err != nil:
		return "unknown"
	case strings.TrimSpace(string(b)) == "1":
		return "on"
	}
	return "off"
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
