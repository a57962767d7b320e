package wgns

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	"github.com/wgns/wgns/nsmgr"
	"github.com/wgns/wgns/wgns/config"
)

// ErrAlreadyUp is returned by Up when the tunnel is up and healthy.
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

// Tunnel is a tunnel brought up by this process, which is its holder: it must stay alive while
// the tunnel is up (the embedded WireGuard's device lives in it) and tear down with Down.
type Tunnel struct {
	// Name is the tunnel's name; an attachment's is its namespace's path.
	Name   string
	ifname string      // the interface inside, when it is not Name (an attachment's)
	att    *Attachment // set for an attachment (Attach)
	state  *State
	dev    backend
	cfg    *config.Config
	sys    system

	// pin is the tunnel's namespace, held open for as long as this process holds the tunnel:
	// after an `ip netns del`, repair finds it here and names it again (reconciler.reattach).
	pin netnsView

	lastUplinks string // see UplinkChanged
	active      []int  // the place in each failover group of the peer Failover gave its AllowedIPs to
}

// Mode reports the tunnel's implementation.
func (t *Tunnel) Mode() Mode { return t.dev.mode() }

// Config is the config the tunnel was brought up from, as read then: recovery uses it, not the
// file as it may be now.
func (t *Tunnel) Config() *config.Config { return t.cfg }

// Dead is closed when the embedded WireGuard device stops by itself (nil for kernel tunnels).
func (t *Tunnel) Dead() <-chan struct{} { return t.dev.dead() }

// Down tears the tunnel down from the process that holds it.
func (t *Tunnel) Down() error {
	if t.att != nil {
		return t.detach()
	}
	if t.pin != nil {
		defer t.pin.close() // after teardown: until then the namespace is the tunnel's
	}
	unlock, err := t.sys.lock(t.Name)
	if err != nil {
		t.dev.close()
		return err
	}
	defer unlock()
	if err := teardown(t.sys, t.Name, t.state, t.dev); err != nil {
		return err
	}
	os.Remove(LogPath(t.Name))
	return nil
}

// Up brings a tunnel up in the order that leaves no window: namespace, firewall, interface
// (created in the host namespace and moved in, or for the embedded WireGuard made inside),
// addresses, routes, peers, up, DNS files, ready marker. It must run in the host namespace; the
// calling process becomes the tunnel's holder (it holds the embedded WireGuard's device, and is
// recorded as the process that supervises the tunnel). A tunnel that is up and healthy is refused
// with ErrAlreadyUp; the leftovers of an up that crashed (or of a holder that died) are taken
// over and completed. When an up that started from nothing fails, everything it made is torn
// down.
func Up(opts UpOptions) (*Tunnel, error) { return up(hostSystem{}, opts) }

func up(sys system, opts UpOptions) (_ *Tunnel, err error) {
	name, cfg := opts.Name, opts.Config
	if err := nsmgr.ValidateName(name); err != nil {
		return nil, err
	}
	mode := opts.Mode.OrDefault()
	dev := sys.backend(mode)
	unlock, err := sys.lock(name)
	if err != nil {
		return nil, err
	}
	defer unlock()

	pid, start := sys.self()
	st, err := sys.readState(name)
	fresh := errors.Is(err, fs.ErrNotExist)
	switch {
	case fresh:
		if _, err := sys.nsID(name); !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%s exists but wgns did not make it; refusing to touch it", nsmgr.Path(name))
		}
		st = &State{Name: name}
	case err != nil:
		return nil, err
	case healthy(sys, st):
		return nil, fmt.Errorf("%w (since %s; `wgns down %s` first)", ErrAlreadyUp, st.Since.Format(time.RFC3339), name)
	case st.PID != pid:
		// A holder that is not healthy is usually one that was just killed and is still
		// exiting (its TUN and control socket close one by one as it does): wait until it is gone.
		h, err := sys.holder(st)
		if err != nil {
			return nil, err
		}
		if h != nil {
			left := sys.waitExit([]proc{h}, holderExitWait)
			h.close()
			if len(left) > 0 {
				return nil, fmt.Errorf("process %d holds it but it is not ready; run `wgns repair %s`", st.PID, name)
			}
		}
	}
	st.Mode, st.Config, st.Since = mode, cfg.Path, now().UTC()
	st.Users = grants(cfg)
	st.PID, st.Start = pid, start
	if fresh {
		st.Step = StepNamespace
	}
	if err := sys.writeState(st); err != nil {
		return nil, err
	}
	r := &reconciler{name: name, cfg: cfg, st: st, sys: sys, dev: dev, warn: opts.Warn, resolveTimeout: opts.ResolveTimeout}
	defer r.close()
	if fresh {
		// Resolve before making anything: an unresolvable endpoint changes nothing.
		if err := r.resolve(); err != nil {
			sys.removeState(name)
			return nil, err
		}
	}
	if err := r.run(); err != nil {
		if fresh {
			if terr := teardown(sys, name, st, dev); terr != nil {
				err = fmt.Errorf("%w (and undoing it: %v)", err, terr)
			}
		} else if r.created {
			dev.close()
		}
		return nil, err
	}
	if err := dev.watch(name, r.ns); err != nil {
		return nil, err
	}
	// The tunnel keeps the reconciler's handle of its namespace (Tunnel.pin): no second open,
	// and so no failure here after the tunnel is made.
	pin := r.ns
	r.ns = nil
	if len(cfg.Interface.DNS) == 0 && opts.Warn != nil {
		opts.Warn(fmt.Sprintf("%s: no DNS in [Interface]: programs in %q will have no resolver (the host's is never used)", cfg.Path, name))
	}
	return &Tunnel{Name: name, state: st, dev: dev, cfg: cfg, sys: sys, pin: pin}, nil
}

// now is the clock of the records (time.Now; fixed in tests).
var now = time.Now

// holderExitWait bounds how long up waits for a dying holder, and for its device, to be gone.
const holderExitWait = 3 * time.Second

// healthy reports whether the tunnel is ready and whole: its namespace is the one wgns made, the
// interface is in it, and its supervisor runs.
func healthy(sys system, st *State) bool {
	// Every tunnel has a supervisor; without it an embedded device is gone, and a kernel one
	// works on unwatched (a new up takes it over).
	if !st.Ready || !sys.holderAlive(st) {
		return false
	}
	if id, err := sys.nsID(st.Name); err != nil || id != st.Netns {
		return false
	}
	ns, err := sys.nsOpen(st.Name)
	if err != nil {
		return false
	}
	defer ns.close()
	_, ok := ns.link(st.Name)
	return ok
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
// It reads the config file again: repair is how an admin applies a changed config.
func Repair(name string, dryRun bool) (*RepairResult, error) {
	return repair(hostSystem{}, name, dryRun)
}

func repair(sys system, name string, dryRun bool) (*RepairResult, error) {
	if err := nsmgr.ValidateName(name); err != nil {
		return nil, err
	}
	unlock, err := sys.lock(name)
	if err != nil {
		return nil, err
	}
	defer unlock()
	res := &RepairResult{Name: name}
	st, err := sys.readState(name)
	if errors.Is(err, fs.ErrNotExist) {
		if err := sys.removeStaleUAPI(name); err != nil {
			return nil, err
		}
		return res, nil
	}
	if err != nil {
		return nil, err
	}
	cfg, err := sys.loadConfig(st.Config)
	if err != nil {
		return nil, err
	}
	return res, repairWith(sys, res, st, cfg, dryRun)
}

// repairWith runs the reconciler over st with cfg, filling res.
func repairWith(sys system, res *RepairResult, st *State, cfg *config.Config, dryRun bool) error {
	var dev backend
	if st.Mode == ModeKernel {
		dev = sys.backend(ModeKernel)
	}
	r := &reconciler{name: st.Name, cfg: cfg, st: st, sys: sys, dev: dev, dryRun: dryRun}
	defer r.close()
	err := r.run()
	res.Actions, res.NeedHolder = r.actions, r.needHolder
	return err
}

// teardown removes everything up made for name, whatever step it reached. The caller holds the
// lock. dev is the device this process holds, or nil.
func teardown(sys system, name string, st *State, dev backend) error {
	var errs []error
	sys.clearReady(name)
	if dev != nil {
		dev.close()
	}
	if err := sys.dnsRemove(name); err != nil {
		errs = append(errs, err)
	}
	if err := deleteKernelInterface(sys, name, st); err != nil {
		errs = append(errs, err)
	}
	if err := deleteOwnNamespace(sys, name, st); err != nil {
		errs = append(errs, err)
	}
	// An interface still in the host namespace (created, not yet moved) goes too, but only a
	// WireGuard or TUN one: a host interface of the same name is not ours.
	if kind := sys.hostLink(name); st != nil && st.Step == StepInterface && (kind == "wireguard" || kind == "tuntap") {
		if err := sys.hostLinkDel(name); err != nil {
			errs = append(errs, fmt.Errorf("deleting interface %q from the host namespace: %w", name, err))
		}
	}
	if err := sys.removeStaleUAPI(name); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	// The holder's log stays: after a failed up, `wgns up` reads the reason from it (and then
	// removes it); down removes it.
	return sys.removeState(name)
}

// deleteKernelInterface deletes the kernel WireGuard interface in the namespace recorded in st
// before the namespace goes: its UDP socket lives in the host namespace, and would go on sending
// (keepalives, handshakes) to the peers for as long as anything still holds the namespace (a
// process that outlived down, a descriptor open somewhere), though no file names it any more.
// The embedded WireGuard's interface goes with its process.
func deleteKernelInterface(sys system, name string, st *State) error {
	if st == nil || st.Netns == (nsmgr.ID{}) {
		return nil
	}
	if id, err := sys.nsID(name); err != nil || id != st.Netns {
		return nil // not ours, or gone: deleteOwnNamespace says which
	}
	ns, err := sys.nsOpen(name)
	if err != nil {
		return nil
	}
	defer ns.close()
	if l, ok := ns.link(name); !ok || l.kind != "wireguard" {
		return nil
	}
	if err := ns.linkDel(name); err != nil {
		return fmt.Errorf("deleting WireGuard interface %q in %s: %w", name, nsmgr.Path(name), err)
	}
	return nil
}

// deleteOwnNamespace deletes /run/netns/name only if it is the namespace recorded in st, or the
// empty one a crashed up was making when it died (see halfMadeNamespace).
func deleteOwnNamespace(sys system, name string, st *State) error {
	id, err := sys.nsID(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	ours := st != nil && err == nil && st.Netns == id && id != (nsmgr.ID{})
	if !ours && !halfMadeNamespace(sys, name, st, err) {
		return fmt.Errorf("%s is not the namespace wgns made; leaving it alone", nsmgr.Path(name))
	}
	if err := sys.nsDelete(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// halfMadeNamespace reports whether /run/netns/name is what an up that died while creating it
// left: st records that step and no namespace yet, and the file is either not a namespace (the
// bind mount never happened) or an empty one (only lo, no process inside). idErr is what
// sys.nsID(name) returned.
func halfMadeNamespace(sys system, name string, st *State, idErr error) bool {
	if st == nil || st.Netns != (nsmgr.ID{}) || st.Step != StepNamespace || errors.Is(idErr, fs.ErrNotExist) {
		return false
	}
	return idErr != nil || sys.nsEmpty(name)
}
