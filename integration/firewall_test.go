package integration

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/wgns/wgns/firewall"
)

// The firewall tests build small topologies of namespaces with `ip` and use `nft` only as a
// witness; the package under test talks netlink through the namespace's fd.
//
//	fwN-up  eth0 198.51.100.2/24 fd00:51::2/64
//	    |
//	fwN-ns  eth0 198.51.100.1/24 fd00:51::1/64      <- the namespace the table guards
//	        TUNNEL 203.0.113.1/24 fd00:113::1/64    <- stands in for the WireGuard interface
//	    |
//	fwN-tun peer 203.0.113.2/24 fd00:113::2/64
//
// The "tunnel" is a veth, so IPv6 neighbours are set statically on both sides: a real tunnel
// is layer 3 and needs no neighbour discovery, and the table does not allow it.

var fwSeq atomic.Int32

const fwWait = 5 * time.Second

type firewallTopo struct {
	ns, up, tun             int // namespace fds
	nsName, upName, tunName string
}

// nftIn runs nft in the named namespace (the witness) and returns its output.
func nftIn(t *testing.T, ns string, args ...string) string {
	t.Helper()
	return mustRun(t, "ip", append([]string{"netns", "exec", ns, "nft"}, args...)...)
}

// addNetns creates a named namespace the iproute2 way, with lo up, and returns an open fd for
// it; both are gone after the test.
func addNetns(t *testing.T, name string) int {
	t.Helper()
	mustRun(t, "ip", "netns", "add", name)
	fd, err := unix.Open("/run/netns/"+name, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		exec.Command("ip", "netns", "del", name).Run()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		unix.Close(fd)
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			t.Errorf("deleting namespace %s: %v\n%s", name, err, out)
		}
	})
	mustRun(t, "ip", "-n", name, "link", "set", "lo", "up")
	return fd
}

// worldRulesetStaysEmpty checks that the world's own ruleset is empty now and after the test.
func worldRulesetStaysEmpty(t *testing.T) {
	t.Helper()
	check := func(when string) {
		if out := mustRun(t, "nft", "list", "ruleset"); strings.TrimSpace(out) != "" {
			t.Errorf("the world's own ruleset is not empty %s:\n%s", when, out)
		}
	}
	check("before the test")
	t.Cleanup(func() { check("after the test") })
}

// firewallTopology builds the three namespaces above, with the tunnel stand-in named tunnel. If
// before is not nil it runs once the namespaces exist and before any link is added.
func firewallTopology(t *testing.T, tunnel string, before func(tp *firewallTopo)) *firewallTopo {
	t.Helper()
	n := fwSeq.Add(1)
	tp := &firewallTopo{
		nsName:  fmt.Sprintf("fw%d-ns", n),
		upName:  fmt.Sprintf("fw%d-up", n),
		tunName: fmt.Sprintf("fw%d-tun", n),
	}
	tp.ns = addNetns(t, tp.nsName)
	tp.up = addNetns(t, tp.upName)
	tp.tun = addNetns(t, tp.tunName)
	for _, ns := range []string{tp.nsName, tp.upName, tp.tunName} {
		// Quiet namespaces: no DAD, no router solicitations.
		mustRun(t, "ip", "netns", "exec", ns, "sysctl", "-qw",
			"net.ipv6.conf.default.accept_dad=0", "net.ipv6.conf.default.router_solicitations=0")
	}
	if before != nil {
		before(tp)
	}
	mustRun(t, "ip", "link", "add", "eth0", "netns", tp.nsName, "type", "veth", "peer", "name", "eth0", "netns", tp.upName)
	mustRun(t, "ip", "link", "add", tunnel, "netns", tp.nsName, "address", "02:00:00:00:01:01",
		"type", "veth", "peer", "name", "peer", "netns", tp.tunName, "address", "02:00:00:00:01:02")
	for _, a := range []struct{ ns, dev, v4, v6, nb6, lladdr string }{
		{tp.nsName, "eth0", "198.51.100.1/24", "fd00:51::1/64", "", ""},
		{tp.upName, "eth0", "198.51.100.2/24", "fd00:51::2/64", "", ""},
		{tp.nsName, tunnel, "203.0.113.1/24", "fd00:113::1/64", "fd00:113::2", "02:00:00:00:01:02"},
		{tp.tunName, "peer", "203.0.113.2/24", "fd00:113::2/64", "fd00:113::1", "02:00:00:00:01:01"},
	} {
		mustRun(t, "ip", "-n", a.ns, "addr", "add", a.v4, "dev", a.dev)
		mustRun(t, "ip", "-n", a.ns, "addr", "add", a.v6, "dev", a.dev, "nodad")
		mustRun(t, "ip", "-n", a.ns, "link", "set", a.dev, "up")
		if a.nb6 != "" {
			mustRun(t, "ip", "-n", a.ns, "neigh", "replace", a.nb6, "lladdr", a.lladdr, "dev", a.dev, "nud", "permanent")
		}
	}
	return tp
}

// inNetns runs f on a locked OS thread switched into the namespace open as fd, and switches back.
// Sockets f creates stay in that namespace and may be used from any goroutine afterwards. If
// switching back fails, the thread is not unlocked, so it dies with the goroutine.
func inNetns(fd int, f func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		defer unix.Close(orig)
		if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("setns: %w", err)
			return
		}
		ferr := f()
		if err := unix.Setns(orig, unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("switching back: %w", err) // the thread stays locked and dies
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// echoServer starts a TCP listener in the namespace that echoes one line per connection.
func echoServer(t *testing.T, fd int, addr string) net.Listener {
	t.Helper()
	var l net.Listener
	if err := inNetns(fd, func() (err error) { l, err = net.Listen("tcp", addr); return err }); err != nil {
		t.Fatalf("listening on %s: %v", addr, err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(fwWait))
				buf := make([]byte, 64)
				n, _ := c.Read(buf)
				c.Write(buf[:n])
			}()
		}
	}()
	return l
}

// listenIn opens a TCP listener in the namespace that accepts nothing by itself.
func listenIn(t *testing.T, fd int, addr string) *net.TCPListener {
	t.Helper()
	var l net.Listener
	if err := inNetns(fd, func() (err error) { l, err = net.Listen("tcp", addr); return err }); err != nil {
		t.Fatalf("listening on %s: %v", addr, err)
	}
	t.Cleanup(func() { l.Close() })
	return l.(*net.TCPListener)
}

// dialIn connects from the namespace to addr.
func dialIn(ctx context.Context, fd int, addr string) (net.Conn, error) {
	var c net.Conn
	err := inNetns(fd, func() (err error) {
		c, err = (&net.Dialer{}).DialContext(ctx, "tcp", addr)
		return err
	})
	return c, err
}

// talk connects from the namespace to an echo server at addr and checks the echo: proof that
// packets flow both ways.
func talk(fd int, addr string) error {
	ctx, cancel := context.WithTimeout(context.Background(), fwWait)
	defer cancel()
	c, err := dialIn(ctx, fd, addr)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(fwWait))
	if _, err := c.Write([]byte("hello\n")); err != nil {
		return err
	}
	buf := make([]byte, 64)
	n, err := c.Read(buf)
	if err != nil {
		return err
	}
	if string(buf[:n]) != "hello\n" {
		return fmt.Errorf("echo %q, want %q", buf[:n], "hello\n")
	}
	return nil
}

// pingFrom sends one ICMP or ICMPv6 echo request from the namespace to ip over a raw socket and
// waits for the reply.
func pingFrom(fd int, ip string) error {
	dst := net.ParseIP(ip)
	network, laddr, typ, replyType := "ip4:icmp", "0.0.0.0", byte(8), byte(0)
	if dst.To4() == nil {
		network, laddr, typ, replyType = "ip6:ipv6-icmp", "::", 128, 129
	}
	var pc net.PacketConn
	if err := inNetns(fd, func() (err error) { pc, err = net.ListenPacket(network, laddr); return err }); err != nil {
		return err
	}
	defer pc.Close()
	id := uint16(os.Getpid()) ^ uint16(fwSeq.Add(1))
	msg := []byte{typ, 0, 0, 0, byte(id >> 8), byte(id), 0, 1, 'w', 'g', 'n', 's'}
	if typ == 8 { // the kernel fills in ICMPv6 checksums, not ICMP ones
		var sum uint32
		for i := 0; i < len(msg); i += 2 {
			sum += uint32(msg[i])<<8 | uint32(msg[i+1])
		}
		sum = (sum >> 16) + (sum & 0xffff)
		sum += sum >> 16
		msg[2], msg[3] = byte(^sum>>8), byte(^sum)
	}
	if _, err := pc.WriteTo(msg, &net.IPAddr{IP: dst}); err != nil {
		return err
	}
	pc.SetReadDeadline(time.Now().Add(fwWait))
	buf := make([]byte, 1500)
	for {
		n, _, err := pc.ReadFrom(buf)
		if err != nil {
			return err
		}
		if n >= 8 && buf[0] == replyType && uint16(buf[4])<<8|uint16(buf[5]) == id {
			return nil
		}
	}
}

// dropCount returns the table's drop count in the namespace.
func dropCount(t *testing.T, fd int, r firewall.Rules) uint64 {
	t.Helper()
	st, err := firewall.Inspect(fd, r)
	if err != nil {
		t.Fatal(err)
	}
	return st.Dropped
}

// waitDropped waits until the drop count rises above before.
func waitDropped(t *testing.T, fd int, r firewall.Rules, before uint64, what string) {
	t.Helper()
	deadline := time.Now().Add(fwWait)
	for dropCount(t, fd, r) <= before {
		if time.Now().After(deadline) {
			t.Fatalf("%s: the drop counters did not rise above %d", what, before)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// noPendingConn reports an error if l has a connection waiting to be accepted.
func noPendingConn(l *net.TCPListener) error {
	l.SetDeadline(time.Now())
	defer l.SetDeadline(time.Time{})
	c, err := l.Accept()
	if err == nil {
		c.Close()
		return fmt.Errorf("listener %s accepted a connection from %s", l.Addr(), c.RemoteAddr())
	}
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		return err
	}
	return nil
}

const fwGolden = `table inet wgns {
	counter dropped_input {
		packets 0 bytes 0
	}

	counter dropped_output {
		packets 0 bytes 0
	}

	counter dropped_forward {
		packets 0 bytes 0
	}

	chain input {
		type filter hook input priority filter; policy drop;
		iif "lo" accept
		iifname "wgt" ct state established,related accept
		iifname "wgt" tcp dport 22 ct state new accept
		iifname "wgt" tcp dport 8080 ct state new accept
		iifname "wgt" udp dport 5353 ct state new accept
		counter name "dropped_input"
	}

	chain output {
		type filter hook output priority filter; policy drop;
		oif "lo" accept
		oifname "wgt" accept
		counter name "dropped_output"
	}

	chain forward {
		type filter hook forward priority filter; policy drop;
		counter name "dropped_forward"
	}
}
`

// TestIntegrationFirewallApply installs the table in a fresh namespace, reads it back with nft
// and Inspect, replaces it, and removes it.
func TestIntegrationFirewallApply(t *testing.T) {
	worldRulesetStaysEmpty(t)
	name := fmt.Sprintf("fw%d-ns", fwSeq.Add(1))
	fd := addNetns(t, name)
	r := firewall.Rules{Tunnel: "wgt", AllowInbound: []firewall.Port{
		{Port: 8080, Proto: "tcp"}, {Port: 5353, Proto: "udp"}, {Port: 22, Proto: "tcp"}, {Port: 8080, Proto: "tcp"},
	}}

	st, err := firewall.Inspect(fd, r)
	if err != nil {
		t.Fatal(err)
	}
	if st.Present || st.Matches || len(st.Diff) != 1 || st.Diff[0] != "table inet wgns is missing" {
		t.Fatalf("Inspect before Apply = %+v, want absent with one Diff line", st)
	}

	for i := range 2 { // the second Apply replaces the first
		if err := firewall.Apply(fd, r); err != nil {
			t.Fatal(err)
		}
		if got := nftIn(t, name, "list", "ruleset"); got != fwGolden {
			t.Fatalf("after Apply #%d, nft list ruleset:\n%s\nwant:\n%s", i+1, got, fwGolden)
		}
		if got, want := nftIn(t, name, "list", "tables"), "table inet wgns\n"; got != want {
			t.Fatalf("after Apply #%d, nft list tables = %q, want %q", i+1, got, want)
		}
		st, err := firewall.Inspect(fd, r)
		if err != nil {
			t.Fatal(err)
		}
		if !st.Present || !st.Matches || len(st.Diff) != 0 {
			t.Fatalf("Inspect after Apply #%d = %+v, want present and matching", i+1, st)
		}
	}

	// The same rules with the ports in another order still match; other rules do not.
	same := firewall.Rules{Tunnel: "wgt", AllowInbound: []firewall.Port{{Port: 22, Proto: "tcp"}, {Port: 5353, Proto: "udp"}, {Port: 8080, Proto: "tcp"}}}
	if st, err := firewall.Inspect(fd, same); err != nil || !st.Matches {
		t.Errorf("Inspect with reordered ports = %+v, %v; want matching", st, err)
	}
	other := firewall.Rules{Tunnel: "wg0", AllowInbound: []firewall.Port{{Port: 22, Proto: "tcp"}, {Port: 5353, Proto: "udp"}}}
	st, err = firewall.Inspect(fd, other)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`chain output: rule missing: oifname "wg0" accept`,
		`chain input: rule missing: iifname "wg0" ct state established,related accept`,
		`chain input: unexpected rule: [ meta load iifname => reg 1 ] [ cmp eq reg 1 0x77677400000000000000000000000000 ] [ meta load l4proto => reg 1 ] [ cmp eq reg 1 0x06 ] [ payload op 0 2b @ base 2 + 2 dreg 1 sreg 0 csum type 0 offset 0 flags 0 ] [ cmp eq reg 1 0x1f90 ]`,
	} {
		if !hasLinePrefix(st.Diff, want) {
			t.Errorf("Inspect with other rules: Diff lacks %q:\n%s", want, strings.Join(st.Diff, "\n"))
		}
	}
	if st.Matches {
		t.Error("Inspect with other rules reports Matches")
	}

	if err := firewall.Remove(fd); err != nil {
		t.Fatal(err)
	}
	if got := nftIn(t, name, "list", "ruleset"); got != "" {
		t.Fatalf("after Remove, nft list ruleset:\n%s", got)
	}
	if st, err := firewall.Inspect(fd, r); err != nil || st.Present {
		t.Fatalf("Inspect after Remove = %+v, %v; want absent", st, err)
	}
	if err := firewall.Remove(fd); err != nil {
		t.Fatalf("Remove of an absent table: %v", err)
	}
}

// hasLinePrefix reports whether one of lines starts with prefix.
func hasLinePrefix(lines []string, prefix string) bool {
	for _, l := range lines {
		if strings.HasPrefix(l, prefix) {
			return true
		}
	}
	return false
}

// TestIntegrationFirewallApplyErrors checks that bad rules and a bad fd are refused, touching
// nothing, with errors that name the act.
func TestIntegrationFirewallApplyErrors(t *testing.T) {
	worldRulesetStaysEmpty(t)
	name := fmt.Sprintf("fw%d-ns", fwSeq.Add(1))
	fd := addNetns(t, name)
	for _, tc := range []struct {
		name string
		fd   int
		r    firewall.Rules
		want string
	}{
		{"no tunnel", fd, firewall.Rules{}, `installing firewall table "wgns" in namespace fd %d: tunnel interface name "": empty`},
		{"long tunnel", fd, firewall.Rules{Tunnel: "abcdefghijklmnop"}, `installing firewall table "wgns" in namespace fd %d: tunnel interface name "abcdefghijklmnop": longer than 15 bytes`},
		{"slash", fd, firewall.Rules{Tunnel: "a/b"}, `installing firewall table "wgns" in namespace fd %d: tunnel interface name "a/b": contains '/', ':', NUL or white space`},
		{"proto", fd, firewall.Rules{Tunnel: "wgt", AllowInbound: []firewall.Port{{Port: 53, Proto: "sctp"}}}, `installing firewall table "wgns" in namespace fd %d: inbound port 53: protocol "sctp", want tcp or udp`},
		{"port 0", fd, firewall.Rules{Tunnel: "wgt", AllowInbound: []firewall.Port{{Port: 0, Proto: "tcp"}}}, `installing firewall table "wgns" in namespace fd %d: inbound port 0/tcp: port 0 cannot be opened`},
		{"fd 0", 0, firewall.Rules{Tunnel: "wgt"}, `installing firewall table "wgns" in namespace fd %d: fd 0: not a network namespace`},
		{"not a namespace", devNullFD(t), firewall.Rules{Tunnel: "wgt"}, `installing firewall table "wgns" in namespace fd %d: fd %[1]d: not a network namespace (inappropriate ioctl for device)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := firewall.Apply(tc.fd, tc.r)
			if tc.fd != fd && !errors.Is(err, firewall.ErrNotNetns) {
				t.Errorf("Apply = %v, want errors.Is ErrNotNetns", err)
			}
			want := fmt.Sprintf(tc.want, tc.fd)
			if err == nil || !strings.HasPrefix(err.Error(), want) {
				t.Fatalf("Apply = %v, want an error starting %q", err, want)
			}
			if got := nftIn(t, name, "list", "ruleset"); got != "" {
				t.Fatalf("a refused Apply left a ruleset:\n%s", got)
			}
		})
	}
}

// devNullFD returns a descriptor of /dev/null, a file that is not a namespace, open until the
// test ends.
func devNullFD(t *testing.T) int {
	f, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return int(f.Fd())
}

// TestIntegrationFirewallDetectsAlteration alters an applied table with nft in ways a check must
// catch, and expects Inspect to say what changed.
func TestIntegrationFirewallDetectsAlteration(t *testing.T) {
	worldRulesetStaysEmpty(t)
	name := fmt.Sprintf("fw%d-ns", fwSeq.Add(1))
	fd := addNetns(t, name)
	r := firewall.Rules{Tunnel: "wgt", AllowInbound: []firewall.Port{{Port: 8080, Proto: "tcp"}}}
	for _, tc := range []struct {
		name    string
		alter   func(t *testing.T)
		present bool
		want    string // a line of Diff
	}{
		{"accept added to output", func(t *testing.T) { nftIn(t, name, "add", "rule", "inet", "wgns", "output", "accept") },
			true, `chain output: unexpected rule: [ immediate reg 0 accept ]`},
		{"output flushed", func(t *testing.T) { nftIn(t, name, "flush", "chain", "inet", "wgns", "output") },
			true, `chain output: rule missing: oifname "wgt" accept`},
		{"input policy accept", func(t *testing.T) { nftIn(t, name, "chain", "inet", "wgns", "input", "{ policy accept; }") },
			true, `chain input: policy accept, want drop`},
		{"table deleted", func(t *testing.T) { nftIn(t, name, "delete", "table", "inet", "wgns") },
			false, `table inet wgns is missing`},
		{"table dormant", func(t *testing.T) { nftIn(t, name, "add", "table", "inet", "wgns", "{ flags dormant; }") },
			true, `table flags dormant, want none`},
		{"chain added", func(t *testing.T) {
			nftIn(t, name, "add", "chain", "inet", "wgns", "sneak", "{ type filter hook output priority -10; policy accept; }")
		}, true, `unexpected chain sneak`},
		{"rule with an expression google/nftables does not decode", func(t *testing.T) {
			nftIn(t, name, "insert", "rule", "inet", "wgns", "output", "meta", "nfproto", "ipv4", "rt", "nexthop", "198.51.100.2", "accept")
		}, true, `chain output: unexpected rule: [ meta load nfproto => reg 1 ] [ cmp eq reg 1 0x02 ] [ rt (not decoded) ] [ cmp eq reg 1 0xc6336402 ] [ immediate reg 0 accept ]`},
		{"counter moved first", func(t *testing.T) {
			out := nftIn(t, name, "-a", "list", "chain", "inet", "wgns", "output")
			m := regexp.MustCompile(`oif "lo" accept # handle (\d+)`).FindStringSubmatch(out)
			if m == nil {
				t.Fatalf("no handle for oif lo in:\n%s", out)
			}
			nftIn(t, name, "delete", "rule", "inet", "wgns", "output", "handle", m[1])
			nftIn(t, name, "add", "rule", "inet", "wgns", "output", "oif", "lo", "accept")
		}, true, `chain output: rules in a different order`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := firewall.Apply(fd, r); err != nil {
				t.Fatal(err)
			}
			if st, err := firewall.Inspect(fd, r); err != nil || !st.Matches {
				t.Fatalf("Inspect after Apply = %+v, %v; want matching", st, err)
			}
			tc.alter(t)
			st, err := firewall.Inspect(fd, r)
			if err != nil {
				t.Fatal(err)
			}
			if st.Matches || st.Present != tc.present || !hasLinePrefix(st.Diff, tc.want) {
				t.Fatalf("Inspect = Present %v, Matches %v, Diff:\n%s\nwant Present %v, not Matches, and a line %q",
					st.Present, st.Matches, strings.Join(st.Diff, "\n"), tc.present, tc.want)
			}
		})
	}
	// Apply repairs whatever was done.
	if err := firewall.Apply(fd, r); err != nil {
		t.Fatal(err)
	}
	if st, err := firewall.Inspect(fd, r); err != nil || !st.Matches {
		t.Fatalf("Inspect after the last Apply = %+v, %v; want matching", st, err)
	}
}

// dialAsync starts a connection from the namespace to addr; cancel abandons it.
func dialAsync(fd int, addr string) (cancel func(), result <-chan error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	res := make(chan error, 1)
	go func() {
		c, err := dialIn(ctx, fd, addr)
		if err == nil {
			c.Close()
		}
		res <- err
	}()
	return cancel, res
}

// connectThrough connects from the namespace to addr and the listener l accepts it.
func connectThrough(t *testing.T, fd int, addr string, l *net.TCPListener) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), fwWait)
	defer cancel()
	c, err := dialIn(ctx, fd, addr)
	if err != nil {
		return err
	}
	defer c.Close()
	l.SetDeadline(time.Now().Add(fwWait))
	defer l.SetDeadline(time.Time{})
	a, err := l.Accept()
	if err != nil {
		return fmt.Errorf("accepting the connection to %s: %w", addr, err)
	}
	a.Close()
	return nil
}

// assertBlockedOut checks that a connection from the namespace to addr is dropped and counted: the
// drop counters rise while the connection is pending, and it never succeeds.
func assertBlockedOut(t *testing.T, fd int, r firewall.Rules, from int, addr string, l *net.TCPListener) {
	t.Helper()
	before := dropCount(t, fd, r)
	cancel, res := dialAsync(from, addr)
	waitDropped(t, fd, r, before, "connecting to "+addr)
	if l != nil {
		if err := noPendingConn(l); err != nil {
			t.Errorf("connecting to %s: %v", addr, err)
		}
	}
	cancel()
	if err := <-res; err == nil {
		t.Errorf("connecting to %s succeeded through the firewall", addr)
	}
}

// TestIntegrationFirewallTraffic sends real traffic through a namespace guarded by the table:
// lo and the tunnel work, the other link and forwarding are dropped and counted, and only the
// opened ports take new connections from the tunnel.
func TestIntegrationFirewallTraffic(t *testing.T) {
	worldRulesetStaysEmpty(t)
	tp := firewallTopology(t, "wgt", nil)
	r := firewall.Rules{Tunnel: "wgt", AllowInbound: []firewall.Port{{Port: 8080, Proto: "tcp"}, {Port: 5353, Proto: "udp"}}}

	up4 := listenIn(t, tp.up, "198.51.100.2:9000")
	up6 := listenIn(t, tp.up, "[fd00:51::2]:9000")
	echoServer(t, tp.tun, "203.0.113.2:9000")
	echoServer(t, tp.tun, "[fd00:113::2]:9000")
	echoServer(t, tp.ns, "127.0.0.1:9000")
	echoServer(t, tp.ns, "[::1]:9000")
	open := listenIn(t, tp.ns, ":8080")
	closed := listenIn(t, tp.ns, ":8081")
	var udpOpen, udpClosed net.PacketConn
	if err := inNetns(tp.ns, func() (err error) {
		if udpOpen, err = net.ListenPacket("udp", ":5353"); err != nil {
			return err
		}
		udpClosed, err = net.ListenPacket("udp", ":5354")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer udpOpen.Close()
	defer udpClosed.Close()

	// Forwarding through the namespace, from the tunnel side to the other link.
	mustRun(t, "ip", "netns", "exec", tp.nsName, "sysctl", "-qw", "net.ipv4.ip_forward=1")
	mustRun(t, "ip", "-n", tp.tunName, "route", "add", "198.51.100.0/24", "via", "203.0.113.1")
	mustRun(t, "ip", "-n", tp.upName, "route", "add", "203.0.113.0/24", "via", "198.51.100.1")

	// Without the table everything flows, so what fails below fails because of the table.
	for _, c := range []struct {
		from int
		addr string
		l    *net.TCPListener
	}{
		{tp.ns, "198.51.100.2:9000", up4}, {tp.ns, "[fd00:51::2]:9000", up6},
		{tp.up, "198.51.100.1:8080", open}, {tp.tun, "203.0.113.1:8081", closed},
		{tp.tun, "198.51.100.2:9000", up4},
	} {
		if err := connectThrough(t, c.from, c.addr, c.l); err != nil {
			t.Fatalf("without the table: %v", err)
		}
	}

	if err := firewall.Apply(tp.ns, r); err != nil {
		t.Fatal(err)
	}

	t.Run("out via the other link is dropped", func(t *testing.T) {
		assertBlockedOut(t, tp.ns, r, tp.ns, "198.51.100.2:9000", up4)
		assertBlockedOut(t, tp.ns, r, tp.ns, "[fd00:51::2]:9000", up6)
		for _, ip := range []string{"198.51.100.2", "fd00:51::2"} {
			before := dropCount(t, tp.ns, r)
			if err := pingFrom(tp.ns, ip); !errors.Is(err, unix.EPERM) {
				t.Errorf("ping %s = %v, want %v", ip, err, unix.EPERM)
			}
			if after := dropCount(t, tp.ns, r); after <= before {
				t.Errorf("ping %s: drop counters %d before, %d after", ip, before, after)
			}
		}
		var err error
		if err = inNetns(tp.ns, func() error {
			c, err := net.Dial("udp", "198.51.100.2:53")
			if err != nil {
				return err
			}
			defer c.Close()
			_, err = c.Write([]byte("x"))
			return err
		}); !errors.Is(err, unix.EPERM) {
			t.Errorf("UDP to 198.51.100.2:53 = %v, want %v", err, unix.EPERM)
		}
	})
	t.Run("lo works", func(t *testing.T) {
		for _, ip := range []string{"127.0.0.1", "::1"} {
			if err := pingFrom(tp.ns, ip); err != nil {
				t.Errorf("ping %s: %v", ip, err)
			}
		}
		for _, addr := range []string{"127.0.0.1:9000", "[::1]:9000"} {
			if err := talk(tp.ns, addr); err != nil {
				t.Errorf("TCP over lo to %s: %v", addr, err)
			}
		}
	})
	t.Run("out via the tunnel works, and its replies come back", func(t *testing.T) {
		for _, ip := range []string{"203.0.113.2", "fd00:113::2"} {
			if err := pingFrom(tp.ns, ip); err != nil {
				t.Errorf("ping %s: %v", ip, err)
			}
		}
		for _, addr := range []string{"203.0.113.2:9000", "[fd00:113::2]:9000"} {
			if err := talk(tp.ns, addr); err != nil {
				t.Errorf("TCP via the tunnel to %s: %v", addr, err)
			}
		}
	})
	t.Run("in via the tunnel to an opened TCP port", func(t *testing.T) {
		for _, addr := range []string{"203.0.113.1:8080", "[fd00:113::1]:8080"} {
			if err := connectThrough(t, tp.tun, addr, open); err != nil {
				t.Errorf("TCP from the tunnel to %s: %v", addr, err)
			}
		}
	})
	t.Run("in via the tunnel to another TCP port is dropped", func(t *testing.T) {
		for _, addr := range []string{"203.0.113.1:8081", "[fd00:113::1]:8081"} {
			assertBlockedOut(t, tp.ns, r, tp.tun, addr, closed)
		}
	})
	t.Run("in via the other link to the opened port is dropped", func(t *testing.T) {
		assertBlockedOut(t, tp.ns, r, tp.up, "198.51.100.1:8080", open)
		assertBlockedOut(t, tp.ns, r, tp.up, "[fd00:51::1]:8080", open)
	})
	t.Run("UDP in via the tunnel only to the opened port", func(t *testing.T) {
		before := dropCount(t, tp.ns, r)
		if err := inNetns(tp.tun, func() error {
			pc, err := net.ListenPacket("udp", "203.0.113.2:0")
			if err != nil {
				return err
			}
			defer pc.Close()
			// The closed port first: once the open one has its datagram, the other has had time.
			for _, port := range []int{5354, 5353} {
				if _, err := pc.WriteTo([]byte("x"), &net.UDPAddr{IP: net.ParseIP("203.0.113.1"), Port: port}); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		udpOpen.SetReadDeadline(time.Now().Add(fwWait))
		if _, _, err := udpOpen.ReadFrom(make([]byte, 16)); err != nil {
			t.Errorf("UDP from the tunnel to port 5353: %v", err)
		}
		waitDropped(t, tp.ns, r, before, "UDP from the tunnel to port 5354")
		udpClosed.SetReadDeadline(time.Now())
		if _, _, err := udpClosed.ReadFrom(make([]byte, 16)); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("UDP from the tunnel to port 5354 arrived (%v)", err)
		}
	})
	t.Run("forwarding is dropped", func(t *testing.T) {
		assertBlockedOut(t, tp.ns, r, tp.tun, "198.51.100.2:9000", up4)
	})
	t.Run("the table stays when the tunnel goes", func(t *testing.T) {
		mustRun(t, "ip", "-n", tp.nsName, "link", "del", "wgt")
		if st, err := firewall.Inspect(tp.ns, r); err != nil || !st.Matches {
			t.Fatalf("Inspect after the tunnel went = %+v, %v; want matching", st, err)
		}
		assertBlockedOut(t, tp.ns, r, tp.ns, "198.51.100.2:9000", up4)
	})
}

// TestIntegrationFirewallQuotedTunnel installs the table for a tunnel whose name nft must
// quote, before that interface exists, and then uses the interface.
func TestIntegrationFirewallQuotedTunnel(t *testing.T) {
	worldRulesetStaysEmpty(t)
	const tunnel = "a+b=c.d-e"
	r := firewall.Rules{Tunnel: tunnel, AllowInbound: []firewall.Port{{Port: 8080, Proto: "tcp"}}}
	tp := firewallTopology(t, tunnel, func(tp *firewallTopo) {
		if err := firewall.Apply(tp.ns, r); err != nil {
			t.Fatal(err)
		}
	})
	out := nftIn(t, tp.nsName, "list", "ruleset")
	for _, want := range []string{
		"\t\toifname \"a+b=c.d-e\" accept\n",
		"\t\tiifname \"a+b=c.d-e\" ct state established,related accept\n",
		"\t\tiifname \"a+b=c.d-e\" tcp dport 8080 ct state new accept\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("nft list ruleset lacks %q:\n%s", want, out)
		}
	}
	if st, err := firewall.Inspect(tp.ns, r); err != nil || !st.Matches {
		t.Fatalf("Inspect = %+v, %v; want matching", st, err)
	}
	echoServer(t, tp.tun, "203.0.113.2:9000")
	open := listenIn(t, tp.ns, "203.0.113.1:8080")
	up := listenIn(t, tp.up, "198.51.100.2:9000")
	if err := talk(tp.ns, "203.0.113.2:9000"); err != nil {
		t.Errorf("TCP via the tunnel: %v", err)
	}
	if err := connectThrough(t, tp.tun, "203.0.113.1:8080", open); err != nil {
		t.Errorf("TCP from the tunnel to the opened port: %v", err)
	}
	assertBlockedOut(t, tp.ns, r, tp.ns, "198.51.100.2:9000", up)
}
