package wgns

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"github.com/wgns/wgns/wgns/config"
)

// ReresolveAfter is how old a peer's latest handshake must be before its endpoint host name is
// resolved again (wg-quick's reresolve-dns uses the same 135 s: REJECT_AFTER_TIME + 15 s).
var ReresolveAfter = 135 * time.Second

// Recover makes a new WireGuard device for a tunnel this process holds, after the old one
// stopped (its interface was deleted, say), and puts it into the same namespace, configured
// from the config the tunnel was brought up from (not the file as it may be now: a user who
// could change that file must not change a running tunnel). The namespace and its firewall stay
// in place throughout, so nothing inside gets a path out meanwhile. It reports what it did.
func (t *Tunnel) Recover() ([]string, error) {
	unlock, err := t.sys.lock(t.Name)
	if err != nil {
		return nil, err
	}
	defer unlock()
	st, err := t.sys.readState(t.Name)
	if err != nil {
		return nil, err
	}
	t.dev.close()
	dev := t.sys.backend(st.Mode)
	r := t.newReconciler(st, dev)
	r.preferred = t.active
	defer r.close()
	err = r.run()
	t.dev, t.state = dev, st
	if err == nil {
		err = dev.watch(t.iface(), r.ns)
	}
	return r.actions, err
}

// NamedEndpoints reports whether any peer's endpoint is a host name, which Reresolve may move.
func (t *Tunnel) NamedEndpoints() bool {
	for _, p := range t.cfg.Peers {
		if _, err := netip.ParseAddr(p.EndpointHost); err != nil && p.EndpointHost != "" {
			return true
		}
	}
	return false
}

// Reresolve resolves again, in the host namespace, the endpoint host names of peers whose latest
// handshake is older than ReresolveAfter, and points those peers at the new address when it
// changed. It reports the peers it moved.
func (t *Tunnel) Reresolve(ctx context.Context) ([]string, error) {
	var moved []string
	err := t.withDevice(func(ns netnsView, dev *wgtypes.Device) error {
		current := map[wgtypes.Key]wgtypes.Peer{}
		for _, p := range dev.Peers {
			current[p.PublicKey] = p
		}
		var update wgtypes.Config
		for _, p := range t.cfg.Peers {
			if _, err := netip.ParseAddr(p.EndpointHost); err == nil || p.EndpointHost == "" {
				continue // an IP literal never changes
			}
			cur, ok := current[p.PublicKey]
			if !ok || time.Since(cur.LastHandshakeTime) <= ReresolveAfter {
				continue
			}
			ep, err := t.sys.lookup(ctx, p)
			if err != nil || (cur.Endpoint != nil && cur.Endpoint.String() == ep.String()) {
				continue // unresolvable (try again next time; the old address stays), or unchanged
			}
			update.Peers = append(update.Peers, wgtypes.PeerConfig{PublicKey: p.PublicKey, UpdateOnly: true, Endpoint: ep})
			moved = append(moved, fmt.Sprintf("%s -> %s", p.Endpoint, ep))
		}
		if len(update.Peers) == 0 {
			return nil
		}
		if err := ns.configure(t.iface(), update); err != nil {
			return fmt.Errorf("updating the endpoints of tunnel %q: %w", t.Name, err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return moved, nil
}

// withDevice opens the tunnel's namespace and reads its WireGuard device for fn.
func (t *Tunnel) withDevice(fn func(ns netnsView, dev *wgtypes.Device) error) error {
	ns, err := t.sys.nsOpen(t.Name)
	if err != nil {
		return err
	}
	defer ns.close()
	dev, err := ns.device(t.iface())
	if err != nil {
		return err
	}
	return fn(ns, dev)
}

// peerConfigOf is the configuration that makes a peer again as p is now.
func peerConfigOf(p wgtypes.Peer) wgtypes.PeerConfig {
	pc := wgtypes.PeerConfig{PublicKey: p.PublicKey, Endpoint: p.Endpoint, ReplaceAllowedIPs: true, AllowedIPs: p.AllowedIPs}
	if p.PresharedKey != (wgtypes.Key{}) {
		psk := p.PresharedKey
		pc.PresharedKey = &psk
	}
	ka := p.PersistentKeepaliveInterval
	pc.PersistentKeepaliveInterval = &ka
	return pc
}

// Rebind points every peer at its endpoint afresh after the host's network changed (an address
// gone, an uplink replaced, the default route moved): WireGuard keeps the source address it last
// sent from, which may no longer exist, and setting the endpoint again makes the next packet pick
// its source by the routes as they are now. Host names are resolved again first. It reports what
// it changed.
func (t *Tunnel) Rebind(ctx context.Context) ([]string, error) {
	var done []string
	err := t.withDevice(func(ns netnsView, dev *wgtypes.Device) (err error) {
		done, err = t.rebind(ctx, ns, dev)
		return err
	})
	return done, err
}

func (t *Tunnel) rebind(ctx context.Context, ns netnsView, dev *wgtypes.Device) ([]string, error) {
	var update wgtypes.Config
	var done []string
	for _, p := range dev.Peers {
		ep := p.Endpoint
		if cp, ok := t.configPeer(p.PublicKey); ok && cp.EndpointHost != "" {
			if fresh, err := t.sys.lookup(ctx, cp); err == nil {
				ep = fresh
			}
		}
		if ep == nil {
			continue // a roaming peer: it will find us
		}
		update.Peers = append(update.Peers, wgtypes.PeerConfig{PublicKey: p.PublicKey, UpdateOnly: true, Endpoint: ep})
		done = append(done, "endpoint "+ep.String())
	}
	if len(update.Peers) == 0 {
		return nil, nil
	}
	if err := ns.configure(t.iface(), update); err != nil {
		return nil, fmt.Errorf("setting the endpoints of tunnel %q again: %w", t.Name, err)
	}
	return done, nil
}

// Rehandshake makes the tunnel start new sessions with its peers at once, after their endpoints
// were set afresh (as Rebind does): after a resume from sleep the peers have dropped the old
// sessions, which this side may still think valid (the embedded WireGuard's timers do not count
// the time asleep), and would otherwise send into the void until its timers ran out.
func (t *Tunnel) Rehandshake(ctx context.Context) ([]string, error) {
	var done []string
	err := t.withDevice(func(ns netnsView, dev *wgtypes.Device) (err error) {
		if done, err = t.rebind(ctx, ns, dev); err != nil {
			return err
		}
		if dev, err = ns.device(t.iface()); err != nil { // as rebind left it
			return err
		}
		if err := t.dev.rehandshake(ns, dev.Peers); err != nil {
			return fmt.Errorf("starting new sessions on tunnel %q: %w", t.Name, err)
		}
		for _, p := range dev.Peers {
			done = append(done, "new handshake with "+p.PublicKey.String())
		}
		return nil
	})
	return done, err
}

// configPeer is the config's peer with key k.
func (t *Tunnel) configPeer(k wgtypes.Key) (config.Peer, bool) {
	for _, p := range t.cfg.Peers {
		if p.PublicKey == k {
			return p, true
		}
	}
	return config.Peer{}, false
}
