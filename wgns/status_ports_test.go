package wgns

import (
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/wgns/wgns/nsmgr"
	"github.com/wgns/wgns/ports"
)

func TestStatusPortsFromTheSupervisorsRecord(t *testing.T) {
	path := filepath.Join(t.TempDir(), "work.ports")
	self := os.Getpid()
	expires := time.Date(2026, 11, 22, 3, 1, 0, 0, time.UTC)
	r := ports.NewRecorder(path, self, nsmgr.StartTime(self), t.Logf)
	r.SetPublished([]ports.PublishedPort{{Listen: "127.0.0.1:8080", Port: 80, Proto: "tcp"}})
	r.SetForward(ports.ForwardState{Gateway: netip.MustParseAddr("10.2.0.1"), Port: 51413, Expires: expires})
	for _, tc := range []struct {
		name string
		pid  int // the holder status found
		want bool
	}{
		{"the holder's record", self, true},
		{"another process's record", self + 1, false},
		{"no holder", 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &Status{PID: tc.pid}
			addPorts(s, path)
			if got := s.ForwardedPort == 51413 && s.ForwardedPortExpires.Equal(expires) && len(s.Published) == 1 &&
				s.PortForward != nil && s.PortForward.Gateway.String() == "10.2.0.1"; got != tc.want {
				t.Errorf("status with holder %d: %+v; want the record's ports: %v", tc.pid, s, tc.want)
			}
		})
	}
	// A record of a process that has ended (same PID, another start time) says nothing.
	stale := ports.NewRecorder(path, self, nsmgr.StartTime(self)+1, t.Logf)
	stale.SetPublished([]ports.PublishedPort{{Listen: "127.0.0.1:8080", Port: 80, Proto: "tcp"}})
	s := &Status{PID: self}
	if addPorts(s, path); s.Published != nil {
		t.Errorf("a stale record was shown: %+v", s.Published)
	}
}
