package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/wgns/wgns/nsmgr"
	"github.com/wgns/wgns/supervisor"
	"github.com/wgns/wgns/wgns"
	"github.com/wgns/wgns/wgns/config"
)

// UpCmd is `wgns up`.
type UpCmd struct {
	Name       string        `help:"Tunnel name (default: the config file's base name)." placeholder:"NAME"`
	Userspace  bool          `help:"Use the embedded WireGuard even if the kernel has WireGuard." xor:"impl"`
	Kernel     bool          `help:"Use kernel WireGuard, and fail if the kernel has none." xor:"impl"`
	Foreground bool          `help:"Stay attached: for systemd Type=notify (READY=1 once ready); tears down on SIGTERM."`
	DryRun     bool          `help:"Validate the config and print the plan; touch nothing (needs no root)."`
	Strict     bool          `help:"Refuse a config with lines wgns would ignore (PreUp/PostUp/PreDown/PostDown hooks, Table, FwMark, SaveConfig) instead of warning."`
	Wait       time.Duration `default:"5s" help:"Once up, wait this long for the first handshake with each peer that has an Endpoint, and warn about a peer that does not answer (0: do not wait)."`
	ReadyFD    int           `hidden:"" name:"ready-fd" help:"With --foreground: report readiness on this pipe (how wgns up starts its supervisor)."`
	Target     string        `arg:"" name:"CONFIG|NAME" help:"A wg-quick config file (./x.conf), or NAME for /etc/wgns/NAME.conf, then /etc/wireguard/NAME.conf."`
}

// unescapeInstance undoes the \xNN escapes of a unit instance name, as systemd-escape writes
// them (wgns@.service passes %i: wgns@se\x2dgot.service is tunnel se-got). A name never holds a
// backslash, so nothing else is changed.
func unescapeInstance(s string) string {
	if !strings.Contains(s, `\x`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) && s[i+1] == 'x' {
			if v, err := strconv.ParseUint(s[i+2:i+4], 16, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// configDirs are searched, in order, for NAME.conf when up is given a bare NAME.
var configDirs = []string{"/etc/wgns", "/etc/wireguard"}

// resolveTarget turns up's argument into a config path and a tunnel name.
func resolveTarget(target, nameFlag string) (path, name string, err error) {
	isPath := strings.ContainsRune(target, '/') || strings.HasSuffix(target, ".conf")
	if !isPath {
		target = unescapeInstance(target)
	}
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

// Run brings the tunnel up: it starts the tunnel's supervisor, which brings it up and then
// keeps it working, and waits for its word; with --foreground this process is the supervisor.
func (c *UpCmd) Run() error {
	path, name, err := resolveTarget(c.Target, c.Name)
	if err != nil {
		return err
	}
	mode := wgns.Mode("")
	switch {
	case c.Kernel:
		mode = wgns.ModeKernel
	case c.Userspace:
		mode = wgns.ModeUserspace
	}
	if c.DryRun {
		var opts []config.Option
		if c.Strict {
			opts = append(opts, config.Strict())
		}
		cfg, err := config.Load(path, opts...)
		if err != nil {
			return err
		}
		warnAll(cfg.Warnings)
		plan, err := wgns.Plan(name, cfg, mode)
		if err != nil {
			return err
		}
		fmt.Print(plan)
		return nil
	}
	if err := needRoot("up", "it creates a network namespace and a WireGuard interface"); err != nil {
		return err
	}
	if c.Foreground {
		return supervisor.Run(supervisor.RunOptions{Name: name, ConfigPath: path, Mode: mode, Strict: c.Strict, ReadyFD: c.ReadyFD})
	}
	warnings, err := supervisor.Start(supervisor.StartOptions{Name: name, ConfigPath: path, Mode: mode, Strict: c.Strict})
	warnAll(warnings)
	if err != nil {
		return err
	}
	st, err := wgns.ReadState(name)
	if err != nil {
		return err
	}
	fmt.Printf("%s is up (%s WireGuard); run programs in it with: wgns exec %s -- CMD\n", name, st.Mode, name)
	warnAll(silentPeers(name, c.Wait))
	return nil
}

// silentPeers waits up to limit for every peer of tunnel name that has an endpoint to complete a
// handshake (the supervisor greets them at up), and describes each that did not, with the
// likely causes. A peer without an endpoint roams to us and is not waited for.
func silentPeers(name string, limit time.Duration) []string {
	if limit <= 0 {
		return nil
	}
	var silent []wgns.PeerStatus
	deadline := time.Now().Add(limit)
	// A handshake usually takes a millisecond or two: look again soon, then less and less often.
	pause := time.Millisecond
	for {
		peers, err := wgns.PeerStates(name)
		if err != nil {
			return nil
		}
		silent = silent[:0]
		for _, p := range peers {
			if p.Endpoint != "" && p.LastHandshake.IsZero() {
				silent = append(silent, p)
			}
		}
		if len(silent) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(pause)
		pause = min(2*pause, 50*time.Millisecond)
	}
	var out []string
	for _, p := range silent {
		out = append(out, fmt.Sprintf("no handshake with peer %s at %s in %s: nothing gets through until it answers "+
			"(is its PublicKey right, and does it know this tunnel's public key? is %s reachable over UDP from here?)",
			p.PublicKey, p.Endpoint, limit, p.Endpoint))
	}
	return out
}

func warnAll(warnings []string) {
	for _, w := range warnings {
		fmt.Fprintln(os.Stderr, "wgns: warning:", w)
	}
}
