package integration

import (
	"fmt"
	"os"
	"strings"
	"testing"
)

// TestIntegrationDownEndsKernelWireGuardWhileTheNamespaceIsHeld: kernel WireGuard's socket is
// the host's, so its interface must not outlive `down` in a namespace that something still
// holds (here a descriptor the test keeps open, as a container runtime or a stray nsenter
// would): after down, the interface is gone from that namespace and nothing listens on its
// port in the host any more.
func TestIntegrationDownEndsKernelWireGuardWhileTheNamespaceIsHeld(t *testing.T) {
	if !kernelMode() {
		t.Skip("kernel WireGuard only (make test-kernel): the embedded WireGuard's interface ends with its process")
	}
	const name = "dheld"
	p := newPeer(t, name)
	tunnelUp(t, p, name)
	port := status(t, name).ListenPort
	if port == 0 {
		t.Fatal("status shows no listen port")
	}
	held, err := os.Open("/run/netns/" + name)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	heldPath := fmt.Sprintf("/proc/%d/fd/%d", os.Getpid(), held.Fd())
	if out := mustRun(t, "nsenter", "--net="+heldPath, "ip", "-o", "link", "show"); !strings.Contains(out, name) {
		t.Fatalf("before down, the held namespace lacks %s:\n%s", name, out)
	}

	mustWgns(t, "down", name)
	if out := mustRun(t, "nsenter", "--net="+heldPath, "ip", "-o", "link", "show"); strings.Contains(out, name) {
		t.Errorf("after down, %s is still in the namespace the test holds:\n%s", name, out)
	}
	if out := mustRun(t, "ss", "-Huan", fmt.Sprintf("sport = :%d", port)); strings.TrimSpace(out) != "" {
		t.Errorf("after down, a socket still has the tunnel's port %d in the host:\n%s", port, out)
	}
}
