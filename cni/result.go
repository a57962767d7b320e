package cni

import (
	"net"
	"net/netip"
	"slices"

	"github.com/containernetworking/cni/pkg/types"
	types100 "github.com/containernetworking/cni/pkg/types/100"

	"github.com/wgns/wgns/wgns"
	"github.com/wgns/wgns/wgns/config"
)

// result is what ADD reports: prevResult when chained (or an empty result) with the WireGuard
// interface, its addresses and its routes added, the routes it took over from the primary
// interface replaced, the kept prefixes routed through the primary's gateway, and the tunnel's
// DNS (when the config has some) in place of any other. Nothing secret is in it.
func result(prev *types100.Result, o wgns.AttachOptions, cfg *config.Config) *types100.Result {
	res := &types100.Result{CNIVersion: types100.ImplementedSpecVersion}
	if prev != nil {
		cp := *prev
		res = &cp
		res.Interfaces = slices.Clone(prev.Interfaces)
		res.IPs = slices.Clone(prev.IPs)
		res.Routes = slices.Clone(prev.Routes)
	}
	idx := len(res.Interfaces)
	// WireGuard is a layer-3 interface without a hardware address; it is reported as all
	// zeros, as lo's is, because podman's CNI backend refuses a container interface without one
	// ("invalid MAC address").
	res.Interfaces = append(res.Interfaces, &types100.Interface{Name: o.Interface, Mac: noMAC, Sandbox: o.Netns})
	for _, a := range cfg.Interface.Addresses {
		res.IPs = append(res.IPs, &types100.IPConfig{Interface: &idx, Address: ipNet(a)})
	}
	var routed []netip.Prefix
	for _, p := range cfg.Peers {
		for _, a := range p.AllowedIPs {
			if !slices.Contains(routed, a) {
				routed = append(routed, a)
			}
		}
	}
	// The tunnel's routes replace any of the same destination (the primary's default route).
	res.Routes = slices.DeleteFunc(res.Routes, func(r *types.Route) bool {
		p, ok := prefixOf(r.Dst)
		return ok && slices.Contains(routed, p)
	})
	if o.Primary != nil {
		for _, k := range o.Primary.Keep {
			r := &types.Route{Dst: ipNet(k)}
			for _, g := range o.Primary.Gateways {
				if g.Is4() == k.Addr().Is4() {
					r.GW = net.IP(g.AsSlice())
				}
			}
			res.Routes = append(res.Routes, r)
		}
	}
	for _, p := range routed {
		res.Routes = append(res.Routes, &types.Route{Dst: ipNet(p)})
	}
	if len(cfg.Interface.DNS) > 0 || len(cfg.Interface.Search) > 0 {
		res.DNS = types.DNS{Search: slices.Clone(cfg.Interface.Search)}
		for _, s := range cfg.Interface.DNS {
			res.DNS.Nameservers = append(res.DNS.Nameservers, s.String())
		}
	}
	return res
}

// noMAC is the hardware address reported for the WireGuard interface, which has none.
const noMAC = "00:00:00:00:00:00"

func ipNet(p netip.Prefix) net.IPNet {
	bits := 32
	if p.Addr().Is6() {
		bits = 128
	}
	return net.IPNet{IP: net.IP(p.Addr().AsSlice()), Mask: net.CIDRMask(p.Bits(), bits)}
}

func prefixOf(n net.IPNet) (netip.Prefix, bool) {
	a, ok := netip.AddrFromSlice(n.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	ones, _ := n.Mask.Size()
	return netip.PrefixFrom(a.Unmap(), ones).Masked(), true
}
