package main

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
	"golang.zx2c4.com/wireguard/tun"

	"github.com/wgns/wgns/firewall"
	"github.com/wgns/wgns/nsmgr"
)

// upRound is what one bring-up and teardown measured (ms since the command started).
type upRound struct {
	up, ping, down float64
	upMarks        map[string]float64 // step marks of wgns up, see upSteps
	downMarks      map[string]float64
}

// The marks of wgns up and down, read from the files it writes, and the work done from each
// mark to the next. A state file renamed into place marks the start of the step it records
// ("step:NAME"); steps not listed here are shown by name.
var (
	upWork = map[string]string{
		"start":          "`wgns up` starts, parses the config, reads state, opens the holder's log",
		"log":            "holder (`wgns up --foreground`) starts: Go start-up, config, endpoint, lock",
		"step:namespace": "namespace: create and mount /run/netns/NAME",
		"step:firewall":  "firewall: nftables table in the namespace",
		"step:interface": "interface: TUN and UAPI socket made, in (or moved into) the namespace",
		"step:addresses": "addresses, lo up",
		"step:routes":    "routes",
		"step:peers":     "peers: WireGuard config over UAPI (wgctrl), device up",
		"step:dns":       "DNS view (/etc/netns/NAME)",
		"step:ready":     "state says ready; ready marker written",
		"ready":          "READY=1 reaches `wgns up`, which exits",
		"exit":           "handshake and first echo answered through the tunnel",
	}
	downWork = map[string]string{
		"start":     "`wgns down` starts, scans for processes inside, SIGTERM; holder removes the ready marker",
		"unready":   "holder closes the device, removes the DNS view",
		"dnsgone":   "namespace unmounted and removed",
		"nsgone":    "UAPI socket, log and state removed",
		"stategone": "holder exits; `wgns down` sees it, relocks, exits",
	}
)

// marks turns the events of one up or down of tunnel name into named times since t0 (the
// first occurrence of each).
func marks(evs []fsEvent, name string, t0 time.Time) map[string]float64 {
	m := map[string]float64{}
	for _, e := range evs {
		d := ms(e.at.Sub(t0))
		set := func(k string) {
			if _, ok := m[k]; !ok {
				m[k] = d
			}
		}
		switch {
		case e.path == "/run/wgns/"+name+".log" && e.mask&unix.IN_CREATE != 0:
			set("log")
		case e.path == "/run/wgns/"+name+".json" && e.mask&unix.IN_MOVED_TO != 0 && e.step != "":
			set("step:" + e.step)
		case e.path == "/run/wgns/"+name+".ready" && e.mask&unix.IN_MOVED_TO != 0:
			set("ready")
		case e.path == "/run/wgns/"+name+".ready" && e.mask&unix.IN_DELETE != 0:
			set("unready")
		case e.path == "/etc/netns/"+name && e.mask&unix.IN_DELETE != 0:
			set("dnsgone")
		case e.path == "/run/netns/"+name && e.mask&unix.IN_DELETE != 0:
			set("nsgone")
		case e.path == "/run/wgns/"+name+".json" && e.mask&unix.IN_DELETE != 0:
			set("stategone")
		}
	}
	return m
}

// benchUp compares bringing a tunnel up (to the first ping answered through it) and down with
// wgns and with wg-quick, on the same config and peer. It returns the comparison and the steps
// of wgns up and down.
func benchUp(w *world) (*Section, *Section, *upData) {
	p := w.mainPeer()
	wgnsConf := filepath.Join(runDir, upTunnel+".conf")
	p.clientConf(p.upKey, upClient4, upClient6, true).write(wgnsConf)
	quickConf := "/etc/wireguard/" + quickTunnel + ".conf" // the world's /etc: an overlay
	p.clientConf(p.upKey, upClient4, upClient6, false).write(quickConf)
	quickEnv := append(append([]string{}, w.env...), "WG_QUICK_USERSPACE_IMPLEMENTATION=wireguard-go")
	dst := netip.MustParseAddr(peerTunnel4)
	for _, d := range []string{"/run/wgns", "/run/netns"} { // as wgns and ip make them
		if err := os.MkdirAll(d, 0o700); err != nil {
			fatalf("%v", err)
		}
	}
	watch := newFSWatch("/run/wgns", "/etc/netns", "/run/netns")
	defer watch.close()

	var wgnsRounds, quickRounds []upRound
	wgnsRound := func() {
		watch.drop()
		var r upRound
		t0 := time.Now()
		res := w.sp.run([]string{w.wgns, "up", "--userspace", wgnsConf}, w.env, false)
		if res.Code != 0 {
			fatalf("wgns up: exit %d\n%s", res.Code, res.Output)
		}
		r.up = ms(res.Elapsed)
		r.ping = ms(mustPing("/run/netns/"+upTunnel, dst, "wgns tunnel "+upTunnel).Sub(t0))
		r.upMarks = marks(watch.collect(time.Second, func(e fsEvent) bool {
			return e.path == "/run/wgns/"+upTunnel+".ready" && e.mask&unix.IN_MOVED_TO != 0
		}), upTunnel, t0)
		r.upMarks["exit"], r.upMarks["ping"] = r.up, r.ping
		if os.Getenv("WGNS_BENCH_DEBUG") != "" {
			fmt.Fprintln(os.Stderr, "marks:", r.upMarks)
		}

		t1 := time.Now()
		res = w.sp.run([]string{w.wgns, "down", upTunnel}, w.env, false)
		if res.Code != 0 {
			fatalf("wgns down: exit %d\n%s", res.Code, res.Output)
		}
		r.down = ms(res.Elapsed)
		r.downMarks = marks(watch.collect(time.Second, func(e fsEvent) bool {
			return e.path == "/run/wgns/"+upTunnel+".json" && e.mask&unix.IN_DELETE != 0
		}), upTunnel, t1)
		r.downMarks["exit"] = r.down
		mustWaitFor(5*time.Second, "wgns's namespace to go", func() bool { return !exists("/run/netns/" + upTunnel) })
		wgnsRounds = append(wgnsRounds, r)
	}
	quickRound := func() {
		var r upRound
		t0 := time.Now()
		res := w.sp.run([]string{lookPath("wg-quick"), "up", quickTunnel}, quickEnv, false)
		if res.Code != 0 {
			fatalf("wg-quick up: exit %d\n%s", res.Code, res.Output)
		}
		r.up = ms(res.Elapsed)
		r.ping = ms(mustPing("", dst, "wg-quick's "+quickTunnel).Sub(t0))
		res = w.sp.run([]string{lookPath("wg-quick"), "down", quickTunnel}, quickEnv, false)
		if res.Code != 0 {
			fatalf("wg-quick down: exit %d\n%s", res.Code, res.Output)
		}
		r.down = ms(res.Elapsed)
		// wireguard-go exits once its interface is gone; wait, untimed, so rounds do not overlap.
		mustWaitFor(5*time.Second, "wg-quick's wireguard-go to exit", func() bool {
			return !exists("/var/run/wireguard/" + quickTunnel + ".sock")
		})
		quickRounds = append(quickRounds, r)
	}
	rounds := w.opts.upRounds
	progressf("up: %d rounds of wgns and wg-quick, up to the first ping and down (after 2 warm-up rounds)", rounds)
	interleave(2, []func(){wgnsRound, quickRound}, nil)
	wgnsRounds, quickRounds = nil, nil
	interleave(rounds, []func(){wgnsRound, quickRound}, func(r int) {
		if r%5 == 0 {
			progressf("up: round %d/%d", r, rounds)
		}
	})

	pick := func(rs []upRound, f func(upRound) float64) Stat {
		var v []float64
		for _, r := range rs {
			v = append(v, f(r))
		}
		return Summarize(v)
	}
	wPing, qPing := pick(wgnsRounds, func(r upRound) float64 { return r.ping }), pick(quickRounds, func(r upRound) float64 { return r.ping })
	wUp, qUp := pick(wgnsRounds, func(r upRound) float64 { return r.up }), pick(quickRounds, func(r upRound) float64 { return r.up })
	wDown, qDown := pick(wgnsRounds, func(r upRound) float64 { return r.down }), pick(quickRounds, func(r upRound) float64 { return r.down })
	t := &Table{Header: []string{"", "wgns median ms", "min", "max", "wg-quick median ms", "min", "max", "wgns / wg-quick"}}
	row := func(label string, a, b Stat) {
		t.add(append(append(append([]string{label}, statCells(a)...), statCells(b)...), fmtRatio(Ratio(a, b)))...)
	}
	row("up, to the first ping answered", wPing, qPing)
	row("up, until the command returns", wUp, qUp)
	row("down", wDown, qDown)
	s := &Section{
		Title: "up and down: from nothing to the first ping answered, and back",
		Method: fmt.Sprintf(`The same client (same key, addresses, AllowedIPs 0.0.0.0/0 and ::/0, endpoint, keepalive) of the
same peer (Debian's wireguard-go in the peer namespace): `+"`wgns up %s.conf`"+` (embedded WireGuard; its config
also has DNS, which wgns puts in the namespace's view) against `+"`WG_QUICK_USERSPACE_IMPLEMENTATION=wireguard-go wg-quick up %s`"+`
(Debian's wireguard-go; the config in the world's /etc/wireguard without the DNS line, as no
resolvconf is installed; wg-quick makes no namespace, installs policy routing and nftables rules
in the world). %d rounds, wgns and wg-quick interleaved, after 2 warm-up rounds. A round: start
the up command, then ping the peer's tunnel address %s in-process (from inside the namespace for
wgns) until the first answer, then run the down command. wg-quick's wireguard-go exits by itself
after down; the harness waits for that, untimed, before the next round.`, upTunnel, quickTunnel, rounds, peerTunnel4),
		Tables: []*Table{t},
		Goals: []Goal{
			{What: "wgns up / wg-quick up, to the first ping (median)", Ratio: Ratio(wPing, qPing), Limit: 0.2, AtMost: true},
			{What: "wgns down / wg-quick down (median)", Ratio: Ratio(wDown, qDown), Limit: 0.2, AtMost: true},
		},
	}
	d := &upData{ping: wPing, quickPing: qPing, down: wDown, quickDown: qDown}
	return s, upStepsSection(wgnsRounds, d), d
}

// stepTable cuts rounds (named marks in ms since the start) into the intervals between
// consecutive marks, in the order of their median times, each labelled with the work done from
// its first mark (work, else the mark's name).
func stepTable(rounds []map[string]float64, work map[string]string, total float64, caption string) (*Table, map[string]float64) {
	// Order the marks as they fall within each round (mean rank), not by their medians, which
	// come from different rounds; equal times keep the order of markOrder.
	rank := map[string]float64{}
	seen := map[string]int{}
	for _, m := range rounds {
		ks := make([]string, 0, len(m))
		for k := range m {
			ks = append(ks, k)
		}
		sort.Slice(ks, func(i, j int) bool {
			if m[ks[i]] != m[ks[j]] {
				return m[ks[i]] < m[ks[j]]
			}
			return markOrder(ks[i]) < markOrder(ks[j])
		})
		for i, k := range ks {
			rank[k] += float64(i)
			seen[k]++
		}
	}
	var keys []string
	for k := range rank {
		if k != "start" {
			keys = append(keys, k)
		}
	}
	sort.Slice(keys, func(i, j int) bool {
		ri, rj := rank[keys[i]]/float64(seen[keys[i]]), rank[keys[j]]/float64(seen[keys[j]])
		if ri != rj {
			return ri < rj
		}
		return markOrder(keys[i]) < markOrder(keys[j])
	})
	keys = append([]string{"start"}, keys...)
	t := &Table{Caption: caption, Header: []string{"from the previous mark: work done", "median ms", "min", "max", "share"}}
	medians := map[string]float64{}
	for i := 0; i+1 < len(keys); i++ {
		a, b := keys[i], keys[i+1]
		var v []float64
		for _, m := range rounds {
			m["start"] = 0
			va, oka := m[a]
			vb, okb := m[b]
			if oka && okb {
				v = append(v, vb-va)
			}
		}
		label, ok := work[a]
		if !ok {
			label = strings.TrimPrefix(a, "step:")
		}
		s := Summarize(v)
		medians[a] = s.Median
		t.add(append(append([]string{label}, statCells(s)...), fmt.Sprintf("%.0f%%", 100*s.Median/total))...)
	}
	return t, medians
}

// markOrder orders marks that fall at the same time: the state file's steps, then the ready
// marker, then the command's exit, then the ping.
func markOrder(k string) int {
	switch {
	case k == "start":
		return 0
	case k == "log":
		return 1
	case strings.HasPrefix(k, "step:"):
		return 2
	case k == "ready":
		return 3
	case k == "exit":
		return 5
	case k == "ping":
		return 6
	}
	return 4
}

// upData is what the up comparison measured, for the verdict.
type upData struct {
	ping, quickPing, down, quickDown Stat
	upSteps, downSteps               map[string]float64 // median ms of the interval starting at each mark
}

// upStepsSection tabulates the steps of wgns up and down from the rounds' marks.
func upStepsSection(rounds []upRound, d *upData) *Section {
	var ups, downs []map[string]float64
	for _, r := range rounds {
		ups, downs = append(ups, r.upMarks), append(downs, r.downMarks)
	}
	ut, um := stepTable(ups, upWork, d.ping.Median, fmt.Sprintf("wgns up, to the first ping answered (median %s ms):", fmtNum(d.ping.Median)))
	dt, dm := stepTable(downs, downWork, d.down.Median, fmt.Sprintf("wgns down (median %s ms):", fmtNum(d.down.Median)))
	d.upSteps, d.downSteps = um, dm
	return &Section{
		Title: "Where `wgns up` and `wgns down` spend their time",
		Method: `Cut from the same wgns rounds as above, without tracing: the holder rewrites
/run/wgns/NAME.json (by rename) at the start of each step of up, recording the step's name, and
wgns creates or deletes files in /run/wgns, /run/netns and /etc/netns at known points. The
harness watches those directories with inotify, stamps each event when it reads it and reads
the step from the state file at once. Each row is the time from one mark to the next (the rows
add up to the whole), median over the rounds; a row is labelled with the work wgns does in that
interval.`,
		Tables: []*Table{ut, dt},
	}
}

// benchUpOptions measures, in-process, the kernel operations up is made of, and the option of
// creating the TUN inside the namespace instead of creating it in the host and moving it.
func benchUpOptions(w *world) (*Section, *optData) {
	const rounds = 30
	var create, fw, fwInstall, fwAgain, nftE, nftC, nftCT, nftADA, tunHost, move, tunInNS, closeTun, del []float64
	rules := firewall.Rules{Tunnel: "optm"}
	moved := func() {
		t0 := time.Now()
		h, err := nsmgr.Create("optm")
		if err != nil {
			fatalf("%v", err)
		}
		t1 := time.Now()
		if err := firewall.Apply(int(h), rules); err != nil {
			fatalf("%v", err)
		}
		t2 := time.Now()
		if err := firewall.Apply(int(h), rules); err != nil {
			fatalf("%v", err)
		}
		fwAgain = append(fwAgain, ms(time.Since(t2)))
		t2 = time.Now()
		dev, err := tun.CreateTUN("optm", 1420)
		if err != nil {
			fatalf("creating a TUN: %v", err)
		}
		t3 := time.Now()
		l, err := netlink.LinkByName("optm")
		if err != nil {
			fatalf("%v", err)
		}
		if err := netlink.LinkSetNsFd(l, int(h)); err != nil {
			fatalf("moving a TUN: %v", err)
		}
		t4 := time.Now()
		dev.Close()
		t5 := time.Now()
		h.Close()
		if err := nsmgr.Delete("optm"); err != nil {
			fatalf("%v", err)
		}
		t6 := time.Now()
		create = append(create, ms(t1.Sub(t0)))
		fw = append(fw, ms(t2.Sub(t1)))
		tunHost = append(tunHost, ms(t3.Sub(t2)))
		move = append(move, ms(t4.Sub(t3)))
		closeTun = append(closeTun, ms(t5.Sub(t4)))
		del = append(del, ms(t6.Sub(t5)))
	}
	inside := func() {
		h, err := nsmgr.Create("opti")
		if err != nil {
			fatalf("%v", err)
		}
		t0 := time.Now()
		if err := firewall.Install(int(h), firewall.Rules{Tunnel: "opti"}); err != nil {
			fatalf("%v", err)
		}
		fwInstall = append(fwInstall, ms(time.Since(t0)))
		var dev tun.Device
		t0 = time.Now()
		err = nsmgr.Do(h, func() (err error) {
			dev, err = tun.CreateTUN("opti", 1420)
			return err
		})
		if err != nil {
			fatalf("creating a TUN inside a namespace: %v", err)
		}
		tunInNS = append(tunInNS, ms(time.Since(t0)))
		nftE = append(nftE, nftBatch(h, nftEmpty))
		nftC = append(nftC, nftBatch(h, nftChain))
		nftADA = append(nftADA, nftBatch(h, nftAddDelAdd))
		nftCT = append(nftCT, nftBatch(h, nftCt))
		dev.Close()
		h.Close()
		nsmgr.Delete("opti")
	}
	progressf("up: %d rounds of the kernel operations up is made of", rounds)
	interleave(rounds, []func(){moved, inside}, nil)
	t := &Table{Header: []string{"operation (in-process, no process start)", "median ms", "min", "max"}}
	for _, r := range []struct {
		label string
		v     []float64
	}{
		{"create a named namespace (nsmgr.Create: unshare on a thread, bind mount)", create},
		{"install wgns's firewall in it with firewall.Apply (add, delete, add)", fw},
		{"or with firewall.Install (add only: for a namespace just made)", fwInstall},
		{"firewall.Apply again on the same namespace (replaces the table)", fwAgain},
		{"nftables: one transaction adding an empty table", nftE},
		{"nftables: a table with one base chain on the input hook", nftC},
		{"nftables: add, delete, add an empty table in one transaction (as Apply does)", nftADA},
		{"nftables: a base chain with one `ct state` rule (the namespace's first conntrack user)", nftCT},
		{"create a TUN in the host namespace (tun.CreateTUN)", tunHost},
		{"then move it into the namespace (LinkSetNsFd)", move},
		{"or: create the TUN inside the namespace (tun.CreateTUN on a thread in it, via nsmgr.Do)", tunInNS},
		{"close the TUN", closeTun},
		{"delete the namespace (nsmgr.Delete; the kernel frees it later)", del},
	} {
		t.add(append([]string{r.label}, statCells(Summarize(r.v))...)...)
	}
	od := &optData{
		create: Summarize(create), fw: Summarize(fw), fwInstall: Summarize(fwInstall), fwAgain: Summarize(fwAgain), nftEmpty: Summarize(nftE),
		nftChain: Summarize(nftC), nftCt: Summarize(nftCT), nftAddDelAdd: Summarize(nftADA), tunHost: Summarize(tunHost),
		move: Summarize(move), tunInNS: Summarize(tunInNS), closeTun: Summarize(closeTun), del: Summarize(del),
	}
	return &Section{
		Title: "The options for up's kernel work",
		Method: fmt.Sprintf(`%d rounds in the harness's own process (so no Go start-up), the two ways of getting a TUN
into the namespace interleaved, each round on fresh namespaces. The embedded WireGuard's UDP
socket belongs to the process and is opened in whatever namespace the opening thread is in (the
host's, for the holder), not to the TUN: so the TUN can be created inside the namespace from a
thread switched there for the TUNSETIFF only, and never moved. wireguard-go's TUN also opens its
link-watching netlink socket where it is created (see the scale section for why that matters).
The nftables rows are single transactions sent with google/nftables, to show which part of
firewall.Apply costs what.`, rounds),
		Tables: []*Table{t},
		Notes: []string{
			fmt.Sprintf("Creating the TUN inside the namespace costs %s ms against %s ms to create it in the host (%s) and move it (%s): it saves %s ms per up. "+
				"Moving a link, and closing a TUN (%s ms), wait for the kernel (an RCU grace period, synchronize_net).",
				fmtNum(od.tunInNS.Median), fmtNum(od.tunHost.Median+od.move.Median), fmtNum(od.tunHost.Median), fmtNum(od.move.Median),
				fmtNum(od.tunHost.Median+od.move.Median-od.tunInNS.Median), fmtNum(od.closeTun.Median)),
			fmt.Sprintf("firewall.Apply costs %s ms on a fresh namespace, firewall.Install %s ms: the delete in Apply's add-delete-add "+
				"transaction is what costs (an empty table added, deleted and added in one transaction takes %s ms, against %s ms to add "+
				"an empty table, %s ms for a hooked base chain and %s ms for a chain with a `ct state` rule). A namespace up has just made "+
				"has no table, so Install is enough there; Apply remains for replacing an altered table.",
				fmtNum(od.fw.Median), fmtNum(od.fwInstall.Median), fmtNum(od.nftAddDelAdd.Median), fmtNum(od.nftEmpty.Median),
				fmtNum(od.nftChain.Median), fmtNum(od.nftCt.Median)),
		},
	}, od
}

// optData is what the options measured, for the verdict.
type optData struct {
	create, fw, fwInstall, fwAgain, nftEmpty, nftChain, nftCt, nftAddDelAdd Stat
	tunHost, move, tunInNS, closeTun, del                                   Stat
}

// The nftables transactions nftBatch can time.
const (
	nftEmpty     = iota // one empty table
	nftChain            // a table with one base chain on the input hook
	nftCt               // the same chain with one `ct state established,related accept` rule
	nftAddDelAdd        // add, delete and add an empty table in one transaction, as Apply does
)

// nftBatch times one nftables transaction of the given kind in namespace h (a fresh table
// each time, named after the kind).
func nftBatch(h netns.NsHandle, kind int) float64 {
	t0 := time.Now()
	c, err := nftables.New(nftables.WithNetNSFd(int(h)))
	if err != nil {
		fatalf("nftables: %v", err)
	}
	table := &nftables.Table{Family: nftables.TableFamilyINet, Name: fmt.Sprintf("bench_%d", kind)}
	tb := c.AddTable(table)
	switch kind {
	case nftChain, nftCt:
		accept := nftables.ChainPolicyAccept
		ch := c.AddChain(&nftables.Chain{Name: "input", Table: tb, Type: nftables.ChainTypeFilter,
			Hooknum: nftables.ChainHookInput, Priority: nftables.ChainPriorityFilter, Policy: &accept})
		if kind == nftCt {
			c.AddRule(&nftables.Rule{Table: tb, Chain: ch, Exprs: []expr.Any{
				&expr.Ct{Register: 1, Key: expr.CtKeySTATE},
				&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4,
					Mask: binaryutil.NativeEndian.PutUint32(expr.CtStateBitESTABLISHED | expr.CtStateBitRELATED),
					Xor:  binaryutil.NativeEndian.PutUint32(0)},
				&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: binaryutil.NativeEndian.PutUint32(0)},
				&expr.Verdict{Kind: expr.VerdictAccept},
			}})
		}
	case nftAddDelAdd:
		c.DelTable(table)
		c.AddTable(table)
	}
	if err := c.Flush(); err != nil {
		fatalf("nftables: %v", err)
	}
	return ms(time.Since(t0))
}
