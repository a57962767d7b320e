package wgns

import (
	"context"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/vishvananda/netlink"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"
)

// WatchNetwork calls changed, from a goroutine of its own, each time the host namespace's
// routes, addresses or links have changed and then stayed quiet for settle, until ctx ends. It
// returns once it is watching. Unrelated changes (another tunnel's interface, say) call it too;
// UplinkChanged tells whether the way to a tunnel's peers is what changed.
func WatchNetwork(ctx context.Context, settle time.Duration, changed func()) error {
	done := make(chan struct{})
	routes := make(chan netlink.RouteUpdate, 256)
	addrs := make(chan netlink.AddrUpdate, 256)
	links := make(chan netlink.LinkUpdate, 256)
	if err := netlink.RouteSubscribeWithOptions(routes, done, netlink.RouteSubscribeOptions{}); err != nil {
		return fmt.Errorf("watching the host's routes: %w", err)
	}
	if err := netlink.AddrSubscribeWithOptions(addrs, done, netlink.AddrSubscribeOptions{}); err != nil {
		close(done)
		return fmt.Errorf("watching the host's addresses: %w", err)
	}
	if err := netlink.LinkSubscribeWithOptions(links, done, netlink.LinkSubscribeOptions{}); err != nil {
		close(done)
		return fmt.Errorf("watching the host's interfaces: %w", err)
	}
	go func() {
		defer close(done)
		var quiet <-chan time.Time
		for {
			select {
			case <-ctx.Done():
				return
			case _, ok := <-routes:
				if !ok {
					routes = nil
				}
			case _, ok := <-addrs:
				if !ok {
					addrs = nil
				}
			case _, ok := <-links:
				if !ok {
					links = nil
				}
			case <-quiet:
				quiet = nil
				changed()
				continue
			}
			quiet = time.After(settle)
		}
	}()
	return nil
}

// UplinkChanged reports whether the way to any peer's endpoint (the host's route: interface,
// source address, gateway) differs from the last time it was asked; the first call only
// remembers it.
func (t *Tunnel) UplinkChanged() bool {
	changed := false
	t.withDevice(func(_ netnsView, dev *wgtypes.Device) error {
		var eps []*net.UDPAddr
		for _, p := range dev.Peers {
			eps = append(eps, p.Endpoint)
		}
		now := t.sys.uplinks(eps)
		changed = t.lastUplinks != "" && now != t.lastUplinks
		t.lastUplinks = now
		return nil
	})
	return changed
}

// uplinks describes the host's routes to the endpoints, one "dst via gw dev N src S" each.
func uplinks(eps []*net.UDPAddr) string {
	var b strings.Builder
	for _, ep := range eps {
		if ep == nil {
			continue
		}
		rs, err := netlink.RouteGet(ep.IP)
		if err != nil || len(rs) == 0 {
			fmt.Fprintf(&b, "%s unreachable; ", ep.IP)
			continue
		}
		r := rs[0]
		fmt.Fprintf(&b, "%s via %v dev %d src %v; ", ep.IP, r.Gw, r.LinkIndex, r.Src)
	}
	return b.String()
}
