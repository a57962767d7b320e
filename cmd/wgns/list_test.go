package main

import (
	"net/netip"
	"testing"
	"time"

	"github.com/wgns/wgns/internal/golden"
	"github.com/wgns/wgns/ports"
	"github.com/wgns/wgns/wgns"
)

func TestFormatStatusPorts(t *testing.T) {
	now := time.Date(2026, 11, 22, 3, 0, 0, 0, time.UTC)
	gw := netip.MustParseAddr("10.2.0.1")
	base := func() *wgns.Status {
		n := 1
		return &wgns.Status{Name: "work", Mode: wgns.ModeUserspace, State: "ready", Namespace: "/run/netns/work",
			Config: "/etc/wgns/work.conf", Addresses: []string{"10.2.0.2/32"}, DNS: []string{"10.2.0.1"}, Firewall: "on", Processes: &n}
	}
	published := []ports.PublishedPort{{Listen: "127.0.0.1:9091", Port: 9091, Proto: "tcp"}, {Listen: "[::1]:5353", Port: 53, Proto: "udp"}}
	for _, tc := range []struct {
		name string
		edit func(s *wgns.Status)
	}{
		{"status-ports-none", func(s *wgns.Status) {}},
		{"status-ports-forwarded", func(s *wgns.Status) {
			s.Published = published
			s.PortForward = &ports.ForwardState{Gateway: gw, Port: 51413, Expires: now.Add(42 * time.Second), Renewed: now.Add(-18 * time.Second)}
		}},
		{"status-ports-asking", func(s *wgns.Status) {
			s.PortForward = &ports.ForwardState{Gateway: gw}
		}},
		{"status-ports-failing", func(s *wgns.Status) {
			s.PortForward = &ports.ForwardState{Gateway: gw, Port: 51413, UDPPort: 51414, External: 61413, Expires: now.Add(5 * time.Second),
				Error: "mapping tcp port 51413: no answer in 7.75s (5 tries)", Since: now.Add(-25 * time.Second)}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := base()
			tc.edit(s)
			golden.Check(t, tc.name, formatStatus(s, now))
		})
	}
}
