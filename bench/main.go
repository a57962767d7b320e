// Command bench measures wgns against what users would use instead, in one run, as ratios, and
// writes BENCHMARKS.md: the time `wgns exec` adds to a command (against `ip netns exec`), the
// time a tunnel takes to come up and go down (against wg-quick with the same userspace
// WireGuard), how that cost and the memory grow with the number of tunnels, TCP throughput
// through a tunnel (against two plain wireguard-go devices, and the bare veth), and a published
// port (against a veth with DNAT).
//
// It needs root and runs everything in a private world of its own (network, mount and pid
// namespaces; see world.go), so the machine's network and files are never touched. Run it from
// the repository's root after building wgns:
//
//	make build && sudo go run ./bench -wgns bin/wgns -out BENCHMARKS.md
//
// or simply `sudo make bench`.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// options are the command line.
type options struct {
	wgns        string
	out         string
	goTool      string
	execRounds  int
	upRounds    int
	scale       []int
	iperfSecs   int
	iperfRounds int
	only        map[string]bool
	debianWG    string
	mode        string // the WireGuard the scale section's tunnels use: userspace or kernel

	failoverRounds int // failover.go
}

func parseFlags() options {
	var o options
	var scale, only string
	flag.StringVar(&o.wgns, "wgns", "bin/wgns", "the wgns binary to measure")
	flag.StringVar(&o.out, "out", "BENCHMARKS.md", `where to write the report ("" for nowhere)`)
	flag.StringVar(&o.goTool, "go", "", "the go command that builds the helpers (default: go from PATH, else /usr/local/go/bin/go)")
	flag.IntVar(&o.execRounds, "exec-rounds", 300, "rounds of the exec comparison")
	flag.IntVar(&o.upRounds, "up-rounds", 25, "rounds of the up/down comparison")
	flag.StringVar(&scale, "scale", "1,10,100,500", "numbers of tunnels brought up and down in sequence")
	flag.IntVar(&o.iperfSecs, "iperf-seconds", 3, "length of each iperf3 run")
	flag.IntVar(&o.iperfRounds, "iperf-rounds", 7, "iperf3 runs per path")
	flag.StringVar(&only, "only", "", "run only these sections (comma list of exec,up,scale,throughput,failover,publish)")
	flag.IntVar(&o.failoverRounds, "failover-rounds", 20, "servers taken down in the failover section")
	flag.StringVar(&o.debianWG, "debian-wireguard-go", "/usr/bin/wireguard-go", "Debian's wireguard-go")
	flag.StringVar(&o.mode, "mode", "userspace", "the WireGuard of the scale section's tunnels: userspace, or kernel (in a guest whose kernel has it: make bench-kernel)")
	flag.Parse()
	for _, f := range strings.Split(scale, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 {
			fatalf("-scale: %q is not a positive number", f)
		}
		o.scale = append(o.scale, n)
	}
	if o.mode != "userspace" && o.mode != "kernel" {
		fatalf("-mode: %q is neither userspace nor kernel", o.mode)
	}
	if only != "" {
		o.only = map[string]bool{}
		for _, s := range strings.Split(only, ",") {
			o.only[strings.TrimSpace(s)] = true
		}
	}
	return o
}

// want reports whether section s is to be run.
func (o options) want(s string) bool { return o.only == nil || o.only[s] }

// toolsEnv passes the directory of the helpers built outside the world to the run inside it.
const toolsEnv = "WGNS_BENCH_TOOLS"

// runDir is the world's scratch directory (on the world's /run tmpfs).
const runDir = "/run/wgns-bench"

func main() {
	o := parseFlags()
	switch os.Getenv(worldEnv) {
	case "":
		os.Exit(outside(o))
	case "init":
		os.Exit(worldInit())
	case "run":
		os.Exit(inside(o))
	default:
		fatalf("bad %s", worldEnv)
	}
}

// outside runs on the machine: it checks what the run needs, builds the helpers, and enters the
// world.
func outside(o options) int {
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "bench: needs root (it builds a private network world); run it with sudo")
		return 2
	}
	if _, err := os.Stat(o.wgns); err != nil {
		fatalf("the wgns binary: %v (run `make build` first)", err)
	}
	for _, t := range []string{"ip", "wg", "wg-quick", "iperf3", "nft", "strace"} {
		lookPath(t)
	}
	lookPath(o.debianWG)
	dir, err := os.MkdirTemp("", "wgns-bench-tools-")
	if err != nil {
		fatalf("creating a directory for the helpers: %v", err)
	}
	defer os.RemoveAll(dir)
	buildHelpers(o, dir)
	os.Setenv(toolsEnv, dir)
	return enterWorld()
}

// buildHelpers builds, into dir, upstream wireguard-go (the module wgns embeds, from the module
// cache) and the two floors of bench/floor.
func buildHelpers(o options, dir string) {
	goTool := o.goTool
	if goTool == "" {
		if p, err := exec.LookPath("go"); err == nil {
			goTool = p
		} else {
			goTool = "/usr/local/go/bin/go"
		}
	}
	progressf("building helpers (upstream wireguard-go, floors) with %s", goTool)
	for _, b := range []struct{ out, pkg string }{
		{"wireguard-go", "golang.zx2c4.com/wireguard"},
		{"gotrue", "./bench/floor/gotrue"},
		{"gonsexec", "./bench/floor/gonsexec"},
		{"splitwg", "./bench/floor/splitwg"},
	} {
		cmd := exec.Command(goTool, "build", "-trimpath", "-ldflags", "-s -w", "-o", filepath.Join(dir, b.out), b.pkg)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			fatalf("building %s (run from the repository's root): %v\n%s", b.pkg, err, out)
		}
	}
}

// world is what every section uses.
type world struct {
	opts          options
	wgns          string
	wgnsVersion   string
	debianWG      string
	upstreamWG    string
	gotrue        string
	gonsexec      string
	splitwg       string
	ip            string
	sp            *spawner
	env           []string // the environment of every measured command: root's, without sudo's
	memAvailStart int64    // KiB
	goStart       float64  // ms the Go runtime takes to start (set by the exec section)
}

// inside runs in the world.
func inside(o options) int {
	start := time.Now()
	cpu0 := takeCPU()
	tools := os.Getenv(toolsEnv)
	w := &world{
		opts:          o,
		debianWG:      o.debianWG,
		upstreamWG:    filepath.Join(tools, "wireguard-go"),
		gotrue:        filepath.Join(tools, "gotrue"),
		gonsexec:      filepath.Join(tools, "gonsexec"),
		splitwg:       filepath.Join(tools, "splitwg"),
		ip:            lookPath("ip"),
		sp:            newSpawner(),
		memAvailStart: meminfo("MemAvailable"),
		env: []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root",
			"USER=root", "LOGNAME=root", "SHELL=/bin/sh", "LANG=C.UTF-8", "TERM=dumb"},
	}
	var err error
	if w.wgns, err = filepath.Abs(o.wgns); err != nil {
		fatalf("%v", err)
	}
	w.wgnsVersion = mustOut(w.wgns, "version")
	if err := os.MkdirAll(runDir, 0o700); err != nil {
		fatalf("creating %s: %v", runDir, err)
	}
	buildPeerNS()
	// The binaries just built (wgns, the helpers, the floors) are dirty pages that the kernel
	// writes back within 30 s: flush them now rather than during the first section's timings.
	syscall.Sync()
	r := &Report{Started: start, Machine: machine(w)}
	r.Command = reproduceCommand()

	show := func(s *Section) {
		if s != nil {
			r.Sections = append(r.Sections, s)
			s.writeText(os.Stdout)
		}
	}
	var profile []*Section
	if o.want("exec") {
		show(benchExec(w))
		profile = append(profile, profileExec(w))
		w.sp.mustRun([]string{w.wgns, "down", execTunnel}, w.env) // the other sections run without it
	}
	if o.want("up") {
		up, steps, ud := benchUp(w)
		opts, od := benchUpOptions(w)
		upVerdict(up, ud, od, w.goStart)
		show(up)
		profile = append(profile, steps, opts)
	}
	if o.want("scale") {
		show(benchScale(w))
	}
	if o.want("throughput") {
		show(benchThroughput(w))
	}
	if o.want("failover") {
		show(benchFailover(w))
	}
	if o.want("publish") {
		show(benchPublish(w))
	}
	for _, s := range profile {
		show(s)
	}
	r.Elapsed = time.Since(start)
	load, outside := loadDuring(cpu0, takeCPU())
	r.Machine = append(r.Machine, [2]string{"load during the run", load})
	if outside > 0.25 {
		r.Warning = fmt.Sprintf("other work kept the machine's CPUs %.0f%% busy during this run (see Machine): the figures are noisier, "+
			"and commands that start many processes (wg-quick) slower, than on a quiet machine. Regenerate on a quiet machine for figures to compare.", 100*outside)
		progressf("warning: %s", r.Warning)
	}

	fmt.Println()
	r.goalsSummary().writeText(os.Stdout)
	if o.out != "" {
		var b bytes.Buffer
		r.writeMarkdown(&b)
		if err := os.WriteFile(o.out, b.Bytes(), 0o644); err != nil {
			fatalf("writing %s: %v", o.out, err)
		}
		progressf("wrote %s (%s)", o.out, r.Elapsed.Round(time.Second))
	}
	return 0
}

// reproduceCommand is the command line that gives this run again: `sudo make bench`, with the
// measurement flags this run set that differ from the defaults.
func reproduceCommand() string {
	if m := flag.Lookup("mode"); m != nil && m.Value.String() == "kernel" {
		return "make build\nsudo make bench-kernel" // the guest's run: its flags are the target's
	}
	var set []string
	flag.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "go", "wgns", "out":
			return
		}
		if f.Value.String() != f.DefValue {
			set = append(set, "-"+f.Name+"="+f.Value.String())
		}
	})
	cmd := "sudo make bench"
	if len(set) > 0 {
		cmd += ` BENCHFLAGS="` + strings.Join(set, " ") + `"`
	}
	return "make build\n" + cmd
}
