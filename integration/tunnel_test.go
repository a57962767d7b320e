package integration

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// tunnelUp brings a tunnel up from the peer's config and registers its teardown. The mode is the
// one wgns picks by itself (see kernelMode); flags (such as --userspace, for a test of the
// embedded WireGuard) go before the config.
func tunnelUp(t *testing.T, p *peer, name string, flags ...string) {
	t.Helper()
	mustWgns(t, append(append([]string{"up", "--name", name}, flags...), p.ConfigPath)...)
	t.Cleanup(func() { wgnsRun(t, "down", "--force", name) })
}

// TestIntegrationTunnelTraffic: IPv4 and IPv6 ping and a TCP transfer from `wgns exec` through
// the tunnel to Debian's wireguard-go, and the shape of the namespace while it runs.
func TestIntegrationTunnelTraffic(t *testing.T) {
	const name = "tt"
	p := newPeer(t, name)
	tunnelUp(t, p, name)

	mustWgns(t, "exec", name, "--", "ping", "-c1", "-W5", peerTunnel4)
	mustWgns(t, "exec", name, "--", "ping", "-6", "-c1", "-W5", peerTunnel6)

	// A TCP transfer of 4 MiB to a listener in the peer's namespace, counted byte for byte there.
	const size = 4 << 20
	counted := filepath.Join(t.TempDir(), "received")
	srv := exec.Command("ip", "netns", "exec", p.NS, "sh", "-c", "nc -l -s "+peerTunnel4+" -p 5201 | wc -c > "+counted)
	startUntilEnd(t, srv)
	waitFor(t, 5*time.Second, "a listener in the peer namespace", func() bool {
		return listening(p.NS, "tcp", "sport", "= :5201")
	})
	mustWgns(t, "exec", name, "--", "sh", "-c", fmt.Sprintf("head -c %d /dev/zero | nc -N %s 5201", size, peerTunnel4))
	if err := srv.Wait(); err != nil {
		t.Fatalf("listener: %v", err)
	}
	if b, _ := os.ReadFile(counted); strings.TrimSpace(string(b)) != strconv.Itoa(size) {
		t.Fatalf("peer received %q bytes through the tunnel, want %d", strings.TrimSpace(string(b)), size)
	}

	// The namespace holds lo and the tunnel, and nothing else.
	links := mustRun(t, "ip", "-n", name, "-o", "link", "show")
	if got := linkNames(links); strings.Join(got, ",") != "lo,"+name {
		t.Fatalf("links in namespace %q: %v, want [lo %s]", name, got, name)
	}
	// Every route of the main table (v4 and v6) goes via the tunnel.
	for _, fam := range []string{"-4", "-6"} {
		routes := strings.TrimSpace(mustRun(t, "ip", "-n", name, fam, "route", "show", "table", "main"))
		if routes == "" {
			t.Fatalf("no %s routes in %q", fam, name)
		}
		for _, r := range strings.Split(routes, "\n") {
			if !strings.Contains(r, "dev "+name) {
				t.Errorf("route %q in namespace %q does not go via the tunnel", r, name)
			}
		}
		if def := mustRun(t, "ip", "-n", name, fam, "route", "show", "default"); !strings.Contains(def, "dev "+name) {
			t.Errorf("%s default route in %q: %q", fam, name, def)
		}
	}
	// The encrypted UDP socket is in the host world; the tunnel namespace has no UDP socket.
	if out := mustRun(t, "ip", "netns", "exec", name, "ss", "-uanH"); strings.TrimSpace(out) != "" {
		t.Errorf("UDP sockets inside the tunnel namespace:\n%s", out)
	}
	st := status(t, name)
	assertHostUDP(t, st.ListenPort)
	// iproute2 and wg(8) work on it.
	mustRun(t, "ip", "netns", "exec", name, "true")
	wgShow := mustRun(t, "ip", "netns", "exec", name, "wg", "show", name)
	if !strings.Contains(wgShow, "peer: "+p.Key.PublicKey().String()) || !strings.Contains(wgShow, "latest handshake") {
		t.Errorf("wg show %s inside the namespace:\n%s", name, wgShow)
	}
	if st.Peers[0].LastHandshake.IsZero() || st.Peers[0].TxBytes == 0 {
		t.Errorf("status after traffic: %+v", st.Peers[0])
	}
	list := mustWgns(t, "list")
	if !strings.Contains(list, name) || !strings.Contains(list, defaultMode()) || !strings.Contains(list, "ready") {
		t.Errorf("wgns list (want mode %s):\n%s", defaultMode(), list)
	}
}

// assertHostUDP checks that the tunnel's encrypted UDP socket, on port, is in the host world and
// belongs to the right owner: the wgns process holding the embedded WireGuard, or, for kernel
// WireGuard, no process at all (the kernel's socket).
func assertHostUDP(t *testing.T, port int) {
	t.Helper()
	var mine []string
	for _, l := range strings.Split(mustRun(t, "ss", "-uanpH"), "\n") {
		if f := strings.Fields(l); len(f) >= 4 && strings.HasSuffix(f[3], fmt.Sprintf(":%d", port)) {
			mine = append(mine, l)
		}
	}
	if len(mine) == 0 {
		t.Errorf("no UDP socket on port %d in the host world:\n%s", port, mustRun(t, "ss", "-uanpH"))
	}
	for _, l := range mine {
		switch owned := strings.Contains(l, "users:"); {
		case kernelMode() && owned:
			t.Errorf("kernel WireGuard's UDP socket on port %d belongs to a process: %s", port, l)
		case !kernelMode() && !strings.Contains(l, fmt.Sprintf("((%q,", filepath.Base(wgnsBin))):
			t.Errorf("the UDP socket on port %d does not belong to %s: %s", port, filepath.Base(wgnsBin), l)
		}
	}
}

// TestIntegrationTunnelDownLeavesNothing: after down, no namespace file, interface, wgns
// process, UAPI socket or state file remains.
func TestIntegrationTunnelDownLeavesNothing(t *testing.T) {
	const name = "td"
	p := newPeer(t, name)
	mustWgns(t, "up", p.ConfigPath)
	st := status(t, name)
	if st.PID == 0 {
		t.Fatal("no supervisor PID in status")
	}
	mustWgns(t, "exec", name, "--", "ping", "-c1", "-W5", peerTunnel4)

	out := mustWgns(t, "down", name)
	if !strings.Contains(out, "down") {
		t.Errorf("down said %q", out)
	}
	assertNoTrace(t, name)
	if _, err := os.Stat(fmt.Sprintf("/proc/%d", st.PID)); err == nil {
		if b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", st.PID)); !strings.Contains(string(b), ") Z ") {
			t.Errorf("holder process %d still runs after down", st.PID)
		}
	}
	// down of a tunnel that is not up: exit 0, and says so.
	o, _, code := wgnsRun(t, "down", name)
	if code != 0 || !strings.Contains(o, "not up") {
		t.Errorf("second down: exit %d, %q", code, o)
	}
}

// TestIntegrationTunnelAlreadyUp: a second up of the same NAME fails and changes nothing.
func TestIntegrationTunnelAlreadyUp(t *testing.T) {
	const name = "ta"
	p := newPeer(t, name)
	tunnelUp(t, p, name)
	before := snapshot(t, name)
	_, e, code := wgnsRun(t, "up", "--name", name, p.ConfigPath)
	if code == 0 || !strings.Contains(e, "already up") {
		t.Fatalf("second up: exit %d, stderr %q", code, e)
	}
	if after := snapshot(t, name); after != before {
		t.Fatalf("second up changed the system:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	mustWgns(t, "exec", name, "--", "ping", "-c1", "-W5", peerTunnel4)
}

// TestIntegrationExecPassesThrough: arguments reach the command untouched, its exit status comes
// back, and a missing command is 127.
func TestIntegrationExecPassesThrough(t *testing.T) {
	const name = "te"
	p := newPeer(t, name)
	tunnelUp(t, p, name)
	out := mustWgns(t, "exec", name, "--", "sh", "-c", `printf '%s|' "$@"`, "x", "a b", "--flag", "-c", "")
	if out != "a b|--flag|-c||" {
		t.Errorf("arguments arrived as %q", out)
	}
	if _, _, code := wgnsRun(t, "exec", name, "--", "sh", "-c", "exit 3"); code != 3 {
		t.Errorf("exit status %d, want 3", code)
	}
	if _, e, code := wgnsRun(t, "exec", name, "--", "no-such-command-wgns"); code != 127 || !strings.Contains(e, "no-such-command-wgns") {
		t.Errorf("missing command: exit %d, stderr %q", code, e)
	}
	if _, e, code := wgnsRun(t, "exec", "nope", "--", "true"); code != 125 || !strings.Contains(e, "not up") {
		t.Errorf("exec of a tunnel not up: exit %d, stderr %q", code, e)
	}
}

type tunnelStatus struct {
	Name       string `json:"name"`
	State      string `json:"state"`
	PID        int    `json:"pid"`
	ListenPort int    `json:"listen_port"`
	PublicKey  string `json:"public_key"`
	Peers      []struct {
		PublicKey     string    `json:"public_key"`
		Endpoint      string    `json:"endpoint"`
		LastHandshake time.Time `json:"latest_handshake"`
		TxBytes       int64     `json:"transfer_tx"`
		RxBytes       int64     `json:"transfer_rx"`
	} `json:"peers"`
}

// status is the tunnel's `wgns status --json`, read as tunnelStatus.
func status(t *testing.T, name string) tunnelStatus { return statusAs[tunnelStatus](t, name) }

// statusAs reads `wgns status --json name` into T, the fields a test looks at (tunnelStatus,
// portsStatus, failoverStatus); it fails the test unless there is exactly one tunnel in it.
func statusAs[T any](t *testing.T, name string) T {
	t.Helper()
	var st []T
	out := mustWgns(t, "status", "--json", name)
	if err := json.Unmarshal([]byte(out), &st); err != nil || len(st) != 1 {
		t.Fatalf("status --json: %v\n%s", err, out)
	}
	return st[0]
}

func linkNames(ipOneline string) []string {
	var names []string
	for _, l := range strings.Split(strings.TrimSpace(ipOneline), "\n") {
		f := strings.Fields(l)
		if len(f) > 1 {
			n := strings.TrimSuffix(f[1], ":")
			if i := strings.IndexByte(n, '@'); i >= 0 {
				n = n[:i]
			}
			names = append(names, n)
		}
	}
	return names
}

// assertNoTrace checks that nothing of tunnel name is left in the world.
func assertNoTrace(t *testing.T, name string) {
	t.Helper()
	for _, p := range []string{"/run/netns/" + name, "/run/wgns/" + name + ".json", "/run/wgns/" + name + ".ready",
		"/var/run/wireguard/" + name + ".sock", "/etc/netns/" + name} {
		if _, err := os.Lstat(p); err == nil {
			t.Errorf("%s still exists", p)
		}
	}
	if out, _ := run("ip", "link", "show", name); !strings.Contains(out, "does not exist") {
		t.Errorf("interface %s still exists in the host world: %s", name, out)
	}
	if mi, _ := os.ReadFile("/proc/self/mountinfo"); strings.Contains(string(mi), "/run/netns/"+name+" ") {
		t.Errorf("a mount of /run/netns/%s is left", name)
	}
	if kept := keptViews(t, name); len(kept) > 0 {
		t.Errorf("views kept for exec are left: %v", kept)
	}
	// A supervisor that an up started and that found the tunnel taken (after a crash test's
	// kill, say) reports and exits on its own: give it a moment, not forever.
	deadline := time.Now().Add(scaled(10 * time.Second))
	for len(wgnsPIDsFor(name)) > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	for _, pid := range wgnsPIDsFor(name) {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		t.Errorf("wgns process %d for %s still runs: %q", pid, name, b)
	}
}

// wgnsPIDsFor lists live wgns processes (the front or the full wgns, which starts the holders)
// whose command line names the tunnel.
func wgnsPIDsFor(name string) []int {
	return pidsWhere(func(pid int) bool {
		b := cmdline(pid)
		if !strings.HasPrefix(b, wgnsBin+"\x00") && !strings.HasPrefix(b, wgnsCore()+"\x00") {
			return false
		}
		args := strings.Split(strings.TrimRight(b, "\x00"), "\x00")
		for _, a := range args[1:] {
			if a == name || strings.HasSuffix(a, "/"+name+".conf") {
				return processLives(pid)
			}
		}
		return false
	})
}

// snapshot is the world's state as text: namespaces, links, wgns state files, DNS views.
func snapshot(t *testing.T, name string) string {
	t.Helper()
	var b strings.Builder
	b.WriteString(mustRun(t, "ip", "netns", "list"))
	links, _ := run("ip", "-o", "link", "show")
	b.WriteString(strings.Join(linkNames(links), ",") + "\n")
	for _, dir := range []string{"/run/wgns", "/etc/netns", "/var/run/wireguard"} {
		m, _ := filepath.Glob(dir + "/*")
		for _, f := range m {
			if strings.HasSuffix(f, ".lock") || strings.HasSuffix(f, ".log") {
				continue
			}
			fi, err := os.Stat(f)
			if err == nil {
				fmt.Fprintf(&b, "%s %v %d\n", f, fi.Mode(), fi.ModTime().UnixNano())
			}
		}
	}
	if ns, _ := run("ip", "-n", name, "-o", "link", "show"); ns != "" {
		b.WriteString(strings.Join(linkNames(ns), ",") + "\n")
	}
	return b.String()
}

// TestIntegrationKernelModeWithoutKernelWireGuard: this kernel has no WireGuard, so forcing the
// kernel implementation fails at its interface step, says why, and rolls back everything made
// before it (namespace, firewall).
func TestIntegrationKernelModeWithoutKernelWireGuard(t *testing.T) {
	if kernelMode() {
		t.Skip("this kernel has WireGuard")
	}
	const name = "tk"
	p := newPeer(t, name)
	before := snapshot(t, name)
	_, e, code := wgnsRun(t, "up", "--kernel", p.ConfigPath)
	if code == 0 || !strings.Contains(e, `creating interface "tk": the kernel has no WireGuard support (use --userspace)`) {
		t.Fatalf("up --kernel: exit %d, %q", code, e)
	}
	if after := snapshot(t, name); after != before {
		t.Fatalf("a failed up --kernel left something:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	assertNoTrace(t, name)
	if v := mustWgns(t, "version"); !strings.Contains(v, "embedded userspace WireGuard") {
		t.Errorf("version on a kernel without WireGuard: %q", v)
	}
}

// TestIntegrationStatusOfStoppedHolder: a stopped (or hung) holder does not hang status, list
// or repair: wgctrl's exchange with it is bounded, and status says what is wrong.
func TestIntegrationStatusOfStoppedHolder(t *testing.T) {
	const name = "ts"
	p := newPeer(t, name)
	tunnelUp(t, p, name, "--userspace") // the embedded WireGuard's holder, in both modes
	pid := status(t, name).PID
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	defer syscall.Kill(pid, syscall.SIGCONT)
	// Every thread stops on its own time; until the last has, the holder may still answer (seen
	// in the emulated guest of make test-kernel).
	waitFor(t, 5*time.Second, "every thread of the holder to be stopped", func() bool {
		tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/stat", pid))
		for _, f := range tasks {
			if b, err := os.ReadFile(f); err == nil && !strings.Contains(string(b), ") T ") {
				return false
			}
		}
		return len(tasks) > 0
	})
	for _, args := range [][]string{{"status", name}, {"list"}, {"repair", "--dry-run", name}} {
		start := time.Now()
		cmd := exec.Command(wgnsBin, args...)
		out, _ := cmd.CombinedOutput()
		if d := time.Since(start); d > scaled(10*time.Second) {
			t.Errorf("wgns %v took %v with the holder stopped", args, d)
		}
		if args[0] == "status" && !strings.Contains(string(out), "no answer") {
			t.Errorf("wgns status with the holder stopped:\n%s", out)
		}
	}
	syscall.Kill(pid, syscall.SIGCONT)
	mustWgns(t, "exec", name, "--", "ping", "-c1", "-W5", peerTunnel4)
}

// TestIntegrationHolderFailureIsReported: when the detached holder fails after it made things
// (here: an interface of the tunnel's name already exists in the host), up rolls back, prints
// the holder's own reason, and leaves nothing behind, its log included.
func TestIntegrationHolderFailureIsReported(t *testing.T) {
	const name = "tf"
	p := newPeer(t, name)
	mustRun(t, "ip", "link", "add", name, "type", "veth", "peer", "name", "tf-peer")
	t.Cleanup(func() { run("ip", "link", "del", name) })
	_, e, code := wgnsRun(t, "up", "--userspace", p.ConfigPath)
	if code == 0 || !strings.Contains(e, `creating interface "tf": an interface of that name already exists in the host namespace`) {
		t.Fatalf("up with %s taken in the host: exit %d, %q", name, code, e)
	}
	for _, f := range []string{"/run/netns/" + name, "/run/wgns/" + name + ".json", "/run/wgns/" + name + ".log", "/etc/netns/" + name} {
		if _, err := os.Lstat(f); err == nil {
			t.Errorf("%s left after a failed up", f)
		}
	}
	if out := mustRun(t, "ip", "link", "show", name); !strings.Contains(out, name+"@tf-peer") {
		t.Errorf("the host's own %s was touched: %s", name, out)
	}
}
