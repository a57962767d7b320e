package supervisor

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/wgns/wgns/units"
	"github.com/wgns/wgns/wgns"
)

// The pace of reportStatus: fast until the first handshake shows, so that `systemctl status`
// soon says whether the peer answers, then every statusInterval.
var (
	statusInterval      = 10 * time.Second
	statusFirstInterval = time.Second
)

// getStatus is wgns.GetStatus, replaced in tests.
var getStatus = wgns.GetStatus

// reportStatus keeps the service manager's status line (STATUS=, shown by systemctl status) of
// tunnel name current: its state, the latest handshake and the transfer counts. It sends one
// at once, then every second until a handshake is seen and every 10 s after that, until ctx is
// done. It returns at once when no service manager listens (n is not Enabled), and otherwise only
// after its last send: a caller that waits for it before n.Stopping() knows no stale STATUS=
// follows. Run it in a goroutine of its own.
func reportStatus(ctx context.Context, n *units.Notifier, name string) {
	if !n.Enabled() {
		return
	}
	wait := statusFirstInterval
	for {
		var line string
		s, err := getStatus(name, false)
		if err != nil {
			line = fmt.Sprintf("%s: status unavailable: %v", name, err)
		} else {
			line = statusLine(s, time.Now())
			if !latestHandshake(s).IsZero() {
				wait = statusInterval
			}
		}
		if ctx.Err() != nil {
			return
		}
		n.Status(line)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// statusLine is the human status of tunnel s at time now, such as
// "up (userspace WireGuard); latest handshake 12s ago; received 1.2 MiB, sent 340 KiB".
func statusLine(s *wgns.Status, now time.Time) string {
	var b strings.Builder
	if s.State == "ready" {
		fmt.Fprintf(&b, "up (%s WireGuard)", s.Mode)
	} else {
		b.WriteString(s.State)
	}
	switch hs := latestHandshake(s); {
	case len(s.Peers) == 0:
		b.WriteString("; no peers")
	case hs.IsZero():
		b.WriteString("; no handshake yet")
	default:
		ago := now.Sub(hs).Truncate(time.Second)
		if ago < 0 {
			ago = 0
		}
		fmt.Fprintf(&b, "; latest handshake %s ago", ago)
	}
	if len(s.Peers) > 1 {
		fmt.Fprintf(&b, " (%d peers)", len(s.Peers))
	}
	var rx, tx int64
	for _, p := range s.Peers {
		rx += p.RxBytes
		tx += p.TxBytes
	}
	if len(s.Peers) > 0 {
		fmt.Fprintf(&b, "; received %s, sent %s", humanBytes(rx), humanBytes(tx))
	}
	return b.String()
}

// latestHandshake is the most recent handshake with any peer of s, zero if none.
func latestHandshake(s *wgns.Status) time.Time {
	var t time.Time
	for _, p := range s.Peers {
		if p.LastHandshake.After(t) {
			t = p.LastHandshake
		}
	}
	return t
}

// humanBytes writes n like wg show does: B, KiB, MiB, GiB, TiB with two decimals.
func humanBytes(n int64) string {
	if n < 1024 {
		return fmt.Sprintf("%d B", n)
	}
	f := float64(n)
	for _, u := range []string{"KiB", "MiB", "GiB", "TiB"} {
		f /= 1024
		if f < 1024 || u == "TiB" {
			return fmt.Sprintf("%.2f %s", f, u)
		}
	}
	panic("unreachable")
}
