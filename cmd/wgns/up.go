package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/wgns/wgns/nsmgr"
	"github.com/wgns/wgns/units"
	"github.com/wgns/wgns/wgns"
	"github.com/wgns/wgns/wgns/config"
)

// UpCmd is `wgns up`.
type UpCmd struct {
	Name       string `help:"Tunnel name (default: the config file's base name)." placeholder:"NAME"`
	Userspace  bool   `help:"Use the embedded WireGuard even if the kernel has WireGuard." xor:"impl"`
	Kernel     bool   `help:"Use kernel WireGuard, and fail if the kernel has none." xor:"impl"`
	Foreground bool   `help:"Stay attached: for systemd Type=notify (READY=1 once ready); tears down on SIGTERM."`
	DryRun     bool   `help:"Validate the config and print the plan; touch nothing (needs no root)."`
	Strict     bool   `help:"Refuse a config with lines wgns would ignore (PreUp/PostUp/PreDown/PostDown hooks, Table, FwMark, SaveConfig) instead of warning."`
	Target     string `arg:"" name:"CONFIG|NAME" help:"A wg-quick config file (./x.conf), or NAME for /etc/wgns/NAME.conf, then /etc/wireguard/NAME.conf."`
}

// configDirs are searched, in order, for NAME.conf when up is given a bare NAME.
var configDirs = []string{"/etc/wgns", "/etc/wireguard"}

// resolveTarget turns up's argument into a config path and a tunnel name.
func resolveTarget(target, nameFlag string) (path, name string, err error) {
	isPath := strings.ContainsRune(target, '/') || strings.HasSuffix(target, ".conf")
	if isPath {
		path = target
		name = strings.TrimSuffix(filepath.Base(target), ".conf")
	} else {
		if err := nsmgr.ValidateName(target); err != nil {
			return "", "", err
		}
		name = target
		for _, d := range configDirs {
			p := filepath.Join(d, target+".conf")
			if _, err := os.Stat(p); err == nil {
				path = p
				break
			}
		}
		if path == "" {
			return "", "", fmt.Errorf("no config for %q: looked for %s", target,
				strings.Join([]string{filepath.Join(configDirs[0], target+".conf"), filepath.Join(configDirs[1], target+".conf")}, " and "))
		}
	}
	if nameFlag != "" {
		name = nameFlag
	}
	if err := nsmgr.ValidateName(name); err != nil {
		if nameFlag == "" && isPath {
			return "", "", fmt.Errorf("%w (from the file name %q; choose one with --name)", err, filepath.Base(target))
		}
		return "", "", err
	}
	if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}
	return path, name, nil
}

// Run brings the tunnel up.
func (c *UpCmd) Run() error {
	path, name, err := resolveTarget(c.Target, c.Name)
	if err != nil {
		return err
	}
	if !c.DryRun {
		if err := needRoot("wgns up"); err != nil {
			return err
		}
	}
	if c.Strict { // the holder reads the config again, and finds nothing left to ignore
		if _, err := config.Load(path, config.Strict()); err != nil {
			return err
		}
	}
	mode := wgns.ModeUserspace
	if c.Kernel || (!c.Userspace && wgns.KernelWireGuard()) {
		mode = wgns.ModeKernel
	}
	if !c.DryRun && !c.Foreground && mode == wgns.ModeUserspace {
		// The holder reads and checks the config itself: start it at once. Its warnings and
		// errors reach this terminal through its log.
		if err := startHolder(name, path); err != nil {
			return err
		}
		fmt.Printf("%s is up (embedded WireGuard); run programs in it with: wgns exec %s -- CMD\n", name, name)
		return nil
	}
	cfg, err := config.Load(path)
	if err != nil {
		return err
	}
	for _, w := range cfg.Warnings {
		fmt.Fprintln(os.Stderr, "wgns: warning:", w)
	}
	if c.DryRun {
		fmt.Print(plan(name, cfg, mode))
		return nil
	}
	warn := func(s string) { fmt.Fprintln(os.Stderr, "wgns: warning:", s) }
	if c.Foreground {
		return holdForeground(name, cfg, mode, warn)
	}
	if _, err := wgns.Up(wgns.UpOptions{Name: name, Config: cfg, Mode: mode, Warn: warn}); err != nil {
		return err
	}
	fmt.Printf("%s is up (kernel WireGuard); run programs in it with: wgns exec %s -- CMD\n", name, name)
	return nil
}

// holdForeground brings the tunnel up in this process, tells systemd (or the up that started
// it) once ready, then supervises it: a device that stops (its interface deleted, say) is made
// again inside the same, still firewalled, namespace, and endpoint host names are resolved again
// when handshakes stop. It tears down on SIGTERM, SIGINT or SIGHUP.
func holdForeground(name string, cfg *config.Config, mode wgns.Mode, warn func(string)) error {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	t, err := wgns.Up(wgns.UpOptions{Name: name, Config: cfg, Mode: mode, Warn: warn})
	if err != nil {
		return err
	}
	// Started by `wgns up` (not by systemd), the holder's notify socket is that up's, which
	// stops listening once it has READY=1: nothing more is sent there.
	detached := strings.HasPrefix(os.Getenv("NOTIFY_SOCKET"), holderNotifyPrefix)
	n := units.NewNotifier()
	n.Ready()
	stopStatus := func() {}
	if detached {
		os.Unsetenv("NOTIFY_SOCKET")
		n = units.NewNotifier()
	} else {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { reportStatus(ctx, n, name); close(done) }()
		stopStatus = func() { cancel(); <-done }
	}
	// Endpoints given as host names are resolved again when handshakes stop; a tunnel with
	// literal addresses only has nothing to check, and its holder sleeps.
	var reresolve <-chan time.Time
	if t.NamedEndpoints() {
		tick := time.NewTicker(superviseEvery)
		defer tick.Stop()
		reresolve = tick.C
	}
	for {
		select {
		case sig := <-sigs:
			stopStatus()
			n.Stopping()
			if err := t.Down(); err != nil {
				return fmt.Errorf("tearing down %q on %v: %w", name, sig, err)
			}
			return nil
		case <-t.Dead():
			// Fail closed meanwhile: the namespace and its firewall stay.
			n.Status(fmt.Sprintf("%s: WireGuard device stopped; recreating it", name))
			for attempt := 1; ; attempt++ {
				actions, err := t.Recover()
				if err == nil {
					log.Printf("wgns: %s: WireGuard device stopped; recovered: %s", name, strings.Join(actions, "; "))
					n.Status(fmt.Sprintf("%s is up (%s WireGuard), recovered", name, t.Mode()))
					break
				}
				log.Printf("wgns: %s: recovering the WireGuard device (attempt %d): %v", name, attempt, err)
				select {
				case sig := <-sigs:
					stopStatus()
					n.Stopping()
					if err := t.Down(); err != nil {
						return fmt.Errorf("tearing down %q on %v: %w", name, sig, err)
					}
					return nil
				case <-time.After(min(time.Duration(attempt)*time.Second, 30*time.Second)):
				}
			}
		case <-reresolve:
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			moved, err := t.Reresolve(ctx)
			cancel()
			if err != nil {
				log.Printf("wgns: %s: re-resolving endpoints: %v", name, err)
			} else if len(moved) > 0 {
				log.Printf("wgns: %s: endpoint moved: %s", name, strings.Join(moved, ", "))
			}
		}
	}
}

// superviseEvery is how often the holder re-checks its endpoints.
var superviseEvery = 15 * time.Second

// The re-resolve test's hook: WGNS_TEST_RERESOLVE_EVERY=DURATION shortens both the holder's
// tick and the handshake age that makes it resolve again.
func init() {
	if d, err := time.ParseDuration(os.Getenv("WGNS_TEST_RERESOLVE_EVERY")); err == nil && d > 0 {
		superviseEvery, wgns.ReresolveAfter = d, d
	}
}

// startHolder starts a detached `wgns up --foreground` that holds the embedded WireGuard device,
// and waits until it reports READY=1 the way systemd's notify protocol does, or exits.
func startHolder(name, path string) error {
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("finding the wgns binary: %w", err)
	}
	if err := os.MkdirAll(wgns.RunDir, 0o700); err != nil {
		return fmt.Errorf("creating %s: %w", wgns.RunDir, err)
	}
	sockName := holderNotifyPrefix + strconv.Itoa(os.Getpid()) + "-" + name
	ln, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sockName, Net: "unixgram"})
	if err != nil {
		return fmt.Errorf("listening for the holder's readiness: %w", err)
	}
	defer ln.Close()
	logf, err := os.OpenFile(wgns.LogPath(name), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("opening %s: %w", wgns.LogPath(name), err)
	}
	defer logf.Close()
	logStart, _ := logf.Seek(0, io.SeekEnd)
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		return err
	}
	defer devnull.Close()
	cmd := exec.Command(self, "up", "--foreground", "--userspace", "--name", name, path)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = devnull, logf, logf
	cmd.Dir = "/"
	cmd.Env = append(holderEnv(), "NOTIFY_SOCKET="+sockName)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting the WireGuard holder for %q: %w", name, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	ready := make(chan struct{})
	go func() {
		buf := make([]byte, 4096)
		for {
			n, _, err := ln.ReadFromUnix(buf)
			if err != nil {
				return
			}
			for _, line := range strings.Split(string(buf[:n]), "\n") {
				if line == "READY=1" {
					close(ready)
					return
				}
			}
		}
	}()
	select {
	case <-ready:
		cmd.Process.Release()
		if msg := readFrom(wgns.LogPath(name), logStart); msg != "" {
			fmt.Fprintln(os.Stderr, "wgns: "+msg) // the holder's warnings
		}
		return nil
	case err := <-exited:
		msg := readFrom(wgns.LogPath(name), logStart)
		if _, serr := wgns.ReadState(name); serr != nil {
			os.Remove(wgns.LogPath(name)) // it rolled back: the reason is said here, not kept
		}
		if msg == "" {
			msg = fmt.Sprintf("the WireGuard holder for %q exited: %v", name, err)
		}
		return &exitError{code: 1, msg: msg}
	case <-time.After(60 * time.Second):
		cmd.Process.Signal(syscall.SIGTERM)
		return fmt.Errorf("bringing up %q: the WireGuard holder did not become ready in 60s (see %s)", name, wgns.LogPath(name))
	}
}

// holderNotifyPrefix starts the name of the abstract notify socket on which `wgns up` waits for
// its holder's READY=1.
const holderNotifyPrefix = "@wgns-notify-"

// holderEnv is the detached holder's environment: only what it needs.
func holderEnv() []string {
	env := []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C"}
	for _, hook := range []string{"WGNS_TEST_CRASH_AT", "WGNS_TEST_RERESOLVE_EVERY"} { // the tests' hooks
		if v := os.Getenv(hook); v != "" {
			env = append(env, hook+"="+v)
		}
	}
	return env
}

// readFrom returns what the holder wrote to its log since off, without the "wgns: " prefix
// (the caller adds its own).
func readFrom(path string, off int64) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	f.Seek(off, io.SeekStart)
	b, _ := io.ReadAll(io.LimitReader(f, 64<<10))
	b = bytes.TrimSpace(b)
	return strings.TrimPrefix(string(b), "wgns: ")
}

// plan describes what up would do, for --dry-run. It never shows keys.
func plan(name string, cfg *config.Config, mode wgns.Mode) string {
	var b strings.Builder
	fmt.Fprintf(&b, "config %s is valid; up would:\n", cfg.Path)
	fmt.Fprintf(&b, "  1. create network namespace %s\n", nsmgr.Path(name))
	if cfg.Namespace.Firewall {
		in := "nothing"
		if len(cfg.Namespace.AllowInbound) > 0 {
			var ps []string
			for _, p := range cfg.Namespace.AllowInbound {
				ps = append(ps, p.String())
			}
			in = strings.Join(ps, ", ")
		}
		fmt.Fprintf(&b, "  2. install firewall table inet wgns: out only via lo and %s; in: replies, and new connections to %s\n", name, in)
	} else {
		fmt.Fprintf(&b, "  2. no firewall (Firewall = off)\n")
	}
	fmt.Fprintf(&b, "  3. create WireGuard interface %s (%s) in the host namespace and move it in\n", name, mode)
	var addrs []string
	for _, a := range cfg.Interface.Addresses {
		addrs = append(addrs, a.String())
	}
	fmt.Fprintf(&b, "  4. addresses %s; public key %s\n", strings.Join(addrs, ", "), cfg.Interface.PublicKey)
	for _, p := range cfg.Peers {
		var ips []string
		for _, a := range p.AllowedIPs {
			ips = append(ips, a.String())
		}
		ep := p.Endpoint
		if ep == "" {
			ep = "(none)"
		}
		fmt.Fprintf(&b, "  5. peer %s endpoint %s, routes via %s: %s\n", p.PublicKey, ep, name, strings.Join(ips, ", "))
	}
	var dns []string
	for _, d := range cfg.Interface.DNS {
		dns = append(dns, d.String())
	}
	if len(dns) == 0 {
		dns = []string{"(none: no resolver inside)"}
	}
	fmt.Fprintf(&b, "  6. DNS view /etc/netns/%s/: nameservers %s", name, strings.Join(dns, ", "))
	if len(cfg.Interface.Search) > 0 {
		fmt.Fprintf(&b, "; search %s", strings.Join(cfg.Interface.Search, " "))
	}
	b.WriteString("\n")
	return b.String()
}
