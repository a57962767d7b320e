package wgns

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/wgns/wgns/internal/golden"
	"github.com/wgns/wgns/nsmgr"
	"github.com/wgns/wgns/wgns/config"
)

// Attachments (a container's namespace, handed over by a CNI runtime) through the same
// reconciler as `wgns up`, shown as what they do to the fake machine.

const podNS = "/run/netns/cni-pod1"

var podKey = AttachKey{Network: "vpn", ContainerID: "pod1", IfName: "eth0"}

// attachCase is one shape of attachment: standalone or chained after a primary plugin.
type attachCase struct {
	name    string
	mode    Mode
	primary *Primary
}

func attachCases() []attachCase {
	chained := &Primary{Interface: "eth0", Keep: []netip.Prefix{netip.MustParsePrefix("203.0.113.64/26"), netip.MustParsePrefix("198.18.0.0/15")},
		Gateways: []netip.Addr{netip.MustParseAddr("203.0.113.65")}}
	var out []attachCase
	for _, m := range []Mode{ModeKernel, ModeUserspace} {
		out = append(out, attachCase{name: "standalone, " + string(m), mode: m},
			attachCase{name: "chained, " + string(m), mode: m, primary: chained})
	}
	return out
}

// pod makes the container's namespace the case needs and returns the options to attach to it.
func (c attachCase) pod(f *fakeSys, cfg *config.Config) AttachOptions {
	key, primary := podKey, ""
	if c.primary != nil {
		primary = c.primary.Interface
	} else {
		key.IfName = "wg0"
	}
	f.container(podNS, primary)
	return AttachOptions{Key: key, Netns: podNS, Interface: "wg0", Config: cfg, Mode: c.mode, Primary: c.primary}
}

// attachOnce runs attach on f, catching the crash the fake may have been told to simulate.
func attachOnce(f *fakeSys, o AttachOptions) (t *Tunnel, err error, crashed bool) {
	defer func() {
		if c := recover(); c != nil {
			if _, ok := c.(crash); !ok {
				panic(c)
			}
			crashed = true
			f.die()
		}
	}()
	t, err = attach(f, o)
	return t, err, false
}

// A fresh attachment, checked, then detached: by its holder's Down (the embedded WireGuard's
// supervisor, on DEL's SIGTERM) or by DEL itself (kernel WireGuard, which has no process). The
// container's namespace is left as the plugin before wgns made it, less the default route wgns
// replaced; a second DEL does nothing.
func TestAttachFresh(t *testing.T) {
	var out strings.Builder
	for _, c := range attachCases() {
		f := newFakeSys()
		cfg := testConfig(t, "[Namespace]\nAllowInbound = 8080/tcp\n")
		o := c.pod(f, cfg)
		fmt.Fprintf(&out, "#### %s\n-- before\n%s", c.name, f.describe())
		tun, err, _ := attachOnce(f, o)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		out.WriteString(transcript("attach", f, nil, nil))
		if err := checkAttachment(f, o.Key, podNS, cfg); err != nil {
			t.Errorf("%s: check after attach: %v", c.name, err)
		}
		if len(f.acts) != 0 {
			t.Errorf("%s: check acted: %q", c.name, f.acts)
		}
		// ADD again without a DEL: refused, nothing done.
		if _, err, _ := attachOnce(f, o); !errors.Is(err, ErrAlreadyAttached) {
			t.Errorf("%s: a second attach: %v, want ErrAlreadyAttached", c.name, err)
		}
		if len(f.acts) != 0 {
			t.Errorf("%s: a second attach acted: %q", c.name, f.acts)
		}
		title := "detach (DEL)"
		if c.mode == ModeUserspace {
			title, err = "detach (the holder's Down)", tun.Down()
		} else {
			err = detach(f, o.Key, podNS)
		}
		out.WriteString(transcript(title, f, nil, err))
		if err := detach(f, o.Key, ""); err != nil || len(f.acts) != 0 {
			t.Errorf("%s: a second DEL: %v, acts %q", c.name, err, f.acts)
		}
	}
	golden.Check(t, "attach-fresh", out.String())
}

// A crash at each point of an attach (the CNI ADD, or the embedded WireGuard's supervisor,
// killed), then the DEL a runtime sends after a failed ADD: the container's namespace is as it
// was before, and nothing is left on the host. Then an ADD works from there.
func TestAttachCrashThenDetach(t *testing.T) {
	points := []string{"namespace", "firewall", "interface", "move", "rename", "addresses", "routes", "peers", "dns", "ready"}
	for _, c := range attachCases() {
		var out strings.Builder
		for _, point := range points {
			if point == "rename" && c.mode == ModeUserspace {
				continue // the embedded WireGuard's TUN is made inside, under its own name
			}
			f := newFakeSys()
			cfg := testConfig(t, "")
			o := c.pod(f, cfg)
			before := f.describe()
			f.crashAt = point
			if _, err, crashed := attachOnce(f, o); !crashed {
				t.Fatalf("%s: attach did not reach %s (err %v)", c.name, point, err)
			}
			f.crashAt, f.acts = "", nil
			fmt.Fprintf(&out, "#### crash at %s; left behind:\n%s", point, f.describe())
			err := detach(f, o.Key, podNS)
			out.WriteString(transcript("DEL", f, nil, err))
			if err != nil {
				t.Errorf("%s: DEL after a crash at %s: %v", c.name, point, err)
			}
			if after := f.describe(); after != before {
				t.Errorf("%s: DEL after a crash at %s left\n%s\nwant\n%s", c.name, point, after, before)
			}
			if _, err, _ := attachOnce(f, o); err != nil {
				t.Errorf("%s: ADD after a crash at %s and DEL: %v", c.name, point, err)
			}
			f.acts = nil
		}
		golden.Check(t, "attach-crash-"+strings.ReplaceAll(strings.ReplaceAll(c.name, ", ", "-"), " ", ""), out.String())
	}
}

// A crashed ADD followed by another ADD (a runtime that retries without a DEL): what the first
// made goes, and the second makes it afresh.
func TestAttachAfterCrashedAttach(t *testing.T) {
	c := attachCases()[1] // chained, kernel
	f := newFakeSys()
	cfg := testConfig(t, "")
	o := c.pod(f, cfg)
	f.crashAt = "peers"
	attachOnce(f, o)
	f.crashAt, f.acts = "", nil
	if _, err, _ := attachOnce(f, o); err != nil {
		t.Fatal(err)
	}
	golden.Check(t, "attach-after-crash", transcript("ADD after an ADD that crashed at peers", f, nil, nil))
}

// A failure at any act of an attach undoes everything, says what failed once, and leaves the
// container's namespace as the plugin before wgns made it.
func TestAttachFailedUndoes(t *testing.T) {
	var out strings.Builder
	for _, c := range attachCases() {
		if c.mode == ModeUserspace && c.primary == nil {
			continue
		}
		for _, act := range []string{"resolve endpoints", "install firewall", "create kernel interface", "create userspace interface",
			"rename wgc", "add route 203.0.113.64/26", "add address 192.0.2.2/24", "add route ::/0", "configure wg0 in-process",
			"start the device", "record attachment"} {
			f := newFakeSys()
			o := c.pod(f, testConfig(t, ""))
			before := f.describe()
			f.fail[act] = errInjected
			_, err, _ := attachOnce(f, o)
			if !strings.Contains(strings.Join(f.acts, "\n"), errInjected.Error()) {
				continue // not an act of this shape
			}
			if err == nil {
				t.Errorf("%s: attach with %q failing succeeded", c.name, act)
				continue
			}
			fmt.Fprintf(&out, "#### %s: %s fails\n", c.name, act)
			out.WriteString(transcript("attach", f, nil, err))
			if strings.Count(err.Error(), errInjected.Error()) != 1 {
				t.Errorf("%s, %q failing: the error says the failure %d times: %v", c.name, act, strings.Count(err.Error(), errInjected.Error()), err)
			}
			if after := f.describe(); after != before {
				t.Errorf("%s: attach with %q failing left\n%s\nwant\n%s", c.name, act, after, before)
			}
		}
	}
	golden.Check(t, "attach-failed", out.String())
}

// What Attach refuses, before it touches anything.
func TestAttachRefuses(t *testing.T) {
	chained := attachCases()[1]
	for _, tc := range []struct {
		name  string
		setup func(f *fakeSys, o *AttachOptions)
		want  string
	}{
		{"the host's own namespace", func(f *fakeSys, o *AttachOptions) {
			f.paths["/proc/1/ns/net"] = &fakeNS{id: hostNS, links: map[string]*fakeLink{"lo": {kind: "loopback"}}}
			o.Netns = "/proc/1/ns/net"
		}, "/proc/1/ns/net is the host's own network namespace (the one wgns runs in); refusing to confine it"},
		{"no such namespace", func(f *fakeSys, o *AttachOptions) { o.Netns = "/run/netns/gone" },
			"opening network namespace /run/netns/gone: file does not exist"},
		{"an interface of that name", func(f *fakeSys, o *AttachOptions) { f.paths[podNS].links["wg0"] = &fakeLink{kind: "veth"} },
			`an interface "wg0" already exists in /run/netns/cni-pod1`},
		{"no primary interface", func(f *fakeSys, o *AttachOptions) { delete(f.paths[podNS].links, "eth0") },
			`the primary interface "eth0" is not in /run/netns/cni-pod1 (the plugin before wgns should have made it)`},
		{"a wgns table already", func(f *fakeSys, o *AttachOptions) { f.paths[podNS].fw = "ok" },
			"/run/netns/cni-pod1 already has a table inet wgns (another wgns attachment?): one wgns attachment per namespace"},
		{"the primary's name", func(f *fakeSys, o *AttachOptions) { o.Interface = "eth0" },
			`the WireGuard interface "eth0" has the name of the primary interface; give it another`},
		{"a bad interface name", func(f *fakeSys, o *AttachOptions) { o.Interface = "wg/0" },
			`WireGuard interface name: invalid name "wg/0": a name is 1-15 characters of letters, digits and _=+.-, and not "." or ".."`},
		{"keep everything", func(f *fakeSys, o *AttachOptions) {
			o.Primary = &Primary{Interface: "eth0", Keep: []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0")}}
		}, "kept prefix 0.0.0.0/0 would keep everything off the tunnel"},
		{"keep a prefix the tunnel routes", func(f *fakeSys, o *AttachOptions) {
			o.Config.Peers[0].AllowedIPs = append(o.Config.Peers[0].AllowedIPs, netip.MustParsePrefix("203.0.113.64/26"))
		}, "kept prefix 203.0.113.64/26 is also in the AllowedIPs of /etc/wgns/work.conf:6: a prefix either stays on eth0 or goes through the tunnel"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeSys()
			o := chained.pod(f, testConfig(t, ""))
			tc.setup(f, &o)
			before := f.describe()
			_, err, _ := attachOnce(f, o)
			if err == nil || err.Error() != tc.want {
				t.Errorf("attach: %v\nwant: %s", err, tc.want)
			}
			if len(f.acts) != 0 || f.describe() != before {
				t.Errorf("a refused attach acted: %q", f.acts)
			}
		})
	}
}

// CHECK after each kind of damage names what differs; a namespace made anew under the same
// path, or a holder that died, is not the attachment any more.
func TestCheckAttachment(t *testing.T) {
	var out strings.Builder
	for _, c := range attachCases() {
		if c.primary == nil {
			continue
		}
		for _, d := range []struct {
			name string
			do   func(f *fakeSys)
		}{
			{"interface deleted", func(f *fakeSys) { delete(f.paths[podNS].links, "wg0") }},
			{"firewall removed", func(f *fakeSys) { f.paths[podNS].fw = "" }},
			{"kept route removed", func(f *fakeSys) {
				l := f.paths[podNS].links["eth0"]
				l.routes = l.routes[:len(l.routes)-1]
			}},
			{"default route back on the primary interface", func(f *fakeSys) {
				ns := f.paths[podNS]
				(&fakeView{ns: ns}).replaceRoute(netip.MustParsePrefix("0.0.0.0/0"))
				ns.links["eth0"].routes = append(ns.links["eth0"].routes, netip.MustParsePrefix("0.0.0.0/0"))
			}},
			{"peer removed", func(f *fakeSys) { f.paths[podNS].links["wg0"].dev.Peers = nil }},
			{"namespace made anew at the same path", func(f *fakeSys) { f.container(podNS, "eth0") }},
			{"holder gone", func(f *fakeSys) { f.die() }},
		} {
			f := newFakeSys()
			cfg := testConfig(t, "")
			o := c.pod(f, cfg)
			if _, err, _ := attachOnce(f, o); err != nil {
				t.Fatal(err)
			}
			d.do(f)
			f.acts = nil
			err := checkAttachment(f, o.Key, podNS, cfg)
			fmt.Fprintf(&out, "#### %s: %s\n%v\n", c.name, d.name, err)
			if err == nil && !(d.name == "holder gone" && c.mode == ModeKernel) {
				t.Errorf("%s, %s: check passed", c.name, d.name)
			}
			if len(f.acts) != 0 {
				t.Errorf("%s, %s: check acted: %q", c.name, d.name, f.acts)
			}
		}
	}
	if err := checkAttachment(newFakeSys(), podKey, podNS, testConfig(t, "")); !errors.Is(err, ErrNotAttached) {
		t.Errorf("check of nothing: %v, want ErrNotAttached", err)
	}
	golden.Check(t, "attach-check", out.String())
}

// The embedded WireGuard's device stopped (its TUN deleted inside the pod): its holder makes it
// again in the same namespace, which it never recreates.
func TestAttachRecover(t *testing.T) {
	c := attachCases()[3] // chained, userspace
	f := newFakeSys()
	cfg := testConfig(t, "")
	o := c.pod(f, cfg)
	tun, err, _ := attachOnce(f, o)
	if err != nil {
		t.Fatal(err)
	}
	delete(f.paths[podNS].links, "wg0")
	f.acts = nil
	actions, err := tun.Recover()
	golden.Check(t, "attach-recover", transcript("recover", f, actions, err))
	if err != nil {
		t.Fatal(err)
	}
	if err := checkAttachment(f, o.Key, podNS, cfg); err != nil {
		t.Errorf("check after recovery: %v", err)
	}
	// The namespace deleted (the pod gone without a DEL): recovery fails, and creates nothing.
	delete(f.paths, podNS)
	delete(f.paths, podNS)
	f.acts = nil
	if _, err := tun.Recover(); err == nil || !strings.Contains(err.Error(), podNS) {
		t.Errorf("recover without the namespace: %v", err)
	}
	for _, a := range f.acts {
		if strings.HasPrefix(a, "create") {
			t.Errorf("recover without the namespace acted: %q", f.acts)
		}
	}
}

// GC removes the attachments of its network that the runtime no longer lists, and only those.
func TestGCAttachments(t *testing.T) {
	f := newFakeSys()
	cfg := testConfig(t, "")
	keys := []AttachKey{{"vpn", "live", "wg0"}, {"vpn", "stale", "wg0"}, {"other", "stale", "wg0"}}
	for i, k := range keys {
		path := fmt.Sprintf("/run/netns/pod%d", i)
		f.container(path, "")
		if _, err, _ := attachOnce(f, AttachOptions{Key: k, Netns: path, Interface: "wg0", Config: cfg, Mode: ModeKernel}); err != nil {
			t.Fatal(err)
		}
	}
	// The stale one's namespace is gone already (the runtime deleted it and crashed).
	delete(f.paths, "/run/netns/pod1")
	f.acts = nil
	err := gcAttachments(f, "vpn", []AttachKey{keys[0]})
	golden.Check(t, "attach-gc", transcript("GC of network vpn, valid: container live", f, nil, err))
	if _, err := f.readAttachment(keys[1].ID()); err == nil {
		t.Error("GC left the stale attachment's record")
	}
	for _, k := range []AttachKey{keys[0], keys[2]} {
		if _, err := f.readAttachment(k.ID()); err != nil {
			t.Errorf("GC removed %s: %v", k, err)
		}
	}
}

// The record's ID and host-side name: stable, and unique per (network, container, ifname).
func TestAttachKeyNames(t *testing.T) {
	seen := map[string]AttachKey{}
	for _, k := range []AttachKey{{"a", "b", "c"}, {"a", "bc", ""}, {"ab", "", "c"}, {"a", "b", "d"}, {"b", "b", "c"}} {
		id := k.ID()
		if other, ok := seen[id]; ok {
			t.Errorf("%v and %v share ID %s", k, other, id)
		}
		seen[id] = k
		if n := hostName(id); nsmgr.ValidateName(n) != nil || len(n) != 15 {
			t.Errorf("host name %q of %v is not a full-length valid interface name", n, k)
		}
	}
	if got := (AttachKey{"vpn", "pod1", "eth0"}).ID(); got != podKey.ID() || len(got) != 32 {
		t.Errorf("ID is not stable or not 32 hex digits: %s", got)
	}
}

// Beside the pod's own network (a Multus secondary network): no chain, no prevResult; the pod's
// interface is named, and its default route's gateway carries the kept prefixes. DEL puts the
// default route the tunnel took back.
func TestAttachSecondary(t *testing.T) {
	f := newFakeSys()
	cfg := testConfig(t, "")
	f.container(podNS, "eth0")
	o := AttachOptions{Key: AttachKey{"vpn", "pod1", "net1"}, Netns: podNS, Interface: "net1", Config: cfg, Mode: ModeKernel,
		Primary: &Primary{Interface: "eth0", Keep: []netip.Prefix{netip.MustParsePrefix("203.0.113.64/26")}}}
	before := f.describe()
	if _, err, _ := attachOnce(f, o); err != nil {
		t.Fatal(err)
	}
	out := transcript("attach beside the pod's eth0", f, nil, nil)
	if err := checkAttachment(f, o.Key, podNS, cfg); err != nil {
		t.Errorf("check: %v", err)
	}
	err := detach(f, o.Key, podNS)
	out += transcript("DEL", f, nil, err)
	golden.Check(t, "attach-secondary", out)
	if after := f.describe(); after != before {
		t.Errorf("DEL left\n%s\nwant\n%s", after, before)
	}
}
