package main

import (
	"strings"
	"testing"
	"time"

	"github.com/wgns/wgns/internal/golden"
	"github.com/wgns/wgns/wgns"
)

// status shows a tunnel's failover groups: the failovers, each group's active peer or that it
// is down, and each peer's group and role.
func TestFormatStatusFailover(t *testing.T) {
	t.Setenv("TZ", "UTC")
	now := time.Date(2026, 11, 22, 3, 0, 0, 0, time.UTC)
	yes, no := true, false
	zero, three := 0, 3
	const a, b = "7mdWTRVAZzItPf1bKfRlBtghJ07PX/03L9w/QoXOwwg=", "L2Hu+ksSFs8A8BnuQVikyYK7JXK6fZcf03kohRl0TFA="
	base := func() *wgns.Status {
		return &wgns.Status{Name: "work", Mode: wgns.ModeUserspace, State: "ready", Namespace: "/run/netns/work", Config: "/etc/wgns/work.conf",
			Addresses: []string{"192.0.2.2/32"}, DNS: []string{"192.0.2.1"}, Firewall: "on",
			Peers: []wgns.PeerStatus{
				{PublicKey: a, Endpoint: "198.51.100.2:51820", AllowedIPs: []string{}, Group: 1, Active: &no},
				{PublicKey: b, Endpoint: "198.51.100.3:51820", AllowedIPs: []string{"0.0.0.0/0"}, LastHandshake: now.Add(-5 * time.Second), Group: 1, Active: &yes},
			}}
	}
	var out strings.Builder
	s := base()
	s.Failovers, s.LastFailover = &three, now.Add(-90*time.Second)
	s.FailoverGroups = []wgns.GroupStatus{{Group: 1, Peers: []string{a, b}, Active: b, Check: "192.0.2.1", Failovers: 3, LastFailover: s.LastFailover}}
	out.WriteString(formatStatus(s, now))
	s = base()
	s.Peers[1].Active, s.Peers[0].Active = &no, &yes
	s.Peers[0].AllowedIPs, s.Peers[1].AllowedIPs = s.Peers[1].AllowedIPs, s.Peers[0].AllowedIPs
	s.Failovers = &zero
	s.FailoverGroups = []wgns.GroupStatus{{Group: 1, Peers: []string{a, b}, Active: a}}
	out.WriteString("\n" + formatStatus(s, now))
	s = base()
	s.Failovers, s.LastFailover = &three, now.Add(-2*time.Second)
	s.FailoverGroups = []wgns.GroupStatus{{Group: 1, Peers: []string{a, b}, Active: b, Check: "192.0.2.1", Failovers: 3, LastFailover: s.LastFailover,
		DownSince: now.Add(-4 * time.Second)}}
	out.WriteString("\n" + formatStatus(s, now))
	golden.Check(t, "status-failover", out.String())
}
