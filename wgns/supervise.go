package wgns

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/vishvananda/netns"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"github.com/wgns/wgns/nsmgr"
	"github.com/wgns/wgns/wgns/config"
)

// ReresolveAfter is how old a peer's latest handshake must be before its endpoint host name is
// resolved again (wg-quick's reresolve-dns uses the same 135 s: REJECT_AFTER_TIME + 15 s).
var ReresolveAfter = 135 * time.Second

// Recover makes a new embedded WireGuard device for a tunnel this process holds, after the old
// one stopped (its interface was deleted, say), and puts it into the same namespace. The
// namespace and its firewall stay in place throughout, so nothing inside gets a path out
// meanwhile. It reports what it did.
func (t *Tunnel) Recover() ([]string, error) {
	unlock, err := lock(t.Name)
	if err != nil {
		return nil, err
	}
	defer unlock()
	st, err := ReadState(t.Name)
	if err != nil {
		return nil, err
	}
	cfg, err := config.Load(st.Config)
	if err != nil {
		return nil, fmt.Errorf("recovering %q: %w", t.Name, err)
	}
	t.dev.close()
	dev := wgDevice(kernelDevice{})
	if st.Mode == ModeUserspace {
		dev = &userspaceDevice{}
	}
	r := &reconciler{name: t.Name, cfg: cfg, st: st, dev: dev, ns: netns.None()}
	defer r.close()
	err = r.run()
	t.dev, t.state, t.cfg = dev, st, cfg
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
	cfg := t.cfg
	var stale []config.Peer
	ns, err := nsmgr.Open(t.Name)
	if err != nil {
		return nil, err
	}
	defer ns.Close()
	dev, err := readDevice(ns, t.Name)
	if err != nil {
		return nil, err
	}
	current := map[wgtypes.Key]wgtypes.Peer{}
	for _, p := range dev.Peers {
		current[p.PublicKey] = p
	}
	for _, p := range cfg.Peers {
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
		ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", p.EndpointHost)
		if err != nil || len(ips) == 0 {
			continue // try again next time; the old address stays
		}
		pick := ips[0]
		for _, ip := range ips {
			if ip.Unmap().Is4() {
				pick = ip
				break
			}
		}
		ep := net.UDPAddrFromAddrPort(netip.AddrPortFrom(pick.Unmap(), uint16(p.EndpointPort)))
		if cur := current[p.PublicKey].Endpoint; cur != nil && cur.String() == ep.String() {
			continue
		}
		update.Peers = append(update.Peers, wgtypes.PeerConfig{PublicKey: p.PublicKey, UpdateOnly: true, Endpoint: ep})
		moved = append(moved, fmt.Sprintf("%s -> %s", p.Endpoint, ep))
	}
	if len(update.Peers) == 0 {
		return nil, nil
	}
	if err := configureDevice(ns, t.Name, update); err != nil {
		return nil, fmt.Errorf("updating endpoints of %q: %w", t.Name, err)
	}
	return moved, nil
}
