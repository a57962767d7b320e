// Package firewall installs, removes and audits wgns's own nftables table in a network
// namespace, through google/nftables bound to the namespace's fd (no thread ever switches
// namespace here, and nothing shells out to nft).
//
// The table (family inet, so IPv4 and IPv6 alike) is the namespace's kill switch:
//
//	table inet wgns {
//		counter dropped_input { }
//		counter dropped_output { }
//		counter dropped_forward { }
//		set forwarded_tcp { type inet_service; }   # with PortForward
//		set forwarded_udp { type inet_service; }   # with PortForward
//		chain input {
//			type filter hook input priority filter; policy drop;
//			iif "lo" accept
//			iifname "TUNNEL" ct state established,related accept
//			iifname "TUNNEL" tcp dport PORT ct state new accept   # one per AllowInbound port
//			iifname "TUNNEL" tcp dport @forwarded_tcp ct state new accept   # with PortForward
//			iifname "TUNNEL" udp dport @forwarded_udp ct state new accept   # with PortForward
//			iifname "PRIMARY" ip saddr PREFIX accept              # one per kept prefix (CNI, chained)
//			iifname "PRIMARY" icmpv6 type nd-neighbor-solicit accept  # with a kept IPv6 prefix,
//			iifname "PRIMARY" icmpv6 type nd-neighbor-advert accept   # so its gateway is found
//			counter name "dropped_input"
//		}
//		chain output {
//			type filter hook output priority filter; policy drop;
//			oif "lo" accept
//			oifname "TUNNEL" accept
//			oifname "PRIMARY" ip daddr PREFIX accept              # one per kept prefix (CNI, chained)
//			oifname "PRIMARY" icmpv6 type nd-neighbor-solicit accept  # with a kept IPv6 prefix
//			oifname "PRIMARY" icmpv6 type nd-neighbor-advert accept
//			counter name "dropped_output"
//		}
//		chain forward {
//			type filter hook forward priority filter; policy drop;
//			counter name "dropped_forward"
//		}
//	}
//
// Design notes:
//
//   - The tunnel is matched by name (oifname/iifname), not by index, so the table can be in place
//     before the tunnel interface exists or enters the namespace: there is no moment in which the
//     tunnel carries traffic unfiltered. When the tunnel dies the table stays and everything but
//     lo is dropped (fail closed). lo is matched by index (oif/iif): it always exists and is
//     always index 1 (LOOPBACK_IFINDEX) in a network namespace.
//   - Priority: the chains use the filter priority (0). Within one hook nftables runs every base
//     chain of every table in priority order; accept only ends the current base chain while drop
//     is final. So no other table, at any priority, can let through what this table drops, and
//     a lower (earlier) priority would buy nothing. Conntrack (priority -200) has run before these
//     chains, so ct state is known; routing has chosen the output interface before the output
//     hook, so oifname is the real one.
//   - No ICMPv6 neighbour discovery is allowed: WireGuard is a layer-3 interface without
//     neighbours, and lo needs none; ND on any other link is exactly what must not happen.
//     ICMP and ICMPv6 errors belonging to a connection (e.g. packet too big, for path MTU
//     discovery) are accepted as ct state related.
//   - The drop counters are named counter objects (one per chain) in a last rule before the
//     drop policy, so `nft list counters` shows them and State.Dropped sums them. They restart
//     from zero whenever Apply replaces the table.
//   - The port a VPN provider forwards (NAT-PMP) changes while the tunnel runs, so it is not a
//     rule but an element of a named set, one per protocol, which SetForwarded replaces in one
//     transaction without touching anything else. The sets hold at most one port each; Apply
//     keeps what they hold when it replaces the table (repair), and Inspect reports it
//     (State.Forwarded) as part of a matching table.
//   - A namespace that also has a primary interface (a container's, when wgns is a CNI plugin
//     chained after ptp or bridge) keeps some prefixes on it: the cluster's pod and service
//     ranges. Only those prefixes pass that interface, both ways (a pod must be reachable by its
//     peers and services); everything else on it is dropped, so the primary network's default
//     route, if it stays, carries nothing. With a kept IPv6 prefix, neighbour solicitations and
//     advertisements pass too (the gateway's address must be resolved), but no router
//     advertisement, which could add routes.
//   - Inspect audits this table only. Other tables in the namespace cannot undo its drops (see
//     priority), but they are not reported; a rule google/nftables cannot fully decode is
//     reported as not matching rather than trusted.
package firewall

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// TableName is the name of wgns's nftables table (family inet) in each namespace.
const TableName = "wgns"

// Port is one inbound port opened from the tunnel: a port number and a protocol, "tcp" or "udp".
type Port struct {
	Port  uint16
	Proto string // "tcp" or "udp"
}

// String returns the port in config form, e.g. "8080/tcp".
func (p Port) String() string { return fmt.Sprintf("%d/%s", p.Port, p.Proto) }

// Rules describes the table for one namespace.
type Rules struct {
	// Tunnel is the tunnel interface's name. It is matched by name (oifname/iifname), so the
	// rules can exist before the interface does.
	Tunnel string
	// AllowInbound lists the ports on which new connections from the tunnel are accepted.
	// Order and duplicates do not matter.
	AllowInbound []Port
	// Primary is another interface of the namespace (a container's primary interface, when wgns
	// is chained after another CNI plugin), on which only the Keep prefixes pass; "" when there
	// is none. It is matched by name too.
	Primary string
	// Keep lists the prefixes that pass Primary, to and from; order and duplicates do not
	// matter, and a prefix with host bits set is refused.
	Keep []netip.Prefix
	// PortForward adds the sets forwarded_tcp and forwarded_udp, and the rules that accept new
	// connections from the tunnel to the ports they hold (see SetForwarded).
	PortForward bool
}

// loIfindex is the index of lo in every network namespace (LOOPBACK_IFINDEX).
const loIfindex = 1

var table = &nftables.Table{Name: TableName, Family: nftables.TableFamilyINet}

// Apply installs the wgns table described by r in the network namespace open as nsFd, or
// atomically replaces the one that is there. It sends one netlink batch (add table, delete
// table, add table, counters, chains, rules) that the kernel applies as a single transaction,
// so the namespace is never without the table, and a failure leaves the previous state as it
// was. nsFd must be an open network namespace (fd 0 and other fds are refused with
// ErrNotNetns). Apply never switches the calling thread's namespace; the caller keeps nsFd open
// and closes it.
func Apply(nsFd int, r Rules) error {
	if err := apply(nsFd, r, true); err != nil {
		return fmt.Errorf("installing firewall table %q in namespace fd %d: %w", TableName, nsFd, err)
	}
	return nil
}

// Install is Apply for a namespace that has no wgns table yet (one just created): it adds the
// table without first deleting one, which spares the transaction the RCU grace period that a
// deletion costs (about 8 ms of an up here). If a table is there after all, it fails and
// changes nothing.
func Install(nsFd int, r Rules) error {
	if err := apply(nsFd, r, false); err != nil {
		return fmt.Errorf("installing firewall table %q in namespace fd %d: %w", TableName, nsFd, err)
	}
	return nil
}

func apply(nsFd int, r Rules, replace bool) error {
	spec, err := build(r)
	if err != nil {
		return err
	}
	if err := checkNetns(nsFd); err != nil {
		return err
	}
	c, err := nftables.New(nftables.WithNetNSFd(nsFd))
	if err != nil {
		return err
	}
	var keep []Port
	if replace && len(spec.sets) > 0 {
		keep = keptForwarded(c)
	}
	// Add first so that the delete cannot fail when the table is absent; both are part of the
	// same transaction as the new table.
	if replace {
		c.AddTable(table)
		c.DelTable(table)
		c.AddTable(table)
	} else {
		// NLM_F_EXCL: a table already there fails the whole transaction.
		c.CreateTable(table)
	}
	for _, name := range spec.counters {
		c.AddObj(&nftables.NamedObj{Table: table, Name: name, Type: nftables.ObjTypeCounter, Obj: &expr.Counter{}})
	}
	setIDs := map[string]uint32{}
	for _, name := range spec.sets {
		s := forwardedSet(name)
		if err := c.AddSet(s, elementsFor(keep, name)); err != nil {
			return err
		}
		setIDs[name] = s.ID
	}
	for _, cs := range spec.chains {
		ch := c.AddChain(&nftables.Chain{
			Name:     cs.name,
			Table:    table,
			Type:     nftables.ChainTypeFilter,
			Hooknum:  nftables.ChainHookRef(cs.hook),
			Priority: nftables.ChainPriorityFilter,
			Policy:   ptr(nftables.ChainPolicyDrop),
		})
		for _, rs := range cs.rules {
			c.AddRule(&nftables.Rule{Table: table, Chain: ch, Exprs: withSetIDs(rs.exprs, setIDs)})
		}
	}
	return c.Flush()
}

// Remove deletes the wgns table from the network namespace open as nsFd. An absent table is not
// an error; an fd that is not a network namespace is (ErrNotNetns). The caller keeps nsFd open
// and closes it.
func Remove(nsFd int) error {
	err := checkNetns(nsFd)
	var c *nftables.Conn
	if err == nil {
		c, err = nftables.New(nftables.WithNetNSFd(nsFd))
	}
	if err == nil {
		c.AddTable(table)
		c.DelTable(table)
		err = c.Flush()
	}
	if err != nil {
		return fmt.Errorf("removing firewall table %q in namespace fd %d: %w", TableName, nsFd, err)
	}
	return nil
}

// ErrNotNetns is returned (wrapped) when the fd given is not an open network namespace.
var ErrNotNetns = errors.New("not a network namespace")

// checkNetns makes sure fd refers to a network namespace. This matters beyond a clear error:
// the netlink library takes fd 0 to mean the caller's own namespace, so a zero fd would put
// the table (and its drop policy) on the host.
func checkNetns(fd int) error {
	if fd <= 0 {
		return fmt.Errorf("fd %d: %w", fd, ErrNotNetns)
	}
	typ, err := unix.IoctlRetInt(fd, unix.NS_GET_NSTYPE)
	if err != nil {
		return fmt.Errorf("fd %d: %w (%w)", fd, ErrNotNetns, err)
	}
	if typ != unix.CLONE_NEWNET {
		return fmt.Errorf("fd %d: %w", fd, ErrNotNetns)
	}
	return nil
}

func ptr[T any](v T) *T { return &v }

// tableSpec is the table Apply installs for some Rules, in the form both Apply and Inspect use.
type tableSpec struct {
	counters []string
	sets     []string // the forwarded-port sets, each of type inet_service
	chains   []chainSpec
}

type chainSpec struct {
	name    string
	hook    nftables.ChainHook
	counter string
	rules   []ruleSpec
}

// ruleSpec is one rule: its expressions and how nft would print it.
type ruleSpec struct {
	text  string
	exprs []expr.Any
}

// build returns the table for r. It is the one description of the table: Apply installs it and
// Inspect compares against it.
func build(r Rules) (tableSpec, error) {
	if err := validIfname(r.Tunnel); err != nil {
		return tableSpec{}, fmt.Errorf("tunnel interface name %q: %w", r.Tunnel, err)
	}
	ports, err := normalPorts(r.AllowInbound)
	if err != nil {
		return tableSpec{}, err
	}
	tun := strconv.Quote(r.Tunnel)

	input := []ruleSpec{
		{`iif "lo" accept`, seq(ifindex(expr.MetaKeyIIF, loIfindex), accept())},
		{`iifname ` + tun + ` ct state established,related accept`,
			seq(ifname(expr.MetaKeyIIFNAME, r.Tunnel), ctState(expr.CtStateBitESTABLISHED|expr.CtStateBitRELATED), accept())},
	}
	for _, p := range ports {
		input = append(input, ruleSpec{
			fmt.Sprintf("iifname %s %s dport %d ct state new accept", tun, p.Proto, p.Port),
			seq(ifname(expr.MetaKeyIIFNAME, r.Tunnel), l4proto(p.Proto), dport(p.Port),
				ctState(expr.CtStateBitNEW), accept()),
		})
	}
	var sets []string
	if r.PortForward {
		for _, proto := range []string{"tcp", "udp"} {
			set := forwardedSetName(proto)
			sets = append(sets, set)
			input = append(input, ruleSpec{
				fmt.Sprintf("iifname %s %s dport @%s ct state new accept", tun, proto, set),
				seq(ifname(expr.MetaKeyIIFNAME, r.Tunnel), l4proto(proto), dportIn(set),
					ctState(expr.CtStateBitNEW), accept()),
			})
		}
	}
	output := []ruleSpec{
		{`oif "lo" accept`, seq(ifindex(expr.MetaKeyOIF, loIfindex), accept())},
		{`oifname ` + tun + ` accept`, seq(ifname(expr.MetaKeyOIFNAME, r.Tunnel), accept())},
	}
	if r.Primary != "" {
		in, out, err := keptRules(r)
		if err != nil {
			return tableSpec{}, err
		}
		input, output = append(input, in...), append(output, out...)
	} else if len(r.Keep) > 0 {
		return tableSpec{}, errors.New("kept prefixes without a primary interface to keep them on")
	}
	spec := tableSpec{sets: sets, chains: []chainSpec{
		{name: "input", hook: unix.NF_INET_LOCAL_IN, rules: input},
		{name: "output", hook: unix.NF_INET_LOCAL_OUT, rules: output},
		{name: "forward", hook: unix.NF_INET_FORWARD},
	}}
	for i := range spec.chains {
		cs := &spec.chains[i]
		cs.counter = "dropped_" + cs.name
		cs.rules = append(cs.rules, ruleSpec{
			fmt.Sprintf("counter name %q", cs.counter),
			[]expr.Any{&expr.Objref{Type: int(nftables.ObjTypeCounter), Name: cs.counter}},
		})
		spec.counters = append(spec.counters, cs.counter)
	}
	return spec, nil
}

// keptRules are the rules that let r.Keep pass r.Primary: in from those prefixes, out to them,
// and IPv6 neighbour discovery on it when a kept prefix is IPv6.
func keptRules(r Rules) (in, out []ruleSpec, err error) {
	if err := validIfname(r.Primary); err != nil {
		return nil, nil, fmt.Errorf("primary interface name %q: %w", r.Primary, err)
	}
	if r.Primary == r.Tunnel {
		return nil, nil, fmt.Errorf("primary interface %q is the tunnel interface", r.Primary)
	}
	keep, err := normalPrefixes(r.Keep)
	if err != nil {
		return nil, nil, err
	}
	prim := strconv.Quote(r.Primary)
	v6 := false
	for _, p := range keep {
		fam, saddr, daddr := "ip", 12, 16
		if p.Addr().Is6() {
			fam, saddr, daddr, v6 = "ip6", 8, 24, true
		}
		in = append(in, ruleSpec{fmt.Sprintf("iifname %s %s saddr %s accept", prim, fam, p),
			seq(ifname(expr.MetaKeyIIFNAME, r.Primary), prefix(p, uint32(saddr)), accept())})
		out = append(out, ruleSpec{fmt.Sprintf("oifname %s %s daddr %s accept", prim, fam, p),
			seq(ifname(expr.MetaKeyOIFNAME, r.Primary), prefix(p, uint32(daddr)), accept())})
	}
	if v6 {
		for _, t := range []struct {
			name string
			typ  byte
		}{{"nd-neighbor-solicit", 135}, {"nd-neighbor-advert", 136}} {
			in = append(in, ruleSpec{fmt.Sprintf("iifname %s icmpv6 type %s accept", prim, t.name),
				seq(ifname(expr.MetaKeyIIFNAME, r.Primary), icmpv6Type(t.typ), accept())})
			out = append(out, ruleSpec{fmt.Sprintf("oifname %s icmpv6 type %s accept", prim, t.name),
				seq(ifname(expr.MetaKeyOIFNAME, r.Primary), icmpv6Type(t.typ), accept())})
		}
	}
	return in, out, nil
}

// normalPrefixes checks ps and returns them sorted, IPv4 first, without duplicates.
func normalPrefixes(ps []netip.Prefix) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(ps))
	for _, p := range ps {
		if !p.IsValid() {
			return nil, fmt.Errorf("kept prefix %q: not a prefix", p)
		}
		if p.Masked() != p {
			return nil, fmt.Errorf("kept prefix %s: host bits set (the prefix is %s)", p, p.Masked())
		}
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b netip.Prefix) int {
		if c := a.Addr().Compare(b.Addr()); c != 0 {
			return c
		}
		return a.Bits() - b.Bits()
	})
	return slices.Compact(out), nil
}

// validIfname reports why name cannot be a Linux interface name (the kernel's dev_valid_name).
func validIfname(name string) error {
	switch {
	case name == "":
		return errors.New("empty")
	case len(name) >= unix.IFNAMSIZ:
		return fmt.Errorf("longer than %d bytes", unix.IFNAMSIZ-1)
	case name == "." || name == "..":
		return errors.New("not a valid interface name")
	case strings.ContainsAny(name, "/:\x00 \t\n\v\f\r"):
		return errors.New("contains '/', ':', NUL or white space")
	}
	return nil
}

// normalPorts checks ps and returns them sorted by protocol and port, without duplicates.
func normalPorts(ps []Port) ([]Port, error) {
	out := make([]Port, 0, len(ps))
	for _, p := range ps {
		if p.Proto != "tcp" && p.Proto != "udp" {
			return nil, fmt.Errorf("inbound port %d: protocol %q, want tcp or udp", p.Port, p.Proto)
		}
		if p.Port == 0 {
			return nil, fmt.Errorf("inbound port 0/%s: port 0 cannot be opened", p.Proto)
		}
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Proto != out[j].Proto {
			return out[i].Proto < out[j].Proto
		}
		return out[i].Port < out[j].Port
	})
	dedup := out[:0]
	for i, p := range out {
		if i == 0 || p != out[i-1] {
			dedup = append(dedup, p)
		}
	}
	return dedup, nil
}

func seq(parts ...[]expr.Any) []expr.Any {
	var out []expr.Any
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// ifindex matches the input or output interface by index.
func ifindex(key expr.MetaKey, index uint32) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: key, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.NativeEndian.PutUint32(index)},
	}
}

// ifname matches the input or output interface by its full name, as nft does for a name
// without a wildcard: the name NUL-padded to IFNAMSIZ.
func ifname(key expr.MetaKey, name string) []expr.Any {
	data := make([]byte, unix.IFNAMSIZ)
	copy(data, name)
	return []expr.Any{
		&expr.Meta{Key: key, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: data},
	}
}

// ctState matches packets whose conntrack state is any of the bits in mask.
func ctState(mask uint32) []expr.Any {
	return []expr.Any{
		&expr.Ct{Register: 1, Key: expr.CtKeySTATE},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4,
			Mask: binaryutil.NativeEndian.PutUint32(mask), Xor: binaryutil.NativeEndian.PutUint32(0)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: binaryutil.NativeEndian.PutUint32(0)},
	}
}

func l4proto(proto string) []expr.Any {
	p := byte(unix.IPPROTO_TCP)
	if proto == "udp" {
		p = unix.IPPROTO_UDP
	}
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{p}},
	}
}

// dport matches the transport header's destination port (the same offset for TCP and UDP).
func dport(port uint16) []expr.Any {
	return []expr.Any{
		&expr.Payload{OperationType: expr.PayloadLoad, DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.BigEndian.PutUint16(port)},
	}
}

// prefix matches the network header's address at offset (12 source, 16 destination for IPv4;
// 8 and 24 for IPv6) against p, after checking the packet's family as nft does.
func prefix(p netip.Prefix, offset uint32) []expr.Any {
	fam, size := byte(unix.NFPROTO_IPV4), 4
	if p.Addr().Is6() {
		fam, size = unix.NFPROTO_IPV6, 16
	}
	es := []expr.Any{
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{fam}},
		&expr.Payload{OperationType: expr.PayloadLoad, DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: offset, Len: uint32(size)},
	}
	if p.Bits() < size*8 {
		mask := net.CIDRMask(p.Bits(), size*8)
		es = append(es, &expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: uint32(size), Mask: mask, Xor: make([]byte, size)})
	}
	return append(es, &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: p.Addr().AsSlice()})
}

// icmpv6Type matches ICMPv6 packets of type typ.
func icmpv6Type(typ byte) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.IPPROTO_ICMPV6}},
		&expr.Payload{OperationType: expr.PayloadLoad, DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 0, Len: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{typ}},
	}
}

func accept() []expr.Any { return []expr.Any{&expr.Verdict{Kind: expr.VerdictAccept}} }

// dportIn matches the transport header's destination port against the named set.
func dportIn(set string) []expr.Any {
	return []expr.Any{
		&expr.Payload{OperationType: expr.PayloadLoad, DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		&expr.Lookup{SourceRegister: 1, SetName: set},
	}
}
