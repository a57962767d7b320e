package wgns

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"github.com/wgns/wgns/dnsbind"
	"github.com/wgns/wgns/firewall"
	"github.com/wgns/wgns/nsmgr"
	"github.com/wgns/wgns/wgns/config"
)

// ErrAlreadyUp is returned by Up when the tunnel exists.
var ErrAlreadyUp = errors.New("already up")

// UpOptions says how to bring a tunnel up.
type UpOptions struct {
	Name   string
	Config *config.Config
	// Mode forces an implementation; "" picks kernel WireGuard when the kernel has it.
	Mode Mode
	// Warn receives warnings (config warnings, no DNS). Nil discards them.
	Warn func(string)
	// ResolveTimeout bounds the resolution of endpoint host names (default 10s).
	ResolveTimeout time.Duration
}

// Tunnel is a tunnel brought up by this process. For the embedded WireGuard, this process holds
// the device: it must stay alive (Wait) and tear down with Down.
type Tunnel struct {
	Name  string
	state *State
	dev   wgDevice
	cfg   *config.Config
}

// Mode reports the tunnel's implementation.
func (t *Tunnel) Mode() Mode { return t.dev.mode() }

// Dead is closed when the embedded WireGuard device stops by itself (nil for kernel tunnels).
func (t *Tunnel) Dead() <-chan struct{} { return t.dev.dead() }

// Down tears the tunnel down from the process that holds it.
func (t *Tunnel) Down() error {
	unlock, err := lock(t.Name)
	if err != nil {
		t.dev.close()
		return err
	}
	defer unlock()
	if err := teardown(t.Name, t.state, t.dev); err != nil {
		return err
	}
	os.Remove(LogPath(t.Name))
	return nil
}

// Up brings a tunnel up in the order that leaves no window: namespace, firewall, interface
// created in the host namespace, moved in, addresses, routes, peers, up, DNS files, ready marker.
// It must run in the host namespace; with the embedded WireGuard the calling process becomes the
// tunnel's holder. A tunnel that is up and healthy is refused with ErrAlreadyUp; the leftovers of
// an up that crashed (or of a holder that died) are taken over and completed. When an up that
// started from nothing fails, everything it made is torn down.
func Up(opts UpOptions) (_ *Tunnel, err error) {
	name, cfg := opts.Name, opts.Config
	if err := nsmgr.ValidateName(name); err != nil {
		return nil, err
	}
	mode := opts.Mode
	if mode == "" {
		mode = ModeUserspace
		if KernelWireGuard() {
			mode = ModeKernel
		}
	}
	var dev wgDevice = kernelDevice{}
	if mode == ModeUserspace {
		dev = &userspaceDevice{}
	}
	unlock, err := lock(name)
	if err != nil {
		return nil, err
	}
	defer unlock()

	st, err := ReadState(name)
	fresh := errors.Is(err, fs.ErrNotExist)
	switch {
	case fresh:
		if _, err := os.Lstat(nsmgr.Path(name)); err == nil {
			return nil, fmt.Errorf("bringing up %q: %s exists but wgns did not make it; refusing to touch it", name, nsmgr.Path(name))
		}
		st = &State{Name: name}
	case err != nil:
		return nil, err
	case st.healthy():
		return nil, fmt.Errorf("bringing up %q: %w (since %s; `wgns down %s` first)", name, ErrAlreadyUp, st.Since.Format(time.RFC3339), name)
	case st.Mode == ModeUserspace && st.PID != os.Getpid() && st.Start != 0 && procStart(st.PID) == st.Start:
		// A holder that is not healthy is usually one that was just killed and is still
		// exiting (its TUN and control socket close one by one as it does): wait until it is gone.
		waitGone(st.PID, st.Start, holderExitWait)
		if procStart(st.PID) == st.Start {
			return nil, fmt.Errorf("bringing up %q: process %d holds it but it is not ready; run `wgns repair %s`", name, st.PID, name)
		}
	}
	st.Mode, st.Config, st.Since = mode, cfg.Path, time.Now().UTC()
	st.PID, st.Start = 0, 0
	if mode == ModeUserspace {
		st.PID = os.Getpid()
		st.Start = procStart(st.PID)
	}
	if fresh {
		st.Step = "namespace"
	}
	if err := writeState(st); err != nil {
		return nil, err
	}
	r := &reconciler{name: name, cfg: cfg, st: st, dev: dev, warn: opts.Warn, resolveTimeout: opts.ResolveTimeout, ns: netns.None()}
	defer r.close()
	if fresh {
		// Resolve before making anything: an unresolvable endpoint changes nothing.
		if err := r.resolve(); err != nil {
			removeState(name)
			return nil, err
		}
	}
	if err := r.run(); err != nil {
		if fresh {
			if terr := teardown(name, st, dev); terr != nil {
				err = fmt.Errorf("%w (and undoing it: %v)", err, terr)
			}
		} else if r.created {
			dev.close()
		}
		return nil, err
	}
	if len(cfg.Interface.DNS) == 0 && opts.Warn != nil {
		opts.Warn(fmt.Sprintf("%s: no DNS in [Interface]: programs in %q will have no resolver (the host's is never used)", cfg.Path, name))
	}
	return &Tunnel{Name: name, state: st, dev: dev, cfg: cfg}, nil
}

// holderExitWait bounds how long up waits for a dying holder, and for its device, to be gone.
const holderExitWait = 3 * time.Second

// healthy reports whether the tunnel is ready and whole: its namespace is the one wgns made, the
// interface is in it, and the embedded WireGuard's holder (if any) runs.
func (s *State) healthy() bool {
	if !s.Ready {
		return false
	}
	if s.Mode == ModeUserspace && !s.holderAlive() {
		return false
	}
	if id, err := nsmgr.IDByName(s.Name); err != nil || id != s.Netns {
		return false
	}
	ns, err := nsmgr.Open(s.Name)
	if err != nil {
		return false
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return false
	}
	defer h.Close()
	_, err = h.LinkByName(s.Name)
	return err == nil
}

// RepairResult says what Repair did (or, with dryRun, would do) to one tunnel.
type RepairResult struct {
	Name    string
	Actions []string
	// NeedHolder is set when the embedded WireGuard needs a new holder process (`wgns up
	// --foreground`), which the caller starts once Repair has returned.
	NeedHolder bool
}

// Repair brings a tunnel back to what its config says: it recreates a missing namespace piece,
// interface, addresses, routes, firewall table or DNS files, and completes or clears what a
// crashed up left. With dryRun it only lists the actions. A second Repair finds nothing to do.
func Repair(name string, dryRun bool) (*RepairResult, error) {
	if err := nsmgr.ValidateName(name); err != nil {
		return nil, err
	}
	unlock, err := lock(name)
	if err != nil {
		return nil, err
	}
	defer unlock()
	res := &RepairResult{Name: name}
	st, err := ReadState(name)
	if errors.Is(err, fs.ErrNotExist) {
		if err := removeStaleUAPI(name); err == nil {
			if _, serr := os.Lstat(uapiPath(name)); serr == nil {
				res.Actions = append(res.Actions, "remove the stale "+uapiPath(name))
			}
		}
		return res, nil
	}
	if err != nil {
		return nil, err
	}
	cfg, err := config.Load(st.Config)
	if err != nil {
		return nil, fmt.Errorf("repairing %q: %w", name, err)
	}
	var dev wgDevice
	if st.Mode == ModeKernel {
		dev = kernelDevice{}
	}
	r := &reconciler{name: name, cfg: cfg, st: st, dev: dev, dryRun: dryRun, ns: netns.None()}
	defer r.close()
	err = r.run()
	res.Actions, res.NeedHolder = r.actions, r.needHolder
	return res, err
}

func firewallRules(name string, cfg *config.Config) firewall.Rules {
	r := firewall.Rules{Tunnel: name}
	for _, p := range cfg.Namespace.AllowInbound {
		r.AllowInbound = append(r.AllowInbound, firewall.Port{Port: p.Port, Proto: p.Proto})
	}
	return r
}

// wireGuardConfig is the device configuration cfg asks for, with endpoints resolved.
func wireGuardConfig(cfg *config.Config, endpoints []*net.UDPAddr) wgtypes.Config {
	key := cfg.Interface.PrivateKey.Key()
	wc := wgtypes.Config{PrivateKey: &key, ReplacePeers: true}
	if cfg.Interface.ListenPort != 0 {
		port := cfg.Interface.ListenPort
		wc.ListenPort = &port
	}
	for i, p := range cfg.Peers {
		pc := wgtypes.PeerConfig{PublicKey: p.PublicKey, Endpoint: endpoints[i], ReplaceAllowedIPs: true}
		if p.PresharedKey != nil {
			psk := p.PresharedKey.Key()
			pc.PresharedKey = &psk
		}
		if p.PersistentKeepalive > 0 {
			ka := time.Duration(p.PersistentKeepalive) * time.Second
			pc.PersistentKeepaliveInterval = &ka
		}
		for _, a := range p.AllowedIPs {
			pc.AllowedIPs = append(pc.AllowedIPs, *prefixToIPNet(a))
		}
		wc.Peers = append(wc.Peers, pc)
	}
	return wc
}

// resolveEndpoints resolves every peer's endpoint in the host namespace, in bounded time.
func resolveEndpoints(cfg *config.Config, timeout time.Duration) ([]*net.UDPAddr, error) {
	if timeout == 0 {
		timeout = 10 * time.Second
	}
	out := make([]*net.UDPAddr, len(cfg.Peers))
	for i, p := range cfg.Peers {
		if p.Endpoint == "" {
			continue
		}
		if ip, err := netip.ParseAddr(p.EndpointHost); err == nil {
			out[i] = net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip.Unmap(), uint16(p.EndpointPort)))
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", p.EndpointHost)
		cancel()
		if err != nil || len(ips) == 0 {
			if err == nil {
				err = errors.New("no addresses")
			}
			return nil, fmt.Errorf("%s:%d: resolving endpoint %q: %w", cfg.Path, p.Line, p.EndpointHost, err)
		}
		pick := ips[0]
		for _, ip := range ips { // like wg(8): prefer IPv4
			if ip.Unmap().Is4() {
				pick = ip
				break
			}
		}
		out[i] = net.UDPAddrFromAddrPort(netip.AddrPortFrom(pick.Unmap(), uint16(p.EndpointPort)))
	}
	return out, nil
}

// uplinkMTU is the largest MTU of the host routes towards the endpoints (as wg-quick picks it),
// or of the default route when no endpoint is set; 0 if none is found.
func uplinkMTU(endpoints []*net.UDPAddr) int {
	best := 0
	consider := func(r netlink.Route) {
		mtu := r.MTU
		if mtu == 0 {
			if l, err := netlink.LinkByIndex(r.LinkIndex); err == nil {
				mtu = l.Attrs().MTU
			}
		}
		if mtu > best {
			best = mtu
		}
	}
	any := false
	for _, ep := range endpoints {
		if ep == nil {
			continue
		}
		any = true
		if rs, err := netlink.RouteGet(ep.IP); err == nil {
			for _, r := range rs {
				consider(r)
			}
		}
	}
	if !any {
		if rs, err := netlink.RouteList(nil, netlink.FAMILY_V4); err == nil {
			for _, r := range rs {
				if r.Dst == nil {
					consider(r)
				}
			}
		}
	}
	return best
}

// teardown removes everything up made for name, whatever step it reached. The caller holds the
// lock. dev is the device this process holds, or nil.
func teardown(name string, st *State, dev wgDevice) error {
	var errs []error
	os.Remove(ReadyPath(name))
	if dev != nil {
		dev.close()
	}
	if err := dnsbind.Remove(name); err != nil {
		errs = append(errs, fmt.Errorf("removing the DNS view of %q: %w", name, err))
	}
	if err := deleteOwnNamespace(name, st); err != nil {
		errs = append(errs, err)
	}
	// An interface still in the host namespace (created, not yet moved) goes too, but only a
	// WireGuard or TUN one: a host interface of the same name is not ours.
	if l, err := netlink.LinkByName(name); err == nil && st != nil && (st.Step == "interface") {
		if t := l.Type(); t == "wireguard" || t == "tuntap" {
			if err := netlink.LinkDel(l); err != nil {
				errs = append(errs, fmt.Errorf("deleting interface %q: %w", name, err))
			}
		}
	}
	if err := removeStaleUAPI(name); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	// The holder's log stays: after a failed up, `wgns up` reads the reason from it (and then
	// removes it); down removes it.
	return removeState(name)
}

// deleteOwnNamespace deletes /run/netns/name only if it is the namespace recorded in st, or the
// empty one a crashed up was making when it died (see halfMadeNamespace).
func deleteOwnNamespace(name string, st *State) error {
	id, err := nsmgr.IDByName(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	ours := st != nil && err == nil && st.Netns == id && id != (nsmgr.ID{})
	if !ours && !halfMadeNamespace(name, st, err) {
		return fmt.Errorf("%s is not the namespace wgns made; leaving it alone", nsmgr.Path(name))
	}
	if err := nsmgr.Delete(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("deleting namespace %q: %w", name, err)
	}
	return nil
}

// halfMadeNamespace reports whether /run/netns/name is what an up that died while creating it
// left: st records that step and no namespace yet, and the file is either not a namespace (the
// bind mount never happened) or an empty one (only lo, no process inside). idErr is the result
// of nsmgr.IDByName(name).
func halfMadeNamespace(name string, st *State, idErr error) bool {
	if st == nil || st.Netns != (nsmgr.ID{}) || st.Step != "namespace" {
		return false
	}
	if idErr != nil {
		return true
	}
	id, _ := nsmgr.IDByName(name)
	if procs, err := nsmgr.Processes(id); err != nil || len(procs) > 0 {
		return false
	}
	ns, err := nsmgr.Open(name)
	if err != nil {
		return false
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return false
	}
	defer h.Close()
	links, err := h.LinkList()
	return err == nil && len(links) == 1 && links[0].Attrs().Name == "lo"
}

func prefixToIPNet(p netip.Prefix) *net.IPNet {
	bits := 32
	if p.Addr().Is6() {
		bits = 128
	}
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), bits)}
}

func family(a netip.Addr) int {
	if a.Is4() {
		return netlink.FAMILY_V4
	}
	return netlink.FAMILY_V6
}
