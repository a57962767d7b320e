package wgns

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"
)

// failoverFacts is what gather finds for a healthy tunnel with one failover group: the first
// peer active (and handshaking), the second standing by (never handshaked: it carries nothing).
func failoverFacts(t *testing.T) *checkFacts {
	f := healthyFacts(t)
	f.cfg = failoverConfig(t)
	f.peers = []peerFact{
		{key: testPeerPub.String(), lastHandshake: testNow.Add(-42 * time.Second), keepalive: 25 * time.Second, allowed: 2},
		{key: testPeer2Pub.String()},
	}
	f.failovers = &FailoverRecord{Groups: []GroupRecord{{Peers: []wgtypes.Key{testPeerPub, testPeer2Pub}, Check: f.cfg.Groups[0].Check}}}
	return f
}

// check reports a failover group with no live peer, one that no single peer holds, and a
// supervisor that keeps no record; a peer standing by is not failed for having no handshake.
func TestCheckFailover(t *testing.T) {
	tail := func(r *CheckReport) string {
		lines := strings.Split(r.Text(), "\n")
		return strings.Join(lines[len(lines)-4:], "\n") // handshake, failover, the summary
	}
	a, b := testPeerPub.String(), testPeer2Pub.String()
	for _, tt := range []struct {
		name string
		edit func(f *checkFacts)
		want string
	}{
		{"healthy", func(*checkFacts) {}, `ok    handshake   peer ` + a + `: latest handshake 42s ago
ok    failover    group 1: peer ` + a + ` active of 2, answering (probing 192.0.2.1); no failover yet
work: all 12 checks ok
`},
		{"after failovers", func(f *checkFacts) {
			f.peers[0], f.peers[1] = peerFact{key: a}, peerFact{key: b, lastHandshake: testNow.Add(-3 * time.Second), allowed: 2}
			f.failovers.Groups[0].Failovers, f.failovers.Groups[0].LastFailover = 3, testNow.Add(-5*time.Second)
		}, `ok    handshake   peer ` + b + `: latest handshake 3s ago
ok    failover    group 1: peer ` + b + ` active of 2, answering (probing 192.0.2.1); 3 failovers, the last 5s ago
work: all 12 checks ok
`},
		{"every peer down", func(f *checkFacts) {
			f.peers[0].lastHandshake = testNow.Add(-4 * time.Minute)
			f.failovers.Groups[0].Check = netip.Addr{}
			f.failovers.Groups[0].Failovers, f.failovers.Groups[0].DownSince = 2, testNow.Add(-30*time.Second)
		}, `FAIL  handshake   peer ` + a + `: latest handshake 4m0s ago, more than 3m0s
FAIL  failover    group 1: none of its 2 peers answers, for 30s (judged by WireGuard's counters): its traffic goes nowhere, and nothing leaves outside the tunnel
work: 2 of 12 checks FAILED (handshake, failover)
`},
		{"no single holder", func(f *checkFacts) { f.peers[1].allowed = 1 }, `FAIL  handshake   peer ` + b + `: no handshake yet
FAIL  failover    group 1: 2 of its peers hold its AllowedIPs, not one
work: 2 of 12 checks FAILED (handshake, failover)
`},
		{"no record from the supervisor", func(f *checkFacts) { f.failovers = nil }, `FAIL  handshake   peer ` + b + `: no handshake yet
FAIL  failover    the config has failover groups, but the tunnel's supervisor (process 4242) keeps no record of them: nothing moves them on
work: 2 of 12 checks FAILED (handshake, failover)
`},
		{"an unreadable record", func(f *checkFacts) { f.failovers, f.failoversErr = nil, errors.New("reading the failovers: bad") }, `FAIL  handshake   peer ` + b + `: no handshake yet
FAIL  failover    could not check: reading the failovers: bad
work: 2 of 12 checks FAILED (handshake, failover)
`},
		{"no device", func(f *checkFacts) { f.wgErr = errors.New("no answer") }, `FAIL  handshake   no WireGuard device to ask: no answer
FAIL  failover    no WireGuard device to ask: no answer
work: 2 of 12 checks FAILED (handshake, failover)
`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := failoverFacts(t)
			tt.edit(f)
			r := evaluate("work", f)
			if d := cmp.Diff(tt.want, tail(r)); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
			if r.Checks[len(r.Checks)-1].Name != CheckFailover {
				t.Errorf("the failover check is not last: %v", r.Failed())
			}
		})
	}
	// Without failover groups there is no failover check.
	if r := evaluate("work", healthyFacts(t)); r.Checks[len(r.Checks)-1].Name == CheckFailover {
		t.Error("a tunnel without failover groups has a failover check")
	}
}

// The AllowedIPs a failover group's peers share are listed once among those routed.
func TestCheckRoutesOfAFailoverGroup(t *testing.T) {
	r := evaluate("work", failoverFacts(t))
	if got := r.Checks[4]; got.Name != CheckRoutes || !strings.HasSuffix(got.Detail, "AllowedIPs routed: 0.0.0.0/0, ::/0") {
		t.Errorf("routes: %+v", got)
	}
}
