package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
	"golang.zx2c4.com/wireguard/tun"

	"github.com/wgns/wgns/firewall"
	"github.com/wgns/wgns/nsmgr"

	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"
)

// The scale section's peer: Debian's wireguard-go with one WireGuard peer per tunnel, each
// tunnel an IPv6 ULA address of its own (500 tunnels do not fit a TEST-NET /24).
const (
	scalePeerDev  = "wgps"
	scalePeerPort = 51822
	scalePeerAddr = "fd00:192:5::1"
)

func scaleName(i int) string         { return fmt.Sprintf("s%d", i) }
func scaleAddr(i int) string         { return fmt.Sprintf("fd00:192:5::%x", i+1) }
func scaleConfPath(i int) string     { return filepath.Join(runDir, "scale", scaleName(i)+".conf") }
func statePathOf(name string) string { return "/run/wgns/" + name + ".json" }

// holderPID returns the PID of the process holding tunnel name, from wgns's state file.
func holderPID(name string) int {
	b, err := os.ReadFile(statePathOf(name))
	if err != nil {
		return 0
	}
	var st struct {
		PID int `json:"pid"`
	}
	json.Unmarshal(b, &st)
	return st.PID
}

// scaleRun is what one N measured.
type scaleRun struct {
	n, done          int
	up, down, ping   []float64 // per tunnel, in order
	pingsOK          int
	rss, pss         []float64 // KiB per holder
	memDrop          float64   // MemAvailable lost per tunnel, KiB
	execWgns, execIP Stat
	othersCPU        []float64            // CPU ms the other holders used during an up, sampled
	othersAt         []int                // how many other holders there were then
	othersWindow     []float64            // seconds over which othersCPU was counted (the up and the counting)
	idle             float64              // CPU the N holders use when nothing happens, in cores (1 = one core busy)
	mounts           int                  // lines of /proc/self/mountinfo with N tunnels up
	kNS, kFw, kTun   Stat                 // in-process: create a namespace, install the firewall, create a TUN in it
	marks            []map[string]float64 // the steps of each up, as in the up section
	at               []cpuSnapshot        // after each up: the machine's CPU counters
	peerCPU          []float64            // after each up: the peer's CPU seconds
	scan             Stat                 // ms to list the processes of one namespace, every thread looked at (nsmgr.Processes)
	scanLeaders      Stat                 // the same, thread group leaders only (nsmgr.ProcessLeaders)
	procs            int                  // processes in the world when scanned
	tasks            int                  // threads in the world when scanned
	linkSockets      int                  // netlink sockets in the host namespace that watch link changes
	stopped          string
	inotify          bool // the stop was most likely the inotify limit
}

// benchScale brings 1, 10, 100 and 500 tunnels up and down in sequence.
func benchScale(w *world) *Section {
	maxN := slices.Max(w.opts.scale)
	keys := make([]wgtypes.Key, maxN+1)
	var entries []peerEntry
	for i := 1; i <= maxN; i++ {
		keys[i] = newKey()
		entries = append(entries, peerEntry{Key: keys[i].PublicKey(), AllowedIPs: []string{scaleAddr(i) + "/128"}})
	}
	progressf("scale: starting a peer with %d WireGuard peers", maxN)
	peer := startPeerDev(w.debianWG, scalePeerDev, scalePeerPort, []string{scalePeerAddr + "/64"}, entries)
	defer peer.stop()
	for i := 1; i <= maxN; i++ {
		clientConf{
			Key:        keys[i],
			Addresses:  []string{scaleAddr(i) + "/64"},
			DNS:        scalePeerAddr,
			Peer:       peer.Key.PublicKey(),
			AllowedIPs: "0.0.0.0/0, ::/0",
			Endpoint:   fmt.Sprintf("%s:%d", peerUnderlay4, scalePeerPort),
			Keepalive:  25,
		}.write(scaleConfPath(i))
	}
	memTotal := meminfo("MemTotal")
	for _, d := range []string{"/run/wgns", "/run/netns"} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			fatalf("%v", err)
		}
	}
	watch := newFSWatch("/run/wgns", "/etc/netns", "/run/netns")
	defer watch.close()
	var runs []*scaleRun
	for _, n := range w.opts.scale {
		r := &scaleRun{n: n}
		runs = append(runs, r)
		progressf("scale: N=%d: up", n)
		before := meminfo("MemAvailable")
		deadline := time.Now().Add(5 * time.Minute)
		for i := 1; i <= n; i++ {
			if avail := meminfo("MemAvailable"); avail < memTotal/5 {
				r.stopped = fmt.Sprintf("stopped at %d: MemAvailable %d MiB is under a fifth of the memory", i-1, avail>>10)
				break
			}
			if time.Now().After(deadline) {
				r.stopped = fmt.Sprintf("stopped at %d: over 5 minutes", i-1)
				break
			}
			// Every few ups, the CPU time the holders already up spend while this one comes up.
			sample := n <= 10 || i%5 == 0
			var before float64
			var window time.Time
			if sample {
				window = time.Now()
				before = holdersCPU(i - 1)
			}
			watch.drop()
			t0 := time.Now()
			res := w.sp.run([]string{w.wgns, "up", "--" + w.opts.mode, scaleConfPath(i)}, w.env, false)
			if res.Code != 0 {
				why, inotify := diagnoseUp(w, scaleName(i), scaleConfPath(i))
				r.stopped = fmt.Sprintf("stopped at %d: `wgns up %s` failed (exit %d: %s); %s", i-1, scaleConfPath(i), res.Code,
					firstLine(res.Output), why)
				r.inotify = inotify
				break
			}
			r.up = append(r.up, ms(res.Elapsed))
			name := scaleName(i)
			m := marks(watch.collect(time.Second, func(e fsEvent) bool {
				return e.path == "/run/wgns/"+name+".ready" && e.mask&unix.IN_MOVED_TO != 0
			}), name, t0)
			m["exit"] = ms(res.Elapsed)
			r.marks = append(r.marks, m)
			r.at = append(r.at, machineCPU())
			r.peerCPU = append(r.peerCPU, procCPU(peer.proc.Process.Pid))
			if sample && i > 1 {
				r.othersCPU = append(r.othersCPU, 1000*(holdersCPU(i-1)-before))
				r.othersWindow = append(r.othersWindow, time.Since(window).Seconds())
				r.othersAt = append(r.othersAt, i-1)
			}
			r.done = i
			if i%100 == 0 {
				progressf("scale: N=%d: %d up", n, i)
			}
		}
		// Let the holders settle (no fixed sleep: the handshakes happen on the pings below).
		progressf("scale: N=%d: pinging through each tunnel", r.done)
		dst := netip.MustParseAddr(scalePeerAddr)
		for i := 1; i <= r.done; i++ {
			pg, err := openPinger("/run/netns/"+scaleName(i), dst)
			if err != nil {
				fatalf("%v", err)
			}
			t0 := time.Now()
			if pg.ping(3*time.Second, 100*time.Millisecond) {
				r.pingsOK++
				r.ping = append(r.ping, ms(time.Since(t0)))
			}
			pg.close()
		}
		// What the holders cost the machine doing nothing: their CPU over idle seconds.
		if r.done > 0 {
			t0, c0 := time.Now(), holdersCPU(r.done)
			time.Sleep(idleWindow)
			r.idle = (holdersCPU(r.done) - c0) / time.Since(t0).Seconds()
			// The up's own share of the others' CPU: what they used beyond their idle rate.
			for j := range r.othersCPU {
				r.othersCPU[j] = max(0, r.othersCPU[j]-1000*r.idle*r.othersWindow[j]*float64(r.othersAt[j])/float64(r.done))
			}
		}
		if b, err := os.ReadFile("/proc/self/mountinfo"); err == nil {
			r.mounts = strings.Count(string(b), "\n")
		}
		r.kNS, r.kFw, r.kTun = kernelOps()
		for i := 1; i <= r.done; i++ {
			if pid := holderPID(scaleName(i)); pid > 0 {
				r.rss = append(r.rss, float64(procStatusKB(pid, "VmRSS")))
				r.pss = append(r.pss, float64(procPssKB(pid)))
			}
		}
		if r.done > 0 {
			r.memDrop = float64(before-meminfo("MemAvailable")) / float64(r.done)
			// exec with N tunnels up: unshare(CLONE_NEWNS) copies every mount, and each
			// tunnel is one (/run/netns/NAME).
			var we, ie []float64
			interleave(20, []func(){
				func() {
					we = append(we, ms(w.sp.mustRun([]string{w.wgns, "exec", scaleName(1), "--", "/bin/true"}, w.env).Elapsed))
				},
				func() {
					ie = append(ie, ms(w.sp.mustRun([]string{w.ip, "netns", "exec", scaleName(1), "/bin/true"}, w.env).Elapsed))
				},
			}, nil)
			r.execWgns, r.execIP = Summarize(we), Summarize(ie)
			// Listing the processes inside one namespace (what down refuses on, and status
			// counts) means looking at every process in /proc, and with Processes at every
			// thread too.
			id, err := nsmgr.IDByName(scaleName(1))
			if err != nil {
				fatalf("%v", err)
			}
			var sc, sl []float64
			for k := 0; k < 10; k++ {
				t0 := time.Now()
				nsmgr.Processes(id)
				t1 := time.Now()
				nsmgr.ProcessLeaders(id)
				sc, sl = append(sc, ms(t1.Sub(t0))), append(sl, ms(time.Since(t1)))
			}
			r.scan, r.scanLeaders = Summarize(sc), Summarize(sl)
			tasks, _ := filepath.Glob("/proc/[0-9]*/task/[0-9]*")
			procs, _ := filepath.Glob("/proc/[0-9]*")
			r.tasks, r.procs = len(tasks), len(procs)
			r.linkSockets = linkWatchers()
		}
		progressf("scale: N=%d: down", r.done)
		for i := 1; i <= r.done; i++ {
			res := w.sp.run([]string{w.wgns, "down", scaleName(i)}, w.env, false)
			if res.Code != 0 {
				fatalf("wgns down %s: exit %d\n%s", scaleName(i), res.Code, res.Output)
			}
			r.down = append(r.down, ms(res.Elapsed))
		}
		mustWaitFor(30*time.Second, "every scale namespace to go", func() bool {
			m, _ := filepath.Glob("/run/netns/s[0-9]*")
			return len(m) == 0
		})
		if r.stopped != "" {
			progressf("scale: %s", r.stopped)
			break
		}
	}
	return scaleSection(w, runs)
}

// decile returns the median of the k-th tenth (0-9) of vals, in order.
func decile(vals []float64, k int) Stat {
	n := len(vals)
	if n < 10 {
		return Summarize(vals)
	}
	return Summarize(vals[k*n/10 : (k+1)*n/10])
}

func scaleSection(w *world, runs []*scaleRun) *Section {
	t := &Table{Header: []string{"N", "up ms median", "min", "max", "down ms median", "min", "max",
		"first ping ms", "pings answered", "RSS MiB/tunnel", "PSS MiB/tunnel", "MemAvailable MiB/tunnel", "exec ms wgns / ip at N",
		"idle CPU of the holders, % of a core", "others' CPU ms per up, beyond idle", "process scan ms: leaders (processes) / every thread (threads)", "link-watching netlink sockets in the host", "mounts",
		"in-process ms: namespace / firewall / TUN"}}
	var last *scaleRun
	for _, r := range runs {
		if r.done == 0 {
			continue
		}
		last = r
		up, down := Summarize(r.up), Summarize(r.down)
		t.add(fmt.Sprint(r.done),
			fmtNum(up.Median), fmtNum(up.Min), fmtNum(up.Max),
			fmtNum(down.Median), fmtNum(down.Min), fmtNum(down.Max),
			fmtNum(Summarize(r.ping).Median), fmt.Sprintf("%d/%d", r.pingsOK, r.done),
			fmtNum(Summarize(r.rss).Median/1024), fmtNum(Summarize(r.pss).Median/1024), fmtNum(r.memDrop/1024),
			fmt.Sprintf("%s / %s", fmtNum(r.execWgns.Median), fmtNum(r.execIP.Median)),
			fmtNum(100*r.idle), fmtNum(Summarize(r.othersCPU).Median), fmt.Sprintf("%s (%d) / %s (%d)", fmtNum(r.scanLeaders.Median), r.procs, fmtNum(r.scan.Median), r.tasks), fmt.Sprint(r.linkSockets),
			fmt.Sprint(r.mounts), fmt.Sprintf("%s / %s / %s", fmtNum(r.kNS.Median), fmtNum(r.kFw.Median), fmtNum(r.kTun.Median)))
	}
	s := &Section{
		Title: fmt.Sprintf("scale (%s WireGuard): 1 to 500 tunnels, brought up and down in sequence", w.opts.mode),
		Method: fmt.Sprintf(`One peer (Debian's wireguard-go, %q) knows every client's key, each client its own ULA
address (fd00:192:5::N/128). For each N, the harness runs `+"`wgns up --%s sK.conf`"+` for K = 1..N one after
the other (each timed), then pings the peer through every tunnel once (in-process, from inside
each namespace: the first ping does the handshake), reads each holder's VmRSS
(/proc/PID/status) and Pss (/proc/PID/smaps_rollup: shared pages of the wgns binary counted
once across holders), times 20 interleaved `+"`wgns exec s1 -- /bin/true`"+` and `+"`ip netns exec s1 /bin/true`"+`
with the N tunnels up, then runs `+"`wgns down sK`"+` for K = 1..N. "MemAvailable MiB/tunnel" is the drop of
/proc/meminfo's MemAvailable over the N ups divided by N: what a tunnel costs the machine,
kernel included (namespace, TUN or kernel WireGuard device, sockets, nftables). "idle CPU" is
what the N holders (the tunnels' supervisors) use over five seconds in which nothing happens;
with kernel WireGuard the device's own work is the kernel's and is not in it. "others' CPU ms per up" is the CPU time
(/proc/PID/task/*/schedstat) that the holders already up use while one more tunnel comes up
(sampled every 5th up), minus what they would have used idle over the same time: work that an up
causes in every other tunnel. "in-process" is up's kernel work (create a namespace, install the
firewall, create a TUN inside), timed 10 times in the harness with the N tunnels up. "mounts" counts /proc/self/mountinfo's lines, which every Go
program reads at start (the runtime's cgroup probe) and every mount namespace copies. "process scan" is the time, in the harness, to list the processes in
one namespace: nsmgr.ProcessLeaders looks at every process in /proc, nsmgr.Processes at every
thread too. "Flat" is read as: an up with about N tunnels already up (the last
tenth of the largest run), and a down with about N others still up (the first tenth of its
downs), cost at most 1.25× the same in the N=10 run. The harness stops early if an up fails or if MemAvailable falls under a fifth
of the memory.`, scalePeerDev, w.opts.mode),
		Tables: []*Table{t},
	}
	if last != nil && len(last.up) >= 10 {
		d := &Table{Caption: fmt.Sprintf("N=%d, by tenths of the sequence (median ms of each tenth): does the K-th tunnel cost more than the first?", last.done),
			Header: []string{"tenth", "tunnels", "up ms", "down ms", "others' CPU ms during an up, beyond idle", "machine CPU busy %", "peer's CPU %"}}
		for k := 0; k < 10; k++ {
			lo, hi := k*len(last.up)/10+1, (k+1)*len(last.up)/10
			var oc []float64
			for j, at := range last.othersAt {
				if at+1 >= lo && at+1 <= hi {
					oc = append(oc, last.othersCPU[j])
				}
			}
			busy, peerPct := "-", "-"
			if hi-1 < len(last.at) && lo-1 < hi-1 {
				a, z := last.at[lo-1], last.at[hi-1]
				if tot := z.total - a.total; tot > 0 {
					busy = fmtNum(100 * (z.busy - a.busy) / tot)
				}
				if secs := z.at.Sub(a.at).Seconds(); secs > 0 {
					peerPct = fmtNum(100 * (last.peerCPU[hi-1] - last.peerCPU[lo-1]) / secs)
				}
			}
			d.add(fmt.Sprint(k+1), fmt.Sprintf("%d-%d", lo, hi), fmtNum(decile(last.up, k).Median), fmtNum(decile(last.down, k).Median),
				fmtNum(Summarize(oc).Median), busy, peerPct)
		}
		s.Tables = append(s.Tables, d)
		if len(last.marks) >= 10 {
			n := len(last.marks)
			first, lastT := last.marks[:n/10], last.marks[n-n/10:]
			ft, fm := stepTable(first, upWork, decile(last.up, 0).Median, "")
			_, lm := stepTable(lastT, upWork, decile(last.up, 9).Median, "")
			st := &Table{Caption: fmt.Sprintf("N=%d: the steps of up (as in the up section, command only) for the first and the last tenth of the sequence, median ms:", last.done),
				Header: []string{"from the previous mark: work done", "first tenth", "last tenth", "growth"}}
			for _, row := range ft.Rows {
				for k, label := range upWork {
					if label == row[0] || strings.TrimPrefix(k, "step:") == row[0] {
						if _, ok := fm[k]; ok {
							st.add(row[0], fmtNum(fm[k]), fmtNum(lm[k]), fmtNum(lm[k]-fm[k]))
						}
						break
					}
				}
			}
			s.Tables = append(s.Tables, st)
		}
		// Flat: an up with about N tunnels already up (the last tenth of the largest run), or a
		// down with about N others still up (the first tenth of its downs), costs at most 1.25×
		// the same with at most 10 up (the whole N=10 run).
		if b := baseRun(runs, last); b != nil {
			s.Goals = append(s.Goals,
				Goal{What: fmt.Sprintf("up with ~%d tunnels up / with <= %d up (flat)", last.done, b.done),
					Ratio: Ratio(decile(last.up, 9), Summarize(b.up)), Limit: 1.25, AtMost: true},
				Goal{What: fmt.Sprintf("down with ~%d tunnels up / with <= %d up (flat)", last.done, b.done),
					Ratio: Ratio(decile(last.down, 0), Summarize(b.down)), Limit: 1.25, AtMost: true},
			)
		}
		perTunnel := last.memDrop
		if perTunnel > 0 {
			fit := float64(w.memAvailStart) / perTunnel
			s.Notes = append(s.Notes, fmt.Sprintf("Largest N done here: %d. By memory, this machine (%.1f GiB available at the start) fits about %.0f tunnels (MemAvailable / %.1f MiB per tunnel), before any other limit.",
				last.done, float64(w.memAvailStart)/(1<<20), fit, perTunnel/1024))
		}
	}
	for _, r := range runs {
		if r.stopped != "" {
			s.Notes = append(s.Notes, "The run "+r.stopped+".")
			if r.inotify {
				s.Notes = append(s.Notes, "Why: each embedded wireguard-go listens on its UAPI socket with ipc.UAPIListen, which takes "+
					"one inotify instance (to notice the socket file being removed); fs.inotify.max_user_instances caps root's "+
					"instances across the whole machine (other users of inotify count too). What it would take: listen on "+
					"/var/run/wireguard/NAME.sock without that inotify instance (a plain unix listener that wgns removes itself "+
					"at teardown), or a larger sysctl; memory is then the limit (above).")
			}
		}
	}
	if last != nil && baseRun(runs, last) != nil {
		b := baseRun(runs, last)
		if last.linkSockets >= last.done/2 {
			s.Notes = append(s.Notes, fmt.Sprintf("Each up makes the holders already up use CPU: %s ms with %d up, %s ms with %d (median per up). "+
				"With %d tunnels up, the host namespace holds %d netlink sockets that watch link changes (%d with %d up): wireguard-go's TUN "+
				"opens its link monitor where the TUN is created, in the host here, so every link change in the host (each up's TUN "+
				"created there and moved out; anything else on the machine) wakes every holder. Creating the TUN inside the "+
				"namespace (options section) puts that socket there and removes this cost.",
				fmtNum(Summarize(b.othersCPU).Median), b.done, fmtNum(Summarize(last.othersCPU).Median), last.done,
				last.done, last.linkSockets, b.linkSockets, b.done))
		} else {
			s.Notes = append(s.Notes, fmt.Sprintf("With %d tunnels up the host namespace holds %d netlink sockets that watch link changes, so "+
				"link changes on the host do not wake the holders; an up makes the holders already up use %s ms of CPU beyond their idle "+
				"rate with %d up, %s ms with %d (median).",
				last.done, last.linkSockets, fmtNum(Summarize(b.othersCPU).Median), b.done, fmtNum(Summarize(last.othersCPU).Median), last.done))
		}
		s.Notes = append(s.Notes, fmt.Sprintf("Idle, the holders cost CPU: %s%% of one core for %d tunnels, %s%% for %d (%s%% per 100 tunnels): "+
			"each is a Go process whose timers (wireguard-go's once-a-second TUN probe, keepalives, the runtime's own) keep waking it.",
			fmtNum(100*b.idle), b.done, fmtNum(100*last.idle), last.done, fmtNum(100*last.idle*100/float64(last.done))))
		if last.mounts > 0 && b.mounts > 0 {
			s.Notes = append(s.Notes, fmt.Sprintf("exec with more tunnels up: wgns %s → %s ms, ip netns exec %s → %s ms, while the world's "+
				"mounts grow from %d to %d lines of mountinfo (each tunnel adds its /run/netns mount): unshare(CLONE_NEWNS) copies every "+
				"mount for both, and the Go runtime also reads all of /proc/self/mountinfo at every start (its cgroup probe, which "+
				"`//go:debug containermaxprocs=0` does not turn off in this Go), as do both processes of `wgns up`.",
				fmtNum(b.execWgns.Median), fmtNum(last.execWgns.Median), fmtNum(b.execIP.Median), fmtNum(last.execIP.Median), b.mounts, last.mounts))
		}
		if last.tasks > 0 && last.procs > 0 {
			perThread := 1000 * last.scan.Median / float64(last.tasks)
			perProc := 1000 * last.scanLeaders.Median / float64(last.procs)
			s.Notes = append(s.Notes, fmt.Sprintf("Listing the processes inside one namespace scans /proc, so it grows with the number of "+
				"tunnels (each holder is a process of about %d threads): looking at every process takes %s ms with %d up and %s ms with %d "+
				"(%d processes, %.1f µs each); looking at every thread too takes %s ms and %s ms (%d threads, %.1f µs each). At 1000 "+
				"tunnels that is about %s ms and %s ms for each `wgns down` (or status) that does it. What it would take to stay flat: know "+
				"a tunnel's processes without the scan (e.g. a cgroup per tunnel).",
				last.tasks/max(1, last.procs), fmtNum(b.scanLeaders.Median), b.done, fmtNum(last.scanLeaders.Median), last.done, last.procs, perProc,
				fmtNum(b.scan.Median), fmtNum(last.scan.Median), last.tasks, perThread,
				fmtNum(perProc*float64(last.procs)/float64(last.done)), fmtNum(perThread*float64(last.tasks)/float64(last.done))))
		}
	}
	return s
}

// holdersCPU returns the CPU seconds the living threads of the holders of tunnels s1..sN have
// run (/proc/PID/task/TID/schedstat, nanosecond resolution; a holder's threads live as long as
// it does).
// idleWindow is how long the holders are watched doing nothing: long enough to take in their
// timers (WireGuard's keepalives every 25 s are spread over the tunnels).
const idleWindow = 5 * time.Second

func holdersCPU(n int) float64 {
	total := 0.0
	for i := 1; i <= n; i++ {
		pid := holderPID(scaleName(i))
		if pid == 0 {
			continue
		}
		m, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/schedstat", pid))
		for _, f := range m {
			b, err := os.ReadFile(f)
			if err != nil {
				continue
			}
			if fs := strings.Fields(string(b)); len(fs) > 0 {
				ns, _ := strconv.ParseFloat(fs[0], 64)
				total += ns / 1e9
			}
		}
	}
	return total
}

// diagnoseUp says why a tunnel does not come up: the holder's own message (from running it in
// the foreground for at most 5 s; detached, its message is lost), and the inotify limit that
// every embedded wireguard-go's UAPI listener counts against.
func diagnoseUp(w *world, name, conf string) (string, bool) {
	cmd := exec.Command(w.wgns, "up", "--foreground", "--"+w.opts.mode, "--name", name, conf)
	cmd.Env = w.env
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	msg := ""
	if err := cmd.Start(); err == nil {
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
			msg = "in the foreground it says: " + lastLine(out.String())
		case <-time.After(5 * time.Second):
			cmd.Process.Signal(syscall.SIGTERM)
			<-done
			msg = "in the foreground it comes up"
		}
	}
	limitText, _ := os.ReadFile("/proc/sys/fs/inotify/max_user_instances")
	limit, _ := strconv.Atoi(strings.TrimSpace(string(limitText)))
	inUse := 0
	fds, _ := filepath.Glob("/proc/[0-9]*/fd/*")
	for _, fd := range fds {
		if t, err := os.Readlink(fd); err == nil && t == "anon_inode:inotify" {
			inUse++
		}
	}
	// The holder's error is "too many open files" when inotify_init fails; if it came up in the
	// foreground, the limit was reached by instances that were freed since (other users').
	likely := strings.Contains(msg, "too many open files") || inUse+32 >= limit
	return fmt.Sprintf("%s; fs.inotify.max_user_instances is %d (per user, machine-wide: root's processes outside this world count too), %d inotify instances are open in this world",
		msg, limit, inUse), likely
}

// baseRun is the run the largest one is compared with: the first other run with at least 10
// tunnels, or nil.
func baseRun(runs []*scaleRun, last *scaleRun) *scaleRun {
	for _, r := range runs {
		if r.done >= 10 && r != last {
			return r
		}
	}
	return nil
}

// linkWatchers counts the route netlink sockets of this (the host's) namespace that subscribe
// to link changes (RTMGRP_LINK), from /proc/net/netlink.
func linkWatchers() int {
	b, err := os.ReadFile("/proc/net/netlink")
	if err != nil {
		return -1
	}
	n := 0
	for _, l := range strings.Split(string(b), "\n")[1:] {
		f := strings.Fields(l)
		if len(f) < 4 || f[1] != "0" {
			continue
		}
		if g, err := strconv.ParseUint(f[3], 16, 32); err == nil && g&1 != 0 {
			n++
		}
	}
	return n
}

// lastLine returns the last non-empty line of s (a failing wgns prints its error last).
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

// kernelOps times, in the harness's process, up's kernel work on a fresh namespace (create it,
// install wgns's firewall, create a TUN inside), 10 times: with N tunnels up, it shows whether the
// kernel's part of an up grows with N.
func kernelOps() (ns, fw, tn Stat) {
	var a, b, c []float64
	for k := 0; k < 10; k++ {
		t0 := time.Now()
		h, err := nsmgr.Create("kop")
		if err != nil {
			fatalf("%v", err)
		}
		t1 := time.Now()
		if err := firewall.Install(int(h), firewall.Rules{Tunnel: "kop"}); err != nil {
			fatalf("%v", err)
		}
		t2 := time.Now()
		var dev tun.Device
		if err := nsmgr.Do(h, func() (err error) { dev, err = tun.CreateTUN("kop", 1420); return err }); err != nil {
			fatalf("creating a TUN: %v", err)
		}
		t3 := time.Now()
		a, b, c = append(a, ms(t1.Sub(t0))), append(b, ms(t2.Sub(t1))), append(c, ms(t3.Sub(t2)))
		dev.Close()
		h.Close()
		nsmgr.Delete("kop")
	}
	return Summarize(a), Summarize(b), Summarize(c)
}
