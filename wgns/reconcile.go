package wgns

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"slices"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"github.com/wgns/wgns/dnsbind"
	"github.com/wgns/wgns/firewall"
	"github.com/wgns/wgns/nsmgr"
	"github.com/wgns/wgns/wgns/config"
)

// reconciler brings one tunnel to what its config says, from whatever state it is in: nothing
// (a fresh up), the leftovers of an up that crashed at any step, or a tunnel that lost a piece
// (its interface, routes, firewall table, DNS files, holder process). Each step checks what is
// there and acts only on a difference, so running it twice does nothing the second time, and
// with dryRun it only lists what it would do. The caller holds the tunnel's lock.
type reconciler struct {
	name   string
	cfg    *config.Config
	st     *State
	dev    wgDevice // the device this process can hold; nil when it cannot (repair from the CLI)
	dryRun bool
	warn   func(string)

	resolveTimeout time.Duration
	endpoints      []*net.UDPAddr

	ns        netns.NsHandle
	h         *netlink.Handle
	created   bool // this run created the device
	nsCreated bool // this run created the namespace

	// Actions lists what was done (or, with dryRun, would be done), one human line each.
	actions []string
	// needHolder is set when the embedded WireGuard needs a new holder process, which only the
	// caller can start.
	needHolder bool
}

// act records an action and, unless this is a dry run, does it (do may be nil for an action
// that only the caller can take).
func (r *reconciler) act(what string, do func() error) error {
	r.actions = append(r.actions, what)
	if r.dryRun || do == nil {
		return nil
	}
	return do()
}

func (r *reconciler) step(s string) error {
	crashPoint(s)
	// Progress is recorded while a tunnel is being made; repairing a ready one keeps "ready".
	if r.dryRun || r.st.Ready || r.st.Step == s {
		return nil
	}
	r.st.Step = s
	return writeState(r.st)
}

// crashPoint ends the process with SIGKILL when the test hook WGNS_TEST_CRASH_AT names step s:
// the crash tests use it to kill up at every step.
func crashPoint(s string) {
	if v := os.Getenv("WGNS_TEST_CRASH_AT"); v != "" && v == s {
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {}
	}
}

func (r *reconciler) close() {
	if r.h != nil {
		r.h.Close()
		r.h = nil
	}
	if r.ns.IsOpen() {
		r.ns.Close()
	}
}

// run reconciles in the order that leaves no window: namespace, firewall, interface, addresses
// and routes, peers, DNS view, ready marker. When only a new holder can make the interface, the
// steps that need it are left to that holder (a dry run still lists them).
func (r *reconciler) run() error {
	steps := []func() error{r.namespace, r.firewall, r.iface}
	for _, f := range steps {
		if err := f(); err != nil {
			return err
		}
	}
	if !r.needHolder || r.dryRun {
		for _, f := range []func() error{r.addresses, r.routes, r.peers} {
			if err := f(); err != nil {
				return err
			}
		}
	}
	if err := r.dns(); err != nil {
		return err
	}
	if r.needHolder {
		return nil
	}
	return r.ready()
}

func (r *reconciler) namespace() error {
	if err := r.step("namespace"); err != nil {
		return err
	}
	id, err := nsmgr.IDByName(r.name)
	switch {
	case err == nil && id == r.st.Netns:
		r.ns, err = nsmgr.Open(r.name)
		if err != nil {
			return fmt.Errorf("opening namespace %q: %w", r.name, err)
		}
	case errors.Is(err, fs.ErrNotExist), halfMadeNamespace(r.name, r.st, err):
		if err == nil || !errors.Is(err, fs.ErrNotExist) {
			if err := r.act("remove the namespace a crashed up left half-made", func() error { return nsmgr.Delete(r.name) }); err != nil {
				return fmt.Errorf("removing the half-made %s: %w", nsmgr.Path(r.name), err)
			}
		}
		if r.st.Netns != (nsmgr.ID{}) {
			// The namespace wgns made is gone: anything still inside it stays cut off, and a new one
			// takes its place.
			r.st.Ready = false
		}
		err := r.act("create network namespace "+nsmgr.Path(r.name), func() error {
			ns, err := nsmgr.Create(r.name)
			if err != nil {
				return fmt.Errorf("creating namespace %q: %w", r.name, err)
			}
			r.ns, r.nsCreated = ns, true
			if r.st.Netns, err = nsmgr.IDOf(ns); err != nil {
				return err
			}
			return writeState(r.st)
		})
		if err != nil {
			return err
		}
	case err == nil:
		return fmt.Errorf("%s is not the namespace wgns made for %q; refusing to touch it", nsmgr.Path(r.name), r.name)
	default:
		return fmt.Errorf("inspecting namespace %q: %w", r.name, err)
	}
	if r.ns.IsOpen() {
		if r.h, err = netlink.NewHandleAt(r.ns); err != nil {
			return fmt.Errorf("opening netlink in namespace %q: %w", r.name, err)
		}
	}
	return nil
}

func (r *reconciler) firewall() error {
	if err := r.step("firewall"); err != nil {
		return err
	}
	rules := firewallRules(r.name, r.cfg)
	if !r.ns.IsOpen() { // dry run of a namespace yet to be made
		if r.cfg.Namespace.Firewall {
			r.act("install firewall table inet "+firewall.TableName, nil)
		}
		return nil
	}
	var fs firewall.State
	if !r.nsCreated { // a namespace made by this run has no table yet
		var err error
		if fs, err = firewall.Inspect(int(r.ns), rules); err != nil {
			return fmt.Errorf("inspecting the firewall of %q: %w", r.name, err)
		}
	}
	switch {
	case r.cfg.Namespace.Firewall && !fs.Present:
		return r.act("install firewall table inet "+firewall.TableName, func() error {
			install := firewall.Apply
			if r.nsCreated {
				install = firewall.Install
			}
			if err := install(int(r.ns), rules); err != nil {
				return fmt.Errorf("installing the firewall of %q: %w", r.name, err)
			}
			return nil
		})
	case r.cfg.Namespace.Firewall && !fs.Matches:
		return r.act("reinstall the altered firewall table inet "+firewall.TableName, func() error {
			if err := firewall.Apply(int(r.ns), rules); err != nil {
				return fmt.Errorf("reinstalling the firewall of %q: %w", r.name, err)
			}
			return nil
		})
	case !r.cfg.Namespace.Firewall && fs.Present:
		return r.act("remove firewall table inet "+firewall.TableName+" (Firewall = off)", func() error {
			return firewall.Remove(int(r.ns))
		})
	}
	if !r.cfg.Namespace.Firewall && r.warn != nil && !r.dryRun {
		r.warn(fmt.Sprintf("%s: Firewall = off: nothing stops traffic on an interface added to namespace %q later", r.cfg.Path, r.name))
	}
	return nil
}

// link returns the tunnel interface inside the namespace, or nil.
func (r *reconciler) link() netlink.Link {
	if r.h == nil {
		return nil
	}
	l, err := r.h.LinkByName(r.name)
	if err != nil {
		return nil
	}
	return l
}

func (r *reconciler) iface() error {
	if err := r.step("interface"); err != nil {
		return err
	}
	if r.link() != nil {
		switch {
		case r.st.Mode != ModeUserspace:
			return nil // a kernel interface needs no process: configure it as it is
		case r.dev == nil && r.st.holderAlive():
			return nil // the live holder's
		case r.dev == nil:
			return fmt.Errorf("interface %q in namespace %q has no live holder", r.name, r.name)
		}
		// This process is to hold the device, so the TUN there is a dead holder's, still being
		// torn down by the kernel as that process exits: wait for it to go.
		deadline := time.Now().Add(holderExitWait)
		for r.link() != nil {
			if time.Now().After(deadline) {
				return fmt.Errorf("interface %q in namespace %q belongs to no live wgns holder and does not go away", r.name, r.name)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	if r.dev == nil {
		r.needHolder = true
		r.st.Ready = false
		r.act("start the embedded WireGuard for "+r.name+" (its holder process is gone)", nil)
		return nil
	}
	// Endpoints are resolved, and the uplink MTU found, in the host namespace before anything
	// is made.
	if err := r.resolve(); err != nil {
		return err
	}
	mtu := r.cfg.EffectiveMTU(uplinkMTU(r.endpoints))
	if l, err := netlink.LinkByName(r.name); err == nil {
		// Left in the host namespace by a crash between creating and moving it (kernel links
		// outlive their creator); anything else of that name is not ours.
		if r.st.Step != "interface" || (l.Type() != "wireguard" && l.Type() != "tuntap") {
			return fmt.Errorf("creating interface %q: an interface of that name already exists in the host namespace, and wgns did not make it", r.name)
		}
		if err := r.act("remove interface "+r.name+" left in the host namespace by a crashed up", func() error { return netlink.LinkDel(l) }); err != nil {
			return fmt.Errorf("removing interface %q from the host namespace: %w", r.name, err)
		}
	}
	r.st.Ready = false
	where := "in the host namespace and move it into " + nsmgr.Path(r.name)
	if r.dev.mode() == ModeUserspace {
		where = "inside " + nsmgr.Path(r.name)
	}
	return r.act(fmt.Sprintf("create WireGuard interface %s (%s, MTU %d) %s", r.name, r.dev.mode(), mtu, where), func() error {
		os.Remove(ReadyPath(r.name))
		if err := removeStaleUAPI(r.name); err != nil {
			return err
		}
		if err := r.dev.create(r.name, mtu, r.ns); err != nil {
			if errors.Is(err, ErrNoKernelWireGuard) {
				return fmt.Errorf("creating interface %q: %w (use --userspace)", r.name, err)
			}
			return fmt.Errorf("creating interface %q: %w", r.name, err)
		}
		r.created = true
		return nil
	})
}

func (r *reconciler) addresses() error {
	if err := r.step("addresses"); err != nil {
		return err
	}
	l := r.link()
	if l == nil {
		if !r.dryRun {
			return fmt.Errorf("interface %q vanished from namespace %q", r.name, r.name)
		}
		r.act("add addresses and bring the interface up", nil)
		return nil
	}
	if lo, err := r.h.LinkByName("lo"); err == nil && lo.Attrs().Flags&net.FlagUp == 0 {
		if err := r.act("bring lo up in "+r.name, func() error { return r.h.LinkSetUp(lo) }); err != nil {
			return fmt.Errorf("bringing lo up in namespace %q: %w", r.name, err)
		}
	}
	have, err := r.h.AddrList(l, netlink.FAMILY_ALL)
	if err != nil {
		return fmt.Errorf("listing addresses of %q: %w", r.name, err)
	}
	var present []netip.Prefix
	for _, a := range have {
		if p, ok := ipNetToPrefix(a.IPNet); ok {
			present = append(present, p)
			if !slices.Contains(r.cfg.Interface.Addresses, p) && !p.Addr().IsLinkLocalUnicast() {
				a := a
				if err := r.act("remove address "+p.String()+" from "+r.name+" (not in the config)", func() error { return r.h.AddrDel(l, &a) }); err != nil {
					return fmt.Errorf("removing address %s from interface %q: %w", p, r.name, err)
				}
			}
		}
	}
	for _, p := range r.cfg.Interface.Addresses {
		if slices.Contains(present, p) {
			continue
		}
		a := &netlink.Addr{IPNet: prefixToIPNet(p)}
		if p.Addr().Is6() {
			a.Flags = unix.IFA_F_NODAD
		}
		if err := r.act("add address "+p.String()+" to "+r.name, func() error { return r.h.AddrReplace(l, a) }); err != nil {
			return fmt.Errorf("adding address %s to interface %q: %w", p, r.name, err)
		}
	}
	if l.Attrs().Flags&net.FlagUp == 0 {
		if err := r.act("bring interface "+r.name+" up", func() error { return r.h.LinkSetUp(l) }); err != nil {
			return fmt.Errorf("bringing interface %q up: %w", r.name, err)
		}
	}
	return nil
}

// routes routes every peer's AllowedIPs via the tunnel in the namespace's main table; 0.0.0.0/0
// and ::/0 become its default routes.
func (r *reconciler) routes() error {
	if err := r.step("routes"); err != nil {
		return err
	}
	l := r.link()
	if l == nil {
		r.act("add routes via "+r.name, nil)
		return nil
	}
	idx := l.Attrs().Index
	existing, err := r.h.RouteListFiltered(netlink.FAMILY_ALL, &netlink.Route{Table: unix.RT_TABLE_MAIN, LinkIndex: idx}, netlink.RT_FILTER_TABLE|netlink.RT_FILTER_OIF)
	if err != nil {
		return fmt.Errorf("listing routes of namespace %q: %w", r.name, err)
	}
	var have []netip.Prefix
	for _, rt := range existing {
		if p, ok := routeDst(rt); ok {
			have = append(have, p)
		}
	}
	for _, peer := range r.cfg.Peers {
		for _, p := range peer.AllowedIPs {
			if slices.Contains(have, p) {
				continue
			}
			rt := &netlink.Route{LinkIndex: idx, Dst: prefixToIPNet(p), Scope: netlink.SCOPE_LINK, Family: family(p.Addr())}
			if err := r.act("add route "+p.String()+" via "+r.name, func() error { return r.h.RouteReplace(rt) }); err != nil {
				return fmt.Errorf("adding route %s via %q: %w", p, r.name, err)
			}
		}
	}
	return nil
}

func routeDst(rt netlink.Route) (netip.Prefix, bool) {
	if rt.Dst == nil {
		if rt.Family == netlink.FAMILY_V6 {
			return netip.PrefixFrom(netip.IPv6Unspecified(), 0), true
		}
		return netip.PrefixFrom(netip.IPv4Unspecified(), 0), true
	}
	p, ok := ipNetToPrefix(rt.Dst)
	return p.Masked(), ok
}

// ipNetToPrefix converts without masking: an interface address keeps its host bits.
func ipNetToPrefix(n *net.IPNet) (netip.Prefix, bool) {
	if n == nil {
		return netip.Prefix{}, false
	}
	a, ok := netip.AddrFromSlice(n.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	a = a.Unmap()
	ones, _ := n.Mask.Size()
	return netip.PrefixFrom(a, ones), true
}

// peers gives the device its key, port and peers. A device this run created is known to be
// empty and, when this process holds it, is configured in-process; any other is read first
// through wgctrl and left alone when it already matches, so handshakes survive a repair.
func (r *reconciler) peers() error {
	if err := r.step("peers"); err != nil {
		return err
	}
	if r.link() == nil {
		r.act("configure WireGuard key and peers", nil)
		return nil
	}
	why := "new interface"
	if !r.created {
		dev, err := readDevice(r.ns, r.name)
		if err != nil {
			return err
		}
		why = r.deviceDiffers(dev)
	}
	if why != "" {
		err := r.act("configure WireGuard on "+r.name+" ("+why+")", func() error {
			if err := r.resolve(); err != nil {
				return err
			}
			wc := wireGuardConfig(r.cfg, r.endpoints)
			if r.created && r.dev != nil {
				if handled, err := r.dev.configure(wc); handled {
					if err != nil {
						return fmt.Errorf("configuring WireGuard interface %q: %w", r.name, err)
					}
					return nil
				}
			}
			return configureDevice(r.ns, r.name, wc)
		})
		if err != nil {
			return err
		}
	}
	if r.created {
		if err := r.dev.start(); err != nil {
			return fmt.Errorf("starting WireGuard on %q: %w", r.name, err)
		}
	}
	return nil
}

// deviceDiffers says how the device differs from the config, or "" when it does not.
func (r *reconciler) deviceDiffers(d *wgtypes.Device) string {
	if d.PublicKey != r.cfg.Interface.PublicKey {
		return "key"
	}
	if r.cfg.Interface.ListenPort != 0 && d.ListenPort != r.cfg.Interface.ListenPort {
		return "listen port"
	}
	if len(d.Peers) != len(r.cfg.Peers) {
		return "peers"
	}
	for i, want := range r.cfg.Peers {
		got := d.Peers[i]
		if got.PublicKey != want.PublicKey {
			return "peers"
		}
		if int(got.PersistentKeepaliveInterval/time.Second) != want.PersistentKeepalive {
			return "keepalive"
		}
		var psk wgtypes.Key
		if want.PresharedKey != nil {
			psk = want.PresharedKey.Key()
		}
		if got.PresharedKey != psk {
			return "preshared key"
		}
		if want.Endpoint != "" && got.Endpoint == nil {
			return "endpoint"
		}
		var ips []netip.Prefix
		for _, a := range got.AllowedIPs {
			if p, ok := ipNetToPrefix(&a); ok {
				ips = append(ips, p.Masked())
			}
		}
		if len(ips) != len(want.AllowedIPs) {
			return "allowed IPs"
		}
		for _, p := range want.AllowedIPs {
			if !slices.Contains(ips, p) {
				return "allowed IPs"
			}
		}
	}
	return ""
}

func (r *reconciler) resolve() error {
	if r.endpoints != nil {
		return nil
	}
	eps, err := resolveEndpoints(r.cfg, r.resolveTimeout)
	if err != nil {
		return err
	}
	r.endpoints = eps
	return nil
}

func (r *reconciler) dns() error {
	if err := r.step("dns"); err != nil {
		return err
	}
	view := dnsbind.View{Servers: r.cfg.Interface.DNS, Search: r.cfg.Interface.Search}
	diffs, err := dnsbind.Check(r.name, view)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("checking the DNS view of %q: %w", r.name, err)
	}
	if err == nil && len(diffs) == 0 {
		return nil
	}
	return r.act("write the DNS view /etc/netns/"+r.name+"/", func() error {
		if err := dnsbind.Write(r.name, view); err != nil {
			return fmt.Errorf("writing the DNS view of %q: %w", r.name, err)
		}
		return nil
	})
}

func (r *reconciler) ready() error {
	crashPoint("ready")
	b, err := os.ReadFile(ReadyPath(r.name))
	if r.st.Ready && err == nil && string(b) == idString(r.st.Netns)+"\n" {
		return nil
	}
	return r.act("mark "+r.name+" ready", func() error {
		r.st.Step, r.st.Ready = "ready", true
		if err := writeState(r.st); err != nil {
			return err
		}
		if err := writeReady(r.name, r.st.Netns); err != nil {
			return fmt.Errorf("marking %q ready: %w", r.name, err)
		}
		return nil
	})
}
