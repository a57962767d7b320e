package wgns

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"github.com/wgns/wgns/dnsbind"
	"github.com/wgns/wgns/firewall"
	"github.com/wgns/wgns/nsmgr"
	"github.com/wgns/wgns/wgns/config"
)

// fakeSys is a model of the machine for the reconciler: namespace files, the namespaces
// themselves with their firewall tables and interfaces, interfaces in the host namespace, DNS
// views and wgns's records. Every change is recorded as a line in acts, so a golden file shows
// exactly what the reconciler did to the machine.
type fakeSys struct {
	acts []string

	files     map[string]*fakeNS // /run/netns/NAME; a nil value is a plain file, not a namespace
	paths     map[string]*fakeNS // namespaces wgns did not make (containers'), by path
	attached  map[string]Attachment
	nextIno   uint64
	hostLinks map[string]string // interfaces in the host namespace, by name: their kind
	dns       map[string]string // DNS views by tunnel: what was written
	states    map[string]State
	readyMark map[string]string
	uapi      map[string]string // control sockets: "live" or "stale"
	alive     bool              // the recorded holder process runs
	held      []*fakeNS         // namespaces without a file that the holder holds open
	selfPID   int               // this process, when it is not the holder (4242)

	attachLocks map[string]bool // attachments' lock files
	mtu         int

	uplink  string                    // the host's way out, as uplinks describes it
	configs map[string]*config.Config // config files, by path
	names   map[string]netip.Addr     // what host names resolve to

	crashAt string           // checkpoint at which the "process" dies (panics with crash)
	fail    map[string]error // act prefix -> error it returns instead of acting

	records map[string]fakeRecord // failover records, by tunnel (failover_test.go)
}

// crash is what fakeSys panics with when the work reaches crashAt.
type crash struct{ point string }

type fakeNS struct {
	id    nsmgr.ID
	fw    string // "", "ok" or "altered"
	links map[string]*fakeLink
	procs []*fakeProc // processes inside
}

// fakeProc is a process in the fake: a program inside a tunnel, or the holder.
type fakeProc struct {
	f        *fakeSys
	pid      int
	comm     string
	stubborn bool // ignores SIGTERM
	exited   bool
	onTerm   func() // what the process does on SIGTERM before it exits (the holder tears down)
}

func (p *fakeProc) info() nsmgr.Process { return nsmgr.Process{PID: p.pid, Comm: p.comm} }
func (p *fakeProc) close()              {}

func (p *fakeProc) signal(sig unix.Signal) error {
	if p.exited {
		return nil
	}
	p.f.do("signal %d (%s) with %v", p.pid, p.comm, sig)
	if sig == unix.SIGTERM && p.stubborn {
		return nil
	}
	if sig == unix.SIGTERM && p.onTerm != nil {
		p.onTerm()
	}
	p.exited = true
	return nil
}

type fakeLink struct {
	kind   string // "" for a WireGuard link (see mode); "veth" for a container's primary
	sock   string // the name the embedded WireGuard's control socket answers to
	up     bool
	addrs  []netip.Prefix
	routes []netip.Prefix
	dev    *wgtypes.Device
	mode   Mode // userspace links die with their process
}

func newFakeSys() *fakeSys {
	return &fakeSys{files: map[string]*fakeNS{}, paths: map[string]*fakeNS{}, attached: map[string]Attachment{}, hostLinks: map[string]string{}, dns: map[string]string{},
		states: map[string]State{}, readyMark: map[string]string{}, uapi: map[string]string{}, alive: true,
		mtu: 1500, uplink: "eth0", nextIno: 4026532000, fail: map[string]error{}, configs: map[string]*config.Config{}, names: map[string]netip.Addr{}}
}

var _ system = (*fakeSys)(nil)

// do records act and returns the error injected for it, if any.
func (f *fakeSys) do(format string, args ...any) error {
	act := fmt.Sprintf(format, args...)
	for prefix, err := range f.fail {
		if strings.HasPrefix(act, prefix) {
			f.acts = append(f.acts, act+" -> "+err.Error())
			return err
		}
	}
	f.acts = append(f.acts, act)
	return nil
}

// die is the holder process being killed: the embedded WireGuard's TUN goes with it, its control
// socket stays behind, and the recorded holder no longer runs.
func (f *fakeSys) die() {
	for _, ns := range f.allNS() {
		if ns == nil {
			continue
		}
		for name, l := range ns.links {
			if l.mode == ModeUserspace {
				delete(ns.links, name)
			}
		}
	}
	for name := range f.uapi {
		f.uapi[name] = "stale"
	}
	f.alive = false
}

// allNS lists every namespace of the fake: wgns's and containers'.
func (f *fakeSys) allNS() []*fakeNS {
	var out []*fakeNS
	for _, m := range []map[string]*fakeNS{f.files, f.paths} {
		for _, ns := range m {
			out = append(out, ns)
		}
	}
	return out
}

// container adds a container's namespace at path, with lo and, when primary is not "", the
// interface a plugin before wgns made (a ptp veth with its gateway route and default route).
func (f *fakeSys) container(path, primary string) *fakeNS {
	f.nextIno++
	ns := &fakeNS{id: nsmgr.ID{Dev: 4, Ino: f.nextIno}, links: map[string]*fakeLink{"lo": {kind: "loopback", up: true}}}
	if primary != "" {
		ns.links[primary] = &fakeLink{kind: "veth", up: true, addrs: []netip.Prefix{netip.MustParsePrefix("203.0.113.70/26")},
			routes: []netip.Prefix{netip.MustParsePrefix("203.0.113.65/32"), netip.MustParsePrefix("0.0.0.0/0")}}
	}
	f.paths[path] = ns
	return ns
}

func (f *fakeSys) nsOpenPath(path string) (netnsView, error) {
	ns, ok := f.paths[path]
	if !ok {
		return nil, fmt.Errorf("opening network namespace %s: %w", path, fs.ErrNotExist)
	}
	return &fakeView{f: f, ns: ns, where: path}, nil
}

// hostNS is the ID of the namespace the fake wgns runs in.
var hostNS = nsmgr.ID{Dev: 4, Ino: 4026531840}

func (f *fakeSys) selfNS() (nsmgr.ID, error) { return hostNS, nil }

func (f *fakeSys) attachBackend(m Mode, hostName string) backend {
	return &fakeBackend{f: f, m: m, hostName: hostName}
}

func (f *fakeSys) readAttachment(id string) (*Attachment, error) {
	a, ok := f.attached[id]
	if !ok {
		return nil, fmt.Errorf("reading the record of attachment %s: %w", id, fs.ErrNotExist)
	}
	return &a, nil
}

func (f *fakeSys) writeAttachment(a *Attachment) error {
	replaced := ""
	if len(a.Kept) > 0 {
		replaced += fmt.Sprintf(", kept %v", a.Kept)
	}
	if len(a.Replaced) > 0 {
		replaced += fmt.Sprintf(", replaced %v", a.Replaced)
	}
	if err := f.do("record attachment %s: step %s, ready %v, netns %d%s", a.Key.ID()[:8], a.State.Step, a.State.Ready, a.State.Netns.Ino, replaced); err != nil {
		return err
	}
	f.attached[a.Key.ID()] = *a
	return nil
}

func (f *fakeSys) removeAttachment(id string) error {
	if err := f.do("remove the record of attachment %s", id[:8]); err != nil {
		return err
	}
	delete(f.attached, id)
	return nil
}

func (f *fakeSys) attachments() ([]*Attachment, error) {
	var out []*Attachment
	for _, a := range f.attached {
		out = append(out, &a)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key.ID() < out[j].Key.ID() })
	return out, nil
}

// lockAttachment makes the attachment's lock file, which unlock removes when told it is gone.
func (f *fakeSys) lockAttachment(id string) (func(bool), error) {
	if f.attachLocks == nil {
		f.attachLocks = map[string]bool{}
	}
	f.attachLocks[id] = true
	return func(gone bool) {
		if gone {
			delete(f.attachLocks, id)
		}
	}, nil
}

func (f *fakeSys) nsID(name string) (nsmgr.ID, error) {
	ns, ok := f.files[name]
	switch {
	case !ok:
		return nsmgr.ID{}, fmt.Errorf("opening network namespace %q: %w", name, fs.ErrNotExist)
	case ns == nil:
		return nsmgr.ID{}, fmt.Errorf("opening network namespace %q: not a network namespace", name)
	}
	return ns.id, nil
}

func (f *fakeSys) nsOpen(name string) (netnsView, error) {
	if _, err := f.nsID(name); err != nil {
		return nil, err
	}
	return &fakeView{f: f, ns: f.files[name]}, nil
}

func (f *fakeSys) nsCreate(name string) (netnsView, error) {
	if err := f.do("create namespace %s", name); err != nil {
		return nil, err
	}
	f.nextIno++
	ns := &fakeNS{id: nsmgr.ID{Dev: 4, Ino: f.nextIno}, links: map[string]*fakeLink{"lo": {}}}
	f.files[name] = ns
	return &fakeView{f: f, ns: ns}, nil
}

func (f *fakeSys) nsHeld(pid int, id nsmgr.ID) (netnsView, error) {
	if f.alive {
		for _, ns := range f.held {
			if ns.id == id {
				return &fakeView{f: f, ns: ns}, nil
			}
		}
	}
	return nil, fmt.Errorf("process %d holds no descriptor of network namespace %d:%d: %w", pid, id.Dev, id.Ino, fs.ErrNotExist)
}

func (f *fakeSys) nsAttach(name string, v netnsView) error {
	ns := v.(*fakeView).ns
	if err := f.do("attach namespace %d as %s", ns.id.Ino, name); err != nil {
		return err
	}
	f.files[name] = ns
	for i, h := range f.held {
		if h == ns {
			f.held = append(f.held[:i], f.held[i+1:]...)
			break
		}
	}
	return nil
}

func (f *fakeSys) nsDelete(name string) error {
	if err := f.do("delete namespace %s", name); err != nil {
		return err
	}
	delete(f.files, name)
	return nil
}

func (f *fakeSys) nsEmpty(name string) bool {
	ns := f.files[name]
	return ns != nil && len(ns.procs) == 0 && len(ns.links) == 1 && ns.links["lo"] != nil
}

func (f *fakeSys) inside(id nsmgr.ID) ([]proc, error) {
	var out []proc
	for _, ns := range f.files {
		if ns != nil && ns.id == id {
			for _, p := range ns.procs {
				if !p.exited {
					out = append(out, p)
				}
			}
		}
	}
	return out, nil
}

// holder is the holder process; on SIGTERM it tears the tunnel down as the real one does.
func (f *fakeSys) holder(st *State) (proc, error) {
	if !f.alive {
		return nil, nil
	}
	return &fakeProc{f: f, pid: st.PID, comm: "wgns", onTerm: func() {
		f.acts = append(f.acts, "(the holder tears down)")
		f.die()
		teardown(f, st.Name, st, nil)
	}}, nil
}

func (f *fakeSys) waitExit(ps []proc, limit time.Duration) []proc {
	var left []proc
	for _, p := range ps {
		if !p.(*fakeProc).exited {
			left = append(left, p)
		}
	}
	f.do("wait up to %s for %d processes: %d left", limit, len(ps), len(left))
	return left
}

func (f *fakeSys) removeLog(string) {}

// configs are the files loadConfig reads, by path.
func (f *fakeSys) loadConfig(path string) (*config.Config, error) {
	if c, ok := f.configs[path]; ok {
		return c, nil
	}
	return nil, fmt.Errorf("%s: %w", path, fs.ErrNotExist)
}

// lookup resolves host names through the fake's table of names.
func (f *fakeSys) lookup(_ context.Context, p config.Peer) (*net.UDPAddr, error) {
	ip, ok := f.names[p.EndpointHost]
	if !ok {
		if a, err := netip.ParseAddr(p.EndpointHost); err == nil {
			ip = a
		} else {
			return nil, fmt.Errorf("lookup %s: no such host", p.EndpointHost)
		}
	}
	f.do("resolve %s: %s", p.EndpointHost, ip)
	return net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, uint16(p.EndpointPort))), nil
}

func (f *fakeSys) hostLink(name string) string { return f.hostLinks[name] }

func (f *fakeSys) hostLinkDel(name string) error {
	if err := f.do("delete host interface %s", name); err != nil {
		return err
	}
	delete(f.hostLinks, name)
	return nil
}

func (f *fakeSys) resolve(cfg *config.Config, _ time.Duration) ([]*net.UDPAddr, error) {
	if err := f.do("resolve endpoints"); err != nil {
		return nil, err
	}
	out := make([]*net.UDPAddr, len(cfg.Peers))
	for i, p := range cfg.Peers {
		if p.Endpoint != "" {
			out[i] = net.UDPAddrFromAddrPort(netip.AddrPortFrom(netip.MustParseAddr("203.0.113.1"), uint16(p.EndpointPort)))
		}
	}
	return out, nil
}

func (f *fakeSys) uplinkMTU([]*net.UDPAddr) int { return f.mtu }

func (f *fakeSys) uplinks(eps []*net.UDPAddr) string { return fmt.Sprint(eps, " via ", f.uplink) }

func (f *fakeSys) backend(m Mode) backend { return &fakeBackend{f: f, m: m} }

func (f *fakeSys) dnsMatches(name string, v dnsbind.View) (bool, error) {
	got, ok := f.dns[name]
	return ok && got == fmt.Sprint(v), nil
}

func (f *fakeSys) dnsWrite(name string, v dnsbind.View) error {
	if err := f.do("write DNS view %s: %v", name, v); err != nil {
		return err
	}
	f.dns[name] = fmt.Sprint(v)
	return nil
}

func (f *fakeSys) dnsRemove(name string) error {
	if _, ok := f.dns[name]; !ok {
		return nil
	}
	if err := f.do("remove DNS view %s", name); err != nil {
		return err
	}
	delete(f.dns, name)
	return nil
}

func (f *fakeSys) readState(name string) (*State, error) {
	st, ok := f.states[name]
	if !ok {
		return nil, fmt.Errorf("reading the state of tunnel %q: %w", name, fs.ErrNotExist)
	}
	return &st, nil
}

func (f *fakeSys) writeState(st *State) error {
	if err := f.do("record %s: step %s, ready %v, netns %d", st.Name, st.Step, st.Ready, st.Netns.Ino); err != nil {
		return err
	}
	f.states[st.Name] = *st
	return nil
}

func (f *fakeSys) removeState(name string) error {
	if err := f.do("remove the record of %s", name); err != nil {
		return err
	}
	delete(f.states, name)
	delete(f.readyMark, name)
	return nil
}

func (f *fakeSys) ready(name string) string { return f.readyMark[name] }

func (f *fakeSys) setReady(name string, id nsmgr.ID) error {
	if err := f.do("mark %s ready (netns %d)", name, id.Ino); err != nil {
		return err
	}
	f.readyMark[name] = idString(id)
	return nil
}

func (f *fakeSys) clearReady(name string) {
	if _, ok := f.readyMark[name]; ok {
		f.do("clear the ready mark of %s", name)
		delete(f.readyMark, name)
	}
}

func (f *fakeSys) removeStaleUAPI(name string) error {
	switch f.uapi[name] {
	case "live":
		return fmt.Errorf("%s is in use by a running WireGuard process", uapiPath(name))
	case "stale":
		delete(f.uapi, name)
		return f.do("remove the stale control socket of %s", name)
	}
	return nil
}

// holderAlive: the recorded holder runs (an attachment of kernel WireGuard records none).
func (f *fakeSys) holderAlive(st *State) bool { return f.alive && st.PID != 0 }

func (f *fakeSys) lock(string) (func(), error) { return func() {}, nil }

func (f *fakeSys) self() (int, uint64) {
	if f.selfPID != 0 {
		return f.selfPID, 77
	}
	return 4242, 99
}

func (f *fakeSys) checkpoint(point string) {
	if point == f.crashAt {
		f.acts = append(f.acts, "CRASH at "+point)
		panic(crash{point})
	}
}

// fakeView acts inside one fake namespace.
type fakeView struct {
	f     *fakeSys
	ns    *fakeNS
	where string // a container's namespace: its path, which the acts name
}

// in names the namespace in an act on a container's namespace ("" for wgns's own, whose acts
// predate attachments).
func (v *fakeView) in() string {
	if v.where == "" {
		return ""
	}
	return " in " + v.where
}

var _ netnsView = (*fakeView)(nil)

func (v *fakeView) id() nsmgr.ID { return v.ns.id }
func (v *fakeView) fd() int      { return -1 }
func (v *fakeView) close()       {}

func (v *fakeView) firewallState(firewall.Rules) (firewall.State, error) {
	return firewall.State{Present: v.ns.fw != "", Matches: v.ns.fw == "ok"}, nil
}

func (v *fakeView) firewallInstall(r firewall.Rules, fresh bool) error {
	how := "replace"
	if fresh {
		how = "fresh"
	}
	if err := v.f.do("install firewall%s (%s; %s)", v.in(), how, describeRules(r)); err != nil {
		return err
	}
	v.ns.fw = "ok"
	return nil
}

func (v *fakeView) firewallRemove() error {
	if err := v.f.do("remove firewall%s", v.in()); err != nil {
		return err
	}
	v.ns.fw = ""
	return nil
}

func (v *fakeView) link(name string) (linkState, bool) {
	l, ok := v.ns.links[name]
	if !ok {
		return linkState{}, false
	}
	kind := l.kind
	switch {
	case kind != "":
	case l.mode == ModeUserspace:
		kind = "tuntap"
	default:
		kind = "wireguard"
	}
	return linkState{up: l.up, kind: kind}, true
}

func (v *fakeView) linkDel(name string) error {
	if _, err := v.get(name); err != nil {
		return err
	}
	if err := v.f.do("delete interface %s%s", name, v.in()); err != nil {
		return err
	}
	delete(v.ns.links, name)
	return nil
}

func (v *fakeView) linkRename(from, to string) error {
	l, err := v.get(from)
	if err != nil {
		return err
	}
	if _, ok := v.ns.links[to]; ok {
		return v.f.do("rename %s to %s%s -> file exists", from, to, v.in())
	}
	if err := v.f.do("rename %s to %s%s", from, to, v.in()); err != nil {
		return err
	}
	delete(v.ns.links, from)
	v.ns.links[to] = l
	return nil
}

// replaceRoute takes the route to p off every link, as a route replace does.
func (v *fakeView) replaceRoute(p netip.Prefix) {
	for _, l := range v.ns.links {
		l.routes = slices.DeleteFunc(l.routes, func(r netip.Prefix) bool { return r == p })
	}
}

func (v *fakeView) routeVia(name string, p netip.Prefix, gw netip.Addr) error {
	l, err := v.get(name)
	if err != nil {
		return err
	}
	via := "on-link"
	if gw.IsValid() {
		via = "via " + gw.String()
	}
	if err := v.f.do("add route %s %s dev %s%s", p, via, name, v.in()); err != nil {
		return err
	}
	v.replaceRoute(p)
	l.routes = append(l.routes, p)
	return nil
}

// gateways: a container's primary interface has its default route through the ptp gateway.
func (v *fakeView) gateways(name string) ([]netip.Addr, error) {
	l, err := v.get(name)
	if err != nil {
		return nil, err
	}
	if slices.Contains(l.routes, netip.MustParsePrefix("0.0.0.0/0")) && l.kind == "veth" {
		return []netip.Addr{netip.MustParseAddr("203.0.113.65")}, nil
	}
	return nil, nil
}

func (v *fakeView) routeDel(name string, p netip.Prefix) error {
	l, err := v.get(name)
	if err != nil {
		return err
	}
	if err := v.f.do("delete route %s dev %s%s", p, name, v.in()); err != nil {
		return err
	}
	l.routes = slices.DeleteFunc(l.routes, func(r netip.Prefix) bool { return r == p })
	return nil
}

func (v *fakeView) get(name string) (*fakeLink, error) {
	l, ok := v.ns.links[name]
	if !ok {
		return nil, fmt.Errorf("link %s not found", name)
	}
	return l, nil
}

func (v *fakeView) linkUp(name string) error {
	l, err := v.get(name)
	if err != nil {
		return err
	}
	if err := v.f.do("set %s up%s", name, v.in()); err != nil {
		return err
	}
	l.up = true
	return nil
}

func (v *fakeView) addrs(name string) ([]netip.Prefix, error) {
	l, err := v.get(name)
	if err != nil {
		return nil, err
	}
	return slices.Clone(l.addrs), nil
}

func (v *fakeView) addrAdd(name string, p netip.Prefix) error {
	l, err := v.get(name)
	if err != nil {
		return err
	}
	if err := v.f.do("add address %s to %s%s", p, name, v.in()); err != nil {
		return err
	}
	l.addrs = append(l.addrs, p)
	return nil
}

func (v *fakeView) addrDel(name string, p netip.Prefix) error {
	l, err := v.get(name)
	if err != nil {
		return err
	}
	if err := v.f.do("delete address %s from %s%s", p, name, v.in()); err != nil {
		return err
	}
	l.addrs = slices.DeleteFunc(l.addrs, func(a netip.Prefix) bool { return a == p })
	return nil
}

func (v *fakeView) routes(name string) ([]netip.Prefix, error) {
	l, err := v.get(name)
	if err != nil {
		return nil, err
	}
	return slices.Clone(l.routes), nil
}

func (v *fakeView) routeAdd(name string, p netip.Prefix) error {
	l, err := v.get(name)
	if err != nil {
		return err
	}
	if err := v.f.do("add route %s via %s%s", p, name, v.in()); err != nil {
		return err
	}
	v.replaceRoute(p)
	l.routes = append(l.routes, p)
	return nil
}

func (v *fakeView) device(name string) (*wgtypes.Device, error) {
	l, err := v.get(name)
	for _, sl := range v.ns.links {
		if err != nil && sl.sock == name && sl.mode == ModeUserspace {
			l, err = sl, nil // the embedded WireGuard answers by its control socket's name
		}
	}
	if err != nil {
		return nil, err
	}
	if l.dev == nil {
		return &wgtypes.Device{Name: name}, nil
	}
	d := *l.dev
	return &d, nil
}

func (v *fakeView) configure(name string, c wgtypes.Config) error {
	l, err := v.get(name)
	for _, sl := range v.ns.links {
		if err != nil && sl.sock == name && sl.mode == ModeUserspace {
			l, err = sl, nil
		}
	}
	if err != nil {
		return err
	}
	if err := v.f.do("configure %s through wgctrl%s: %s", name, v.in(), describeConfig(c)); err != nil {
		return err
	}
	if l.dev == nil {
		l.dev = &wgtypes.Device{Name: name}
	}
	applyConfig(l.dev, c)
	return nil
}

// describeConfig shows a device configuration without its keys' secret halves.
func describeConfig(c wgtypes.Config) string {
	var parts []string
	if c.PrivateKey != nil {
		parts = append(parts, "key "+c.PrivateKey.PublicKey().String()[:8]+"…")
	}
	if c.ListenPort != nil {
		parts = append(parts, fmt.Sprintf("port %d", *c.ListenPort))
	}
	for _, p := range c.Peers {
		s := "peer " + p.PublicKey.String()[:8] + "…"
		if p.Remove {
			parts = append(parts, s+" removed")
			continue
		}
		if p.Endpoint != nil {
			s += " at " + p.Endpoint.String()
		}
		if p.ReplaceAllowedIPs || len(p.AllowedIPs) > 0 {
			var ips []string
			for _, a := range p.AllowedIPs {
				ips = append(ips, a.String())
			}
			if len(ips) == 0 {
				ips = []string{"nothing"}
			}
			s += " for " + strings.Join(ips, ",")
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, "; ")
}

// deviceOf is what an empty device configured with c reads back as.
func deviceOf(name string, c wgtypes.Config) *wgtypes.Device {
	d := &wgtypes.Device{Name: name}
	applyConfig(d, c)
	return d
}

// applyConfig changes d as WireGuard applies c: ReplacePeers, Remove, UpdateOnly and
// ReplaceAllowedIPs as documented by wgctrl; an allowed IP given to a peer is taken from any
// other that had it, as cryptokey routing holds each prefix for one peer.
func applyConfig(d *wgtypes.Device, c wgtypes.Config) {
	if c.PrivateKey != nil {
		d.PrivateKey, d.PublicKey = *c.PrivateKey, c.PrivateKey.PublicKey()
	}
	if c.ListenPort != nil {
		d.ListenPort = *c.ListenPort
	}
	if c.ReplacePeers {
		d.Peers = nil
	}
	for _, pc := range c.Peers {
		i := slices.IndexFunc(d.Peers, func(p wgtypes.Peer) bool { return p.PublicKey == pc.PublicKey })
		switch {
		case pc.Remove:
			if i >= 0 {
				d.Peers = slices.Delete(d.Peers, i, i+1)
			}
			continue
		case i < 0 && pc.UpdateOnly:
			continue
		case i < 0:
			d.Peers = append(d.Peers, wgtypes.Peer{PublicKey: pc.PublicKey})
			i = len(d.Peers) - 1
		}
		p := &d.Peers[i]
		if pc.Endpoint != nil {
			p.Endpoint = pc.Endpoint
		}
		if pc.PresharedKey != nil {
			p.PresharedKey = *pc.PresharedKey
		}
		if pc.PersistentKeepaliveInterval != nil {
			p.PersistentKeepaliveInterval = *pc.PersistentKeepaliveInterval
		}
		if pc.ReplaceAllowedIPs {
			p.AllowedIPs = nil
		}
		for _, a := range pc.AllowedIPs {
			for j := range d.Peers {
				d.Peers[j].AllowedIPs = slices.DeleteFunc(d.Peers[j].AllowedIPs, func(b net.IPNet) bool { return b.String() == a.String() })
			}
		}
		p.AllowedIPs = append(p.AllowedIPs, pc.AllowedIPs...)
	}
}

// fakeBackend is a WireGuard implementation in the fake: kernel links are made in the host
// namespace and moved; userspace ones are made inside and die with their process.
type fakeBackend struct {
	f        *fakeSys
	m        Mode
	hostName string // an attachment's: see attachBackend
	name     string
	ns       *fakeNS
	deadCh   chan struct{}
}

var _ backend = (*fakeBackend)(nil)

func (b *fakeBackend) mode() Mode { return b.m }

func (b *fakeBackend) create(name string, mtu int, view netnsView) error {
	fv := fakeViewOf(view)
	ns := fv.ns
	host := name
	if b.hostName != "" {
		host = b.hostName
	}
	if b.m == ModeKernel {
		if err := b.f.do("create %s interface %s (MTU %d) in the host namespace", b.m, host, mtu); err != nil {
			return err
		}
		b.f.hostLinks[host] = "wireguard"
		b.f.checkpoint("move")
		if err := b.f.do("move %s into namespace %d", host, ns.id.Ino); err != nil {
			return err
		}
		delete(b.f.hostLinks, host)
		ns.links[host] = &fakeLink{mode: b.m}
		if host != name {
			b.f.checkpoint("rename")
			if err := fv.linkRename(host, name); err != nil {
				fv.linkDel(host)
				return err
			}
		}
	} else {
		if err := b.f.do("create %s interface %s (MTU %d) in namespace %d", b.m, name, mtu, ns.id.Ino); err != nil {
			return err
		}
		b.f.checkpoint("move")
		b.f.uapi[host] = "live"
		b.f.alive = true
		ns.links[name] = &fakeLink{mode: b.m, sock: host}
	}
	b.name, b.ns, b.deadCh = name, ns, make(chan struct{})
	return nil
}

func (b *fakeBackend) configure(c wgtypes.Config) error {
	if err := b.f.do("configure %s in-process: %s", b.name, describeConfig(c)); err != nil {
		return err
	}
	b.ns.links[b.name].dev = deviceOf(b.name, c)
	return nil
}

func (b *fakeBackend) start(wgtypes.Config) error { return b.f.do("start the device %s", b.name) }

func (b *fakeBackend) dead() <-chan struct{} { return b.deadCh }

func (b *fakeBackend) watch(string, netnsView) error { return nil }

func (b *fakeBackend) rehandshake(_ netnsView, peers []wgtypes.Peer) error {
	for _, p := range peers {
		b.f.do("new session with %s…", p.PublicKey.String()[:8])
	}
	return nil
}

func (b *fakeBackend) close() error {
	if b.m == ModeUserspace && b.ns != nil {
		b.f.do("close the device %s", b.name)
		delete(b.ns.links, b.name)
		sock := b.name
		if b.hostName != "" {
			sock = b.hostName
		}
		delete(b.f.uapi, sock)
		b.ns = nil
	}
	return nil
}

// fakeViewOf is the fake view under an attachment's view.
func fakeViewOf(v netnsView) *fakeView {
	if av, ok := v.(attachView); ok {
		v = av.netnsView
	}
	return v.(*fakeView)
}

// describe prints the machine as the fake models it, for golden files.
func (f *fakeSys) describe() string {
	var b strings.Builder
	names := make([]string, 0, len(f.files)+len(f.paths))
	for n := range f.files {
		names = append(names, n)
	}
	for n := range f.paths {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		ns := f.files[n]
		if p, ok := f.paths[n]; ok {
			ns = p
		}
		if ns == nil {
			fmt.Fprintf(&b, "netns %s: a plain file\n", n)
			continue
		}
		fmt.Fprintf(&b, "netns %s (%d): firewall %q", n, ns.id.Ino, ns.fw)
		links := make([]string, 0, len(ns.links))
		for ln := range ns.links {
			links = append(links, ln)
		}
		sort.Strings(links)
		for _, ln := range links {
			l := ns.links[ln]
			fmt.Fprintf(&b, "; %s up=%v", ln, l.up)
			if l.kind == "veth" {
				fmt.Fprintf(&b, " addrs=%v routes=%v", l.addrs, l.routes)
			}
			if ln != "lo" && l.kind == "" {
				peers := 0
				if l.dev != nil {
					peers = len(l.dev.Peers)
				}
				fmt.Fprintf(&b, " addrs=%v routes=%v peers=%d", l.addrs, l.routes, peers)
			}
		}
		b.WriteString("\n")
	}
	for _, n := range sortedKeys(f.hostLinks) {
		fmt.Fprintf(&b, "host interface %s (%s)\n", n, f.hostLinks[n])
	}
	for _, n := range sortedKeys(f.states) {
		st := f.states[n]
		fmt.Fprintf(&b, "record %s: step %s, ready %v, mode %s; ready mark %q\n", n, st.Step, st.Ready, st.Mode, f.readyMark[n])
	}
	for _, n := range sortedKeys(f.dns) {
		fmt.Fprintf(&b, "DNS view %s\n", n)
	}
	for _, n := range sortedKeys(f.uapi) {
		fmt.Fprintf(&b, "control socket %s (%s)\n", n, f.uapi[n])
	}
	for _, id := range sortedKeys(f.attachLocks) {
		fmt.Fprintf(&b, "attachment lock file %s\n", id)
	}
	ids := make([]string, 0, len(f.attached))
	for id := range f.attached {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		a := f.attached[id]
		fmt.Fprintf(&b, "record of attachment %s (%s): step %s, ready %v, mode %s\n", a.Key.ID()[:8], a.Interface, a.State.Step, a.State.Ready, a.State.Mode)
	}
	return b.String()
}

var errInjected = errors.New("injected failure")

// sortedKeys returns m's keys in order, so that a description does not depend on map order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
