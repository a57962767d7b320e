package integration

import (
	"os"
	"strings"
	"testing"
)

// TestIntegrationRepairPutsBackARemovedNamespace: `ip netns del` of a tunnel's namespace (an
// admin's slip) removes only its name: the namespace lives on, held by the tunnel's supervisor,
// with the WireGuard interface, a server inside and the published port that leads to it. exec
// then finds nothing to enter; `wgns repair --dry-run` says it would put the name back, and
// changes nothing; `wgns repair` names the very same namespace again (the same nsfs inode) rather
// than make a second one beside it: exec enters it, the tunnel carries traffic, the server
// started before is reached through Publish, and a second repair finds nothing to do.
func TestIntegrationRepairPutsBackARemovedNamespace(t *testing.T) {
	const name = "rb"
	p := newPeer(t, name)
	p.writeConfig(t, p.ConfigPath, "\n[Namespace]\nPublish = 18090:8090\n")
	mustWgns(t, "up", "--name", name, p.ConfigPath)
	t.Cleanup(func() { wgnsRun(t, "down", "--force", name) })
	path := "/run/netns/" + name
	nsfsID := func(p string) string { return strings.TrimSpace(mustRun(t, "stat", "-L", "-c", "%d:%i", p)) }
	before := nsfsID(path)

	portsWebInside(t, name, "127.0.0.1", 8090, "still here\n")

	mustRun(t, "ip", "netns", "del", name)
	if _, err := os.Lstat(path); err == nil {
		t.Fatalf("ip netns del left %s", path)
	}
	if _, _, code := wgnsRun(t, "exec", name, "--", "true"); code == 0 {
		t.Errorf("exec into %s after ip netns del succeeded", name)
	}

	out := mustWgns(t, "repair", "--dry-run", name)
	if !strings.Contains(out, "put back "+path) {
		t.Errorf("repair --dry-run does not say it puts %s back:\n%s", path, out)
	}
	if _, err := os.Lstat(path); err == nil {
		t.Errorf("repair --dry-run made %s", path)
	}

	out = mustWgns(t, "repair", name)
	if !strings.Contains(out, "put back "+path) || strings.Contains(out, "create network namespace") {
		t.Errorf("repair after ip netns del:\n%s", out)
	}
	if got := nsfsID(path); got != before {
		t.Fatalf("%s is namespace %s after repair, not the tunnel's %s", path, got, before)
	}
	if got := strings.TrimSpace(mustWgns(t, "exec", name, "--", "stat", "-L", "-c", "%d:%i", "/proc/self/ns/net")); got != before {
		t.Errorf("exec after repair runs in namespace %s, not the tunnel's %s", got, before)
	}
	mustWgns(t, "exec", name, "--", "ping", "-c1", "-W5", peerTunnel4)
	if got := mustRun(t, "curl", "-sS", "--max-time", "10", "http://127.0.0.1:18090/hello.txt"); got != "still here\n" {
		t.Errorf("curl through the published port after repair: %q", got)
	}
	if out := mustWgns(t, "repair", name); !strings.Contains(out, "nothing to repair") {
		t.Errorf("a second repair:\n%s", out)
	}
}
