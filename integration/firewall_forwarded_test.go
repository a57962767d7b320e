package integration

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/wgns/wgns/firewall"
)

// TestIntegrationFirewallForwardedPorts: with PortForward, the table has a set per protocol that
// SetForwarded fills in one transaction; a new connection from the tunnel gets in on the port it
// holds and on no other, a new port closes the old one, Inspect calls the table matching and
// reports the port, and Apply (what repair does) keeps it. nft is the witness.
func TestIntegrationFirewallForwardedPorts(t *testing.T) {
	worldRulesetStaysEmpty(t)
	tp := firewallTopology(t, "wgt", nil)
	r := firewall.Rules{Tunnel: "wgt", PortForward: true}
	if err := firewall.Apply(tp.ns, r); err != nil {
		t.Fatal(err)
	}
	ruleset := nftIn(t, tp.nsName, "list", "ruleset")
	for _, want := range []string{
		"set forwarded_tcp {\n\t\ttype inet_service\n\t}",
		"set forwarded_udp {\n\t\ttype inet_service\n\t}",
		`iifname "wgt" tcp dport @forwarded_tcp ct state new accept`,
		`iifname "wgt" udp dport @forwarded_udp ct state new accept`,
	} {
		if !strings.Contains(ruleset, want) {
			t.Errorf("nft list ruleset lacks %q:\n%s", want, ruleset)
		}
	}
	inspect := func(want ...firewall.Port) {
		t.Helper()
		st, err := firewall.Inspect(tp.ns, r)
		if err != nil {
			t.Fatal(err)
		}
		if !st.Matches || !slices.Equal(st.Forwarded, want) {
			t.Errorf("Inspect = matches %v, forwarded %v (diff %q); want matching with %v", st.Matches, st.Forwarded, st.Diff, want)
		}
	}
	inspect()

	l1 := listenIn(t, tp.ns, "203.0.113.1:51413")
	l2 := listenIn(t, tp.ns, "203.0.113.1:51414")
	assertBlockedOut(t, tp.ns, r, tp.tun, "203.0.113.1:51413", l1)

	tcp1, udp1 := firewall.Port{Port: 51413, Proto: "tcp"}, firewall.Port{Port: 51413, Proto: "udp"}
	if err := firewall.SetForwarded(tp.ns, []firewall.Port{udp1, tcp1}); err != nil {
		t.Fatal(err)
	}
	if err := connectThrough(t, tp.tun, "203.0.113.1:51413", l1); err != nil {
		t.Errorf("a connection from the tunnel to the forwarded port 51413: %v", err)
	}
	assertBlockedOut(t, tp.ns, r, tp.tun, "203.0.113.1:51414", l2)
	if got := nftIn(t, tp.nsName, "list", "set", "inet", "wgns", "forwarded_tcp"); !strings.Contains(got, "elements = { 51413 }") {
		t.Errorf("nft list set forwarded_tcp:\n%s", got)
	}
	inspect(tcp1, udp1)

	// A new port: the old one closes as the new one opens.
	tcp2 := firewall.Port{Port: 51414, Proto: "tcp"}
	if err := firewall.SetForwarded(tp.ns, []firewall.Port{tcp2}); err != nil {
		t.Fatal(err)
	}
	if err := connectThrough(t, tp.tun, "203.0.113.1:51414", l2); err != nil {
		t.Errorf("a connection from the tunnel to the new forwarded port 51414: %v", err)
	}
	assertBlockedOut(t, tp.ns, r, tp.tun, "203.0.113.1:51413", l1)
	if got := nftIn(t, tp.nsName, "list", "set", "inet", "wgns", "forwarded_udp"); strings.Contains(got, "elements") {
		t.Errorf("the UDP set still holds a port:\n%s", got)
	}
	inspect(tcp2)

	// Apply replaces the table, as repair does, and keeps the forwarded port.
	if err := firewall.Apply(tp.ns, r); err != nil {
		t.Fatal(err)
	}
	inspect(tcp2)
	if err := connectThrough(t, tp.tun, "203.0.113.1:51414", l2); err != nil {
		t.Errorf("after Apply, a connection to the forwarded port 51414: %v", err)
	}

	// A port added behind wgns's back: the table no longer matches, and Apply does not keep
	// what someone else put there.
	nftIn(t, tp.nsName, "add", "element", "inet", "wgns", "forwarded_tcp", "{ 22 }")
	st, err := firewall.Inspect(tp.ns, r)
	if err != nil {
		t.Fatal(err)
	}
	if st.Matches || !slices.Contains(st.Diff, "set forwarded_tcp holds 2 ports, want at most 1") {
		t.Errorf("Inspect after a port was added by hand = %+v", st)
	}
	if err := firewall.Apply(tp.ns, r); err != nil {
		t.Fatal(err)
	}
	inspect()

	// A table without PortForward has no sets to fill.
	if err := firewall.Apply(tp.ns, firewall.Rules{Tunnel: "wgt"}); err != nil {
		t.Fatal(err)
	}
	if err := firewall.SetForwarded(tp.ns, []firewall.Port{tcp1}); !errors.Is(err, unix.ENOENT) {
		t.Errorf("SetForwarded without the sets = %v, want ENOENT", err)
	}
	if got := nftIn(t, tp.nsName, "list", "ruleset"); strings.Contains(got, "forwarded") {
		t.Errorf("a table without PortForward:\n%s", got)
	}
}
