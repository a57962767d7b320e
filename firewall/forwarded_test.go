package firewall

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/nftables/expr"
)

// The input chain with PortForward: the AllowInbound rule, then one rule per forwarded-port set.
const buildPortForwardGolden = `chain input hook input counter dropped_input
  iif "lo" accept
  iifname "wg-x" ct state established,related accept
  iifname "wg-x" tcp dport 22 ct state new accept
  iifname "wg-x" tcp dport @forwarded_tcp ct state new accept
    [ meta load iifname => reg 1 ] [ cmp eq reg 1 0x77672d78000000000000000000000000 ] [ meta load l4proto => reg 1 ] [ cmp eq reg 1 0x06 ] [ payload op 0 2b @ base 2 + 2 dreg 1 sreg 0 csum type 0 offset 0 flags 0 ] [ lookup reg 1 set forwarded_tcp ] [ ct load state => reg 1 dir 0 ] [ bitwise reg 1 = ( reg 1 & 0x08000000 ) ^ 0x00000000 len 4 ] [ cmp neq reg 1 0x00000000 ] [ immediate reg 0 accept ]
  iifname "wg-x" udp dport @forwarded_udp ct state new accept
    [ meta load iifname => reg 1 ] [ cmp eq reg 1 0x77672d78000000000000000000000000 ] [ meta load l4proto => reg 1 ] [ cmp eq reg 1 0x11 ] [ payload op 0 2b @ base 2 + 2 dreg 1 sreg 0 csum type 0 offset 0 flags 0 ] [ lookup reg 1 set forwarded_udp ] [ ct load state => reg 1 dir 0 ] [ bitwise reg 1 = ( reg 1 & 0x08000000 ) ^ 0x00000000 len 4 ] [ cmp neq reg 1 0x00000000 ] [ immediate reg 0 accept ]
  counter name "dropped_input"
`

func TestBuildPortForward(t *testing.T) {
	spec, err := build(Rules{Tunnel: "wg-x", AllowInbound: []Port{{Port: 22, Proto: "tcp"}}, PortForward: true})
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]string{"forwarded_tcp", "forwarded_udp"}, spec.sets); d != "" {
		t.Errorf("sets (-want +got):\n%s", d)
	}
	// The input chain, with the expressions of the forwarded-port rules only.
	var b strings.Builder
	in := spec.chains[0]
	b.WriteString("chain input hook " + hookName(in.hook) + " counter " + in.counter + "\n")
	for _, r := range in.rules {
		b.WriteString("  " + r.text + "\n")
		if strings.Contains(r.text, "@forwarded") {
			b.WriteString("    " + wantedRuleText(r.exprs) + "\n")
		}
	}
	if d := cmp.Diff(buildPortForwardGolden, b.String()); d != "" {
		t.Errorf("build (-want +got):\n%s", d)
	}
	// Without PortForward the table is the one it always was: no set, no rule naming one.
	plain, err := build(Rules{Tunnel: "wg-x", AllowInbound: []Port{{Port: 22, Proto: "tcp"}, {Port: 53, Proto: "udp"}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(plain.sets) != 0 || strings.Contains(specText(plain), "@forwarded") {
		t.Errorf("a table without PortForward has sets %v:\n%s", plain.sets, specText(plain))
	}
}

// withSets is the kernel's view of spec with its forwarded-port sets holding ports.
func withSets(spec tableSpec, ports ...Port) snapshot {
	snap := kernelView(spec)
	for _, name := range spec.sets {
		v := setView{name: name}
		for _, p := range ports {
			if forwardedSetName(p.Proto) == name {
				v.ports = append(v.ports, p)
			}
		}
		snap.sets = append(snap.sets, v)
	}
	// The kernel does not give back the transaction ID a lookup named its set by.
	for i := range snap.chains {
		for j := range snap.chains[i].rules {
			snap.chains[i].rules[j].exprs = withSetIDs(snap.chains[i].rules[j].exprs, map[string]uint32{"forwarded_tcp": 7, "forwarded_udp": 8})
		}
	}
	return snap
}

func TestComparePortForward(t *testing.T) {
	spec, err := build(Rules{Tunnel: "wg0", PortForward: true})
	if err != nil {
		t.Fatal(err)
	}
	plain, err := build(Rules{Tunnel: "wg0"})
	if err != nil {
		t.Fatal(err)
	}
	tcp, udp := Port{Port: 51413, Proto: "tcp"}, Port{Port: 51413, Proto: "udp"}
	for _, tc := range []struct {
		name          string
		spec          tableSpec
		snap          snapshot
		want          []string
		wantForwarded []Port
	}{
		{"empty sets", spec, withSets(spec), nil, nil},
		{"a port forwarded", spec, withSets(spec, tcp, udp), nil, []Port{tcp, udp}},
		{"only tcp", spec, withSets(spec, Port{Port: 1, Proto: "tcp"}), nil, []Port{{Port: 1, Proto: "tcp"}}},
		{"two ports in a set", spec, withSets(spec, tcp, Port{Port: 80, Proto: "tcp"}, udp),
			[]string{"set forwarded_tcp holds 2 ports, want at most 1"}, []Port{udp}},
		{"set missing", spec, func() snapshot { s := withSets(spec); s.sets = s.sets[1:]; return s }(),
			[]string{"set forwarded_tcp is missing"}, nil},
		{"set of another type", spec, func() snapshot {
			s := withSets(spec)
			s.sets[1].problem = "type ipv4_addr (4 bytes), want inet_service"
			return s
		}(), []string{"set forwarded_udp: type ipv4_addr (4 bytes), want inet_service"}, nil},
		{"set added", spec, func() snapshot { s := withSets(spec); s.sets = append(s.sets, setView{name: "allow"}); return s }(),
			[]string{"unexpected set allow"}, nil},
		{"a set in a table without PortForward", plain, func() snapshot {
			s := kernelView(plain)
			s.sets = []setView{{name: "forwarded_tcp", ports: []Port{tcp}}}
			return s
		}(), []string{"unexpected set forwarded_tcp"}, nil},
		{"forwarded rule missing", spec, func() snapshot {
			s := withSets(spec)
			s.chains[0].rules = append(s.chains[0].rules[:2], s.chains[0].rules[3:]...)
			return s
		}(), []string{`chain input: rule missing: iifname "wg0" tcp dport @forwarded_tcp ct state new accept`}, nil},
		{"lookup inverted", spec, func() snapshot {
			s := withSets(spec)
			r := &s.chains[0].rules[2]
			for i, e := range r.exprs {
				if l, ok := e.(*expr.Lookup); ok {
					l2 := *l
					l2.Invert = true
					r.exprs[i] = &l2
				}
			}
			return s
		}(), []string{
			`chain input: rule missing: iifname "wg0" tcp dport @forwarded_tcp ct state new accept`,
			`chain input: unexpected rule: [ meta load iifname => reg 1 ] [ cmp eq reg 1 0x77673000000000000000000000000000 ] [ meta load l4proto => reg 1 ] [ cmp eq reg 1 0x06 ] [ payload op 0 2b @ base 2 + 2 dreg 1 sreg 0 csum type 0 offset 0 flags 0 ] [ lookup reg 1 set forwarded_tcp invert ] [ ct load state => reg 1 dir 0 ] [ bitwise reg 1 = ( reg 1 & 0x08000000 ) ^ 0x00000000 len 4 ] [ cmp neq reg 1 0x00000000 ] [ immediate reg 0 accept ]`,
		}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := compare(tc.spec, tc.snap)
			if d := cmp.Diff(tc.want, st.Diff); d != "" {
				t.Errorf("Diff (-want +got):\n%s", d)
			}
			if st.Matches != (tc.want == nil) {
				t.Errorf("Matches = %v with Diff %q", st.Matches, st.Diff)
			}
			if d := cmp.Diff(tc.wantForwarded, st.Forwarded); d != "" {
				t.Errorf("Forwarded (-want +got):\n%s", d)
			}
		})
	}
}

func TestSetForwardedRefuses(t *testing.T) {
	for _, ports := range [][]Port{
		{{Port: 1, Proto: "tcp"}, {Port: 2, Proto: "tcp"}},
		{{Port: 0, Proto: "udp"}},
		{{Port: 80, Proto: "sctp"}},
	} {
		err := SetForwarded(-1, ports)
		if !errors.Is(err, ErrForwardedPorts) {
			t.Errorf("SetForwarded(%v) = %v, want ErrForwardedPorts", ports, err)
		}
	}
	// Good ports still need a namespace: fd 0 would be this process's own.
	if err := SetForwarded(0, []Port{{Port: 1, Proto: "tcp"}}); !errors.Is(err, ErrNotNetns) {
		t.Errorf("SetForwarded on fd 0 = %v, want ErrNotNetns", err)
	}
}

func TestWithSetIDs(t *testing.T) {
	es := dportIn("forwarded_tcp")
	got := withSetIDs(es, map[string]uint32{"forwarded_tcp": 9})
	if l := got[1].(*expr.Lookup); l.SetID != 9 || l.SetName != "forwarded_tcp" {
		t.Errorf("lookup after withSetIDs: %+v", l)
	}
	if l := es[1].(*expr.Lookup); l.SetID != 0 {
		t.Errorf("withSetIDs changed the spec's own lookup: %+v", l)
	}
}
