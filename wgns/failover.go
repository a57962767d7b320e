package wgns

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/vishvananda/netns"
	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"github.com/wgns/wgns/internal/atomicfile"
	"github.com/wgns/wgns/nsmgr"
	"github.com/wgns/wgns/wgns/config"
)

// Failover between redundant peers ([Namespace] Failover = on). The peers of a failover group
// list identical AllowedIPs, and one of them, the active one, holds them on the device: the others
// keep their keys and endpoints but no AllowedIPs, so WireGuard's cryptokey routing sends
// everything to the active one, and moving the group to another peer is one configuration call.
// The tunnel's supervisor decides when to move (supervisor/failover.go); this file holds what
// it needs of the tunnel, and what `status` and `check` read of its decisions.

// groupOf returns the failover group of cfg that peer i is in, and its place in the group.
func groupOf(cfg *config.Config, i int) (group, pos int, ok bool) {
	for g, gr := range cfg.Groups {
		if pos := slices.Index(gr.Peers, i); pos >= 0 {
			return g, pos, true
		}
	}
	return 0, 0, false
}

// activeOn returns, for each failover group of cfg, the place in the group of the peer that
// holds the group's AllowedIPs on device d, or -1 when none does, several do, or one holds only
// some of them.
func activeOn(cfg *config.Config, d *wgtypes.Device) []int {
	held := map[wgtypes.Key][]netip.Prefix{}
	for _, p := range d.Peers {
		held[p.PublicKey] = maskedIPs(p.AllowedIPs)
	}
	active := make([]int, len(cfg.Groups))
	for g, gr := range cfg.Groups {
		active[g] = -1
		want := cfg.Peers[gr.Peers[0]].AllowedIPs
		for pos, i := range gr.Peers {
			ips := held[cfg.Peers[i].PublicKey]
			switch {
			case len(ips) == 0:
				continue
			case active[g] == -1 && config.SamePrefixes(ips, want):
				active[g] = pos
				continue
			}
			active[g] = -2 // a second holder, or a part of the AllowedIPs
		}
		active[g] = max(active[g], -1)
	}
	return active
}

// maskedIPs converts a device's allowed IPs to masked prefixes.
func maskedIPs(nets []net.IPNet) []netip.Prefix {
	var out []netip.Prefix
	for _, a := range nets {
		if p, ok := ipNetToPrefix(&a); ok {
			out = append(out, p.Masked())
		}
	}
	return out
}

// allowedFor is what peer i of cfg holds when the groups' active peers are active (a place in
// each group; -1 counts as the first): its AllowedIPs, or none for a peer that stands by.
func allowedFor(cfg *config.Config, i int, active []int) []netip.Prefix {
	if g, pos, ok := groupOf(cfg, i); ok && pos != max(activeIn(active, g), 0) {
		return nil
	}
	return cfg.Peers[i].AllowedIPs
}

// activeIn is active[g], or -1 when active does not say.
func activeIn(active []int, g int) int {
	if g < len(active) {
		return active[g]
	}
	return -1
}

// holdBy makes wc, the configuration cfg asks for (wireGuardConfig), give each group's
// AllowedIPs to its active peer only.
func holdBy(wc *wgtypes.Config, cfg *config.Config, active []int) {
	for i := range wc.Peers {
		if len(allowedFor(cfg, i, active)) == 0 {
			wc.Peers[i].AllowedIPs = nil
		}
	}
}

// Failover moves the AllowedIPs of failover group (an index into Config().Groups) from the peer
// that holds them on the device to the next peer of the group in file order, wrapping around;
// the others are left none, whatever they held. The new peer's endpoint is resolved again
// first, and the move is one configuration call. A new session with the new peer is then
// started at once (as Rehandshake does). It returns the two peers. When the move is made but the
// session cannot be started at once, it returns both peers and an error that says so (WireGuard
// starts one with the next packet); when the move fails, to is the zero Key.
func (t *Tunnel) Failover(ctx context.Context, group int) (from, to wgtypes.Key, err error) {
	if group < 0 || group >= len(t.cfg.Groups) {
		return from, to, fmt.Errorf("tunnel %q has no failover group %d", t.Name, group+1)
	}
	unlock, err := t.sys.lock(t.Name)
	if err != nil {
		return from, to, err
	}
	defer unlock()
	ns, err := t.sys.nsOpen(t.Name)
	if err != nil {
		return from, to, err
	}
	defer ns.close()
	d, err := ns.device(t.iface())
	if err != nil {
		return from, to, err
	}
	gr := t.cfg.Groups[group]
	cur := activeOn(t.cfg, d)[group]
	if cur < 0 { // no single holder: go on from the one this process gave them to
		cur = max(activeIn(t.active, group), 0)
	}
	next := (cur + 1) % len(gr.Peers)
	old, nw := t.cfg.Peers[gr.Peers[cur]], t.cfg.Peers[gr.Peers[next]]
	from = old.PublicKey

	var update wgtypes.Config
	for pos, i := range gr.Peers {
		if pos != next {
			update.Peers = append(update.Peers, wgtypes.PeerConfig{PublicKey: t.cfg.Peers[i].PublicKey, UpdateOnly: true, ReplaceAllowedIPs: true})
		}
	}
	pc := wgtypes.PeerConfig{PublicKey: nw.PublicKey, UpdateOnly: true, ReplaceAllowedIPs: true}
	for _, a := range nw.AllowedIPs {
		pc.AllowedIPs = append(pc.AllowedIPs, *prefixToIPNet(a))
	}
	if nw.EndpointHost != "" {
		if ep, err := t.sys.lookup(ctx, nw); err == nil {
			pc.Endpoint = ep // else the address it has
		}
	}
	update.Peers = append(update.Peers, pc)
	if err := ns.configure(t.iface(), update); err != nil {
		return from, to, fmt.Errorf("moving the AllowedIPs of failover group %d to peer %s: %w", group+1, nw.PublicKey, err)
	}
	to = nw.PublicKey
	t.setActive(group, next)

	d, err = ns.device(t.iface())
	if err == nil {
		i := slices.IndexFunc(d.Peers, func(p wgtypes.Peer) bool { return p.PublicKey == to })
		if i < 0 {
			return from, to, fmt.Errorf("starting a session with peer %s at once: the peer is gone from the device", to)
		}
		err = t.dev.rehandshake(ns, d.Peers[i:i+1])
	}
	if err != nil {
		return from, to, fmt.Errorf("starting a session with peer %s at once: %w", to, err)
	}
	return from, to, nil
}

// setActive remembers that the peer at place pos of group holds its AllowedIPs: a device made
// again (Recover) gives them to that peer, not to the first.
func (t *Tunnel) setActive(group, pos int) {
	for len(t.active) < len(t.cfg.Groups) {
		t.active = append(t.active, 0)
	}
	t.active[group] = pos
}

// GroupView is a failover group as the device has it now.
type GroupView struct {
	// Active is the place in the group (config.Group.Peers) of the peer that holds the group's
	// AllowedIPs, or -1 when none does, or several do.
	Active int
	// Peers are the group's peers, in the group's order.
	Peers []PeerView
}

// PeerView is what the failover prober reads of a peer.
type PeerView struct {
	Key           wgtypes.Key
	RxBytes       int64
	TxBytes       int64
	LastHandshake time.Time
}

// FailoverView reads the failover groups (Config().Groups, in order) off the device. It reads
// only, and may run beside the other methods (on another goroutine).
func (t *Tunnel) FailoverView() ([]GroupView, error) {
	ns, err := t.sys.nsOpen(t.Name)
	if err != nil {
		return nil, err
	}
	defer ns.close()
	d, err := ns.device(t.iface())
	if err != nil {
		return nil, err
	}
	byKey := map[wgtypes.Key]wgtypes.Peer{}
	for _, p := range d.Peers {
		byKey[p.PublicKey] = p
	}
	active := activeOn(t.cfg, d)
	out := make([]GroupView, len(t.cfg.Groups))
	for g, gr := range t.cfg.Groups {
		out[g].Active = active[g]
		for _, i := range gr.Peers {
			k := t.cfg.Peers[i].PublicKey
			p := byKey[k]
			out[g].Peers = append(out[g].Peers, PeerView{Key: k, RxBytes: p.ReceiveBytes, TxBytes: p.TransmitBytes, LastHandshake: p.LastHandshakeTime})
		}
	}
	return out, nil
}

// FailoverRecord is what a tunnel's supervisor records of its failover groups, for `wgns status`
// and `wgns check` (other processes) to read.
type FailoverRecord struct {
	Groups []GroupRecord
}

// GroupRecord is the record of one failover group.
type GroupRecord struct {
	// Peers are the group's peers, in file order.
	Peers []wgtypes.Key
	// Check is the address the supervisor probes through the group's active peer; the zero
	// Addr when the group is judged from WireGuard's counters.
	Check netip.Addr
	// Failovers counts the moves of the group's AllowedIPs to another peer since up.
	Failovers int
	// LastFailover is the time of the last one (zero if none).
	LastFailover time.Time
	// DownSince is when every peer of the group had been tried and none answered; zero while one
	// does.
	DownSince time.Time
}

// failoverFile is the format of RunDir/NAME.failover.json, owned here: fields are only ever added.
type failoverFile struct {
	Version     int                 `json:"version"`
	HolderPID   int                 `json:"holder_pid"`
	HolderStart uint64              `json:"holder_start"`
	Groups      []failoverFileGroup `json:"groups"`
}

type failoverFileGroup struct {
	Peers        []string  `json:"peers"`
	Check        string    `json:"check,omitempty"`
	Failovers    int       `json:"failovers"`
	LastFailover time.Time `json:"last_failover,omitzero"`
	DownSince    time.Time `json:"down_since,omitzero"`
}

const failoverVersion = 1

func failoverPath(name string) string { return filepath.Join(runDir, name+".failover.json") }

// RecordFailovers writes r, as this process's (the tunnel's holder's) record of the tunnel's
// failover groups. It may run beside the other methods.
func (t *Tunnel) RecordFailovers(r FailoverRecord) error {
	if t.att != nil {
		return nil // `wgns status` shows no attachment: its failovers are in its holder's log only
	}
	pid, start := t.sys.self()
	return t.sys.writeFailovers(t.Name, pid, start, &r)
}

// writeFailovers writes NAME's failover record, as the record of holder pid (started at start),
// readable by root only.
func writeFailovers(name string, pid int, start uint64, r *FailoverRecord) error {
	f := failoverFile{Version: failoverVersion, HolderPID: pid, HolderStart: start, Groups: []failoverFileGroup{}}
	for _, g := range r.Groups {
		fg := failoverFileGroup{Failovers: g.Failovers, LastFailover: g.LastFailover.UTC(), DownSince: g.DownSince.UTC()}
		if g.Check.IsValid() {
			fg.Check = g.Check.String()
		}
		for _, k := range g.Peers {
			fg.Peers = append(fg.Peers, k.String())
		}
		f.Groups = append(f.Groups, fg)
	}
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(runDir, 0o700); err != nil {
		return err
	}
	if err := atomicfile.Write(failoverPath(name), append(b, '\n'), 0o600, atomicfile.Options{}); err != nil {
		return fmt.Errorf("recording the failovers of tunnel %q: %w", name, err)
	}
	return nil
}

// readFailovers reads NAME's failover record; nil, nil when there is none, or when it was left by
// another process than st's holder (a holder that died, or a tunnel brought up again since).
func readFailovers(name string, st *State) (*FailoverRecord, error) {
	b, err := os.ReadFile(failoverPath(name))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the failovers of tunnel %q: %w", name, err)
	}
	return parseFailovers(name, b, st)
}

func parseFailovers(name string, b []byte, st *State) (*FailoverRecord, error) {
	var f failoverFile
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("reading the failovers of tunnel %q: %s: %w", name, failoverPath(name), err)
	}
	if f.Version > failoverVersion {
		return nil, fmt.Errorf("reading the failovers of tunnel %q: %s has format version %d; this wgns reads up to %d", name, failoverPath(name), f.Version, failoverVersion)
	}
	if f.HolderPID != st.PID || f.HolderStart != st.Start {
		return nil, nil
	}
	r := &FailoverRecord{}
	for _, fg := range f.Groups {
		g := GroupRecord{Failovers: fg.Failovers, LastFailover: fg.LastFailover, DownSince: fg.DownSince}
		if fg.Check != "" {
			var err error
			if g.Check, err = netip.ParseAddr(fg.Check); err != nil {
				return nil, fmt.Errorf("reading the failovers of tunnel %q: %s: %w", name, failoverPath(name), err)
			}
		}
		for _, s := range fg.Peers {
			k, err := wgtypes.ParseKey(s)
			if err != nil {
				return nil, fmt.Errorf("reading the failovers of tunnel %q: %s: %w", name, failoverPath(name), err)
			}
			g.Peers = append(g.Peers, k)
		}
		r.Groups = append(r.Groups, g)
	}
	return r, nil
}

func (hostSystem) readFailovers(name string, st *State) (*FailoverRecord, error) {
	return readFailovers(name, st)
}

func (hostSystem) writeFailovers(name string, pid int, start uint64, r *FailoverRecord) error {
	return writeFailovers(name, pid, start, r)
}

// EchoReply is an ICMP echo reply that an Echo received.
type EchoReply struct {
	From netip.Addr
	Seq  int
	At   time.Time // when it was read
}

// Echo sends ICMP echo requests from inside a tunnel's namespace and reports the replies to
// them: the failover prober's probes. Its raw sockets are made inside the namespace (on a thread
// of nsmgr.Do) and stay there, whatever thread uses them; the namespace's firewall lets the
// replies in as replies. The caller must Close it.
type Echo struct {
	id      int
	c4, c6  *icmp.PacketConn
	replies chan EchoReply
	once    sync.Once
}

// OpenEcho opens an Echo in the tunnel's namespace, for IPv4 and IPv6 as the failover groups'
// check addresses need.
func (t *Tunnel) OpenEcho() (*Echo, error) {
	var v4, v6 bool
	for _, g := range t.cfg.Groups {
		v4 = v4 || g.Check.Is4()
		v6 = v6 || g.Check.Is6()
	}
	ns, err := t.sys.nsOpen(t.Name)
	if err != nil {
		return nil, err
	}
	defer ns.close()
	e := &Echo{id: 1 + rand.IntN(0xfffe), replies: make(chan EchoReply, 64)}
	err = nsmgr.Do(netns.NsHandle(ns.fd()), func() error {
		var err error
		if v4 {
			if e.c4, err = icmp.ListenPacket("ip4:icmp", "0.0.0.0"); err != nil {
				return err
			}
		}
		if v6 {
			if e.c6, err = icmp.ListenPacket("ip6:ipv6-icmp", "::"); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		e.Close()
		return nil, fmt.Errorf("opening an ICMP socket in namespace %q: %w", t.Name, err)
	}
	if e.c6 != nil {
		var f ipv6.ICMPFilter
		f.SetAll(true)
		f.Accept(ipv6.ICMPTypeEchoReply)
		e.c6.IPv6PacketConn().SetICMPFilter(&f)
	}
	for _, c := range []*icmp.PacketConn{e.c4, e.c6} {
		if c != nil {
			go e.read(c)
		}
	}
	return e, nil
}

// read reports the echo replies that c receives with e's identifier, until c is closed. A reply
// that finds the channel full is dropped, like a lost one.
func (e *Echo) read(c *icmp.PacketConn) {
	proto := ipv4.ICMPTypeEchoReply.Protocol()
	if c == e.c6 {
		proto = ipv6.ICMPTypeEchoReply.Protocol()
	}
	b := make([]byte, 1500)
	for {
		n, from, err := c.ReadFrom(b)
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil {
			continue
		}
		m, err := icmp.ParseMessage(proto, b[:n])
		if err != nil || (m.Type != ipv4.ICMPTypeEchoReply && m.Type != ipv6.ICMPTypeEchoReply) {
			continue
		}
		echo, ok := m.Body.(*icmp.Echo)
		if !ok || echo.ID != e.id {
			continue
		}
		ip, ok := from.(*net.IPAddr)
		if !ok {
			continue
		}
		a, _ := netip.AddrFromSlice(ip.IP)
		select {
		case e.replies <- EchoReply{From: a.Unmap(), Seq: echo.Seq, At: time.Now()}:
		default:
		}
	}
}

// Send sends an echo request with sequence number seq (modulo 2^16) to a.
func (e *Echo) Send(a netip.Addr, seq int) error {
	m := icmp.Message{Type: ipv4.ICMPTypeEcho, Body: &icmp.Echo{ID: e.id, Seq: seq & 0xffff, Data: []byte("wgns failover probe")}}
	c := e.c4
	if a.Is6() {
		m.Type, c = ipv6.ICMPTypeEchoRequest, e.c6
	}
	if c == nil {
		return fmt.Errorf("no ICMP socket for %v", a)
	}
	b, err := m.Marshal(nil) // the kernel computes an ICMPv6 checksum itself
	if err != nil {
		return err
	}
	_, err = c.WriteTo(b, &net.IPAddr{IP: a.AsSlice()})
	return err
}

// Replies delivers the replies to this Echo's requests.
func (e *Echo) Replies() <-chan EchoReply { return e.replies }

// Close closes the sockets.
func (e *Echo) Close() error {
	e.once.Do(func() {
		for _, c := range []*icmp.PacketConn{e.c4, e.c6} {
			if c != nil {
				c.Close()
			}
		}
	})
	return nil
}

// addFailovers fills s's failover fields from the supervisor's record and the device's peers.
func (s *Status) addFailovers(rec *FailoverRecord, peers []wgtypes.Peer) {
	holds := map[string]bool{}
	for _, p := range peers {
		holds[p.PublicKey.String()] = len(p.AllowedIPs) > 0
	}
	total := 0
	for g, gr := range rec.Groups {
		gs := GroupStatus{Group: g + 1, Peers: []string{}, Failovers: gr.Failovers, LastFailover: gr.LastFailover, DownSince: gr.DownSince}
		if gr.Check.IsValid() {
			gs.Check = gr.Check.String()
		}
		holders := 0
		for _, k := range gr.Peers {
			key := k.String()
			gs.Peers = append(gs.Peers, key)
			if holds[key] {
				holders++
				gs.Active = key
			}
			for i := range s.Peers {
				if s.Peers[i].PublicKey == key {
					active := holds[key]
					s.Peers[i].Group, s.Peers[i].Active = g+1, &active
				}
			}
		}
		if holders != 1 {
			gs.Active = ""
		}
		total += gr.Failovers
		if gr.LastFailover.After(s.LastFailover) {
			s.LastFailover = gr.LastFailover
		}
		s.FailoverGroups = append(s.FailoverGroups, gs)
	}
	s.Failovers = &total
}

// standingBy reports whether p is a peer of a failover group that does not hold its AllowedIPs
// (it carries no traffic, so its handshakes say nothing of the tunnel).
func (f *checkFacts) standingBy(p peerFact) bool {
	if f.failovers == nil || p.allowed > 0 {
		return false
	}
	for _, g := range f.failovers.Groups {
		for _, k := range g.Peers {
			if k.String() == p.key {
				return true
			}
		}
	}
	return false
}

// checkFailover judges the failover groups: the supervisor watches them (its record), one peer
// of each holds the group's AllowedIPs, and it answers. ok is false, and the check left out, for
// a tunnel without failover groups.
func checkFailover(f *checkFacts) (_ CheckResult, ok bool) {
	if f.failovers == nil && f.failoversErr == nil && (f.cfg == nil || len(f.cfg.Groups) == 0) {
		return CheckResult{}, false
	}
	switch {
	case f.failoversErr != nil:
		return notChecked(CheckFailover, f.failoversErr), true
	case f.failovers == nil:
		return fail(CheckFailover, fmt.Sprintf("the config has failover groups, but the tunnel's supervisor (process %d) keeps no record of them: nothing moves them on", f.state.PID)), true
	case f.nsErr != nil:
		return noNamespace(CheckFailover), true
	case f.wgErr != nil:
		return fail(CheckFailover, "no WireGuard device to ask: "+f.wgErr.Error()), true
	}
	held := map[string]bool{}
	for _, p := range f.peers {
		held[p.key] = p.allowed > 0
	}
	var faults, oks []string
	for i, g := range f.failovers.Groups {
		var holders []string
		for _, k := range g.Peers {
			if held[k.String()] {
				holders = append(holders, k.String())
			}
		}
		how := "judged by WireGuard's counters"
		if g.Check.IsValid() {
			how = "probing " + g.Check.String()
		}
		moves := "no failover yet"
		if g.Failovers > 0 {
			moves = fmt.Sprintf("%d failovers, the last %s ago", g.Failovers, f.now.Sub(g.LastFailover).Round(time.Second))
		}
		switch {
		case !g.DownSince.IsZero():
			faults = append(faults, fmt.Sprintf("group %d: none of its %d peers answers, for %s (%s): its traffic goes nowhere, and nothing leaves outside the tunnel",
				i+1, len(g.Peers), f.now.Sub(g.DownSince).Round(time.Second), how))
		case len(holders) != 1:
			faults = append(faults, fmt.Sprintf("group %d: %d of its peers hold its AllowedIPs, not one", i+1, len(holders)))
		default:
			oks = append(oks, fmt.Sprintf("group %d: peer %s active of %d, answering (%s); %s", i+1, holders[0], len(g.Peers), how, moves))
		}
	}
	if len(faults) > 0 {
		return fail(CheckFailover, faults...), true
	}
	return pass(CheckFailover, strings.Join(oks, "; ")), true
}
