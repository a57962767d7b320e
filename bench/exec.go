package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/wgns/wgns/dnsbind"
	"github.com/wgns/wgns/identity"
	"github.com/wgns/wgns/internal/envlist"
	"github.com/wgns/wgns/internal/osthread"
	"github.com/wgns/wgns/wgns/ready"

	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"
)

// The tunnels of the exec and up sections, and the addresses their peer gives them.
const (
	execTunnel   = "ex"
	upTunnel     = "wgb"  // wgns's name for the up/down comparison
	quickTunnel  = "wgq"  // wg-quick's interface for it (same key, same peer)
	mainPeerDev  = "wgpd" // Debian's wireguard-go, port 51820
	mainPeerPort = 51820
	peerTunnel4  = "192.0.2.1"
	peerTunnel6  = "fd00:192:0:2::1"
	upClient4    = "192.0.2.2"
	upClient6    = "fd00:192:0:2::2"
	execClient4  = "192.0.2.3"
	execClient6  = "fd00:192:0:2::3"
)

// mainPeer is the Debian wireguard-go peer that the exec and up sections' tunnels talk to.
type mainPeer struct {
	dev     *peerDev
	upKey   wgtypes.Key // the private key of the up/down client (wgns and wg-quick alike)
	execKey wgtypes.Key // the private key of the exec section's tunnel
}

var theMainPeer *mainPeer

// mainPeer starts the main peer the first time it is needed.
func (w *world) mainPeer() *mainPeer {
	if theMainPeer != nil {
		return theMainPeer
	}
	p := &mainPeer{upKey: newKey(), execKey: newKey()}
	p.dev = startPeerDev(w.debianWG, mainPeerDev, mainPeerPort,
		[]string{peerTunnel4 + "/24", peerTunnel6 + "/64"},
		[]peerEntry{
			{Key: p.upKey.PublicKey(), AllowedIPs: []string{upClient4 + "/32", upClient6 + "/128"}},
			{Key: p.execKey.PublicKey(), AllowedIPs: []string{execClient4 + "/32", execClient6 + "/128"}},
		})
	theMainPeer = p
	return p
}

// clientConf is the provider-style config of a client of the main peer.
func (p *mainPeer) clientConf(key wgtypes.Key, addr4, addr6 string, dns bool) clientConf {
	c := clientConf{
		Key:        key,
		Addresses:  []string{addr4 + "/24", addr6 + "/64"},
		Peer:       p.dev.Key.PublicKey(),
		AllowedIPs: "0.0.0.0/0, ::/0",
		Endpoint:   fmt.Sprintf("%s:%d", peerUnderlay4, mainPeerPort),
		Keepalive:  25,
	}
	if dns {
		c.DNS = peerTunnel4
	}
	return c
}

// execVariant is one way of running /bin/true, measured.
type execVariant struct {
	label  string
	argv   []string
	env    []string
	code   int // the exit status it must have
	wall   []float64
	cpu    []float64
	minflt []float64
}

func (v *execVariant) run(w *world) {
	r := w.sp.run(v.argv, v.env, false)
	if r.Code != v.code {
		fatalf("%s: exit %d, want %d\n%s", strings.Join(v.argv, " "), r.Code, v.code, r.Output)
	}
	v.wall = append(v.wall, ms(r.Elapsed))
	v.cpu = append(v.cpu, ms(r.CPU))
	v.minflt = append(v.minflt, float64(r.MinFlt))
}

// upExecTunnel brings up the exec section's tunnel with wgns.
func (w *world) upExecTunnel() {
	if exists("/run/netns/" + execTunnel) {
		return
	}
	p := w.mainPeer()
	conf := filepath.Join(runDir, execTunnel+".conf")
	p.clientConf(p.execKey, execClient4, execClient6, true).write(conf)
	w.sp.mustRun([]string{w.wgns, "up", "--userspace", conf}, w.env)
}

// benchExec compares `wgns exec NAME -- /bin/true` with `ip netns exec NAME /bin/true`, the
// floors below them, and plain /bin/true.
func benchExec(w *world) *Section {
	w.upExecTunnel()
	sudoEnv := append(append([]string{}, w.env...), "SUDO_UID=65534", "SUDO_GID=65534", "SUDO_USER=nobody")
	vs := []*execVariant{
		{label: "/bin/true", argv: []string{"/bin/true"}, env: w.env},
		{label: "ip netns exec NAME /bin/true", argv: []string{w.ip, "netns", "exec", execTunnel, "/bin/true"}, env: w.env},
		{label: "wgns exec NAME -- /bin/true", argv: []string{w.wgns, "exec", execTunnel, "--", "/bin/true"}, env: w.env},
		{label: "floor: Go binary that only execs /bin/true", argv: []string{w.gotrue, "/bin/true"}, env: w.env},
		{label: "floor: `ip netns exec` in Go, nothing else", argv: []string{w.gonsexec, execTunnel, "/bin/true"}, env: w.env},
		{label: "wgns exec NOSUCH -- /bin/true (start-up, fails at its first check)", argv: []string{w.wgns, "exec", "nosuch", "--", "/bin/true"}, env: w.env, code: 125},
		{label: "wgns exec under sudo (SUDO_UID=65534: drops to nobody)", argv: []string{w.wgns, "exec", execTunnel, "--", "/bin/true"}, env: sudoEnv},
	}
	// The full wgns next to the front (README, "How exec stays as cheap as ip netns exec"): the
	// same exec, from the binary that links everything; the cost the front saves.
	if core := filepath.Join(filepath.Dir(w.wgns), "..", "libexec", "wgns", filepath.Base(w.wgns)); exists(core) {
		vs = append(vs, &execVariant{label: "the full wgns's exec (libexec/wgns/wgns exec NAME -- /bin/true), which the front saves",
			argv: []string{core, "exec", execTunnel, "--", "/bin/true"}, env: w.env})
	}
	fns := make([]func(), len(vs))
	for i, v := range vs {
		fns[i] = func() { v.run(w) }
	}
	rounds := w.opts.execRounds
	progressf("exec: %d rounds of %d variants (after 10 warm-up rounds)", rounds, len(vs))
	interleave(10, fns, nil)
	for _, v := range vs {
		v.wall, v.cpu, v.minflt = nil, nil, nil
	}
	interleave(rounds, fns, func(r int) {
		if r%100 == 0 {
			progressf("exec: round %d/%d", r, rounds)
		}
	})

	ipStat := Summarize(vs[1].wall)
	t := &Table{Header: []string{"command", "median ms", "min ms", "max ms", "× ip netns exec", "CPU ms", "minor faults"}}
	for _, v := range vs {
		s := Summarize(v.wall)
		row := append([]string{v.label}, statCells(s)...)
		row = append(row, fmtRatio(Ratio(s, ipStat)), fmtNum(Summarize(v.cpu).Median), fmtNum(Summarize(v.minflt).Median))
		t.add(row...)
	}
	wgnsStat := Summarize(vs[2].wall)
	floorGo, floorNS, startup := Summarize(vs[3].wall), Summarize(vs[4].wall), Summarize(vs[5].wall)
	trueStat := Summarize(vs[0].wall)
	s := &Section{
		Title: "exec: the time `wgns exec` adds to every command",
		Method: fmt.Sprintf(`The tunnel %q is up (wgns, embedded WireGuard, provider-style config with DNS). Each round
runs every command below once, in an order that flips every round; %d rounds after 10 warm-up
rounds. All run as root with the same small environment (root's, without sudo's variables),
except the sudo row. "CPU ms" is user+system time from wait4's rusage (median), "minor faults"
the median page faults: both show where wall time goes without a profiler. The two floors are
built by the harness from bench/floor/: the Go runtime's start-up alone, and `+"`ip netns exec`"+`'s
work (setns, unshare the mount namespace, / a recursive slave, remount /sys, bind the files of
/etc/netns/NAME) done by the smallest possible Go program.`, execTunnel, rounds),
		Tables: []*Table{t},
		Goals:  []Goal{{What: "wgns exec / ip netns exec (median)", Ratio: Ratio(wgnsStat, ipStat), Limit: 1.10, AtMost: true}},
	}
	goStart := floorGo.Median - trueStat.Median // the Go runtime's start-up
	ownStart := startup.Median - goStart        // wgns's binary size, package init, first check
	nsWork := wgnsStat.Median - startup.Median - trueStat.Median
	floorNSWork := floorNS.Median - floorGo.Median
	s.Notes = append(s.Notes,
		fmt.Sprintf("wgns exec adds %s ms to a command (its median minus plain /bin/true's); ip netns exec adds %s ms.",
			fmtNum(wgnsStat.Median-trueStat.Median), fmtNum(ipStat.Median-trueStat.Median)),
		fmt.Sprintf("wgns exec's %s ms, by difference of medians: %s ms the Go runtime's start-up (the Go floor minus /bin/true); "+
			"%s ms more for wgns's own start-up, its size and package init (the NOSUCH row, which stops at the first check, minus that); "+
			"%s ms for the namespace work (ready check, user, PATH, setns, mount namespace, /sys, DNS view, hiding; wgns exec minus NOSUCH minus /bin/true), "+
			"against %s ms for the same kernel work with plain bind mounts in the Go floor; %s ms /bin/true itself.",
			fmtNum(wgnsStat.Median), fmtNum(goStart), fmtNum(ownStart), fmtNum(nsWork), fmtNum(floorNSWork), fmtNum(trueStat.Median)),
	)
	if limit := 1.10 * ipStat.Median; floorNS.Median > limit {
		s.Notes = append(s.Notes, fmt.Sprintf("What the goal would take: 1.10 × ip netns exec is %s ms here. A Go program that does nothing but exec "+
			"/bin/true already takes %s ms (%s×), and the least Go implementation of ip netns exec's work %s ms (%s×): no Go binary "+
			"meets the goal on this machine. Reaching it needs an exec path that does not start the Go runtime (a small static "+
			"helper, in C, that wgns installs and calls), or a runtime start-up below %s ms.",
			fmtNum(limit), fmtNum(floorGo.Median), fmtRatio(Ratio(floorGo, ipStat)), fmtNum(floorNS.Median), fmtRatio(Ratio(floorNS, ipStat)),
			fmtNum(limit-trueStat.Median-floorNSWork)))
	} else {
		s.Notes = append(s.Notes, fmt.Sprintf("What the goal would take: 1.10 × ip netns exec is %s ms here, and the least Go implementation "+
			"of ip netns exec's work takes %s ms, so a Go wgns exec has %s ms for everything it adds to that floor; it adds %s ms now "+
			"(%s ms of start-up, size and package init, %s ms of namespace work beyond plain bind mounts).",
			fmtNum(limit), fmtNum(floorNS.Median), fmtNum(limit-floorNS.Median), fmtNum(wgnsStat.Median-floorNS.Median),
			fmtNum(ownStart), fmtNum(nsWork-floorNSWork)))
	}
	return s
}

// profileExec shows where `wgns exec` spends its time: package init (GODEBUG=inittrace=1), the
// system calls it makes (strace -c) against ip netns exec and the Go floor, and a timeline of
// its phases (strace -f -ttt).
func profileExec(w *world) *Section {
	w.upExecTunnel()
	progressf("exec: profiling (inittrace, strace)")
	s := &Section{
		Title: "Where `wgns exec` spends its time",
		Method: `Package init: 21 runs of ` + "`GODEBUG=inittrace=1 wgns exec NAME -- /bin/true`" + `, median per package (the
tracing itself slows init down; the proportions are what matters). System calls: ` + "`strace -f -c`" + `
of one run of each command. Timeline: one run under ` + "`strace -f -ttt`" + `, cut at the first file wgns
reads (` + "`/run/wgns/NAME.ready`" + `: main has started), at setns (the namespace work starts) and at the
execve of /bin/true. Times under strace are inflated by tracing every system call; compare
counts, and the phases' shares.`,
	}
	s.Tables = append(s.Tables, initTable(w), execPieces(w))
	s.Tables = append(s.Tables, syscallTable(w))
	tl, notes := execTimeline(w)
	s.Tables = append(s.Tables, tl)
	s.Notes = append(s.Notes, notes...)
	return s
}

var initLine = regexp.MustCompile(`^init (\S+) @([0-9.]+) ms, ([0-9.]+) ms clock, ([0-9]+) bytes, ([0-9]+) allocs`)

// initTable runs wgns exec with GODEBUG=inittrace=1 and tabulates the costliest package inits.
func initTable(w *world) *Table {
	const runs = 21
	clock := map[string][]float64{}
	bytes := map[string][]float64{}
	var totals, mainAt, counts []float64
	env := append(append([]string{}, w.env...), "GODEBUG=inittrace=1")
	for i := 0; i < runs; i++ {
		r := w.sp.run([]string{w.wgns, "exec", execTunnel, "--", "/bin/true"}, env, true)
		if r.Code != 0 {
			fatalf("wgns exec with inittrace: exit %d\n%s", r.Code, r.Output)
		}
		var total, last float64
		n := 0
		for _, l := range strings.Split(r.Output, "\n") {
			m := initLine.FindStringSubmatch(l)
			if m == nil {
				continue
			}
			at, _ := strconv.ParseFloat(m[2], 64)
			c, _ := strconv.ParseFloat(m[3], 64)
			b, _ := strconv.ParseFloat(m[4], 64)
			clock[m[1]] = append(clock[m[1]], c)
			bytes[m[1]] = append(bytes[m[1]], b)
			total += c
			last = max(last, at+c)
			n++
		}
		totals, mainAt, counts = append(totals, total), append(mainAt, last), append(counts, float64(n))
	}
	type pkg struct {
		name  string
		clock float64
		bytes float64
	}
	var ps []pkg
	for name, c := range clock {
		ps = append(ps, pkg{name, Summarize(c).Median, Summarize(bytes[name]).Median})
	}
	sort.Slice(ps, func(i, j int) bool { return ps[i].clock > ps[j].clock })
	t := &Table{
		Caption: fmt.Sprintf("Package init of `wgns exec` (GODEBUG=inittrace=1, median of %d runs): %s packages, %s ms of init in all; the last init ends %s ms after the process starts (main starts then).",
			runs, fmtNum(Summarize(counts).Median), fmtNum(Summarize(totals).Median), fmtNum(Summarize(mainAt).Median)),
		Header: []string{"package", "init ms", "bytes allocated"},
	}
	for i, p := range ps {
		if i == 15 {
			break
		}
		t.add(p.name, fmtNum(p.clock), strconv.FormatFloat(p.bytes, 'f', 0, 64))
	}
	return t
}

// straceSummary runs argv under strace -f -c and returns the total number of system calls and
// the counts by name.
func straceSummary(w *world, argv []string) (int, map[string]int) {
	out := filepath.Join(runDir, "strace-c.txt")
	r := w.sp.run(append([]string{lookPath("strace"), "-f", "-c", "-o", out}, argv...), w.env, false)
	if r.Code != 0 {
		fatalf("strace -c %s: exit %d\n%s", strings.Join(argv, " "), r.Code, r.Output)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		fatalf("reading strace's summary: %v", err)
	}
	total := 0
	by := map[string]int{}
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) < 5 || strings.HasPrefix(l, "%") || strings.HasPrefix(l, "-") {
			continue
		}
		name := f[len(f)-1]
		// Columns: % time, seconds, usecs/call, calls, [errors,] syscall.
		calls, err := strconv.Atoi(f[3])
		if err != nil {
			continue
		}
		if name == "total" {
			total = calls
			continue
		}
		by[name] = calls
	}
	return total, by
}

// syscallTable compares the system calls of wgns exec, ip netns exec and the Go floors.
func syscallTable(w *world) *Table {
	cmds := []struct {
		label string
		argv  []string
	}{
		{"wgns exec", []string{w.wgns, "exec", execTunnel, "--", "/bin/true"}},
		{"ip netns exec", []string{w.ip, "netns", "exec", execTunnel, "/bin/true"}},
		{"floor: ip netns exec in Go", []string{w.gonsexec, execTunnel, "/bin/true"}},
		{"floor: Go exec only", []string{w.gotrue, "/bin/true"}},
	}
	t := &Table{
		Caption: "System calls of one run, /bin/true's own included (strace -f -c).",
		Header:  []string{"command", "system calls", "most frequent"},
	}
	for _, c := range cmds {
		total, by := straceSummary(w, c.argv)
		t.add(c.label, strconv.Itoa(total), strings.Join(mostFrequent(by, 8), ", "))
	}
	return t
}

// traceLine is one line of strace -f -ttt output.
type traceLine struct {
	at   float64 // seconds
	call string  // system call name, or "" for resumptions and exits
	text string
}

var traceRe = regexp.MustCompile(`^\d+\s+([0-9]+\.[0-9]+) (?:([a-z_0-9]+)\(|)(.*)$`)

// execTimeline runs wgns exec once under strace -f -ttt and cuts it into phases.
func execTimeline(w *world) (*Table, []string) {
	out := filepath.Join(runDir, "strace-ttt.txt")
	r := w.sp.run([]string{lookPath("strace"), "-f", "-ttt", "-o", out, w.wgns, "exec", execTunnel, "--", "/bin/true"}, w.env, false)
	if r.Code != 0 {
		fatalf("strace -ttt wgns exec: exit %d\n%s", r.Code, r.Output)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		fatalf("reading strace's trace: %v", err)
	}
	var lines []traceLine
	for _, l := range strings.Split(string(b), "\n") {
		m := traceRe.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		at, _ := strconv.ParseFloat(m[1], 64)
		lines = append(lines, traceLine{at: at, call: m[2], text: m[3]})
	}
	if len(lines) == 0 {
		fatalf("empty strace output")
	}
	find := func(from int, pred func(traceLine) bool) int {
		for i := from; i < len(lines); i++ {
			if pred(lines[i]) {
				return i
			}
		}
		return len(lines) - 1
	}
	iMain := find(0, func(l traceLine) bool { return l.call == "openat" && strings.Contains(l.text, "/run/wgns/") })
	iSetns := find(iMain, func(l traceLine) bool { return l.call == "setns" })
	iExec := find(iSetns, func(l traceLine) bool { return l.call == "execve" && strings.Contains(l.text, "/bin/true") })
	end := len(lines) - 1
	phases := []struct {
		label    string
		from, to int
	}{
		{"exec of wgns → main (runtime start-up, package init)", 0, iMain},
		{"main → setns (ready check, user, PATH lookup, locked thread)", iMain, iSetns},
		{"setns → execve /bin/true (mount namespace, /sys, DNS view, hiding)", iSetns, iExec},
		{"/bin/true itself", iExec, end},
	}
	total := lines[end].at - lines[0].at
	t := &Table{
		Caption: fmt.Sprintf("Phases of one `wgns exec NAME -- /bin/true` under strace -f -ttt (%d system calls, %.1f ms traced).", len(lines), total*1000),
		Header:  []string{"phase", "system calls", "ms (traced)", "share", "most frequent calls"},
	}
	for _, p := range phases {
		counts := map[string]int{}
		n := 0
		for _, l := range lines[p.from:p.to] {
			if l.call != "" {
				counts[l.call]++
				n++
			}
		}
		top := mostFrequent(counts, 5)
		d := lines[p.to].at - lines[p.from].at
		t.add(p.label, strconv.Itoa(n), fmt.Sprintf("%.2f", d*1000), fmt.Sprintf("%.0f%%", 100*d/total), strings.Join(top, ", "))
	}
	var notes []string
	var opened []string
	for _, l := range lines[:iExec] {
		if l.call == "openat" || l.call == "open" {
			if i := strings.Index(l.text, `"`); i >= 0 {
				if j := strings.Index(l.text[i+1:], `"`); j >= 0 {
					opened = append(opened, l.text[i+1:i+1+j])
				}
			}
		}
	}
	notes = append(notes, "Files wgns opens before it executes the command: `"+strings.Join(opened, "`, `")+"`.")
	threads := 0
	for _, l := range lines[:iExec] {
		if l.call == "clone" || l.call == "clone3" {
			threads++
		}
	}
	notes = append(notes, fmt.Sprintf("Threads started before the exec: %d (clone).", threads))
	return t, notes
}

// mostFrequent returns the n most frequent names of counts as "NAME COUNT", most first, ties
// in name order.
func mostFrequent(counts map[string]int, n int) []string {
	type kv struct {
		k string
		v int
	}
	var kvs []kv
	for k, v := range counts {
		kvs = append(kvs, kv{k, v})
	}
	sort.Slice(kvs, func(i, j int) bool { return kvs[i].v > kvs[j].v || kvs[i].v == kvs[j].v && kvs[i].k < kvs[j].k })
	var top []string
	for i, e := range kvs {
		if i == n {
			break
		}
		top = append(top, fmt.Sprintf("%s %d", e.k, e.v))
	}
	return top
}

// execPieces times, in the harness's process, the pieces of wgns exec's work after start-up,
// and the plain bind mounts ip netns exec makes instead of wgns's DNS view.
func execPieces(w *world) *Table {
	const reps = 50
	getenv := func(env []string) func(string) string {
		return func(k string) string { return envlist.Value(env, k) }
	}
	sudoEnv := append(append([]string{}, w.env...), "SUDO_UID=65534", "SUDO_GID=65534", "SUDO_USER=nobody")
	var readyCheck, identRoot, identSudo, enter, sys, dns, binds, key, copyKept []float64
	enterNet := func() {
		fd, err := unix.Open("/run/netns/"+execTunnel, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			fatalf("%v", err)
		}
		defer unix.Close(fd)
		if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
			fatalf("setns: %v", err)
		}
	}
	enterNS := func() {
		enterNet()
		if err := unix.Unshare(unix.CLONE_NEWNS); err != nil {
			fatalf("unshare: %v", err)
		}
		if err := unix.Mount("", "/", "none", unix.MS_SLAVE|unix.MS_REC, ""); err != nil {
			fatalf("making / a slave: %v", err)
		}
	}
	for i := 0; i < reps; i++ {
		t0 := time.Now()
		h, err := ready.Open(execTunnel)
		if err != nil {
			fatalf("%v", err)
		}
		h.Close()
		readyCheck = append(readyCheck, ms(time.Since(t0)))
		for _, c := range []struct {
			env []string
			out *[]float64
		}{{w.env, &identRoot}, {sudoEnv, &identSudo}} {
			t0 = time.Now()
			who, err := identity.Resolve("", getenv(c.env), 0)
			if err != nil {
				fatalf("%v", err)
			}
			who.Env(c.env)
			*c.out = append(*c.out, ms(time.Since(t0)))
		}
		osthread.Disposable(func() {
			t0 := time.Now()
			enterNS()
			t1 := time.Now()
			unix.Unmount("/sys", unix.MNT_DETACH)
			if err := unix.Mount(execTunnel, "/sys", "sysfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
				fatalf("mounting /sys: %v", err)
			}
			t2 := time.Now()
			if err := dnsbind.Enter(execTunnel); err != nil {
				fatalf("%v", err)
			}
			t3 := time.Now()
			enter, sys, dns = append(enter, ms(t1.Sub(t0))), append(sys, ms(t2.Sub(t1))), append(dns, ms(t3.Sub(t2)))
		})
		osthread.Disposable(func() {
			// What wgns exec does once the view is kept (nsmgr's enterView): the key, then
			// a copy of the kept mount namespace instead of the three rows above.
			enterNet()
			view := dnsbind.Entry{Name: execTunnel}
			t0 := time.Now()
			k, err := view.Key()
			if err != nil {
				fatalf("%v", err)
			}
			t1 := time.Now()
			kept := view.Open(k)
			if kept < 0 {
				fatalf("no view is kept for %s (wgns exec keeps one)", execTunnel)
			}
			if err := unix.Unshare(unix.CLONE_FS); err != nil {
				fatalf("unshare: %v", err)
			}
			if err := unix.Setns(kept, unix.CLONE_NEWNS); err != nil {
				fatalf("setns: %v", err)
			}
			unix.Close(kept)
			if err := unix.Unshare(unix.CLONE_NEWNS); err != nil {
				fatalf("unshare: %v", err)
			}
			t2 := time.Now()
			key, copyKept = append(key, ms(t1.Sub(t0))), append(copyKept, ms(t2.Sub(t1)))
		})
		osthread.Disposable(func() {
			enterNS()
			t0 := time.Now()
			for _, f := range []string{"resolv.conf", "nsswitch.conf"} {
				if err := unix.Mount("/etc/netns/"+execTunnel+"/"+f, "/etc/"+f, "none", unix.MS_BIND, ""); err != nil {
					fatalf("binding %s: %v", f, err)
				}
			}
			binds = append(binds, ms(time.Since(t0)))
		})
	}
	t := &Table{
		Caption: fmt.Sprintf("The pieces of `wgns exec`'s work after start-up, timed in the harness's process (median of %d; each namespace piece on a fresh thread).", reps),
		Header:  []string{"piece", "median ms", "min", "max"},
	}
	for _, r := range []struct {
		label string
		v     []float64
	}{
		{"ready.Open (ready marker, namespace identity, one descriptor)", readyCheck},
		{"identity.Resolve + Env, plain root", identRoot},
		{"identity.Resolve + Env, under sudo (user and groups looked up)", identSudo},
		{"setns + unshare(CLONE_NEWNS) + / a recursive slave", enter},
		{"/sys unmounted and a sysfs of the namespace mounted", sys},
		{"dnsbind.Enter (DNS view over /etc, resolver sockets hidden)", dns},
		{"once the view is kept: its key (view files checked, link farms' stamps, netns cookie)", key},
		{"once the view is kept: a copy of it entered (open, setns, unshare), instead of the three rows above", copyKept},
		{"instead: bind resolv.conf and nsswitch.conf (what ip netns exec does)", binds},
	} {
		t.add(append([]string{r.label}, statCells(Summarize(r.v))...)...)
	}
	return t
}
