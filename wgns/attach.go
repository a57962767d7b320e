package wgns

import (
	"errors"
	"fmt"
	"io/fs"
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

// An attachment is a tunnel in a namespace that wgns did not make: a container's, handed over by
// a CNI runtime. It is made by the same reconciler as a tunnel of `wgns up`, in the same order
// (firewall before the interface arrives, then addresses, routes, peers), with three differences:
// the namespace is adopted (recorded at the first step, never created or deleted: Detach removes
// only what Attach made), the interface has a name of its own (a pod's wg0; a kernel one is
// made under the attachment's unique HostName and renamed once inside), and there is no DNS view
// to write (the runtime writes the container's resolv.conf from the CNI result).

// ErrAlreadyAttached is returned by Attach when the attachment exists and is whole.
var ErrAlreadyAttached = errors.New("already attached")

// ErrNotAttached is returned by CheckAttachment when wgns has no record of the attachment.
var ErrNotAttached = errors.New("not attached")

// AttachOptions says what Attach makes.
type AttachOptions struct {
	Key AttachKey
	// Netns is the path of the namespace (CNI_NETNS).
	Netns string
	// Interface is the WireGuard interface's name inside it.
	Interface string
	Config    *config.Config
	// Mode forces an implementation; "" picks kernel WireGuard when the kernel has it.
	Mode Mode
	// Primary is set when the namespace has an interface of another network whose kept prefixes
	// stay on it: the one a plugin before wgns made in a chain, or the pod's own beside a
	// secondary network; without Gateways, those of its default routes are taken.
	Primary *Primary
	// Warn receives warnings; nil discards them.
	Warn func(string)
	// ResolveTimeout bounds the resolution of endpoint host names (default 10s).
	ResolveTimeout time.Duration
}

// Attach makes the tunnel o describes inside the namespace at o.Netns. It must run in the host
// namespace. With the embedded WireGuard, the calling process holds the device (and is recorded
// as the attachment's holder) and must stay alive until Down; with kernel WireGuard, nothing
// needs to run once Attach returns. A failed Attach leaves nothing of what it made.
func Attach(o AttachOptions) (*Tunnel, error) { return attach(hostSystem{}, o) }

// Detach removes what Attach made for key: the holder process, the interface and the routes and
// firewall table it added inside the namespace (only while the namespace at netns, or at the path
// recorded when netns is "", is still the one attached to), its leftovers on the host, and the
// record. The namespace itself is never deleted. Detaching what is not attached does nothing.
func Detach(key AttachKey, netns string) error { return detach(hostSystem{}, key, netns) }

// CheckAttachment reports whether the attachment for key is as Attach made it from cfg: nil when
// it is, else an error that lists every difference (what a repair would do). netns must be the
// namespace it was made in.
func CheckAttachment(key AttachKey, netns string, cfg *config.Config) error {
	return checkAttachment(hostSystem{}, key, netns, cfg)
}

// GCAttachments detaches every attachment of network whose key is not in valid (the CNI GC
// command): what a runtime that crashed, or lost track, left behind. It tries them all and
// returns every error.
func GCAttachments(network string, valid []AttachKey) error {
	return gcAttachments(hostSystem{}, network, valid)
}

// validateAttach refuses options that cannot make a sound attachment, before anything is touched.
func validateAttach(o *AttachOptions) error {
	if err := nsmgr.ValidateName(o.Interface); err != nil {
		return fmt.Errorf("WireGuard interface name: %w", err)
	}
	if o.Netns == "" {
		return errors.New("no network namespace to attach to")
	}
	p := o.Primary
	if p == nil {
		return nil
	}
	if p.Interface == o.Interface {
		return fmt.Errorf("the WireGuard interface %q has the name of the primary interface; give it another", o.Interface)
	}
	for _, k := range p.Keep {
		if k.Bits() == 0 {
			return fmt.Errorf("kept prefix %s would keep everything off the tunnel", k)
		}
		for _, peer := range o.Config.Peers {
			if slices.Contains(peer.AllowedIPs, k) {
				return fmt.Errorf("kept prefix %s is also in the AllowedIPs of %s:%d: a prefix either stays on %s or goes through the tunnel",
					k, o.Config.Path, peer.Line, p.Interface)
			}
		}
	}
	return nil
}

func attach(sys system, o AttachOptions) (_ *Tunnel, err error) {
	if err := validateAttach(&o); err != nil {
		return nil, err
	}
	mode := o.Mode.OrDefault()
	id := o.Key.ID()
	unlock, err := sys.lockAttachment(id)
	if err != nil {
		return nil, err
	}
	gone := false
	defer func() { unlock(gone) }()

	if old, err := sys.readAttachment(id); err == nil {
		as := attachSys{system: sys, a: old}
		if old.State.Ready && (old.State.Mode == ModeKernel || sys.holderAlive(&old.State)) {
			return nil, fmt.Errorf("%s: %w (since %s)", o.Key, ErrAlreadyAttached, old.State.Since.Format(time.RFC3339))
		}
		// An ADD that crashed, or whose holder died: what it made goes first.
		if err := as.stopHolder(); err != nil {
			return nil, err
		}
		if err := detachLocked(as, "", nil); err != nil {
			return nil, err
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	if err := checkTarget(sys, &o); err != nil {
		gone = true // nothing was made: the lock file goes too
		return nil, err
	}
	a := &Attachment{Key: o.Key, Netns: o.Netns, Interface: o.Interface, HostName: hostName(id), Primary: o.Primary}
	a.State = State{Name: o.Netns, Mode: mode, Config: o.Config.Path, Step: StepNamespace, Since: now().UTC()}
	if mode == ModeUserspace {
		a.State.PID, a.State.Start = sys.self()
	}
	as := attachSys{system: sys, a: a}
	if err := sys.writeAttachment(a); err != nil {
		gone = true // nothing was made, nor recorded
		return nil, err
	}
	dev := as.backend(mode)
	r := &reconciler{name: o.Netns, ifname: o.Interface, adopt: true, primary: o.Primary, cfg: o.Config, st: &a.State,
		sys: as, dev: dev, warn: o.Warn, resolveTimeout: o.ResolveTimeout}
	defer r.close()
	// Resolve before making anything: an unresolvable endpoint changes nothing.
	err = r.resolve()
	if err == nil {
		err = r.run()
	}
	if err != nil {
		if derr := detachLocked(as, "", dev); derr != nil {
			return nil, fmt.Errorf("%w (and undoing it: %v)", err, derr)
		}
		gone = true
		return nil, err
	}
	return &Tunnel{Name: o.Netns, ifname: o.Interface, att: a, state: &a.State, dev: dev, cfg: o.Config, sys: as}, nil
}

// checkTarget refuses a namespace Attach must not act in: the host's own (its firewall would
// cut the host off), one that already has an interface of the WireGuard interface's name (CNI
// wants an error), one without the primary interface a chain promised, one with a wgns table
// already (one attachment per namespace: two tables would each drop the other's tunnel).
func checkTarget(sys system, o *AttachOptions) error {
	ns, err := sys.nsOpenPath(o.Netns)
	if err != nil {
		return err
	}
	defer ns.close()
	self, err := sys.selfNS()
	if err != nil {
		return err
	}
	if ns.id() == self {
		return fmt.Errorf("%s is the host's own network namespace (the one wgns runs in); refusing to confine it", o.Netns)
	}
	if _, ok := ns.link(o.Interface); ok {
		return fmt.Errorf("an interface %q already exists in %s", o.Interface, o.Netns)
	}
	if o.Primary != nil {
		if _, ok := ns.link(o.Primary.Interface); !ok {
			return fmt.Errorf("the primary interface %q is not in %s (the plugin before wgns should have made it)", o.Primary.Interface, o.Netns)
		}
		if len(o.Primary.Gateways) == 0 {
			// Not chained (a secondary network beside the pod's own, as Multus attaches it): the
			// kept prefixes go where the primary's default routes went.
			gws, err := ns.gateways(o.Primary.Interface)
			if err != nil {
				return fmt.Errorf("reading the default routes via %q in %s: %w", o.Primary.Interface, o.Netns, err)
			}
			p := *o.Primary
			p.Gateways = gws
			o.Primary = &p
		}
	}
	fs, err := ns.firewallState(firewall.Rules{Tunnel: o.Interface})
	if err != nil {
		return fmt.Errorf("%s: %w", o.Netns, err)
	}
	if fs.Present {
		return fmt.Errorf("%s already has a table inet %s (another wgns attachment?): one wgns attachment per namespace", o.Netns, firewall.TableName)
	}
	return nil
}

func detach(sys system, key AttachKey, netns string) error {
	id := key.ID()
	unlock, err := sys.lockAttachment(id)
	if err != nil {
		return err
	}
	gone := false
	defer func() { unlock(gone) }()
	a, err := sys.readAttachment(id)
	if errors.Is(err, fs.ErrNotExist) {
		// Nothing was recorded, so nothing was made (the record comes first); a runtime may
		// delete what it never added, or delete twice.
		gone = true
		return nil
	}
	if err != nil {
		return err
	}
	as := attachSys{system: sys, a: a}
	if pid, _ := sys.self(); a.State.Mode == ModeUserspace && a.State.PID != pid && sys.holderAlive(&a.State) {
		// The holder detaches itself on SIGTERM, under this lock: let go of it meanwhile.
		h, err := sys.holder(&a.State)
		if err != nil {
			return err
		}
		if h != nil {
			unlock(false)
			serr := h.signal(unix.SIGTERM)
			if serr == nil {
				sys.waitExit([]proc{h}, holderStopWait)
			}
			h.close()
			if unlock, err = sys.lockAttachment(id); err != nil {
				unlock = func(bool) {}
				return err
			}
			if serr != nil {
				return fmt.Errorf("stopping the holder of %s (process %d): %w", key, a.State.PID, serr)
			}
			if a, err = sys.readAttachment(id); errors.Is(err, fs.ErrNotExist) {
				gone = true
				return nil
			} else if err != nil {
				return err
			}
			as = attachSys{system: sys, a: a}
			if sys.holderAlive(&a.State) {
				return fmt.Errorf("the holder of %s, process %d, did not stop in %s", key, a.State.PID, holderStopWait)
			}
		}
	}
	if err := detachLocked(as, netns, nil); err != nil {
		return err
	}
	gone = true
	return nil
}

// stopHolder ends the attachment's holder, if another process holds it, without waiting for it
// to detach (its record is about to be replaced). The caller holds the lock.
func (s attachSys) stopHolder() error {
	if pid, _ := s.system.self(); s.a.State.PID == pid || !s.system.holderAlive(&s.a.State) {
		return nil
	}
	h, err := s.system.holder(&s.a.State)
	if err != nil || h == nil {
		return err
	}
	defer h.close()
	if err := h.signal(unix.SIGKILL); err != nil {
		return fmt.Errorf("stopping the holder of %s (process %d): %w", s.a.Key, s.a.State.PID, err)
	}
	if left := s.system.waitExit([]proc{h}, holderExitWait); len(left) > 0 {
		return fmt.Errorf("the holder of %s, process %d, did not end in %s", s.a.Key, s.a.State.PID, holderExitWait)
	}
	return nil
}

// detachLocked removes what the attachment's record says was made, newest first: the device
// (dev, held by this process, or the interface inside the namespace), the kept routes, the
// firewall table last, so that nothing passes in between; then what may be left on the host
// (a kernel interface not yet moved, a stale control socket) and the record. Inside, it acts
// only while the namespace at netns (or at the recorded path) is still the one attached to; a
// namespace that is gone took everything inside with it. The caller holds the lock.
func detachLocked(s attachSys, netns string, dev backend) error {
	a, sys := s.a, s.system
	var errs []error
	if dev != nil {
		dev.close()
	}
	if netns == "" {
		netns = a.Netns
	}
	if a.State.Netns != (nsmgr.ID{}) {
		if ns, err := sys.nsOpenPath(netns); err == nil {
			if ns.id() == a.State.Netns {
				errs = append(errs, removeInside(ns, a)...)
			}
			ns.close()
		}
	}
	if kind := sys.hostLink(a.HostName); kind == "wireguard" || kind == "tuntap" {
		if err := sys.hostLinkDel(a.HostName); err != nil {
			errs = append(errs, fmt.Errorf("deleting interface %q from the host namespace: %w", a.HostName, err))
		}
	}
	if err := sys.removeStaleUAPI(a.HostName); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return errors.Join(errs...) // the record stays: another DEL tries again
	}
	return sys.removeAttachment(a.Key.ID())
}

// removeInside removes from ns what the attachment made there, per the step its record reached.
func removeInside(ns netnsView, a *Attachment) []error {
	var errs []error
	where := a.Netns
	if a.State.Step != StepNamespace && a.State.Step != StepFirewall {
		// The interface, under its name or (a kernel one moved but not yet renamed) the host's.
		for _, name := range []string{a.Interface, a.HostName} {
			if l, ok := ns.link(name); ok && (l.kind == "wireguard" || l.kind == "tuntap") {
				if err := ns.linkDel(name); err != nil {
					errs = append(errs, fmt.Errorf("deleting interface %q in %s: %w", name, where, err))
				}
			}
		}
	}
	if p := a.Primary; p != nil && len(a.Kept) > 0 {
		have, err := ns.routes(p.Interface)
		if err == nil {
			for _, k := range a.Kept {
				if !slices.Contains(have, k) {
					continue
				}
				if err := ns.routeDel(p.Interface, k); err != nil {
					errs = append(errs, fmt.Errorf("removing route %s via interface %q in %s: %w", k, p.Interface, where, err))
				}
			}
		}
	}
	if p := a.Primary; p != nil {
		for _, r := range a.Replaced {
			if err := ns.routeVia(p.Interface, r, p.gateway(r)); err != nil {
				errs = append(errs, fmt.Errorf("restoring route %s via interface %q in %s: %w", r, p.Interface, where, err))
			}
		}
	}
	if a.State.Step != StepNamespace {
		if err := ns.firewallRemove(); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", where, err))
		}
	}
	return errs
}

// stepReached reports whether step is s or later (ready counts as every step).
func stepReached(step, s Step) bool {
	order := []Step{StepNamespace, StepFirewall, StepInterface, StepAddresses, StepRoutes, StepPeers, StepDNS, StepReady}
	return slices.Index(order, step) >= slices.Index(order, s)
}

func checkAttachment(sys system, key AttachKey, netns string, cfg *config.Config) error {
	id := key.ID()
	unlock, err := sys.lockAttachment(id)
	if err != nil {
		return err
	}
	defer unlock(false)
	a, err := sys.readAttachment(id)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%s: %w", key, ErrNotAttached)
	}
	if err != nil {
		return err
	}
	if netns != "" && netns != a.Netns {
		// Another path may name the same namespace: the reconciler compares by ID.
		a.Netns, a.State.Name = netns, netns
	}
	if !a.State.Ready {
		return fmt.Errorf("%s is not ready (its ADD did not finish)", key)
	}
	var dev backend
	if a.State.Mode == ModeKernel {
		dev = sys.attachBackend(ModeKernel, a.HostName)
	} else if !sys.holderAlive(&a.State) {
		return fmt.Errorf("%s: its holder, process %d, is gone", key, a.State.PID)
	}
	r := &reconciler{name: a.Netns, ifname: a.Interface, adopt: true, primary: a.Primary, cfg: cfg, st: &a.State,
		sys: attachSys{system: sys, a: a}, dev: dev, dryRun: true}
	defer r.close()
	if err := r.run(); err != nil {
		return err
	}
	if len(r.actions) > 0 {
		return fmt.Errorf("%s differs from its config; a repair would: %s", key, strings.Join(r.actions, "; "))
	}
	return nil
}

func gcAttachments(sys system, network string, valid []AttachKey) error {
	all, err := sys.attachments()
	errs := []error{err}
	for _, a := range all {
		if a.Key.Network != network || slices.Contains(valid, a.Key) {
			continue
		}
		if err := detach(sys, a.Key, ""); err != nil {
			errs = append(errs, fmt.Errorf("removing the stale attachment (%s): %w", a.Key, err))
		}
	}
	return errors.Join(errs...)
}

// detach tears down the attachment this process holds (Tunnel.Down).
func (t *Tunnel) detach() error {
	s := t.sys.(attachSys)
	unlock, err := s.system.lockAttachment(t.att.Key.ID())
	if err != nil {
		t.dev.close()
		return err
	}
	err = detachLocked(s, "", t.dev)
	unlock(err == nil)
	return err
}

// iface is the tunnel's WireGuard interface inside its namespace.
func (t *Tunnel) iface() string {
	if t.ifname != "" {
		return t.ifname
	}
	return t.Name
}

// newReconciler returns a reconciler for the tunnel (or attachment) t holds.
func (t *Tunnel) newReconciler(st *State, dev backend) *reconciler {
	r := &reconciler{name: t.Name, cfg: t.cfg, st: st, sys: t.sys, dev: dev}
	if t.att != nil {
		r.ifname, r.adopt, r.primary = t.att.Interface, true, t.att.Primary
	}
	return r
}

// nsPath is where the tunnel's namespace is, for messages.
func (r *reconciler) nsPath() string {
	if r.adopt {
		return r.name
	}
	return nsmgr.Path(r.name)
}

// adoptNamespace opens the namespace an attachment was given. Its ID is recorded the first time;
// after that it must be that namespace (one made anew under the same path is not the one
// attached to).
func (r *reconciler) adoptNamespace() error {
	ns, err := r.sys.nsOpen(r.name)
	if err != nil {
		return err
	}
	switch {
	case r.st.Netns == (nsmgr.ID{}):
		r.st.Netns = ns.id()
		if !r.dryRun {
			if err := r.sys.writeState(r.st); err != nil {
				ns.close()
				return err
			}
		}
	case ns.id() != r.st.Netns:
		ns.close()
		return fmt.Errorf("%s is no longer the namespace it was attached to", r.name)
	}
	r.ns = ns
	return nil
}

// keptRoutes routes a chained attachment's kept prefixes through the primary interface, before
// the tunnel's routes take the rest (they may replace the primary's default route).
func (r *reconciler) keptRoutes() error {
	if r.primary == nil || len(r.primary.Keep) == 0 {
		return nil
	}
	p := r.primary
	have, err := r.ns.routes(p.Interface)
	if err != nil {
		return fmt.Errorf("listing the routes via interface %q in namespace %q: %w", p.Interface, r.name, err)
	}
	for _, k := range p.Keep {
		if slices.Contains(have, k) {
			continue
		}
		gw := p.gateway(k)
		via := "on-link"
		if gw.IsValid() {
			via = "via " + gw.String()
		}
		what := fmt.Sprintf("add route %s %s on %s (kept off the tunnel)", k, via, p.Interface)
		if err := r.act(what, func() error { return r.ns.routeVia(p.Interface, k, gw) }); err != nil {
			return fmt.Errorf("adding route %s %s on interface %q: %w", k, via, p.Interface, err)
		}
	}
	return nil
}

// attachSys is the system as one attachment's reconciler sees it. "The tunnel's namespace" is
// the container's at a.Netns (the name the reconciler passes is that path, and is not needed):
// opened, never created or deleted. The record is the attachment's. There is no DNS view to
// write (the runtime writes the container's resolv.conf from the CNI result). The host-side
// names of the device are a.HostName, unique to the attachment.
type attachSys struct {
	system
	a *Attachment
}

var _ system = attachSys{}

func (s attachSys) nsID(string) (nsmgr.ID, error) {
	v, err := s.system.nsOpenPath(s.a.Netns)
	if err != nil {
		return nsmgr.ID{}, err
	}
	defer v.close()
	return v.id(), nil
}

func (s attachSys) nsOpen(string) (netnsView, error) {
	v, err := s.system.nsOpenPath(s.a.Netns)
	if err != nil {
		return nil, err
	}
	av := attachView{netnsView: v, iface: s.a.Interface, s: s}
	if s.a.State.Mode == ModeUserspace {
		av.sock = s.a.HostName
	}
	return av, nil
}

func (s attachSys) nsCreate(string) (netnsView, error) {
	return nil, fmt.Errorf("%s: an attachment's namespace is the runtime's; wgns never makes it", s.a.Netns)
}

func (s attachSys) nsHeld(int, nsmgr.ID) (netnsView, error) {
	return nil, fmt.Errorf("%s: an attachment's namespace is the runtime's: %w", s.a.Netns, fs.ErrNotExist)
}

func (s attachSys) nsAttach(string, netnsView) error {
	return fmt.Errorf("%s: an attachment's namespace is the runtime's; wgns never names it", s.a.Netns)
}

func (s attachSys) nsDelete(string) error {
	return fmt.Errorf("%s: an attachment's namespace is the runtime's; wgns never deletes it", s.a.Netns)
}

func (s attachSys) nsEmpty(string) bool                           { return false }
func (s attachSys) hostLink(string) string                        { return s.system.hostLink(s.a.HostName) }
func (s attachSys) hostLinkDel(string) error                      { return s.system.hostLinkDel(s.a.HostName) }
func (s attachSys) backend(m Mode) backend                        { return s.system.attachBackend(m, s.a.HostName) }
func (s attachSys) dnsMatches(string, dnsbind.View) (bool, error) { return true, nil }
func (s attachSys) dnsWrite(string, dnsbind.View) error           { return nil }
func (s attachSys) dnsRemove(string) error                        { return nil }
func (s attachSys) removeStaleUAPI(string) error                  { return s.system.removeStaleUAPI(s.a.HostName) }
func (s attachSys) setReady(string, nsmgr.ID) error               { return nil } // writeState recorded it
func (s attachSys) clearReady(string)                             {}
func (s attachSys) removeLog(string)                              {}

func (s attachSys) readState(string) (*State, error) {
	a, err := s.system.readAttachment(s.a.Key.ID())
	if err != nil {
		return nil, err
	}
	*s.a = *a
	return &s.a.State, nil
}

func (s attachSys) writeState(st *State) error {
	s.a.State = *st
	return s.system.writeAttachment(s.a)
}

func (s attachSys) removeState(string) error { return s.system.removeAttachment(s.a.Key.ID()) }

func (s attachSys) ready(string) string {
	if s.a.State.Ready {
		return idString(s.a.State.Netns)
	}
	return ""
}

func (s attachSys) lock(string) (func(), error) {
	unlock, err := s.system.lockAttachment(s.a.Key.ID())
	if err != nil {
		return nil, err
	}
	return func() { unlock(false) }, nil
}

// attachView is an attachment's namespace. The embedded WireGuard's device answers wgctrl by
// its control socket's name, not by its interface's (every pod's wg0 would claim the same
// socket): device and configure ask for it under that name.
//
// A route of the tunnel that replaces one of the primary interface (its default route,
// typically) is recorded first, so that Detach can put that one back, and so is a route of a kept
// prefix, so that Detach removes it and no route the primary plugin made: DEL undoes what ADD did.
type attachView struct {
	netnsView
	iface string
	sock  string // "" for kernel WireGuard, which wgctrl finds by its interface inside
	s     attachSys
}

func (v attachView) routeVia(name string, p netip.Prefix, gw netip.Addr) error {
	if pr := v.s.a.Primary; pr != nil && name == pr.Interface && !slices.Contains(v.s.a.Kept, p) {
		v.s.a.Kept = append(v.s.a.Kept, p)
		if err := v.s.system.writeAttachment(v.s.a); err != nil {
			return err
		}
	}
	return v.netnsView.routeVia(name, p, gw)
}

func (v attachView) routeAdd(name string, p netip.Prefix) error {
	if pr := v.s.a.Primary; pr != nil && name == v.iface && !slices.Contains(v.s.a.Replaced, p) {
		have, err := v.netnsView.routes(pr.Interface)
		if err != nil {
			return fmt.Errorf("listing the routes via interface %q: %w", pr.Interface, err)
		}
		if slices.Contains(have, p) {
			v.s.a.Replaced = append(v.s.a.Replaced, p)
			if err := v.s.system.writeAttachment(v.s.a); err != nil {
				return err
			}
		}
	}
	return v.netnsView.routeAdd(name, p)
}

func (v attachView) wg(name string) string {
	if v.sock != "" && name == v.iface {
		return v.sock
	}
	return name
}

func (v attachView) device(name string) (*wgtypes.Device, error) {
	return v.netnsView.device(v.wg(name))
}

func (v attachView) configure(name string, c wgtypes.Config) error {
	return v.netnsView.configure(v.wg(name), c)
}
