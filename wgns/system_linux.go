package wgns

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"strings"
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

// hostSystem is the real system: netlink, nftables, the files under /run and /etc/netns.
type hostSystem struct{}

var _ system = hostSystem{}

func (hostSystem) nsID(name string) (nsmgr.ID, error) { return nsmgr.IDByName(name) }

func (hostSystem) nsOpen(name string) (netnsView, error) {
	ns, err := nsmgr.Open(name)
	if err != nil {
		return nil, err
	}
	return newNSView(ns)
}

func (hostSystem) nsCreate(name string) (netnsView, error) {
	ns, err := nsmgr.Create(name)
	if err != nil {
		return nil, err
	}
	return newNSView(ns)
}

func (hostSystem) nsHeld(pid int, id nsmgr.ID) (netnsView, error) {
	ns, err := nsmgr.OpenHeld(pid, id)
	if err != nil {
		return nil, err
	}
	return newNSView(ns)
}

func (hostSystem) nsAttach(name string, v netnsView) error {
	return nsmgr.Attach(name, netns.NsHandle(v.fd()))
}

func (hostSystem) nsDelete(name string) error { return nsmgr.Delete(name) }

func (hostSystem) nsEmpty(name string) bool {
	v, err := openNS(name)
	if err != nil {
		return false
	}
	defer v.close()
	if procs, err := nsmgr.Processes(v.nsID); err != nil || len(procs) > 0 {
		return false
	}
	links, err := v.h.LinkList()
	return err == nil && len(links) == 1 && links[0].Attrs().Name == "lo"
}

func (hostSystem) hostLink(name string) string {
	l, err := netlink.LinkByName(name)
	if err != nil {
		return ""
	}
	return l.Type()
}

func (hostSystem) hostLinkDel(name string) error {
	l, err := netlink.LinkByName(name)
	if err != nil {
		return err
	}
	return netlink.LinkDel(l)
}

func (hostSystem) resolve(cfg *config.Config, timeout time.Duration) ([]*net.UDPAddr, error) {
	return resolveEndpoints(cfg, timeout)
}

func (hostSystem) loadConfig(path string) (*config.Config, error) { return config.Load(path) }

func (hostSystem) lookup(ctx context.Context, p config.Peer) (*net.UDPAddr, error) {
	return lookupEndpoint(ctx, p)
}

func (hostSystem) uplinkMTU(eps []*net.UDPAddr) int  { return uplinkMTU(eps) }
func (hostSystem) uplinks(eps []*net.UDPAddr) string { return uplinks(eps) }

func (hostSystem) backend(m Mode) backend {
	if m == ModeKernel {
		return &kernelBackend{}
	}
	return &userspaceBackend{}
}

func (hostSystem) dnsMatches(name string, v dnsbind.View) (bool, error) {
	diffs, err := dnsbind.Check(name, v)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	return err == nil && len(diffs) == 0, err
}

func (hostSystem) dnsWrite(name string, v dnsbind.View) error { return dnsbind.Write(name, v) }
func (hostSystem) dnsRemove(name string) error                { return dnsbind.Remove(name) }
func (hostSystem) readState(name string) (*State, error)      { return ReadState(name) }
func (hostSystem) writeState(st *State) error                 { return writeState(st) }
func (hostSystem) removeState(name string) error              { return removeState(name) }
func (hostSystem) ready(name string) string                   { return readReady(name) }
func (hostSystem) setReady(name string, id nsmgr.ID) error    { return writeReady(name, id) }
func (hostSystem) clearReady(name string)                     { removeReady(name) }
func (hostSystem) removeStaleUAPI(name string) error          { return removeStaleUAPI(name) }
func (hostSystem) holderAlive(st *State) bool                 { return st.holderAlive() }
func (hostSystem) lock(name string) (func(), error)           { return lock(name) }
func (hostSystem) self() (int, uint64)                        { return os.Getpid(), nsmgr.StartTime(os.Getpid()) }
func (hostSystem) checkpoint(point string)                    { crashPoint(point) }

func (hostSystem) inside(id nsmgr.ID) ([]proc, error) {
	hs, err := nsmgr.OpenProcessLeaders(id)
	if err != nil {
		return nil, err
	}
	ps := make([]proc, len(hs))
	for i, h := range hs {
		ps[i] = handle{h}
	}
	return ps, nil
}

func (hostSystem) holder(st *State) (proc, error) {
	h, err := nsmgr.OpenProcess(st.PID, st.Start)
	if errors.Is(err, unix.ESRCH) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return handle{h}, nil
}

func (hostSystem) waitExit(ps []proc, limit time.Duration) []proc {
	hs := make([]*nsmgr.Handle, len(ps))
	for i, p := range ps {
		hs[i] = p.(handle).Handle
	}
	left := nsmgr.WaitExit(hs, limit)
	out := make([]proc, len(left))
	for i, h := range left {
		out[i] = handle{h}
	}
	return out
}

func (hostSystem) removeLog(name string) { os.Remove(LogPath(name)) }

func (hostSystem) nsOpenPath(path string) (netnsView, error) {
	ns, err := nsmgr.OpenPath(path)
	if err != nil {
		return nil, err
	}
	return newNSView(ns)
}

func (hostSystem) selfNS() (nsmgr.ID, error) { return nsmgr.Self() }

func (hostSystem) attachBackend(m Mode, hostName string) backend {
	if m == ModeKernel {
		return &kernelBackend{hostName: hostName}
	}
	return &userspaceBackend{sock: hostName}
}

func (hostSystem) readAttachment(id string) (*Attachment, error) { return readAttachment(id) }
func (hostSystem) writeAttachment(a *Attachment) error           { return writeAttachment(a) }
func (hostSystem) removeAttachment(id string) error              { return removeAttachment(id) }
func (hostSystem) attachments() ([]*Attachment, error)           { return listAttachments() }
func (hostSystem) lockAttachment(id string) (func(bool), error)  { return lockAttachment(id) }

// handle is a real process held by a pidfd.
type handle struct{ *nsmgr.Handle }

func (h handle) info() nsmgr.Process          { return h.Process }
func (h handle) signal(sig unix.Signal) error { return h.Signal(sig) }
func (h handle) close()                       { h.Close() }

// nsView is a tunnel namespace opened for acting inside it: its descriptor and a netlink handle
// bound to it.
type nsView struct {
	ns   netns.NsHandle
	nsID nsmgr.ID
	h    *netlink.Handle
}

var _ netnsView = (*nsView)(nil)

// openNS opens the namespace at /run/netns/NAME and a netlink handle in it; the caller closes it.
func openNS(name string) (*nsView, error) {
	ns, err := nsmgr.Open(name)
	if err != nil {
		return nil, err
	}
	return newNSView(ns)
}

// newNSView takes over ns (closing it on failure).
func newNSView(ns netns.NsHandle) (*nsView, error) {
	id, err := nsmgr.IDOf(ns)
	if err != nil {
		ns.Close()
		return nil, err
	}
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		ns.Close()
		return nil, fmt.Errorf("opening netlink in the namespace: %w", err)
	}
	return &nsView{ns: ns, nsID: id, h: h}, nil
}

func (v *nsView) id() nsmgr.ID { return v.nsID }
func (v *nsView) fd() int      { return int(v.ns) }

func (v *nsView) close() {
	if v.h != nil {
		v.h.Close()
		v.h = nil
	}
	if v.ns.IsOpen() {
		v.ns.Close()
	}
}

func (v *nsView) firewallState(r firewall.Rules) (firewall.State, error) {
	return firewall.Inspect(v.fd(), r)
}

func (v *nsView) firewallInstall(r firewall.Rules, fresh bool) error {
	if fresh {
		return firewall.Install(v.fd(), r)
	}
	return firewall.Apply(v.fd(), r)
}

func (v *nsView) firewallRemove() error { return firewall.Remove(v.fd()) }

func (v *nsView) link(name string) (linkState, bool) {
	l, err := v.h.LinkByName(name)
	if err != nil {
		return linkState{}, false
	}
	return linkState{up: l.Attrs().Flags&net.FlagUp != 0, kind: l.Type()}, true
}

func (v *nsView) linkDel(name string) error {
	l, err := v.h.LinkByName(name)
	if err != nil {
		return err
	}
	return v.h.LinkDel(l)
}

func (v *nsView) linkRename(from, to string) error {
	l, err := v.h.LinkByName(from)
	if err != nil {
		return err
	}
	return v.h.LinkSetName(l, to)
}

func (v *nsView) linkUp(name string) error {
	l, err := v.h.LinkByName(name)
	if err != nil {
		return err
	}
	return v.h.LinkSetUp(l)
}

func (v *nsView) addrs(name string) ([]netip.Prefix, error) {
	l, err := v.h.LinkByName(name)
	if err != nil {
		return nil, err
	}
	have, err := v.h.AddrList(l, netlink.FAMILY_ALL)
	if err != nil {
		return nil, err
	}
	var out []netip.Prefix
	for _, a := range have {
		if p, ok := ipNetToPrefix(a.IPNet); ok {
			out = append(out, p)
		}
	}
	return out, nil
}

func (v *nsView) addrAdd(name string, p netip.Prefix) error {
	l, err := v.h.LinkByName(name)
	if err != nil {
		return err
	}
	a := &netlink.Addr{IPNet: prefixToIPNet(p)}
	if p.Addr().Is6() {
		a.Flags = unix.IFA_F_NODAD
	}
	return v.h.AddrReplace(l, a)
}

func (v *nsView) addrDel(name string, p netip.Prefix) error {
	l, err := v.h.LinkByName(name)
	if err != nil {
		return err
	}
	return v.h.AddrDel(l, &netlink.Addr{IPNet: prefixToIPNet(p)})
}

// mainRoutes lists the routes of the main table that go out through the link name.
func (v *nsView) mainRoutes(name string) ([]netlink.Route, error) {
	l, err := v.h.LinkByName(name)
	if err != nil {
		return nil, err
	}
	return v.h.RouteListFiltered(netlink.FAMILY_ALL, &netlink.Route{Table: unix.RT_TABLE_MAIN, LinkIndex: l.Attrs().Index},
		netlink.RT_FILTER_TABLE|netlink.RT_FILTER_OIF)
}

func (v *nsView) routes(name string) ([]netip.Prefix, error) {
	rs, err := v.mainRoutes(name)
	if err != nil {
		return nil, err
	}
	var out []netip.Prefix
	for _, rt := range rs {
		if p, ok := routeDst(rt); ok {
			out = append(out, p)
		}
	}
	return out, nil
}

func (v *nsView) routeAdd(name string, p netip.Prefix) error {
	l, err := v.h.LinkByName(name)
	if err != nil {
		return err
	}
	return v.h.RouteReplace(&netlink.Route{LinkIndex: l.Attrs().Index, Dst: prefixToIPNet(p), Scope: netlink.SCOPE_LINK, Family: family(p.Addr())})
}

func (v *nsView) routeVia(name string, p netip.Prefix, gw netip.Addr) error {
	l, err := v.h.LinkByName(name)
	if err != nil {
		return err
	}
	rt := &netlink.Route{LinkIndex: l.Attrs().Index, Dst: prefixToIPNet(p), Family: family(p.Addr())}
	if gw.IsValid() {
		rt.Gw = gw.AsSlice()
	} else {
		rt.Scope = netlink.SCOPE_LINK
	}
	return v.h.RouteReplace(rt)
}

func (v *nsView) gateways(name string) ([]netip.Addr, error) {
	rs, err := v.mainRoutes(name)
	if err != nil {
		return nil, err
	}
	var out []netip.Addr
	for _, rt := range rs {
		if p, ok := routeDst(rt); ok && p.Bits() == 0 && rt.Gw != nil {
			if a, ok := netip.AddrFromSlice(rt.Gw); ok {
				out = append(out, a.Unmap())
			}
		}
	}
	return out, nil
}

func (v *nsView) routeDel(name string, p netip.Prefix) error {
	l, err := v.h.LinkByName(name)
	if err != nil {
		return err
	}
	return v.h.RouteDel(&netlink.Route{LinkIndex: l.Attrs().Index, Dst: prefixToIPNet(p), Family: family(p.Addr()), Table: unix.RT_TABLE_MAIN})
}

func (v *nsView) device(name string) (*wgtypes.Device, error) { return readDevice(v.ns, name) }

func (v *nsView) configure(name string, c wgtypes.Config) error {
	return configureDevice(v.ns, name, c)
}

// resolveEndpoints resolves every peer's endpoint in the host namespace, each in bounded time
// (default 10 s).
func resolveEndpoints(cfg *config.Config, timeout time.Duration) ([]*net.UDPAddr, error) {
	if timeout == 0 {
		timeout = 10 * time.Second
	}
	out := make([]*net.UDPAddr, len(cfg.Peers))
	for i, p := range cfg.Peers {
		if p.Endpoint == "" {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		ep, err := lookupEndpoint(ctx, p)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("%s:%d: resolving endpoint %q: %w", cfg.Path, p.Line, p.EndpointHost, plainDNSError(err))
		}
		out[i] = ep
	}
	return out, nil
}

// plainDNSError says what a failed lookup means, once: Go's own message names the server twice
// ("lookup x on S: dial udp S: connect: network is unreachable").
func plainDNSError(err error) error {
	var de *net.DNSError
	if !errors.As(err, &de) {
		return err
	}
	asked := "the host's resolver"
	if de.Server != "" {
		asked += " (" + de.Server + ")"
	}
	switch {
	case de.IsNotFound:
		return &wrapped{msg: "no such host, says " + asked, err: err}
	case de.IsTimeout:
		return &wrapped{msg: asked + " did not answer in time", err: err}
	}
	why := de.Err
	if i := strings.LastIndex(why, ": "); i >= 0 {
		why = why[i+2:]
	}
	return &wrapped{msg: asked + " cannot be asked: " + why, err: err}
}

// wrapped is an error with a message of its own that still unwraps to err.
type wrapped struct {
	msg string
	err error
}

func (w *wrapped) Error() string { return w.msg }
func (w *wrapped) Unwrap() error { return w.err }

// lookupEndpoint resolves p's endpoint in the host namespace. Like wg(8), it prefers IPv4.
func lookupEndpoint(ctx context.Context, p config.Peer) (*net.UDPAddr, error) {
	if ip, err := netip.ParseAddr(p.EndpointHost); err == nil {
		return net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip.Unmap(), uint16(p.EndpointPort))), nil
	}
	ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", p.EndpointHost)
	if err == nil && len(ips) == 0 {
		err = errors.New("no addresses")
	}
	if err != nil {
		return nil, err
	}
	pick := ips[0]
	for _, ip := range ips {
		if ip.Unmap().Is4() {
			pick = ip
			break
		}
	}
	return net.UDPAddrFromAddrPort(netip.AddrPortFrom(pick.Unmap(), uint16(p.EndpointPort))), nil
}

// uplinkMTU is the largest MTU of the host routes towards the endpoints (as wg-quick picks it),
// or of the default route when no endpoint is set; 0 if none is found.
func uplinkMTU(endpoints []*net.UDPAddr) int {
	best := 0
	consider := func(r netlink.Route) {
		mtu := r.MTU
		if mtu == 0 {
			if l, err := netlink.LinkByIndex(r.LinkIndex); err == nil {
				mtu = l.Attrs().MTU
			}
		}
		best = max(best, mtu)
	}
	any := false
	for _, ep := range endpoints {
		if ep == nil {
			continue
		}
		any = true
		if rs, err := netlink.RouteGet(ep.IP); err == nil {
			for _, r := range rs {
				consider(r)
			}
		}
	}
	if !any {
		if rs, err := netlink.RouteList(nil, netlink.FAMILY_V4); err == nil {
			for _, r := range rs {
				if r.Dst == nil {
					consider(r)
				}
			}
		}
	}
	return best
}

func prefixToIPNet(p netip.Prefix) *net.IPNet {
	bits := 32
	if p.Addr().Is6() {
		bits = 128
	}
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), bits)}
}

func family(a netip.Addr) int {
	if a.Is4() {
		return netlink.FAMILY_V4
	}
	return netlink.FAMILY_V6
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
	ones, _ := n.Mask.Size()
	return netip.PrefixFrom(a.Unmap(), ones), true
}
