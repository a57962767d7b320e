package main

import (
	"bufio"
	"debug/buildinfo"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// machine describes the machine and the software measured, as label/value pairs.
func machine(w *world) [][2]string {
	var u unix.Utsname
	unix.Uname(&u)
	kernel := unix.ByteSliceToString(u.Release[:])
	debian, _ := os.ReadFile("/etc/debian_version")
	out := [][2]string{
		{"CPU", cpuModel()},
		{"cores (nproc)", strconv.Itoa(runtime.NumCPU())},
		{"memory", fmt.Sprintf("%.1f GiB total, %.1f GiB available at start", float64(meminfo("MemTotal"))/(1<<20), float64(w.memAvailStart)/(1<<20))},
		{"kernel", kernel + map[string]string{
			"userspace": " (every tunnel here uses wgns's embedded, userspace WireGuard)",
			"kernel":    " (the scale section's tunnels use kernel WireGuard)"}[w.opts.mode]},
		{"OS", "Debian " + strings.TrimSpace(string(debian))},
		{"Go (harness)", runtime.Version()},
	}
	if bi, err := buildinfo.ReadFile(w.wgns); err == nil {
		wg := "?"
		deps := bi.Deps
		// The lean front links no WireGuard; the full binary beside it (libexec) does.
		if core, err := buildinfo.ReadFile(filepath.Join(filepath.Dir(w.wgns), "..", "libexec", "wgns", "wgns")); err == nil {
			deps = core.Deps
		}
		for _, d := range deps {
			if d.Path == "golang.zx2c4.com/wireguard" {
				wg = d.Version
			}
		}
		out = append(out,
			[2]string{"wgns", fmt.Sprintf("%s (%s, %s), built with %s", w.wgns, firstLine(w.wgnsVersion), fileSize(w.wgns), bi.GoVersion)},
			[2]string{"embedded WireGuard (in wgns)", "golang.zx2c4.com/wireguard " + wg})
	}
	out = append(out,
		[2]string{"Debian's wireguard-go", firstLine(mustOut(w.debianWG, "--version")) + " (" + w.debianWG + ")"},
		[2]string{"upstream wireguard-go", firstLine(mustOut(w.upstreamWG, "--version")) + ", built from the module cache"},
		[2]string{"wg-quick / wg", firstLine(mustOut(lookPath("wg"), "--version"))},
		[2]string{"ip", firstLine(mustOut(lookPath("ip"), "-V"))},
		[2]string{"iperf3", firstLine(mustOut(lookPath("iperf3"), "--version"))},
	)
	return out
}

func mustOut(bin string, args ...string) string {
	out, _ := run(bin, args...)
	return strings.TrimSpace(out)
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}

func fileSize(path string) string {
	fi, err := os.Stat(path)
	if err != nil {
		return "?"
	}
	return fmt.Sprintf("%.1f MB", float64(fi.Size())/1e6)
}

func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return "?"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "?"
}

// meminfo returns a field of /proc/meminfo in KiB (0 if absent).
func meminfo(field string) int64 { return kbField("/proc/meminfo", field) }

// procStatusKB returns a field of /proc/PID/status in KiB (0 if absent).
func procStatusKB(pid int, field string) int64 {
	return kbField(fmt.Sprintf("/proc/%d/status", pid), field)
}

// kbField returns the value of the line "field: N kB" of the file at path, in KiB (0 if absent).
func kbField(path, field string) int64 {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && k == field {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n
		}
	}
	return 0
}

// procPssKB returns the proportional set size of a process in KiB (0 if unknown): its private
// memory plus its share of pages shared with others (the wgns binary's text).
func procPssKB(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && k == "Pss" {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n
		}
	}
	return 0
}

func numCPU() int { return runtime.NumCPU() }

// cpuSnapshot is the machine's CPU time and this world's share of it, at one moment.
type cpuSnapshot struct {
	at          time.Time
	busy, total float64 // seconds of all CPUs since boot (/proc/stat): busy (not idle or iowait), and all
	world       float64 // seconds used by this world's processes, living or reaped
	loadavg     string
}

// machineCPU reads only the machine's CPU counters (cheap enough to take after every up).
func machineCPU() cpuSnapshot {
	s := cpuSnapshot{at: time.Now()}
	if b, err := os.ReadFile("/proc/stat"); err == nil {
		line, _, _ := strings.Cut(string(b), "\n")
		f := strings.Fields(line)
		for i, v := range f[1:] {
			x, _ := strconv.ParseFloat(v, 64)
			s.total += x / 100
			if i != 3 && i != 4 { // idle, iowait
				s.busy += x / 100
			}
		}
	}
	return s
}

// takeCPU reads the machine's CPU counters and sums, over every process of this world (its
// /proc), the CPU time of the process and of the children it reaped: so every process the run
// ever started counts once, alive or not.
func takeCPU() cpuSnapshot {
	s := machineCPU()
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, p := range stats {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		str := string(b)
		i := strings.LastIndexByte(str, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(str[i+1:])
		if len(f) < 15 {
			continue
		}
		for _, k := range []int{11, 12, 13, 14} { // utime, stime, cutime, cstime
			x, _ := strconv.ParseFloat(f[k], 64)
			s.world += x / 100
		}
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		s.loadavg = strings.Join(strings.Fields(string(b))[:3], " ")
	}
	return s
}

// loadDuring describes the machine's load between two snapshots, and reports the share of the
// machine's CPU time used by work outside this run (roughly: kernel threads working for the run
// count as outside, and interrupt time charged to the run's processes may count twice).
func loadDuring(a, b cpuSnapshot) (string, float64) {
	total := b.total - a.total
	if total <= 0 {
		return "?", 0
	}
	busy := (b.busy - a.busy) / total
	outside := ((b.busy - a.busy) - (b.world - a.world)) / total
	if outside < 0 {
		outside = 0
	}
	return fmt.Sprintf("CPUs %.0f%% busy over the run, about %.0f%% by work outside it (kernel time is attributed loosely); load average %s at the start, %s at the end",
		100*busy, 100*outside, a.loadavg, b.loadavg), outside
}
