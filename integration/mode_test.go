package integration

import (
	"regexp"
	"strings"
	"testing"
)

// TestIntegrationModeFollowsKernel: without a flag, up picks the WireGuard this kernel has
// (kernel WireGuard in the guest of `make test-kernel`, the embedded one on a kernel without
// it) and version and list say which; --userspace picks the embedded one on either kernel. The
// witness is the interface's kind as ip(8) shows it.
func TestIntegrationModeFollowsKernel(t *testing.T) {
	const name = "tm"
	p := newPeer(t, name)
	kinds := map[string]string{"kernel": "wireguard", "userspace": "tun"}
	versions := map[string]string{"kernel": "kernel WireGuard", "userspace": "embedded userspace WireGuard"}
	if v := mustWgns(t, "version"); !strings.Contains(v, versions[defaultMode()]) {
		t.Errorf("wgns version on a kernel where up picks %s WireGuard: %q", defaultMode(), v)
	}
	kindRe := regexp.MustCompile(`(?m)^\s+(tun|wireguard) `)
	for _, c := range []struct {
		flags []string
		mode  string
	}{
		{nil, defaultMode()},
		{[]string{"--userspace"}, "userspace"},
	} {
		tunnelUp(t, p, name, c.flags...)
		link := mustRun(t, "ip", "-d", "-n", name, "link", "show", name)
		if m := kindRe.FindStringSubmatch(link); m == nil || m[1] != kinds[c.mode] {
			t.Errorf("up %v made an interface that is not %s:\n%s", c.flags, kinds[c.mode], link)
		}
		if list := mustWgns(t, "list"); !strings.Contains(list, c.mode) {
			t.Errorf("up %v: wgns list does not say %s:\n%s", c.flags, c.mode, list)
		}
		mustWgns(t, "exec", name, "--", "ping", "-c1", "-W5", peerTunnel4)
		mustWgns(t, "down", name)
		assertNoTrace(t, name)
	}
}
