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
	r := &reconciler{name: t.Name, cfg: t.cfg, st: st, sys: t.sys, dev: dev}
	defer r.close()
	err = r.run()
	t.dev, t.state = dev, st
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
	ns, err := t.sys.nsOpen(t.Name)
	if err != nil {
		return nil, err
	}
	defer ns.close()
	dev, err := ns.device(t.Name)
	if err != nil {
		return nil, err
	}
	current := map[wgtypes.Key]wgtypes.Peer{}
	for _, p := range dev.Peers {
		current[p.PublicKey] = p
	}
	var stale []config.Peer
	for _, p := range t.cfg.Peers {
		if _, err := netip.ParseAddr(p.EndpointHost); err == nil || p.EndpointHost == "" {
			continue // an IP literal never changes
		}
		if cur, ok := current[p.PublicKey]; ok && time.Since(cur.LastHandshakeTime) > ReresolveAfter {
			stale = append(stale, p)
		}
	}
	var moved []string
	var update wgtypes.Config
	for _, p := range stale {
		ep, err := t.sys.lookup(ctx, p)
		if err != nil {
			continue // try again next time; the old address stays
		}
		if cur := current[p.PublicKey].Endpoint; cur != nil && cur.String() == ep.String() {
			continue
		}
		update.Peers = append(update.Peers, wgtypes.PeerConfig{PublicKey: p.PublicKey, UpdateOnly: true, Endpoint: ep})
		moved = append(moved, fmt.Sprintf("%s -> %s", p.Endpoint, ep))
	}
	if len(update.Peers) == 0 {
		return nil, nil
	}
	if err := ns.configure(t.Name, update); err != nil {
		return nil, fmt.Errorf("updating the endpoints of tunnel %q: %w", t.Name, err)
	}
	return moved, nil
}
