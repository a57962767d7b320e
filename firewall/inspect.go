package firewall

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// State is what the wgns table in a namespace looks like, for check and status.
type State struct {
	// Present reports whether a table inet wgns exists.
	Present bool
	// Matches reports whether the table is exactly what Apply would install: table flags,
	// chains (type, hook, priority, policy), their rules' expressions in order, and the drop
	// counters. Handles, positions and counter values are not compared.
	Matches bool
	// Diff says, one line each, what differs, e.g. "chain output: policy accept, want drop" or
	// `chain output: rule missing: oifname "wg0" accept`. It is empty when Matches.
	Diff []string
	// Dropped is the number of packets counted by the drop counters.
	Dropped uint64
	// Forwarded lists the ports the forwarded-port sets hold (see SetForwarded), sorted by
	// protocol: what is open now for the provider's port forwarding. They are part of a matching
	// table, whatever they are, as long as each set holds at most one.
	Forwarded []Port
}

// Inspect reads the wgns table in the network namespace open as nsFd and compares it with what
// Apply(nsFd, r) would install. An absent table is not an error: it is a State with Present
// false; an fd that is not a network namespace is (ErrNotNetns). Inspect never switches the calling thread's namespace; the caller keeps nsFd open and
// closes it.
func Inspect(nsFd int, r Rules) (State, error) {
	spec, err := build(r)
	if err == nil {
		var snap snapshot
		if snap, err = read(nsFd); err == nil {
			return compare(spec, snap), nil
		}
	}
	return State{}, fmt.Errorf("inspecting firewall table %q in namespace fd %d: %w", TableName, nsFd, err)
}

// snapshot is what the kernel holds for table inet wgns.
type snapshot struct {
	present bool
	flags   uint32
	chains  []chainView
	objects []objView
	sets    []setView
}

type chainView struct {
	name   string
	typ    nftables.ChainType
	hook   *nftables.ChainHook // nil for a regular (non-base) chain
	prio   *nftables.ChainPriority
	policy *nftables.ChainPolicy
	rules  []ruleView
}

// ruleView is one rule as read back: the kernel's list of expression names, and the expressions
// google/nftables could decode (it silently skips kinds it does not know, so names can be longer).
type ruleView struct {
	names []string
	exprs []expr.Any
}

type objView struct {
	name    string
	typ     nftables.ObjType
	packets uint64
}

var errChanged = errors.New("the table changed while it was being read")

// read takes a snapshot of table inet wgns, retrying a few times if the table changes meanwhile.
func read(nsFd int) (snapshot, error) {
	var err error
	for range 3 {
		var s snapshot
		if s, err = readOnce(nsFd); !errors.Is(err, errChanged) {
			return s, err
		}
	}
	return snapshot{}, err
}

func readOnce(nsFd int) (snapshot, error) {
	if err := checkNetns(nsFd); err != nil {
		return snapshot{}, err
	}
	c, err := nftables.New(nftables.WithNetNSFd(nsFd))
	if err != nil {
		return snapshot{}, err
	}
	var s snapshot
	tables, err := c.ListTablesOfFamily(nftables.TableFamilyINet)
	if err != nil {
		return s, fmt.Errorf("listing tables: %w", err)
	}
	for _, t := range tables {
		if t.Name == TableName {
			// google/nftables v0.3.0 decodes NFTA_TABLE_FLAGS in host byte order; the kernel
			// sends it big-endian. Undo that (the dormant test in integration/ catches a fix).
			s.present = true
			s.flags = binary.BigEndian.Uint32(binaryutil.NativeEndian.PutUint32(t.Flags))
		}
	}
	if !s.present {
		return s, nil
	}
	raw, err := rawRuleNames(nsFd)
	if err != nil {
		return s, fmt.Errorf("listing rules: %w", err)
	}
	chains, err := c.ListChainsOfTableFamily(nftables.TableFamilyINet)
	if err != nil {
		return s, fmt.Errorf("listing chains: %w", err)
	}
	seen := 0
	for _, ch := range chains {
		if ch.Table == nil || ch.Table.Name != TableName {
			continue
		}
		cv := chainView{name: ch.Name, typ: ch.Type, hook: ch.Hooknum, prio: ch.Priority, policy: ch.Policy}
		rules, err := c.GetRules(table, ch)
		if errors.Is(err, unix.ENOENT) {
			return s, errChanged
		}
		if err != nil {
			return s, fmt.Errorf("listing rules of chain %q: %w", ch.Name, err)
		}
		for _, r := range rules {
			names, ok := raw[r.Handle]
			if !ok || names.chain != ch.Name {
				return s, errChanged
			}
			seen++
			cv.rules = append(cv.rules, ruleView{names: names.names, exprs: r.Exprs})
		}
		s.chains = append(s.chains, cv)
	}
	if seen != len(raw) {
		return s, errChanged
	}
	if s.sets, err = readSets(c); err != nil {
		return s, err
	}
	objs, err := c.GetNamedObjects(table)
	if err != nil {
		return s, fmt.Errorf("listing objects: %w", err)
	}
	for _, o := range objs {
		no, ok := o.(*nftables.NamedObj)
		if !ok {
			continue
		}
		ov := objView{name: no.Name, typ: no.Type}
		if ctr, ok := no.Obj.(*expr.Counter); ok {
			ov.packets = ctr.Packets
		}
		s.objects = append(s.objects, ov)
	}
	return s, nil
}

type rawRule struct {
	chain string
	names []string
}

// rawRuleNames lists, by rule handle, the names of every rule's expressions in table inet wgns
// as the kernel reports them. google/nftables skips expressions it cannot decode; these names
// let Inspect see that a rule holds more than it was told.
func rawRuleNames(nsFd int) (map[uint64]rawRule, error) {
	conn, err := netlink.Dial(unix.NETLINK_NETFILTER, &netlink.Config{NetNS: nsFd})
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	attrs, err := netlink.MarshalAttributes([]netlink.Attribute{
		{Type: unix.NFTA_RULE_TABLE, Data: []byte(TableName + "\x00")},
	})
	if err != nil {
		return nil, err
	}
	msgs, err := conn.Execute(netlink.Message{
		Header: netlink.Header{
			Type:  netlink.HeaderType(unix.NFNL_SUBSYS_NFTABLES<<8 | unix.NFT_MSG_GETRULE),
			Flags: netlink.Request | netlink.Dump,
		},
		Data: append([]byte{unix.NFPROTO_INET, unix.NFNETLINK_V0, 0, 0}, attrs...),
	})
	if errors.Is(err, unix.ENOENT) {
		return nil, errChanged // the table went away
	}
	if err != nil {
		return nil, err
	}
	out := make(map[uint64]rawRule)
	for _, m := range msgs {
		if len(m.Data) < 4 {
			continue
		}
		ad, err := netlink.NewAttributeDecoder(m.Data[4:])
		if err != nil {
			return nil, err
		}
		ad.ByteOrder = binary.BigEndian
		var handle uint64
		var rr rawRule
		for ad.Next() {
			switch ad.Type() {
			case unix.NFTA_RULE_CHAIN:
				rr.chain = ad.String()
			case unix.NFTA_RULE_HANDLE:
				handle = ad.Uint64()
			case unix.NFTA_RULE_EXPRESSIONS:
				ad.Nested(func(list *netlink.AttributeDecoder) error {
					for list.Next() {
						list.Nested(func(e *netlink.AttributeDecoder) error {
							for e.Next() {
								if e.Type() == unix.NFTA_EXPR_NAME {
									rr.names = append(rr.names, e.String())
								}
							}
							return nil
						})
					}
					return nil
				})
			}
		}
		if err := ad.Err(); err != nil {
			return nil, err
		}
		out[handle] = rr
	}
	return out, nil
}

// compare lays the snapshot against the spec.
func compare(want tableSpec, got snapshot) State {
	var st State
	if !got.present {
		st.Diff = []string{fmt.Sprintf("table inet %s is missing", TableName)}
		return st
	}
	st.Present = true
	d := &st.Diff
	add := func(format string, args ...any) { *d = append(*d, fmt.Sprintf(format, args...)) }

	if got.flags != 0 {
		add("table flags %s, want none", tableFlags(got.flags))
	}
	for _, wc := range want.chains {
		i := slices.IndexFunc(got.chains, func(c chainView) bool { return c.name == wc.name })
		if i < 0 {
			add("chain %s is missing", wc.name)
			continue
		}
		gc := got.chains[i]
		if gc.typ != nftables.ChainTypeFilter {
			add("chain %s: type %s, want %s", wc.name, gc.typ, nftables.ChainTypeFilter)
		}
		switch {
		case gc.hook == nil:
			add("chain %s: not a base chain, want hook %s", wc.name, hookName(wc.hook))
		case *gc.hook != wc.hook:
			add("chain %s: hook %s, want %s", wc.name, hookName(*gc.hook), hookName(wc.hook))
		}
		if gc.hook != nil && (gc.prio == nil || *gc.prio != *nftables.ChainPriorityFilter) {
			p := "none"
			if gc.prio != nil {
				p = fmt.Sprint(*gc.prio)
			}
			add("chain %s: priority %s, want %d", wc.name, p, *nftables.ChainPriorityFilter)
		}
		if gc.hook != nil && (gc.policy == nil || *gc.policy != nftables.ChainPolicyDrop) {
			add("chain %s: policy %s, want drop", wc.name, policyName(gc.policy))
		}
		compareRules(wc, gc, add)
	}
	for _, gc := range got.chains {
		if !slices.ContainsFunc(want.chains, func(c chainSpec) bool { return c.name == gc.name }) {
			add("unexpected chain %s", gc.name)
		}
	}
	for _, name := range want.counters {
		i := slices.IndexFunc(got.objects, func(o objView) bool { return o.name == name })
		switch {
		case i < 0:
			add("counter %s is missing", name)
		case got.objects[i].typ != nftables.ObjTypeCounter:
			add("object %s is of type %d, want a counter", name, got.objects[i].typ)
		default:
			st.Dropped += got.objects[i].packets
		}
	}
	for _, o := range got.objects {
		if !slices.Contains(want.counters, o.name) {
			add("unexpected object %s (type %d)", o.name, o.typ)
		}
	}
	compareSets(want.sets, got.sets, &st, add)
	st.Matches = len(st.Diff) == 0
	return st
}

// compareRules reports rules of the wanted chain that are missing, rules that should not be
// there, and, when both agree as sets, a different order.
func compareRules(wc chainSpec, gc chainView, add func(string, ...any)) {
	wantKeys := make([]string, len(wc.rules))
	for i, r := range wc.rules {
		wantKeys[i] = wantedRuleText(r.exprs)
	}
	gotKeys := make([]string, len(gc.rules))
	for i, r := range gc.rules {
		gotKeys[i] = ruleText(r)
	}
	left := append([]string(nil), gotKeys...)
	diffs := false
	for i, k := range wantKeys {
		if j := slices.Index(left, k); j >= 0 {
			left = slices.Delete(left, j, j+1)
			continue
		}
		add("chain %s: rule missing: %s", wc.name, wc.rules[i].text)
		diffs = true
	}
	for _, k := range left {
		add("chain %s: unexpected rule: %s", wc.name, k)
		diffs = true
	}
	if !diffs && !slices.Equal(wantKeys, gotKeys) {
		add("chain %s: rules in a different order", wc.name)
	}
}

// wantedRuleText renders expressions built by this package, in the form ruleText gives a rule
// read back from the kernel.
func wantedRuleText(es []expr.Any) string {
	parts := make([]string, len(es))
	for i, e := range es {
		parts[i] = exprText(e)
	}
	return strings.Join(parts, " ")
}

// ruleText renders a rule read back from the kernel in the style of `nft --debug=netlink`,
// e.g. "[ meta load oifname => reg 1 ] [ cmp eq reg 1 0x77673000... ] [ immediate reg 0 accept ]".
// Every field of every expression is rendered, so equal text means equal rules. An expression
// google/nftables could not decode appears as "[ NAME (not decoded) ]".
func ruleText(r ruleView) string {
	var parts []string
	i := 0
	for _, name := range r.names {
		if i < len(r.exprs) && exprName(r.exprs[i]) == name {
			parts = append(parts, exprText(r.exprs[i]))
			i++
			continue
		}
		parts = append(parts, fmt.Sprintf("[ %s (not decoded) ]", name))
	}
	for ; i < len(r.exprs); i++ { // not expected: the kernel names every expression
		parts = append(parts, exprText(r.exprs[i])+" (unnamed)")
	}
	return strings.Join(parts, " ")
}

// exprName is the kernel's name for an expression ("meta", "cmp", "immediate", ...).
func exprName(e expr.Any) string {
	b, err := expr.Marshal(byte(nftables.TableFamilyINet), e)
	if err != nil {
		return ""
	}
	ad, err := netlink.NewAttributeDecoder(b)
	if err != nil {
		return ""
	}
	for ad.Next() {
		if ad.Type() == unix.NFTA_EXPR_NAME {
			return ad.String()
		}
	}
	return ""
}

// exprText renders one expression with all its fields, except a counter's values.
func exprText(e expr.Any) string {
	var s string
	switch e := e.(type) {
	case *expr.Meta:
		if e.SourceRegister {
			s = fmt.Sprintf("meta set %s with reg %d", metaKeyName(e.Key), e.Register)
		} else {
			s = fmt.Sprintf("meta load %s => reg %d", metaKeyName(e.Key), e.Register)
		}
	case *expr.Cmp:
		s = fmt.Sprintf("cmp %s reg %d 0x%x", cmpOpName(e.Op), e.Register, e.Data)
	case *expr.Bitwise:
		s = fmt.Sprintf("bitwise reg %d = ( reg %d & 0x%x ) ^ 0x%x len %d", e.DestRegister, e.SourceRegister, e.Mask, e.Xor, e.Len)
	case *expr.Ct:
		if e.SourceRegister {
			s = fmt.Sprintf("ct set key %d with reg %d dir %d", e.Key, e.Register, e.Direction)
		} else {
			s = fmt.Sprintf("ct load %s => reg %d dir %d", ctKeyName(e.Key), e.Register, e.Direction)
		}
	case *expr.Payload:
		s = fmt.Sprintf("payload op %d %db @ base %d + %d dreg %d sreg %d csum type %d offset %d flags %d",
			e.OperationType, e.Len, e.Base, e.Offset, e.DestRegister, e.SourceRegister, e.CsumType, e.CsumOffset, e.CsumFlags)
	case *expr.Verdict:
		s = "immediate reg 0 " + verdictName(e.Kind)
		if e.Chain != "" {
			s += " " + e.Chain
		}
	case *expr.Immediate:
		s = fmt.Sprintf("immediate reg %d 0x%x", e.Register, e.Data)
	case *expr.Lookup:
		// Not the set's ID: that only names a set made in the same transaction.
		s = fmt.Sprintf("lookup reg %d set %s", e.SourceRegister, e.SetName)
		if e.IsDestRegSet {
			s += fmt.Sprintf(" dreg %d", e.DestRegister)
		}
		if e.Invert {
			s += " invert"
		}
	case *expr.Objref:
		s = fmt.Sprintf("objref type %d name %s", e.Type, e.Name)
	case *expr.Counter:
		s = "counter"
	default:
		s = fmt.Sprintf("%s %+v", exprName(e), e)
	}
	return "[ " + s + " ]"
}

// nameOf returns names[k], or unknown formatted with k for a value without a name.
func nameOf[K comparable](names map[K]string, k K, unknown string) string {
	if n, ok := names[k]; ok {
		return n
	}
	return fmt.Sprintf(unknown, k)
}

var metaKeyNames = map[expr.MetaKey]string{
	expr.MetaKeyIIF:     "iif",
	expr.MetaKeyOIF:     "oif",
	expr.MetaKeyIIFNAME: "iifname",
	expr.MetaKeyOIFNAME: "oifname",
	expr.MetaKeyL4PROTO: "l4proto",
	expr.MetaKeyNFPROTO: "nfproto",
	expr.MetaKeyMARK:    "mark",
}

func metaKeyName(k expr.MetaKey) string { return nameOf(metaKeyNames, k, "key %d") }

func ctKeyName(k expr.CtKey) string {
	return nameOf(map[expr.CtKey]string{expr.CtKeySTATE: "state"}, k, "key %d")
}

var cmpOpNames = map[expr.CmpOp]string{
	expr.CmpOpEq:  "eq",
	expr.CmpOpNeq: "neq",
	expr.CmpOpLt:  "lt",
	expr.CmpOpLte: "lte",
	expr.CmpOpGt:  "gt",
	expr.CmpOpGte: "gte",
}

func cmpOpName(op expr.CmpOp) string { return nameOf(cmpOpNames, op, "op%d") }

var verdictNames = map[expr.VerdictKind]string{
	expr.VerdictAccept:   "accept",
	expr.VerdictDrop:     "drop",
	expr.VerdictReturn:   "return",
	expr.VerdictJump:     "jump",
	expr.VerdictGoto:     "goto",
	expr.VerdictContinue: "continue",
	expr.VerdictQueue:    "queue",
}

func verdictName(k expr.VerdictKind) string { return nameOf(verdictNames, k, "verdict %d") }

var hookNames = map[nftables.ChainHook]string{
	unix.NF_INET_PRE_ROUTING:  "prerouting",
	unix.NF_INET_LOCAL_IN:     "input",
	unix.NF_INET_FORWARD:      "forward",
	unix.NF_INET_LOCAL_OUT:    "output",
	unix.NF_INET_POST_ROUTING: "postrouting",
}

func hookName(h nftables.ChainHook) string { return nameOf(hookNames, h, "hook %d") }

func policyName(p *nftables.ChainPolicy) string {
	switch {
	case p == nil:
		return "none"
	case *p == nftables.ChainPolicyDrop:
		return "drop"
	case *p == nftables.ChainPolicyAccept:
		return "accept"
	}
	return fmt.Sprint(uint32(*p))
}

// tableFlags names the table flags the kernel knows: dormant disables the whole table.
func tableFlags(f uint32) string {
	var names []string
	for bit, name := range map[uint32]string{unix.NFT_TABLE_F_DORMANT: "dormant", 0x2: "owner", 0x4: "persist"} {
		if f&bit != 0 {
			names = append(names, name)
			f &^= bit
		}
	}
	slices.Sort(names)
	if f != 0 {
		names = append(names, fmt.Sprintf("0x%x", f))
	}
	return strings.Join(names, ",")
}
