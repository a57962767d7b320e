package firewall

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/nftables"
	"github.com/google/nftables/expr"

	"github.com/wgns/wgns/internal/golden"
)

// specText prints a table spec: every chain, and every rule both as nft prints it and as the
// expressions Inspect compares.
func specText(s tableSpec) string {
	var b strings.Builder
	fmt.Fprintf(&b, "counters %s\n", strings.Join(s.counters, " "))
	for _, c := range s.chains {
		fmt.Fprintf(&b, "chain %s hook %s counter %s\n", c.name, hookName(c.hook), c.counter)
		for _, r := range c.rules {
			fmt.Fprintf(&b, "  %s\n    %s\n", r.text, wantedRuleText(r.exprs))
		}
	}
	return b.String()
}

// The byte strings of ct state masks are in host byte order; this golden text is for
// little-endian machines, which is what wgns is built and tested on.
const buildGolden = `counters dropped_input dropped_output dropped_forward
chain input hook input counter dropped_input
  iif "lo" accept
    [ meta load iif => reg 1 ] [ cmp eq reg 1 0x01000000 ] [ immediate reg 0 accept ]
  iifname "wg-x" ct state established,related accept
    [ meta load iifname => reg 1 ] [ cmp eq reg 1 0x77672d78000000000000000000000000 ] [ ct load state => reg 1 dir 0 ] [ bitwise reg 1 = ( reg 1 & 0x06000000 ) ^ 0x00000000 len 4 ] [ cmp neq reg 1 0x00000000 ] [ immediate reg 0 accept ]
  iifname "wg-x" tcp dport 22 ct state new accept
    [ meta load iifname => reg 1 ] [ cmp eq reg 1 0x77672d78000000000000000000000000 ] [ meta load l4proto => reg 1 ] [ cmp eq reg 1 0x06 ] [ payload op 0 2b @ base 2 + 2 dreg 1 sreg 0 csum type 0 offset 0 flags 0 ] [ cmp eq reg 1 0x0016 ] [ ct load state => reg 1 dir 0 ] [ bitwise reg 1 = ( reg 1 & 0x08000000 ) ^ 0x00000000 len 4 ] [ cmp neq reg 1 0x00000000 ] [ immediate reg 0 accept ]
  iifname "wg-x" udp dport 53 ct state new accept
    [ meta load iifname => reg 1 ] [ cmp eq reg 1 0x77672d78000000000000000000000000 ] [ meta load l4proto => reg 1 ] [ cmp eq reg 1 0x11 ] [ payload op 0 2b @ base 2 + 2 dreg 1 sreg 0 csum type 0 offset 0 flags 0 ] [ cmp eq reg 1 0x0035 ] [ ct load state => reg 1 dir 0 ] [ bitwise reg 1 = ( reg 1 & 0x08000000 ) ^ 0x00000000 len 4 ] [ cmp neq reg 1 0x00000000 ] [ immediate reg 0 accept ]
  counter name "dropped_input"
    [ objref type 1 name dropped_input ]
chain output hook output counter dropped_output
  oif "lo" accept
    [ meta load oif => reg 1 ] [ cmp eq reg 1 0x01000000 ] [ immediate reg 0 accept ]
  oifname "wg-x" accept
    [ meta load oifname => reg 1 ] [ cmp eq reg 1 0x77672d78000000000000000000000000 ] [ immediate reg 0 accept ]
  counter name "dropped_output"
    [ objref type 1 name dropped_output ]
chain forward hook forward counter dropped_forward
  counter name "dropped_forward"
    [ objref type 1 name dropped_forward ]
`

func TestBuild(t *testing.T) {
	spec, err := build(Rules{Tunnel: "wg-x", AllowInbound: []Port{
		{Port: 53, Proto: "udp"}, {Port: 22, Proto: "tcp"}, {Port: 53, Proto: "udp"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(buildGolden, specText(spec)); d != "" {
		t.Errorf("build (-want +got):\n%s", d)
	}
}

func TestBuildRefuses(t *testing.T) {
	for _, tc := range []struct {
		r    Rules
		want string
	}{
		{Rules{}, `tunnel interface name "": empty`},
		{Rules{Tunnel: "0123456789abcdef"}, `tunnel interface name "0123456789abcdef": longer than 15 bytes`},
		{Rules{Tunnel: ".."}, `tunnel interface name "..": not a valid interface name`},
		{Rules{Tunnel: "wg 0"}, `tunnel interface name "wg 0": contains '/', ':', NUL or white space`},
		{Rules{Tunnel: "wg:0"}, `tunnel interface name "wg:0": contains '/', ':', NUL or white space`},
		{Rules{Tunnel: "wg0", AllowInbound: []Port{{Port: 80, Proto: "TCP"}}}, `inbound port 80: protocol "TCP", want tcp or udp`},
		{Rules{Tunnel: "wg0", AllowInbound: []Port{{Port: 0, Proto: "udp"}}}, `inbound port 0/udp: port 0 cannot be opened`},
	} {
		_, err := build(tc.r)
		if err == nil || err.Error() != tc.want {
			t.Errorf("build(%+v) = %v, want %q", tc.r, err, tc.want)
		}
	}
	// Names nft would have to quote are fine: they are bytes in a netlink attribute.
	for _, name := range []string{"a+b=c.d-e", "wg0", "x", "012345678901234", `a"b`} {
		if _, err := build(Rules{Tunnel: name}); err != nil {
			t.Errorf("build with tunnel %q: %v", name, err)
		}
	}
}

func TestApplyRefusesFdZero(t *testing.T) {
	// fd 0 would mean "this process's namespace" to the netlink library: never act on it.
	for _, err := range []error{Apply(0, Rules{Tunnel: "wg0"}), Remove(0), func() error { _, err := Inspect(0, Rules{Tunnel: "wg0"}); return err }()} {
		if err == nil || !strings.Contains(err.Error(), "fd 0: not a network namespace") {
			t.Errorf("got %v, want a refusal of fd 0", err)
		}
	}
}

// kernelView turns a spec into the snapshot the kernel would give back for it.
func kernelView(s tableSpec) snapshot {
	snap := snapshot{present: true}
	for _, c := range s.chains {
		cv := chainView{name: c.name, typ: nftables.ChainTypeFilter, hook: nftables.ChainHookRef(c.hook),
			prio: nftables.ChainPriorityFilter, policy: ptr(nftables.ChainPolicyDrop)}
		for _, r := range c.rules {
			rv := ruleView{exprs: r.exprs}
			for _, e := range r.exprs {
				rv.names = append(rv.names, exprName(e))
			}
			cv.rules = append(cv.rules, rv)
		}
		snap.chains = append(snap.chains, cv)
	}
	for i, name := range s.counters {
		snap.objects = append(snap.objects, objView{name: name, typ: nftables.ObjTypeCounter, packets: uint64(i + 1)})
	}
	return snap
}

func TestCompare(t *testing.T) {
	r := Rules{Tunnel: "wg0", AllowInbound: []Port{{Port: 22, Proto: "tcp"}}}
	spec, err := build(r)
	if err != nil {
		t.Fatal(err)
	}
	chain := func(s *snapshot, name string) *chainView {
		for i := range s.chains {
			if s.chains[i].name == name {
				return &s.chains[i]
			}
		}
		panic(name)
	}
	for _, tc := range []struct {
		name  string
		alter func(s *snapshot)
		want  []string
	}{
		{"as built", func(s *snapshot) {}, nil},
		{"absent", func(s *snapshot) { *s = snapshot{} }, []string{"table inet wgns is missing"}},
		{"dormant", func(s *snapshot) { s.flags = 1 }, []string{"table flags dormant, want none"}},
		{"unknown flag", func(s *snapshot) { s.flags = 0x30 }, []string{"table flags 0x30, want none"}},
		{"policy accept", func(s *snapshot) { chain(s, "output").policy = ptr(nftables.ChainPolicyAccept) },
			[]string{"chain output: policy accept, want drop"}},
		{"priority", func(s *snapshot) { chain(s, "input").prio = nftables.ChainPriorityRef(10) },
			[]string{"chain input: priority 10, want 0"}},
		{"hook", func(s *snapshot) { chain(s, "forward").hook = nftables.ChainHookPrerouting },
			[]string{"chain forward: hook prerouting, want forward"}},
		{"regular chain", func(s *snapshot) { c := chain(s, "forward"); c.hook, c.prio, c.policy = nil, nil, nil },
			[]string{"chain forward: not a base chain, want hook forward"}},
		{"type", func(s *snapshot) { chain(s, "output").typ = nftables.ChainTypeRoute },
			[]string{"chain output: type route, want filter"}},
		{"chain missing", func(s *snapshot) { s.chains = s.chains[:2] }, []string{"chain forward is missing"}},
		{"chain added", func(s *snapshot) { s.chains = append(s.chains, chainView{name: "extra"}) },
			[]string{"unexpected chain extra"}},
		{"rule missing", func(s *snapshot) { c := chain(s, "output"); c.rules = c.rules[1:] },
			[]string{`chain output: rule missing: oif "lo" accept`}},
		{"rule added", func(s *snapshot) {
			c := chain(s, "forward")
			c.rules = append([]ruleView{{names: []string{"immediate"}, exprs: []expr.Any{&expr.Verdict{Kind: expr.VerdictAccept}}}}, c.rules...)
		}, []string{"chain forward: unexpected rule: [ immediate reg 0 accept ]"}},
		{"rule duplicated", func(s *snapshot) { c := chain(s, "output"); c.rules = append(c.rules, c.rules[0]) },
			[]string{"chain output: unexpected rule: [ meta load oif => reg 1 ] [ cmp eq reg 1 0x01000000 ] [ immediate reg 0 accept ]"}},
		{"rules reordered", func(s *snapshot) { c := chain(s, "output"); c.rules[0], c.rules[1] = c.rules[1], c.rules[0] },
			[]string{"chain output: rules in a different order"}},
		{"verdict changed", func(s *snapshot) {
			c := chain(s, "output")
			c.rules[1] = ruleView{names: c.rules[1].names, exprs: append(append([]expr.Any{}, c.rules[1].exprs[:2]...), &expr.Verdict{Kind: expr.VerdictDrop})}
		}, []string{
			`chain output: rule missing: oifname "wg0" accept`,
			`chain output: unexpected rule: [ meta load oifname => reg 1 ] [ cmp eq reg 1 0x77673000000000000000000000000000 ] [ immediate reg 0 drop ]`,
		}},
		{"expression not decoded", func(s *snapshot) {
			c := chain(s, "output")
			c.rules[1].names = []string{"meta", "cmp", "rt", "immediate"}
		}, []string{
			`chain output: rule missing: oifname "wg0" accept`,
			`chain output: unexpected rule: [ meta load oifname => reg 1 ] [ cmp eq reg 1 0x77673000000000000000000000000000 ] [ rt (not decoded) ] [ immediate reg 0 accept ]`,
		}},
		{"counter missing", func(s *snapshot) { s.objects = s.objects[1:] }, []string{"counter dropped_input is missing"}},
		{"counter is a quota", func(s *snapshot) { s.objects[0].typ = nftables.ObjTypeQuota },
			[]string{"object dropped_input is of type 2, want a counter"}},
		{"object added", func(s *snapshot) { s.objects = append(s.objects, objView{name: "q", typ: nftables.ObjTypeQuota}) },
			[]string{"unexpected object q (type 2)"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			snap := kernelView(spec)
			tc.alter(&snap)
			st := compare(spec, snap)
			if d := cmp.Diff(tc.want, st.Diff); d != "" {
				t.Errorf("Diff (-want +got):\n%s", d)
			}
			if st.Matches != (tc.want == nil) {
				t.Errorf("Matches = %v with Diff %q", st.Matches, st.Diff)
			}
			if st.Present != snap.present {
				t.Errorf("Present = %v, want %v", st.Present, snap.present)
			}
		})
	}
	if st := compare(spec, kernelView(spec)); st.Dropped != 1+2+3 {
		t.Errorf("Dropped = %d, want the sum of the three counters, 6", st.Dropped)
	}
}

func TestRuleTextCounterValuesIgnored(t *testing.T) {
	a := ruleText(ruleView{names: []string{"counter"}, exprs: []expr.Any{&expr.Counter{Packets: 5, Bytes: 300}}})
	if b := wantedRuleText([]expr.Any{&expr.Counter{}}); a != b {
		t.Errorf("counter with values renders %q, without %q; want equal", a, b)
	}
}

// A namespace with a primary interface (wgns chained after another CNI plugin): only the kept
// prefixes pass it, both ways, and neighbour discovery with an IPv6 one; the golden file shows
// every rule as nft prints it and as the expressions Inspect compares.
func TestBuildKept(t *testing.T) {
	spec, err := build(Rules{Tunnel: "wg0", Primary: "eth0", Keep: []netip.Prefix{
		netip.MustParsePrefix("fd00:10::/64"), netip.MustParsePrefix("10.96.0.0/12"),
		netip.MustParsePrefix("10.244.0.0/16"), netip.MustParsePrefix("10.96.0.0/12"),
		netip.MustParsePrefix("198.51.100.7/32"),
	}})
	if err != nil {
		t.Fatal(err)
	}
	golden.Check(t, "build-kept", specText(spec))

	// Without an IPv6 prefix, no neighbour discovery passes the primary interface.
	spec, err = build(Rules{Tunnel: "wg0", Primary: "eth0", Keep: []netip.Prefix{netip.MustParsePrefix("10.244.0.0/16")}})
	if err != nil {
		t.Fatal(err)
	}
	if text := specText(spec); strings.Contains(text, "icmpv6") {
		t.Errorf("IPv4 prefixes only, yet ICMPv6 passes:\n%s", text)
	}
	// A primary interface with nothing kept: nothing passes it.
	spec, err = build(Rules{Tunnel: "wg0", Primary: "eth0"})
	if err != nil {
		t.Fatal(err)
	}
	if text := specText(spec); strings.Contains(text, "eth0") {
		t.Errorf("nothing kept, yet a rule names the primary interface:\n%s", text)
	}
}

func TestBuildKeptRefuses(t *testing.T) {
	for _, tc := range []struct {
		r    Rules
		want string
	}{
		{Rules{Tunnel: "wg0", Keep: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}, "kept prefixes without a primary interface to keep them on"},
		{Rules{Tunnel: "wg0", Primary: "wg0"}, `primary interface "wg0" is the tunnel interface`},
		{Rules{Tunnel: "wg0", Primary: "eth 0"}, `primary interface name "eth 0": contains '/', ':', NUL or white space`},
		{Rules{Tunnel: "wg0", Primary: "eth0", Keep: []netip.Prefix{netip.MustParsePrefix("10.1.2.3/8")}}, "kept prefix 10.1.2.3/8: host bits set (the prefix is 10.0.0.0/8)"},
		{Rules{Tunnel: "wg0", Primary: "eth0", Keep: []netip.Prefix{{}}}, `kept prefix "invalid Prefix": not a prefix`},
	} {
		_, err := build(tc.r)
		if err == nil || err.Error() != tc.want {
			t.Errorf("build(%+v) = %v, want %q", tc.r, err, tc.want)
		}
	}
}

// Inspect tells a table whose kept prefixes differ from the one wanted: a prefix dropped or
// added by someone is a difference like any other rule.
func TestCompareKept(t *testing.T) {
	want := Rules{Tunnel: "wg0", Primary: "eth0", Keep: []netip.Prefix{netip.MustParsePrefix("10.244.0.0/16")}}
	wider := want
	wider.Keep = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	ws, err := build(want)
	if err != nil {
		t.Fatal(err)
	}
	gs, err := build(wider)
	if err != nil {
		t.Fatal(err)
	}
	st := compare(ws, kernelView(gs))
	if st.Matches {
		t.Fatal("a table keeping 10.0.0.0/8 matches one that keeps 10.244.0.0/16")
	}
	wantDiff := []string{
		`chain input: rule missing: iifname "eth0" ip saddr 10.244.0.0/16 accept`,
		`chain input: unexpected rule: ` + wantedRuleText(gs.chains[0].rules[2].exprs),
		`chain output: rule missing: oifname "eth0" ip daddr 10.244.0.0/16 accept`,
		`chain output: unexpected rule: ` + wantedRuleText(gs.chains[1].rules[2].exprs),
	}
	if d := cmp.Diff(wantDiff, st.Diff); d != "" {
		t.Errorf("Diff (-want +got):\n%s", d)
	}
	if st := compare(ws, kernelView(ws)); !st.Matches {
		t.Errorf("the table as built does not match itself: %q", st.Diff)
	}
}
