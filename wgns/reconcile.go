package wgns

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"slices"
	"strings"
	"time"

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
// with dryRun it only lists what it would do. All it reads and changes goes through sys. The
// caller holds the tunnel's lock.
type reconciler struct {
	name   string
	cfg    *config.Config
	st     *State
	sys    system
	dev    backend // the device this process can hold; nil when it cannot (repair from the CLI)
	dryRun bool
	warn   func(string)

	resolveTimeout time.Duration
	endpoints      []*net.UDPAddr

	// preferred is the place in each failover group of the peer that gets the group's AllowedIPs
	// on a device this run makes (nil: the first); active is the one that holds them on the
	// device as configured (a repair keeps the device's choice: it does not undo a failover).
	preferred []int
	active    []int

	// ifname is the WireGuard interface's name inside the namespace: name (run sets it when
	// empty), except for an attachment, whose interface is a container's wg0.
	ifname string
	// adopt is set for an attachment (Attach): the namespace is one the caller gave, at the path
	// name, which this reconciler never creates or deletes. primary is what stays on the
	// interface of the plugin before wgns in a CNI chain (nil when standalone).
	adopt   bool
	primary *Primary

	ns        netnsView // the tunnel's namespace, once opened or made
	created   bool      // this run created the device
	nsCreated bool      // this run created the namespace

	// actions lists what was done (or, with dryRun, would be done), one human line each.
	actions []string
	// needHolder is set when the embedded WireGuard needs a new holder process, which only the
	// caller can start; holderBusy when the live holder is recreating its device.
	needHolder bool
	holderBusy bool
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

// step records that the work has reached step s, so that a crash leaves a record of it.
func (r *reconciler) step(s Step) error {
	r.sys.checkpoint(string(s))
	// Progress is recorded while a tunnel is being made; repairing a ready one keeps "ready".
	if r.dryRun || r.st.Ready || r.st.Step == s {
		return nil
	}
	r.st.Step = s
	return r.sys.writeState(r.st)
}

func (r *reconciler) close() {
	if r.ns != nil {
		r.ns.close()
		r.ns = nil
	}
}

// run reconciles in the order that leaves no window: namespace, firewall, interface, addresses
// and routes, peers, DNS view, ready marker.
func (r *reconciler) run() error {
	if r.ifname == "" {
		r.ifname = r.name
	}
	for _, f := range []func() error{r.namespace, r.firewall, r.iface} {
		if err := f(); err != nil {
			return err
		}
	}
	// When only a new holder can make the interface, the steps that need it are that holder's
	// (its own up), in a dry run too: the dry run lists what this run would do.
	if !r.needHolder && !r.holderBusy {
		for _, f := range []func() error{r.addresses, r.routes, r.peers} {
			if err := f(); err != nil {
				return err
			}
		}
	}
	for _, f := range []func() error{r.dns, r.grants} {
		if err := f(); err != nil {
			return err
		}
	}
	if !r.needHolder && !r.holderBusy && !r.adopt { // a kernel CNI attachment has no supervisor
		if pid, _ := r.sys.self(); r.st.PID != pid && !r.sys.holderAlive(r.st) {
			// A kernel tunnel whose supervisor died works on, unwatched: only the caller can
			// start a new one, which takes it over.
			r.needHolder = true
			r.act("start the supervisor of "+r.name+" (its process is gone)", nil)
		}
	}
	if r.needHolder || r.holderBusy {
		return nil
	}
	return r.ready()
}

// halfMade reports whether /run/netns/NAME is what an up that died while creating it left.
func (r *reconciler) halfMade(idErr error) bool { return halfMadeNamespace(r.sys, r.name, r.st, idErr) }

func (r *reconciler) namespace() error {
	if err := r.step(StepNamespace); err != nil {
		return err
	}
	if r.adopt {
		return r.adoptNamespace()
	}
	id, err := r.sys.nsID(r.name)
	switch {
	case err == nil && id == r.st.Netns:
		r.ns, err = r.sys.nsOpen(r.name)
		return err
	case errors.Is(err, fs.ErrNotExist), r.halfMade(err):
		if err == nil || !errors.Is(err, fs.ErrNotExist) {
			if err := r.act("remove the namespace a crashed up left half-made", func() error { return r.sys.nsDelete(r.name) }); err != nil {
				return err
			}
		}
		if r.st.Netns != (nsmgr.ID{}) {
			if errors.Is(err, fs.ErrNotExist) && r.sys.holderAlive(r.st) {
				// Its file was removed (ip netns del), but the namespace lives on, held by the
				// tunnel's live holder: its device, its published ports and the programs inside
				// are all there. A new one here would be a second tunnel of that name.
				return r.reattach()
			}
			// The namespace wgns made is gone: anything still inside it stays cut off, and a new one
			// takes its place.
			r.st.Ready = false
		}
		return r.act("create network namespace "+nsmgr.Path(r.name), func() error {
			ns, err := r.sys.nsCreate(r.name)
			if err != nil {
				return err
			}
			r.ns, r.nsCreated = ns, true
			r.st.Netns = ns.id()
			return r.sys.writeState(r.st)
		})
	case err == nil:
		return fmt.Errorf("%s is not the namespace wgns made for %q; refusing to touch it", nsmgr.Path(r.name), r.name)
	default:
		return err
	}
}

// reattach names again (/run/netns/NAME) the namespace the live holder holds open, after its
// file was removed. It refuses when the holder holds no descriptor of it (a holder of an older
// wgns): the namespace then cannot be reached by name again, and a new one would run beside it.
func (r *reconciler) reattach() error {
	ns, err := r.sys.nsHeld(r.st.PID, r.st.Netns)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%s was removed while the holder of tunnel %q (process %d) still runs, holding the namespace where nothing can reach it; `wgns down %s`, then bring it up again",
			nsmgr.Path(r.name), r.name, r.st.PID, r.name)
	}
	if err != nil {
		return err
	}
	r.ns = ns
	return r.act(fmt.Sprintf("put back %s: the tunnel's namespace, which its holder (process %d) still holds", nsmgr.Path(r.name), r.st.PID),
		func() error { return r.sys.nsAttach(r.name, ns) })
}

func (r *reconciler) firewall() error {
	if err := r.step(StepFirewall); err != nil {
		return err
	}
	rules := firewallRules(r.ifname, r.cfg)
	if r.primary != nil {
		rules.Primary, rules.Keep = r.primary.Interface, r.primary.Keep
	}
	install := "install firewall table inet " + firewall.TableName + " (" + describeRules(rules) + ")"
	if r.ns == nil { // dry run of a namespace yet to be made
		if r.cfg.Namespace.Firewall {
			r.act(install, nil)
		}
		return nil
	}
	var fs firewall.State
	if !r.nsCreated { // a namespace made by this run has no table yet
		var err error
		if fs, err = r.ns.firewallState(rules); err != nil {
			return fmt.Errorf("namespace %q: %w", r.name, err)
		}
	}
	var err error
	switch {
	case r.cfg.Namespace.Firewall && !fs.Present:
		err = r.act(install, func() error { return r.ns.firewallInstall(rules, r.nsCreated) })
	case r.cfg.Namespace.Firewall && !fs.Matches:
		err = r.act("reinstall the altered firewall table inet "+firewall.TableName, func() error { return r.ns.firewallInstall(rules, false) })
	case !r.cfg.Namespace.Firewall && fs.Present:
		err = r.act("remove firewall table inet "+firewall.TableName+" (Firewall = off)", r.ns.firewallRemove)
	}
	if err != nil {
		return fmt.Errorf("namespace %q: %w", r.name, err)
	}
	if !r.cfg.Namespace.Firewall && r.warn != nil && !r.dryRun {
		r.warn(fmt.Sprintf("%s: Firewall = off: nothing stops traffic on an interface added to namespace %q later", r.cfg.Path, r.name))
	}
	return nil
}

// link reports the tunnel interface inside the namespace.
func (r *reconciler) link() (linkState, bool) {
	if r.ns == nil {
		return linkState{}, false
	}
	return r.ns.link(r.ifname)
}

func (r *reconciler) iface() error {
	if err := r.step(StepInterface); err != nil {
		return err
	}
	if _, ok := r.link(); ok {
		switch {
		case r.st.Mode != ModeUserspace:
			return nil // a kernel interface needs no process: configure it as it is
		case r.dev == nil && r.sys.holderAlive(r.st):
			return nil // the live holder's
		case r.dev == nil:
			return fmt.Errorf("interface %q in namespace %q has no live holder", r.ifname, r.name)
		}
		// This process is to hold the device, so the TUN there is a dead holder's, still being
		// torn down by the kernel as that process exits: wait for it to go.
		deadline := time.Now().Add(holderExitWait)
		for _, ok := r.link(); ok; _, ok = r.link() {
			if time.Now().After(deadline) {
				return fmt.Errorf("interface %q in namespace %q belongs to no live wgns holder and does not go away", r.ifname, r.name)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	if r.dev == nil && r.st.Mode == ModeUserspace && r.sys.holderAlive(r.st) {
		// The holder's device stopped and the holder is making it again (it waits for this
		// run's lock): starting another holder would fight it.
		r.holderBusy = true
		r.act(fmt.Sprintf("leave interface %s to its holder (process %d), which recreates it", r.ifname, r.st.PID), nil)
		return nil
	}
	if r.dev == nil {
		r.needHolder = true
		r.st.Ready = false
		r.act("start the embedded WireGuard for "+r.name+" (its holder process is gone)", nil)
		return nil
	}
	// Endpoints are resolved, and the uplink MTU found, in the host namespace before anything
	// is made (a dry run resolves nothing: its MTU is that of the default route).
	if !r.dryRun {
		if err := r.resolve(); err != nil {
			return err
		}
	}
	mtu := r.cfg.EffectiveMTU(r.sys.uplinkMTU(r.endpoints))
	if kind := r.sys.hostLink(r.name); kind != "" {
		// Left in the host namespace by a crash between creating and moving it (kernel links
		// outlive their creator); anything else of that name is not ours.
		if r.st.Step != StepInterface || (kind != "wireguard" && kind != "tuntap") {
			return fmt.Errorf("creating interface %q: an interface of that name already exists in the host namespace, and wgns did not make it", r.ifname)
		}
		if err := r.act("remove interface "+r.ifname+" left in the host namespace by a crashed up", func() error { return r.sys.hostLinkDel(r.name) }); err != nil {
			return fmt.Errorf("removing interface %q from the host namespace: %w", r.ifname, err)
		}
	}
	r.st.Ready = false
	where := "in the host namespace and move it into " + r.nsPath()
	if r.dev.mode() == ModeUserspace {
		where = "inside " + r.nsPath()
	}
	return r.act(fmt.Sprintf("create WireGuard interface %s (%s, MTU %d) %s", r.ifname, r.dev.mode(), mtu, where), func() error {
		r.sys.clearReady(r.name)
		if err := r.sys.removeStaleUAPI(r.name); err != nil {
			return err
		}
		if err := r.dev.create(r.ifname, mtu, r.ns); err != nil {
			if errors.Is(err, ErrNoKernelWireGuard) {
				return fmt.Errorf("creating interface %q: %w (use --userspace)", r.ifname, err)
			}
			return fmt.Errorf("creating interface %q: %w", r.ifname, err)
		}
		r.created = true
		return nil
	})
}

func (r *reconciler) addresses() error {
	if err := r.step(StepAddresses); err != nil {
		return err
	}
	l, ok := r.link()
	if !ok {
		if !r.dryRun {
			return fmt.Errorf("interface %q vanished from namespace %q", r.ifname, r.name)
		}
		// A dry run of an interface yet to be made: what the run would do to a new one.
		loDown := r.ns == nil // a namespace yet to be made has lo down
		if !loDown {
			lo, ok := r.ns.link("lo")
			loDown = ok && !lo.up
		}
		if loDown {
			r.act("bring lo up in "+r.name, nil)
		}
		for _, p := range r.cfg.Interface.Addresses {
			r.act("add address "+p.String()+" to "+r.ifname, nil)
		}
		r.act("bring interface "+r.ifname+" up", nil)
		return nil
	}
	if lo, ok := r.ns.link("lo"); ok && !lo.up {
		if err := r.act("bring lo up in "+r.name, func() error { return r.ns.linkUp("lo") }); err != nil {
			return fmt.Errorf("bringing lo up in namespace %q: %w", r.name, err)
		}
	}
	present, err := r.ns.addrs(r.ifname)
	if err != nil {
		return fmt.Errorf("listing addresses of interface %q: %w", r.ifname, err)
	}
	for _, p := range present {
		if !slices.Contains(r.cfg.Interface.Addresses, p) && !p.Addr().IsLinkLocalUnicast() {
			if err := r.act("remove address "+p.String()+" from "+r.ifname+" (not in the config)", func() error { return r.ns.addrDel(r.ifname, p) }); err != nil {
				return fmt.Errorf("removing address %s from interface %q: %w", p, r.ifname, err)
			}
		}
	}
	for _, p := range r.cfg.Interface.Addresses {
		if slices.Contains(present, p) {
			continue
		}
		if err := r.act("add address "+p.String()+" to "+r.ifname, func() error { return r.ns.addrAdd(r.ifname, p) }); err != nil {
			return fmt.Errorf("adding address %s to interface %q: %w", p, r.ifname, err)
		}
	}
	if !l.up {
		if err := r.act("bring interface "+r.ifname+" up", func() error { return r.ns.linkUp(r.ifname) }); err != nil {
			return fmt.Errorf("bringing interface %q up: %w", r.ifname, err)
		}
	}
	return nil
}

// routes routes every peer's AllowedIPs via the tunnel in the namespace's main table; 0.0.0.0/0
// and ::/0 become its default routes.
func (r *reconciler) routes() error {
	if err := r.step(StepRoutes); err != nil {
		return err
	}
	if err := r.keptRoutes(); err != nil {
		return err
	}
	var have []netip.Prefix
	if _, ok := r.link(); ok {
		var err error
		if have, err = r.ns.routes(r.ifname); err != nil {
			return fmt.Errorf("listing the routes of namespace %q: %w", r.name, err)
		}
	}
	for _, peer := range r.cfg.Peers {
		for _, p := range peer.AllowedIPs {
			if slices.Contains(have, p) {
				continue
			}
			have = append(have, p) // a prefix two peers share (a failover group) is routed once
			if err := r.act("add route "+p.String()+" via "+r.ifname, func() error { return r.ns.routeAdd(r.ifname, p) }); err != nil {
				return fmt.Errorf("adding route %s via interface %q: %w", p, r.ifname, err)
			}
		}
	}
	return nil
}

// peers gives the device its key, port and peers. A device this run created is known to be
// empty and is configured by its backend; any other is read first through wgctrl and left alone
// when it already matches, so handshakes survive a repair.
func (r *reconciler) peers() error {
	if err := r.step(StepPeers); err != nil {
		return err
	}
	_, exists := r.link()
	why := "new interface"
	r.active = make([]int, len(r.cfg.Groups))
	for g := range r.active {
		r.active[g] = max(activeIn(r.preferred, g), 0)
	}
	if exists && !r.created {
		d, err := r.ns.device(r.ifname)
		if err != nil {
			return err
		}
		for g, pos := range activeOn(r.cfg, d) {
			if pos >= 0 {
				r.active[g] = pos
			}
		}
		why = r.deviceDiffers(d)
	}
	if !exists { // a dry run of an interface yet to be made
		r.act(r.configureLine(why), nil)
		return nil
	}
	if why != "" {
		err := r.act(r.configureLine(why), func() error {
			if err := r.resolve(); err != nil {
				return err
			}
			wc := wireGuardConfig(r.cfg, r.endpoints)
			holdBy(&wc, r.cfg, r.active)
			if r.created {
				if err := r.dev.configure(wc); err != nil {
					return fmt.Errorf("configuring WireGuard interface %q: %w", r.ifname, err)
				}
				return nil
			}
			return r.ns.configure(r.ifname, wc)
		})
		if err != nil {
			return r.portInUse(err)
		}
	}
	if r.created {
		if err := r.dev.start(wireGuardConfig(r.cfg, r.endpoints)); err != nil {
			return r.portInUse(fmt.Errorf("starting WireGuard on %q: %w", r.ifname, err))
		}
	}
	return nil
}

// portInUse says plainly that the config's ListenPort is taken, when that is why err happened
// (wireguard-go and the kernel say "bind: address already in use" in their own words).
func (r *reconciler) portInUse(err error) error {
	if port := r.cfg.Interface.ListenPort; port != 0 && errors.Is(err, unix.EADDRINUSE) {
		return fmt.Errorf("%s: ListenPort %d is already in use on this host (by another tunnel or program): choose another, or leave ListenPort out for a free one", r.cfg.Path, port)
	}
	return err
}

// configureLine is the action of configuring the device, for the reason why: its peers, by
// public key, endpoint and allowed IPs (nothing secret).
func (r *reconciler) configureLine(why string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "configure WireGuard on %s (%s):", r.ifname, why)
	for i, p := range r.cfg.Peers {
		if i > 0 {
			b.WriteString(";")
		}
		ep := p.Endpoint
		if ep == "" {
			ep = "none, it roams"
		}
		if g, _, ok := groupOf(r.cfg, i); ok && len(allowedFor(r.cfg, i, r.active)) == 0 {
			fmt.Fprintf(&b, " peer %s (endpoint %s) standing by in failover group %d", p.PublicKey, ep, g+1)
			continue
		}
		ips := make([]string, len(p.AllowedIPs))
		for j, a := range p.AllowedIPs {
			ips[j] = a.String()
		}
		fmt.Fprintf(&b, " peer %s (endpoint %s) for %s", p.PublicKey, ep, strings.Join(ips, ", "))
	}
	return b.String()
}

// deviceDiffers says how the device differs from the config, or "" when it does not. Peers are
// matched by key, in whatever order the device lists them; the AllowedIPs of a failover group
// may be held by any one of its peers (the others hold none).
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
	byKey := map[wgtypes.Key]wgtypes.Peer{}
	for _, p := range d.Peers {
		byKey[p.PublicKey] = p
	}
	active := activeOn(r.cfg, d)
	for i, want := range r.cfg.Peers {
		got, ok := byKey[want.PublicKey]
		if !ok {
			return "peers"
		}
		if g, _, ok := groupOf(r.cfg, i); ok && active[g] < 0 {
			return "allowed IPs"
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
		if !config.SamePrefixes(maskedIPs(got.AllowedIPs), allowedFor(r.cfg, i, active)) {
			return "allowed IPs"
		}
	}
	return ""
}

func (r *reconciler) resolve() error {
	if r.endpoints != nil {
		return nil
	}
	eps, err := r.sys.resolve(r.cfg, r.resolveTimeout)
	if err != nil {
		return err
	}
	r.endpoints = eps
	return nil
}

func (r *reconciler) dns() error {
	if err := r.step(StepDNS); err != nil {
		return err
	}
	view := dnsView(r.cfg)
	ok, err := r.sys.dnsMatches(r.name, view)
	if err != nil {
		return err
	}
	if ok {
		return nil
	}
	return r.act("write the DNS view /etc/netns/"+r.name+"/", func() error { return r.sys.dnsWrite(r.name, view) })
}

func (r *reconciler) ready() error {
	r.sys.checkpoint(string(StepReady))
	if r.st.Ready && r.sys.ready(r.name) == idString(r.st.Netns) {
		return nil
	}
	return r.act("mark "+r.name+" ready", func() error {
		r.st.Step, r.st.Ready = StepReady, true
		if err := r.sys.writeState(r.st); err != nil {
			return err
		}
		return r.sys.setReady(r.name, r.st.Netns)
	})
}

// describeRules says in a few words what the firewall lets through.
func describeRules(r firewall.Rules) string {
	var ps []string
	for _, p := range r.AllowInbound {
		ps = append(ps, fmt.Sprintf("%d/%s", p.Port, p.Proto))
	}
	if r.PortForward {
		ps = append(ps, "the port the provider forwards")
	}
	in := "replies only"
	if len(ps) > 0 {
		in = "replies and " + strings.Join(ps, ", ")
	}
	s := "out: lo and " + r.Tunnel + " only; in: " + in
	if r.Primary != "" {
		keep := make([]string, len(r.Keep))
		for i, p := range r.Keep {
			keep[i] = p.String()
		}
		s += "; on " + r.Primary + ": " + strings.Join(keep, ", ") + " only"
	}
	return s
}

// dnsView is the DNS view cfg asks for.
func dnsView(cfg *config.Config) dnsbind.View {
	return dnsbind.View{Servers: cfg.Interface.DNS, Search: cfg.Interface.Search}
}

func firewallRules(name string, cfg *config.Config) firewall.Rules {
	r := firewall.Rules{Tunnel: name, PortForward: cfg.Namespace.PortForward != nil}
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
