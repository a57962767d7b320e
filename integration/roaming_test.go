package integration

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"
)

// Addresses of the roaming world (TEST-NET only): the peer's public address sits on its lo, and
// the host world reaches it through one uplink, then through another.
const (
	roamPeerPublic = "203.0.113.50" // the peer's endpoint address
	roamHostB      = "203.0.113.1"  // the host world's end of the second uplink
	roamPeerB      = "203.0.113.2"
)

// The host's uplink is replaced under a running ping, in the two ways a laptop sees it:
//   - "interface replaced": a second uplink comes, the first goes (its interface deleted, and
//     with it the source address WireGuard was sending from), the route to the peer moves;
//   - "route moved": a second uplink comes and the route to the peer moves to it while the first
//     keeps its address and link but gets nothing through (a Wi-Fi whose access point lost its
//     own uplink), and the second
//     network drops packets from sources that are not its own (as providers do, BCP 38):
//     WireGuard would keep sending from the first uplink's address and interface, which the
//     supervisor must stop.
//
// Either way traffic inside resumes by itself, soon after the new uplink has its route, and
// nothing but WireGuard's UDP to the endpoint crosses the new uplink.
func TestIntegrationRoamingToANewUplink(t *testing.T) {
	for _, keepOld := range []bool{false, true} {
		what := map[bool]string{false: "interface replaced", true: "route moved"}[keepOld]
		t.Run(what, func(t *testing.T) { roam(t, keepOld) })
	}
}

func roam(t *testing.T, keepOld bool) {
	p := newPeer(t, "roam")
	vhA, vhB, vpB := "vh-roam", "vhb-roam", "vpb-roam"
	// The endpoint: the peer's public address, reached over the first uplink.
	mustRun(t, "ip", "-n", p.NS, "addr", "add", roamPeerPublic+"/32", "dev", "lo")
	mustRun(t, "ip", "route", "add", roamPeerPublic+"/32", "via", peerUnderlay4, "dev", vhA)
	b, err := os.ReadFile(p.ConfigPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p.ConfigPath, []byte(strings.Replace(string(b), peerUnderlay4+":", roamPeerPublic+":", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	mustWgns(t, "up", p.ConfigPath)
	t.Cleanup(func() { wgnsRun(t, "down", "--force", "roam") })
	port := fmt.Sprint(status(t, "roam").ListenPort)

	// The second uplink, ready but not yet used.
	mustRun(t, "ip", "link", "add", vhB, "type", "veth", "peer", "name", vpB, "netns", p.NS)
	t.Cleanup(func() { run("ip", "link", "del", vhB) })
	mustRun(t, "ip", "addr", "add", roamHostB+"/24", "dev", vhB)
	mustRun(t, "ip", "link", "set", vhB, "up")
	mustRun(t, "ip", "-n", p.NS, "addr", "add", roamPeerB+"/24", "dev", vpB)
	mustRun(t, "ip", "-n", p.NS, "link", "set", vpB, "up")
	// The second network takes only its own sources.
	mustRun(t, "ip", "netns", "exec", p.NS, "nft", "add table inet bcp38; add chain inet bcp38 in { type filter hook prerouting priority 0; }; "+
		"add rule inet bcp38 in iifname "+vpB+" ip saddr != "+roamHostB+"/24 drop")
	capture := startCapture(t, vhB)

	// A ping inside, every 50 ms; the time of each answer is read from its output.
	startPing := func() <-chan time.Time {
		ping := exec.Command("ip", "netns", "exec", "roam", "ping", "-n", "-i", "0.05", "-W", "1", peerTunnel4)
		out, _ := ping.StdoutPipe()
		startUntilEnd(t, ping)
		replies := make(chan time.Time, 1000)
		go func() {
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				if strings.Contains(sc.Text(), "bytes from") {
					replies <- time.Now()
				}
			}
			close(replies)
		}()
		return replies
	}
	waitReply := func(replies <-chan time.Time, what string) time.Time {
		t.Helper()
		select {
		case at, ok := <-replies:
			if !ok {
				t.Fatalf("ping ended while waiting for %s", what)
			}
			return at
		case <-time.After(20 * time.Second):
			t.Fatalf("no ping reply %s", what)
		}
		return time.Time{}
	}
	waitReply(startPing(), "through the first uplink")

	// Swap.
	if keepOld {
		// The first uplink keeps its address and link but nothing gets through it any more (a
		// Wi-Fi whose access point lost its own uplink), and the route to the peer moves to
		// the second.
		mustRun(t, "ip", "netns", "exec", p.NS, "nft", "add rule inet bcp38 in iifname vp-roam drop")
		mustRun(t, "ip", "route", "replace", roamPeerPublic+"/32", "via", roamPeerB, "dev", vhB)
	} else {
		mustRun(t, "ip", "link", "del", vhA)
		mustRun(t, "ip", "route", "add", roamPeerPublic+"/32", "via", roamPeerB, "dev", vhB)
	}
	routed := time.Now()
	// A new ping, so that no answer to a packet sent before the swap is counted.
	back := waitReply(startPing(), "after the uplink moved")
	recovery := back.Sub(routed)
	t.Logf("traffic resumed %s after the new uplink had its route", recovery.Round(time.Millisecond))
	if recovery > 2*time.Second {
		t.Errorf("traffic took %s to resume after the new uplink had its route (goal: 1 s)", recovery)
	}
	// The supervisor saw the way to the peer move and pointed WireGuard at it afresh.
	waitFor(t, 10*time.Second, "the supervisor to follow the new uplink", func() bool {
		b, _ := os.ReadFile("/run/wgns/roam.log")
		return strings.Contains(string(b), "roam: the host's network changed: endpoint "+roamPeerPublic+":51820")
	})

	// What crossed the new uplink: WireGuard's UDP between the tunnel's port and the endpoint,
	// and the link's own address resolution.
	wg := regexp.MustCompile(`^IP (` + regexp.QuoteMeta(roamHostB) + `\.` + port + ` > ` + regexp.QuoteMeta(roamPeerPublic) + `\.51820|` +
		regexp.QuoteMeta(roamPeerPublic) + `\.51820 > ` + regexp.QuoteMeta(roamHostB) + `\.` + port + `): UDP, length \d+$`)
	n := 0
	for _, l := range capture.stop(t, false) {
		switch {
		case wg.MatchString(l):
			n++
		case strings.HasPrefix(l, "ARP, "), strings.HasPrefix(l, "IP6 fe80:"), strings.HasPrefix(l, "IP6 :: "):
		default:
			t.Errorf("LEAK on the new uplink: %s", l)
		}
	}
	if n == 0 {
		t.Errorf("no WireGuard packet crossed the new uplink")
	}
}
