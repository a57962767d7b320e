package supervisor

import (
	"context"
	"fmt"
	"math"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/wgns/wgns/units"
	"github.com/wgns/wgns/wgns"
)

func TestStatusLine(t *testing.T) {
	now := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	const never = time.Duration(math.MinInt64)
	peer := func(hsAgo time.Duration, rx, tx int64) wgns.PeerStatus {
		p := wgns.PeerStatus{RxBytes: rx, TxBytes: tx}
		if hsAgo != never {
			p.LastHandshake = now.Add(-hsAgo)
		}
		return p
	}
	tests := []struct {
		s    wgns.Status
		want string
	}{
		{wgns.Status{State: "ready", Mode: wgns.ModeUserspace, Peers: []wgns.PeerStatus{peer(never, 0, 148)}},
			"up (userspace WireGuard); no handshake yet; received 0 B, sent 148 B"},
		{wgns.Status{State: "ready", Mode: wgns.ModeKernel, Peers: []wgns.PeerStatus{peer(83*time.Second+400*time.Millisecond, 1536, 5<<20)}},
			"up (kernel WireGuard); latest handshake 1m23s ago; received 1.50 KiB, sent 5.00 MiB"},
		{wgns.Status{State: "ready", Mode: wgns.ModeUserspace, Peers: []wgns.PeerStatus{peer(never, 1, 1), peer(2*time.Second, 1023, 3<<30)}},
			"up (userspace WireGuard); latest handshake 2s ago (2 peers); received 1.00 KiB, sent 3.00 GiB"},
		{wgns.Status{State: "broken: the WireGuard process is gone", Mode: wgns.ModeUserspace},
			"broken: the WireGuard process is gone; no peers"},
		// A clock that stepped back shows 0s, never a negative age.
		{wgns.Status{State: "ready", Mode: wgns.ModeUserspace, Peers: []wgns.PeerStatus{peer(-time.Minute+1, 0, 0)}},
			"up (userspace WireGuard); latest handshake 0s ago; received 0 B, sent 0 B"},
	}
	for _, tt := range tests {
		if got := statusLine(&tt.s, now); got != tt.want {
			t.Errorf("statusLine(%+v)\n got %q\nwant %q", tt.s, got, tt.want)
		}
	}
}

func TestHumanBytes(t *testing.T) {
	for in, want := range map[int64]string{
		0: "0 B", 1023: "1023 B", 1024: "1.00 KiB", 1<<20 - 1: "1024.00 KiB", 1 << 20: "1.00 MiB",
		5 << 40: "5.00 TiB", 3 << 50: "3072.00 TiB",
	} {
		if got := humanBytes(in); got != want {
			t.Errorf("humanBytes(%d) = %q, want %q", in, got, want)
		}
	}
}

// reportStatus sends STATUS= through NOTIFY_SOCKET at once, quickly until a handshake shows,
// and stops when its context ends.
func TestReportStatus(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "notify")
	ln, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	t.Setenv("NOTIFY_SOCKET", sock)

	oldGet, oldFirst, oldEvery := getStatus, statusFirstInterval, statusInterval
	t.Cleanup(func() { getStatus, statusFirstInterval, statusInterval = oldGet, oldFirst, oldEvery })
	statusFirstInterval, statusInterval = time.Millisecond, time.Hour
	calls := 0
	getStatus = func(name string, brief bool) (*wgns.Status, error) {
		calls++
		switch {
		case name != "work" || brief:
			return nil, fmt.Errorf("getStatus(%q, %v): want the full status of work", name, brief)
		case calls == 1:
			return nil, fmt.Errorf("tunnel %q: %w", name, wgns.ErrNotUp)
		case calls == 2:
			return &wgns.Status{State: "ready", Mode: wgns.ModeUserspace, Peers: []wgns.PeerStatus{{}}}, nil
		}
		return &wgns.Status{State: "ready", Mode: wgns.ModeUserspace,
			Peers: []wgns.PeerStatus{{LastHandshake: time.Now(), RxBytes: 92, TxBytes: 148}}}, nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { reportStatus(ctx, units.NewNotifier(), "work"); close(done) }()

	want := []string{
		`STATUS=work: status unavailable: tunnel "work": not up`,
		"STATUS=up (userspace WireGuard); no handshake yet; received 0 B, sent 0 B",
		"STATUS=up (userspace WireGuard); latest handshake 0s ago; received 92 B, sent 148 B",
	}
	buf := make([]byte, 4096)
	for i, w := range want {
		ln.SetReadDeadline(time.Now().Add(10 * time.Second))
		n, _, err := ln.ReadFromUnix(buf)
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if got := string(buf[:n]); got != w {
			t.Errorf("message %d: %q, want %q", i, got, w)
		}
	}
	// After a handshake the pace is statusInterval (an hour here): nothing more comes soon.
	ln.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if n, _, err := ln.ReadFromUnix(buf); err == nil {
		t.Errorf("a message after the handshake was seen, before the interval: %q", buf[:n])
	}
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("reportStatus did not return after its context ended")
	}

	// Without NOTIFY_SOCKET it returns at once and asks nothing.
	os.Unsetenv("NOTIFY_SOCKET")
	calls = 0
	reportStatus(context.Background(), units.NewNotifier(), "work")
	if calls != 0 {
		t.Errorf("reportStatus without a service manager read the status %d times", calls)
	}
}
