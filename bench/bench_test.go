package main

import (
	"bytes"
	"encoding/binary"
	"math"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestSummarize(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []float64
		want Stat
	}{
		{"none", nil, Stat{}},
		{"one", []float64{3}, Stat{N: 1, Median: 3, Min: 3, Max: 3}},
		{"odd, unsorted", []float64{5, 1, 3}, Stat{N: 3, Median: 3, Min: 1, Max: 5}},
		{"even: mean of the middle two", []float64{4, 1, 2, 10}, Stat{N: 4, Median: 3, Min: 1, Max: 10}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := append([]float64(nil), tc.in...)
			if got := Summarize(tc.in); got != tc.want {
				t.Errorf("Summarize(%v) = %+v, want %+v", tc.in, got, tc.want)
			}
			for i := range in {
				if in[i] != tc.in[i] {
					t.Fatalf("Summarize reordered its input: %v", tc.in)
				}
			}
		})
	}
}

func TestRatioAndGoal(t *testing.T) {
	a, b := Summarize([]float64{2}), Summarize([]float64{4})
	if r := Ratio(a, b); r != 0.5 {
		t.Errorf("Ratio = %v, want 0.5", r)
	}
	if r := Ratio(a, Stat{}); !math.IsNaN(r) {
		t.Errorf("Ratio over nothing = %v, want NaN", r)
	}
	for _, tc := range []struct {
		g    Goal
		met  bool
		text string
	}{
		{Goal{What: "x", Ratio: 1.05, Limit: 1.1, AtMost: true}, true, "x = 1.05 (goal <= 1.10): met"},
		{Goal{What: "x", Ratio: 1.5, Limit: 1.1, AtMost: true}, false, "x = 1.50 (goal <= 1.10): NOT MET"},
		{Goal{What: "y", Ratio: 0.97, Limit: 0.95}, true, "y = 0.97 (goal >= 0.95): met"},
		{Goal{What: "y", Ratio: 0.5, Limit: 0.95}, false, "y = 0.50 (goal >= 0.95): NOT MET"},
		{Goal{What: "z", Ratio: math.NaN(), Limit: 1, AtMost: true}, false, "z = - (goal <= 1.00): NOT MET"},
	} {
		if tc.g.Met() != tc.met || tc.g.String() != tc.text {
			t.Errorf("%+v: Met %v, %q; want %v, %q", tc.g, tc.g.Met(), tc.g.String(), tc.met, tc.text)
		}
	}
}

func TestFmtNum(t *testing.T) {
	for _, tc := range []struct {
		in   float64
		want string
	}{
		{1234.5, "1234"}, {98.76, "98.8"}, {3.14159, "3.14"}, {0.12345, "0.123"}, {math.NaN(), "-"},
	} {
		if got := fmtNum(tc.in); got != tc.want {
			t.Errorf("fmtNum(%v) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestInterleaveFlipsOrder(t *testing.T) {
	var b strings.Builder
	var rounds []int
	fns := []func(){func() { b.WriteString("A") }, func() { b.WriteString("B") }, func() { b.WriteString("C") }}
	interleave(3, fns, func(r int) { rounds = append(rounds, r) })
	if got := b.String(); got != "ABCCBAABC" {
		t.Errorf("order %q, want ABCCBAABC", got)
	}
	if len(rounds) != 3 || rounds[2] != 3 {
		t.Errorf("progress calls %v", rounds)
	}
}

func TestTableMarkdown(t *testing.T) {
	tb := &Table{Caption: "cap", Header: []string{"what", "ms"}}
	tb.add("a|b", "1.00")
	tb.add("short")
	var b bytes.Buffer
	tb.writeMarkdown(&b)
	want := "cap\n\n| what | ms |\n|---|---:|\n| a\\|b | 1.00 |\n| short |  |\n\n"
	if b.String() != want {
		t.Errorf("markdown:\n%q\nwant\n%q", b.String(), want)
	}
}

func TestMarks(t *testing.T) {
	t0 := time.Unix(100, 0)
	at := func(msec float64) time.Time { return t0.Add(time.Duration(msec * float64(time.Millisecond))) }
	evs := []fsEvent{
		{path: "/run/wgns/wgb.log", mask: unix.IN_CREATE, at: at(3)},
		{path: "/run/wgns/.wgb.json.123", mask: unix.IN_CREATE, at: at(4)},
		{path: "/run/wgns/wgb.json", mask: unix.IN_MOVED_TO, at: at(6), step: "namespace"},
		{path: "/run/wgns/wgb.json", mask: unix.IN_MOVED_TO, at: at(7), step: "namespace"}, // rewritten, same step
		{path: "/run/wgns/wgb.json", mask: unix.IN_MOVED_TO, at: at(8), step: "firewall"},
		{path: "/run/wgns/other.json", mask: unix.IN_MOVED_TO, at: at(9), step: "dns"}, // another tunnel
		{path: "/run/wgns/wgb.ready", mask: unix.IN_MOVED_TO, at: at(10)},
		{path: "/run/netns/wgb", mask: unix.IN_DELETE, at: at(12)},
	}
	got := marks(evs, "wgb", t0)
	want := map[string]float64{"log": 3, "step:namespace": 6, "step:firewall": 8, "ready": 10, "nsgone": 12}
	if len(got) != len(want) {
		t.Fatalf("marks = %v, want %v", got, want)
	}
	for k, v := range want {
		if math.Abs(got[k]-v) > 1e-9 {
			t.Errorf("mark %s = %v, want %v", k, got[k], v)
		}
	}
}

func TestStepTableOrdersByRankNotMedian(t *testing.T) {
	// b always follows a closely, but a's median (over all rounds) is above b's: ordering by
	// medians would put b first and show a negative step.
	rounds := []map[string]float64{
		{"a": 10, "b": 11, "exit": 20},
		{"a": 30, "b": 31, "exit": 40},
		{"a": 31, "b": 32, "exit": 41},
		{"a": 5, "b": 6, "exit": 15},
	}
	tb, med := stepTable(rounds, map[string]string{"start": "to a", "a": "a to b", "b": "b to exit"}, 30, "")
	var labels []string
	for _, r := range tb.Rows {
		labels = append(labels, r[0])
		if strings.HasPrefix(r[1], "-") {
			t.Errorf("negative step %v", r)
		}
	}
	if got := strings.Join(labels, ","); got != "to a,a to b,b to exit" {
		t.Errorf("rows %s", got)
	}
	if tb.Rows[1][1] != "1.00" || tb.Rows[2][1] != "9.00" {
		t.Errorf("step medians %v, %v; want 1.00 and 9.00", tb.Rows[1], tb.Rows[2])
	}
	if med["a"] != 1 || med["b"] != 9 || med["start"] != 20 {
		t.Errorf("medians by first mark %v, want a 1, b 9, start 20", med)
	}
}

func TestChecksum(t *testing.T) {
	// An echo request whose checksum field holds its own checksum sums to zero.
	pkt := []byte{8, 0, 0, 0, 0x12, 0x34, 0, 1, 'a', 'b', 'c'}
	binary.BigEndian.PutUint16(pkt[2:], checksum(pkt))
	if c := checksum(pkt); c != 0 {
		t.Errorf("checksum over a packet with its checksum = %#x, want 0", c)
	}
	if c := checksum([]byte{0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7}); c != ^uint16(0xddf2) {
		t.Errorf("RFC 1071 example: %#x, want %#x", c, ^uint16(0xddf2))
	}
}

func TestIsReply(t *testing.T) {
	p := &pinger{id: 0x1234, seq: 5}
	ip := make([]byte, 20)
	ip[0] = 0x45
	reply := func(typ byte, id, seq uint16) []byte {
		icmp := make([]byte, 8)
		icmp[0] = typ
		binary.BigEndian.PutUint16(icmp[4:], id)
		binary.BigEndian.PutUint16(icmp[6:], seq)
		return append(append([]byte{}, ip...), icmp...)
	}
	for _, tc := range []struct {
		name string
		pkt  []byte
		want bool
	}{
		{"reply to the last request", reply(0, 0x1234, 5), true},
		{"reply to an earlier request of this ping", reply(0, 0x1234, 3), true},
		{"reply to a request before this ping", reply(0, 0x1234, 2), false},
		{"another pinger's reply", reply(0, 0x9999, 5), false},
		{"our own request", reply(8, 0x1234, 5), false},
		{"truncated", ip[:10], false},
	} {
		if got := p.isReply(tc.pkt, 3); got != tc.want {
			t.Errorf("%s: isReply = %v, want %v", tc.name, got, tc.want)
		}
	}
	p6 := &pinger{v6: true, id: 7, seq: 1}
	icmp6 := []byte{129, 0, 0, 0, 0, 7, 0, 1}
	if !p6.isReply(icmp6, 1) {
		t.Error("ICMPv6 echo reply not recognised")
	}
}

func TestTraceLine(t *testing.T) {
	for _, tc := range []struct {
		line, call string
		ok         bool
	}{
		{`74    1795314498.140548 execve("/work/main/bin/wgns", ["wgns"], 0x7ffe /* 35 vars */) = 0`, "execve", true},
		{`76    1795314498.168469 <... openat resumed>) = 5`, "", true},
		{`78    1795314498.174701 +++ exited with 0 +++`, "", true},
		{`garbage`, "", false},
	} {
		m := traceRe.FindStringSubmatch(tc.line)
		if (m != nil) != tc.ok || m != nil && m[2] != tc.call {
			t.Errorf("%q: match %v", tc.line, m)
		}
	}
}

func TestInitLine(t *testing.T) {
	m := initLine.FindStringSubmatch("init github.com/alecthomas/kong @3.2 ms, 0.14 ms clock, 6600 bytes, 54 allocs")
	if m == nil || m[1] != "github.com/alecthomas/kong" || m[2] != "3.2" || m[3] != "0.14" || m[4] != "6600" {
		t.Errorf("parsed %v", m)
	}
}

func TestFieldsMTU(t *testing.T) {
	if got := fieldsMTU("3: tp: <POINTOPOINT,UP> mtu 1420 qdisc fq state UNKNOWN"); got != "mtu 1420" {
		t.Errorf("got %q", got)
	}
	if got := fieldsMTU("nothing"); got != "?" {
		t.Errorf("got %q", got)
	}
}

func TestDecile(t *testing.T) {
	var v []float64
	for i := 1; i <= 100; i++ {
		v = append(v, float64(i))
	}
	if d := decile(v, 0); d.N != 10 || d.Min != 1 || d.Max != 10 {
		t.Errorf("first tenth %+v", d)
	}
	if d := decile(v, 9); d.N != 10 || d.Min != 91 || d.Max != 100 {
		t.Errorf("last tenth %+v", d)
	}
	if d := decile([]float64{1, 2}, 9); d.N != 2 {
		t.Errorf("fewer than ten values: %+v, want all of them", d)
	}
}
