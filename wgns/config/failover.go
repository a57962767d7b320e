package config

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"
)

// Failover between redundant peers: the [Namespace] keys Failover, FailoverTimeout and
// FailoverCheck, and the failover groups they make. What the manual says of each key is in
// cmd/wgns/confkeys.go.

const (
	minFailoverTimeout = time.Second
	maxFailoverTimeout = 5 * time.Minute
)

// failoverLines is what the parser remembers of the failover keys while it reads.
type failoverLines struct {
	failover int                // the Failover line
	timeout  int                // the FailoverTimeout line
	check    int                // the first FailoverCheck line
	checks   map[netip.Addr]int // each FailoverCheck address, by line
	none     int                // the line of "FailoverCheck = none"
	shared   []sharedAt         // AllowedIPs listed by more than one peer
}

// sharedAt is an AllowedIPs prefix listed by a peer after another peer listed it.
type sharedAt struct {
	pfx   netip.Prefix
	line  int
	peer  *peerState
	first allowedAt // where another peer listed it first
}

// failoverKey handles a non-empty value of Failover or FailoverTimeout.
func (p *parser) failoverKey(n int, key, v string) error {
	ns := &p.cfg.Namespace
	switch key {
	case "Failover":
		on, ok := parseSwitch(v)
		if !ok {
			return p.errf(n, "invalid Failover %s: must be on or off", p.show(v))
		}
		ns.Failover, p.fo.failover = on, n
	case "FailoverTimeout":
		d, ok := parseTimeout(v)
		if !ok || d < minFailoverTimeout || d > maxFailoverTimeout {
			return p.errf(n, "invalid FailoverTimeout %s: must be a duration from %v to %v, like 2s or 1500ms", p.show(v), minFailoverTimeout, maxFailoverTimeout)
		}
		ns.FailoverTimeout, p.fo.timeout = d, n
	}
	return nil
}

// parseTimeout reads a duration with a unit (Go's syntax: 2s, 1500ms, 1m30s), or a whole
// number of seconds.
func parseTimeout(v string) (time.Duration, bool) {
	if secs, ok := parseUint(v); ok {
		return time.Duration(secs) * time.Second, true
	}
	if v[0] == '+' || v[0] == '-' {
		return 0, false
	}
	d, err := time.ParseDuration(v)
	return d, err == nil
}

// failoverCheck handles one entry of FailoverCheck: an address, or none.
func (p *parser) failoverCheck(n int, e string) error {
	ns := &p.cfg.Namespace
	if p.fo.check == 0 {
		p.fo.check = n
	}
	if strings.EqualFold(e, "none") || strings.EqualFold(e, "off") {
		if len(ns.FailoverCheck) > 0 {
			return p.errf(n, "FailoverCheck %s cannot go with addresses (line %d); give addresses, or none", p.show(e), p.fo.checks[ns.FailoverCheck[0]])
		}
		ns.FailoverCheckOff, p.fo.none = true, n
		return nil
	}
	a, err := netip.ParseAddr(e)
	if err != nil {
		return p.errf(n, "invalid FailoverCheck %s: not an IP address (or none)", p.show(e))
	}
	why := checkHostAddr(a)
	if a.Zone() != "" {
		why = "IPv6 zones are not allowed"
	}
	if why != "" {
		return p.errf(n, "invalid FailoverCheck %s: %s", p.show(e), why)
	}
	if p.fo.none != 0 {
		return p.errf(n, "FailoverCheck %v cannot go with none (line %d); give addresses, or none", a, p.fo.none)
	}
	if p.fo.checks == nil {
		p.fo.checks = map[netip.Addr]int{}
	}
	if err := listedOnce(p, p.fo.checks, a, n, "FailoverCheck"); err != nil {
		return err
	}
	ns.FailoverCheck = append(ns.FailoverCheck, a)
	return nil
}

// sharedAllowedIPs refuses a prefix listed by two peers, unless Failover = on and the two peers'
// AllowedIPs are identical, which makes them one failover group.
func (p *parser) sharedAllowedIPs() error {
	for _, sh := range p.fo.shared {
		if !p.cfg.Namespace.Failover {
			return p.errf(sh.line, "AllowedIPs %v is already allowed for the [Peer] on line %d (AllowedIPs on line %d); a prefix can belong to one peer only, unless [Namespace] Failover = on makes peers with identical AllowedIPs a failover group",
				sh.pfx, sh.first.peer.Line, sh.first.line)
		}
		if !SamePrefixes(sh.peer.AllowedIPs, sh.first.peer.AllowedIPs) {
			return p.errf(sh.line, "AllowedIPs %v is already allowed for the [Peer] on line %d (AllowedIPs on line %d); with Failover = on, peers that share a prefix form a failover group and must list the same AllowedIPs (that one lists %s, this one %s)",
				sh.pfx, sh.first.peer.Line, sh.first.line, listPrefixes(sh.first.peer.AllowedIPs), listPrefixes(sh.peer.AllowedIPs))
		}
	}
	return nil
}

// SamePrefixes reports whether a and b hold the same prefixes, in any order; each must list a
// prefix once, as a parsed peer's AllowedIPs do.
func SamePrefixes(a, b []netip.Prefix) bool {
	if len(a) != len(b) {
		return false
	}
	for _, x := range a {
		if !slices.Contains(b, x) {
			return false
		}
	}
	return true
}

// listPrefixes writes prefixes for a message, at most a few of them.
func listPrefixes(ps []netip.Prefix) string {
	const most = 4
	s := make([]string, 0, most)
	for i, x := range ps {
		if i == most {
			return strings.Join(s, ", ") + fmt.Sprintf(" and %d more", len(ps)-most)
		}
		s = append(s, x.String())
	}
	return strings.Join(s, ", ")
}

// failoverGroups forms the failover groups (Config.Groups), gives each its address to probe,
// and checks FailoverCheck against them. It runs once Config.Peers is complete.
func (p *parser) failoverGroups() error {
	c, fo := &p.cfg, &p.fo
	if !c.Namespace.Failover {
		if fo.timeout != 0 {
			p.warnf(fo.timeout, "FailoverTimeout means nothing without Failover = on")
		}
		if fo.check != 0 {
			p.warnf(fo.check, "FailoverCheck means nothing without Failover = on")
		}
		return nil
	}
	// Each peer's group is that of the first peer with the same AllowedIPs; a peer that no
	// other shares them with is in none.
	first := make([]int, len(p.peers))
	for i, peer := range p.peers {
		first[i] = i
		if len(peer.AllowedIPs) > 0 {
			first[i] = slices.IndexFunc(p.peers[:i+1], func(q *peerState) bool { return SamePrefixes(q.AllowedIPs, peer.AllowedIPs) })
		}
	}
	groupOf := make([]int, len(p.peers)) // peer -> index into c.Groups, or -1
	for i := range p.peers {
		groupOf[i] = -1
		switch {
		case first[i] != i:
			groupOf[i] = groupOf[first[i]]
			c.Groups[groupOf[i]].Peers = append(c.Groups[groupOf[i]].Peers, i)
		case slices.Contains(first[i+1:], i):
			groupOf[i] = len(c.Groups)
			c.Groups = append(c.Groups, Group{Peers: []int{i}})
		}
	}
	if len(c.Groups) == 0 {
		p.warnf(fo.failover, "Failover = on, but no two peers list the same AllowedIPs: there is no failover group")
	}
	// The address each group probes: FailoverCheck's, else the first DNS server it routes.
	checkLine := map[int]int{} // group -> the FailoverCheck line that gave its address
	for _, a := range c.Namespace.FailoverCheck {
		n := fo.checks[a]
		i := p.routedBy(a)
		switch {
		case i < 0:
			return p.errf(n, "FailoverCheck %v is in no peer's AllowedIPs: a probe could not reach it", a)
		case groupOf[i] < 0:
			return p.errf(n, "FailoverCheck %v is routed to the [Peer] on line %d, which is in no failover group (no other peer lists the same AllowedIPs)", a, p.peers[i].Line)
		}
		g := &c.Groups[groupOf[i]]
		if g.Check.IsValid() {
			return p.errf(n, "FailoverCheck %v probes the same failover group as %v (line %d); give one address per group", a, g.Check, checkLine[groupOf[i]])
		}
		g.Check, checkLine[groupOf[i]] = a, n
	}
	if c.Namespace.FailoverCheck == nil && !c.Namespace.FailoverCheckOff {
		for _, a := range c.Interface.DNS {
			if i := p.routedBy(a); i >= 0 && groupOf[i] >= 0 && !c.Groups[groupOf[i]].Check.IsValid() {
				c.Groups[groupOf[i]].Check = a
			}
		}
	}
	for _, g := range c.Groups {
		first, second := p.peers[g.Peers[0]], p.peers[g.Peers[1]]
		if !g.Check.IsValid() && !c.Namespace.FailoverCheckOff {
			p.warnf(first.Line, "the failover group of this [Peer] and the one on line %d has no address to probe (no FailoverCheck or DNS server in its AllowedIPs): a peer that stops answering is noticed from WireGuard's own counters, after about 15 s",
				second.Line)
		}
		for _, i := range g.Peers {
			if p.peers[i].Endpoint == "" {
				p.warnf(p.peers[i].Line, "[Peer] is in a failover group but has no Endpoint: wgns cannot start a session with it, so it can take over only after it reached this side")
			}
		}
	}
	return nil
}

// routedBy returns the index of the peer that WireGuard's cryptokey routing sends a to (the one
// with the longest AllowedIPs prefix that contains it; the first of a group), or -1.
func (p *parser) routedBy(a netip.Addr) int {
	best, bits := -1, -1
	for i, peer := range p.peers {
		for _, pfx := range peer.AllowedIPs {
			if pfx.Contains(a) && pfx.Bits() > bits {
				best, bits = i, pfx.Bits()
			}
		}
	}
	return best
}
