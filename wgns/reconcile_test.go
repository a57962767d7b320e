package wgns

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"github.com/wgns/wgns/internal/golden"
	"github.com/wgns/wgns/wgns/config"
)

// The reconciler's decisions, shown as what it does to a fake machine (tailscale's
// TestRouterStates style): each golden file lists the acts in order, the reconciler's own
// action lines (what `up --dry-run` and `repair` print) and the machine afterwards.

func init() { now = func() time.Time { return testNow } }

// transcript renders one run for a golden file.
func transcript(title string, f *fakeSys, actions []string, err error) string {
	var b strings.Builder
	fmt.Fprintf(&b, "== %s\n-- acts\n", title)
	for _, a := range f.acts {
		fmt.Fprintf(&b, "%s\n", a)
	}
	b.WriteString("-- actions\n")
	for _, a := range actions {
		fmt.Fprintf(&b, "%s\n", a)
	}
	if err != nil {
		fmt.Fprintf(&b, "-- error\n%v\n", err)
	}
	b.WriteString("-- machine\n")
	b.WriteString(f.describe())
	f.acts = nil
	return b.String()
}

// upOnce runs up on f, catching the crash the fake may have been told to simulate.
func upOnce(f *fakeSys, cfg *config.Config, mode Mode) (t *Tunnel, err error, crashed bool) {
	defer func() {
		if c := recover(); c != nil {
			if _, ok := c.(crash); !ok {
				panic(c)
			}
			crashed = true
			f.die()
		}
	}()
	t, err = up(f, UpOptions{Name: "work", Config: cfg, Mode: mode})
	return t, err, false
}

func TestReconcileFreshUp(t *testing.T) {
	for _, mode := range []Mode{ModeUserspace, ModeKernel} {
		t.Run(string(mode), func(t *testing.T) {
			f := newFakeSys()
			cfg := testConfig(t, "[Namespace]\nAllowInbound = 51413/tcp, 51413/udp\n")
			tun, err, _ := upOnce(f, cfg, mode)
			if err != nil {
				t.Fatal(err)
			}
			out := transcript("fresh up, "+string(mode), f, nil, err)
			// Up again: refused, nothing done.
			_, err, _ = upOnce(f, cfg, mode)
			if !errors.Is(err, ErrAlreadyUp) {
				t.Errorf("a second up: %v, want ErrAlreadyUp", err)
			}
			if len(f.acts) != 0 {
				t.Errorf("a second up acted: %q", f.acts)
			}
			// Down from the holder: everything goes.
			if err := tun.Down(); err != nil {
				t.Fatal(err)
			}
			out += transcript("down", f, nil, nil)
			golden.Check(t, "reconcile-fresh-"+string(mode), out)
		})
	}
}

// A crash (the holder killed) at each point of a fresh up, then up again: the second up takes
// over what the first left and finishes, and down leaves nothing.
func TestReconcileCrashThenUp(t *testing.T) {
	points := []string{"namespace", "firewall", "interface", "move", "addresses", "routes", "peers", "dns", "ready"}
	for _, mode := range []Mode{ModeUserspace, ModeKernel} {
		var out strings.Builder
		for _, point := range points {
			f := newFakeSys()
			cfg := testConfig(t, "")
			f.crashAt = point
			if _, err, crashed := upOnce(f, cfg, mode); !crashed {
				t.Fatalf("%s: up did not reach %s (err %v)", mode, point, err)
			}
			f.acts = nil // the golden file shows what the second up does
			before := f.describe()
			f.crashAt = ""
			tun, err, _ := upOnce(f, cfg, mode)
			fmt.Fprintf(&out, "#### crash at %s; left behind:\n%s", point, before)
			out.WriteString(transcript("up again", f, nil, err))
			if err != nil {
				t.Errorf("%s: up after a crash at %s: %v", mode, point, err)
				continue
			}
			if err := tun.Down(); err != nil {
				t.Errorf("%s: down after a crash at %s: %v", mode, point, err)
			}
			if left := f.describe(); left != "" {
				t.Errorf("%s: down after a crash at %s left:\n%s", mode, point, left)
			}
			f.acts = nil
		}
		golden.Check(t, "reconcile-crash-"+string(mode), out.String())
	}
}

// damage is something that happens to a tunnel that is up.
type damage struct {
	name string
	do   func(f *fakeSys)
	// refused names the modes in which repair refuses this damage (with its reason).
	refused []Mode
}

var damages = []damage{
	{name: "interface deleted", do: func(f *fakeSys) { delete(f.files["work"].links, "work") }},
	{name: "interface down", do: func(f *fakeSys) { f.files["work"].links["work"].up = false }},
	{name: "lo down", do: func(f *fakeSys) { f.files["work"].links["lo"].up = false }},
	{name: "address removed", do: func(f *fakeSys) { l := f.files["work"].links["work"]; l.addrs = l.addrs[1:] }},
	{name: "address added", do: func(f *fakeSys) {
		l := f.files["work"].links["work"]
		l.addrs = append(l.addrs, netip.MustParsePrefix("203.0.113.7/32"), netip.MustParsePrefix("fe80::1/64"))
	}},
	{name: "route removed", do: func(f *fakeSys) { l := f.files["work"].links["work"]; l.routes = l.routes[1:] }},
	{name: "firewall removed", do: func(f *fakeSys) { f.files["work"].fw = "" }},
	{name: "firewall altered", do: func(f *fakeSys) { f.files["work"].fw = "altered" }},
	{name: "DNS view removed", do: func(f *fakeSys) { delete(f.dns, "work") }},
	{name: "DNS view altered", do: func(f *fakeSys) { f.dns["work"] = "edited" }},
	{name: "peer removed from the device", do: func(f *fakeSys) { f.files["work"].links["work"].dev.Peers = nil }},
	{name: "ready mark removed", do: func(f *fakeSys) { delete(f.readyMark, "work") }},
	// The namespace lives on, held open by the holder (and the embedded WireGuard's device):
	// repair names it again.
	{name: "namespace deleted (ip netns del)", do: func(f *fakeSys) {
		f.held = append(f.held, f.files["work"])
		delete(f.files, "work")
	}},
	// A holder that holds no descriptor of it (an older one): repair refuses rather than make a
	// second namespace of that name beside the one still in use.
	{name: "namespace deleted (ip netns del), its holder holding no descriptor", do: func(f *fakeSys) { delete(f.files, "work") },
		refused: []Mode{ModeKernel, ModeUserspace}},
	{name: "holder killed", do: func(f *fakeSys) { f.die() }},
}

// repair after each kind of damage: a dry run lists what a repair then does, and a second
// repair finds nothing.
func TestReconcileRepair(t *testing.T) {
	for _, mode := range []Mode{ModeKernel, ModeUserspace} {
		var out strings.Builder
		for _, d := range damages {
			f := newFakeSys()
			cfg := testConfig(t, "")
			if _, err, _ := upOnce(f, cfg, mode); err != nil {
				t.Fatal(err)
			}
			f.acts = nil
			d.do(f)
			fmt.Fprintf(&out, "#### %s\n", d.name)
			dry, err := repairFake(f, cfg, true)
			if len(f.acts) != 0 {
				t.Errorf("%s, %s: a dry run acted: %q", mode, d.name, f.acts)
			}
			wet, err2 := repairFake(f, cfg, false)
			out.WriteString(transcript("repair", f, wet.Actions, err2))
			if slices.Contains(d.refused, mode) {
				if err == nil || err2 == nil {
					t.Errorf("%s, %s: repair did not refuse", mode, d.name)
				}
				continue
			}
			if err != nil || err2 != nil {
				t.Errorf("%s, %s: repair: %v / %v", mode, d.name, err, err2)
			}
			if strings.Join(dry.Actions, "\n") != strings.Join(wet.Actions, "\n") {
				t.Errorf("%s, %s: the dry run said\n%s\nbut repair did\n%s", mode, d.name,
					strings.Join(dry.Actions, "\n"), strings.Join(wet.Actions, "\n"))
			}
			if !wet.NeedHolder && !strings.Contains(strings.Join(wet.Actions, ""), "leave interface") {
				again, err := repairFake(f, cfg, false)
				if err != nil || len(again.Actions) != 0 || len(f.acts) != 0 {
					t.Errorf("%s, %s: a second repair: %v, actions %q, acts %q", mode, d.name, err, again.Actions, f.acts)
				}
			}
			f.acts = nil
		}
		golden.Check(t, "reconcile-repair-"+string(mode), out.String())
	}
}

// repairFake runs repair (from the CLI: this process holds no device) over f's record.
func repairFake(f *fakeSys, cfg *config.Config, dryRun bool) (*RepairResult, error) {
	st, err := f.readState("work")
	if err != nil {
		return nil, err
	}
	res := &RepairResult{Name: "work"}
	f.selfPID = 5000 // repair runs in a process of its own, not the tunnel's supervisor
	defer func() { f.selfPID = 0 }()
	err = repairWith(f, res, st, cfg, dryRun)
	return res, err
}

// A failure at any act of a fresh up undoes everything it made, and says what failed once.
func TestReconcileFailedUpUndoes(t *testing.T) {
	var out strings.Builder
	for _, act := range []string{"resolve endpoints", "create namespace", "install firewall", "create userspace interface",
		"add address 192.0.2.2/24", "add route ::/0", "configure work in-process", "start the device", "write DNS view", "mark work ready"} {
		f := newFakeSys()
		f.fail[act] = errInjected
		_, err, _ := upOnce(f, testConfig(t, ""), ModeUserspace)
		if err == nil {
			t.Errorf("up with %q failing succeeded", act)
			continue
		}
		fmt.Fprintf(&out, "#### %s fails\n", act)
		out.WriteString(transcript("up", f, nil, err))
		if left := f.describe(); left != "" {
			t.Errorf("up with %q failing left:\n%s", act, left)
		}
	}
	golden.Check(t, "reconcile-failed-up", out.String())
}

func TestPlan(t *testing.T) {
	var out strings.Builder
	for _, tt := range []struct {
		title string
		mode  Mode
		extra string
		setup func(f *fakeSys, cfg *config.Config)
	}{
		{title: "fresh, userspace", mode: ModeUserspace, extra: "[Namespace]\nAllowInbound = 8080/tcp\n"},
		{title: "fresh, kernel, no firewall", mode: ModeKernel, extra: "[Namespace]\nFirewall = off\n"},
		{title: "fresh, with ports", mode: ModeUserspace, extra: "[Namespace]\nPublish = 9091:9091, [::1]:5353:53/udp\nPortForward = natpmp\n" +
			"PortForwardCommand = /usr/local/bin/tell-transmission --port\nPortForwardUser = debian-transmission\n"},
		{title: "already up", mode: ModeUserspace, setup: func(f *fakeSys, cfg *config.Config) { upOnce(f, cfg, ModeUserspace) }},
		{title: "a crashed up left it at the routes", mode: ModeKernel, setup: func(f *fakeSys, cfg *config.Config) {
			f.crashAt = "routes"
			upOnce(f, cfg, ModeKernel)
			f.crashAt = ""
		}},
	} {
		f := newFakeSys()
		cfg := testConfig(t, tt.extra)
		if tt.setup != nil {
			tt.setup(f, cfg)
			f.acts = nil
		}
		p, err := plan(f, "work", cfg, tt.mode)
		if err != nil {
			t.Errorf("%s: %v", tt.title, err)
		}
		if len(f.acts) != 0 {
			t.Errorf("%s: the plan acted: %q", tt.title, f.acts)
		}
		fmt.Fprintf(&out, "#### %s\n%s", tt.title, p)
	}
	golden.Check(t, "plan", out.String())
}

// failoverConfig is testConfig with a second server of the same provider (identical
// AllowedIPs) and Failover = on: one failover group of two peers.
func failoverConfig(t *testing.T) *config.Config {
	t.Helper()
	return testConfig(t, fmt.Sprintf("[Peer]\nPublicKey = %s\nAllowedIPs = ::/0, 0.0.0.0/0\nEndpoint = 198.51.100.3:51820\n[Namespace]\nFailover = on\n",
		testPeer2Pub))
}

var testPeer2Pub = wgtypes.Key{3: 3, 31: 0x40}.PublicKey()

// A failover group on the fake machine: up gives the group's AllowedIPs to its first peer only;
// Failover moves them in one configuration call and starts a session with the new peer; repair
// does not undo a failover (nor a device that lists its peers in another order, as the kernel
// does after a peer is made again), and a device made again after a failover gives them to the
// peer that held them. A device on which no single peer holds them is repaired to the first.
func TestReconcileFailover(t *testing.T) {
	for _, mode := range []Mode{ModeUserspace, ModeKernel} {
		t.Run(string(mode), func(t *testing.T) {
			var out strings.Builder
			cfg := failoverConfig(t)
			p, err := plan(newFakeSys(), "work", cfg, mode)
			if err != nil {
				t.Fatal(err)
			}
			out.WriteString("#### the plan\n" + p)

			f := newFakeSys()
			tun, err, _ := upOnce(f, cfg, mode)
			if err != nil {
				t.Fatal(err)
			}
			out.WriteString(transcript("fresh up", f, nil, nil) + f.holders(cfg))
			repairShowsNothing := func(when string) {
				t.Helper()
				res, err := repairFake(f, cfg, false)
				if err != nil || len(res.Actions) != 0 || len(f.acts) != 0 {
					t.Errorf("repair %s: %v, actions %q, acts %q", when, err, res.Actions, f.acts)
				}
				f.acts = nil
			}
			repairShowsNothing("after up")

			ctx := context.Background()
			from, to, err := tun.Failover(ctx, 0)
			if err != nil || from != testPeerPub || to != testPeer2Pub {
				t.Fatalf("Failover: %s -> %s, %v", from, to, err)
			}
			out.WriteString(transcript("failover", f, nil, nil) + f.holders(cfg))
			repairShowsNothing("after a failover")

			dev := f.files["work"].links["work"].dev
			dev.Peers[0], dev.Peers[1] = dev.Peers[1], dev.Peers[0]
			repairShowsNothing("of a device that lists its peers in another order")

			// The device stops, and is made again with the group held by the second peer.
			if mode == ModeKernel {
				delete(f.files["work"].links, "work")
			} else {
				tun.dev.close()
			}
			f.acts = nil
			actions, err := tun.Recover()
			if err != nil {
				t.Fatal(err)
			}
			out.WriteString(transcript("recover after the failover", f, actions, nil) + f.holders(cfg))
			repairShowsNothing("after recovery")

			from, to, err = tun.Failover(ctx, 0)
			if err != nil || from != testPeer2Pub || to != testPeerPub {
				t.Fatalf("the second Failover: %s -> %s, %v", from, to, err)
			}
			out.WriteString(transcript("failover again: back to the first", f, nil, nil) + f.holders(cfg))

			if _, _, err := tun.Failover(ctx, 1); err == nil || err.Error() != `tunnel "work" has no failover group 2` {
				t.Errorf("Failover of a group that is not: %v", err)
			}

			for _, d := range []struct {
				name string
				do   func(dev *wgtypes.Device)
			}{
				{"no peer holds them", func(dev *wgtypes.Device) { dev.Peers[0].AllowedIPs = nil; dev.Peers[1].AllowedIPs = nil }},
				{"the standby holds a part of them", func(dev *wgtypes.Device) {
					i := slices.IndexFunc(dev.Peers, func(p wgtypes.Peer) bool { return len(p.AllowedIPs) > 0 })
					dev.Peers[1-i].AllowedIPs, dev.Peers[i].AllowedIPs = dev.Peers[i].AllowedIPs[:1], dev.Peers[i].AllowedIPs[1:]
				}},
			} {
				d.do(f.files["work"].links["work"].dev)
				dry, err := repairFake(f, cfg, true)
				if err != nil {
					t.Fatal(err)
				}
				wet, err := repairFake(f, cfg, false)
				if err != nil {
					t.Fatal(err)
				}
				if strings.Join(dry.Actions, "\n") != strings.Join(wet.Actions, "\n") {
					t.Errorf("%s: the dry run said %q but repair did %q", d.name, dry.Actions, wet.Actions)
				}
				out.WriteString("#### " + d.name + "\n" + transcript("repair", f, wet.Actions, nil) + f.holders(cfg))
				repairShowsNothing("after repairing " + d.name)
			}
			golden.Check(t, "reconcile-failover-"+string(mode), out.String())
		})
	}
}
