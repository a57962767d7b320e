package integration

import (
	"fmt"
	"strings"
	"testing"

	"github.com/wgns/wgns/firewall"
)

// TestIntegrationFirewallInstall: Install puts the same table as Apply into a fresh namespace,
// and refuses, changing nothing, when a table is already there.
func TestIntegrationFirewallInstall(t *testing.T) {
	worldRulesetStaysEmpty(t)
	name := fmt.Sprintf("fw%d-in", fwSeq.Add(1))
	fd := addNetns(t, name)
	r := firewall.Rules{Tunnel: "wgt", AllowInbound: []firewall.Port{
		{Port: 8080, Proto: "tcp"}, {Port: 5353, Proto: "udp"}, {Port: 22, Proto: "tcp"}, {Port: 8080, Proto: "tcp"},
	}}
	if err := firewall.Install(fd, r); err != nil {
		t.Fatal(err)
	}
	if got := nftIn(t, name, "list", "ruleset"); got != fwGolden {
		t.Fatalf("after Install, nft list ruleset:\n%s\nwant:\n%s", got, fwGolden)
	}
	if st, err := firewall.Inspect(fd, r); err != nil || !st.Present || !st.Matches {
		t.Fatalf("Inspect after Install = %+v, %v", st, err)
	}
	other := firewall.Rules{Tunnel: "other"}
	err := firewall.Install(fd, other)
	if err == nil || !strings.Contains(err.Error(), "exists") {
		t.Fatalf("a second Install: %v, want a refusal because the table exists", err)
	}
	if got := nftIn(t, name, "list", "ruleset"); got != fwGolden {
		t.Fatalf("a refused Install changed the table:\n%s", got)
	}
}
