package wgns

import (
	"context"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"
)

// WatchNetwork calls changed, from a goroutine of its own, each time the host namespace's
// routes, addresses or links have changed and then stayed quiet for settle, until ctx ends. It
// returns once it is watching. Unrelated changes call it too; UplinkChanged tells whether the
// way to a tunnel's peers is what changed. Links that stay down are not looked at: they carry
// no route, and kernel WireGuard devices are made down in the host and moved out at every up,
// which would otherwise wake every supervisor on the machine.
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
	if err := netlink.LinkSubscribeWithOptions(links, done, netlink.LinkSubscribeOptions{ListExisting: true}); err != nil {
		close(done)
		return fmt.Errorf("watching the host's interfaces: %w", err)
	}
	go func() {
		defer close(done)
		var quiet <-chan time.Time
		up := upLinks{}
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
			case u, ok := <-links:
				if !ok {
					links = nil
				} else if !up.matters(int(u.Index), u.Header.Type == unix.RTM_DELLINK, u.Flags&unix.IFF_UP != 0) {
					continue
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

// upLinks is what WatchNetwork knows of the host's links: those it last saw up.
type upLinks map[int]bool

// matters records a link message (of link index, deleted or not, up or not) and reports
// whether it may change a route: a link that was down and still is (or is gone) carries none.
func (l upLinks) matters(index int, deleted, isUp bool) bool {
	was := l[index]
	if deleted || !isUp {
		delete(l, index)
	} else {
		l[index] = true
	}
	return was || (isUp && !deleted)
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
