package integration

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// portsStatus is what `wgns status --json` says of a tunnel's ports.
type portsStatus struct {
	PID       int `json:"pid"`
	Published []struct {
		Listen string `json:"listen"`
		Port   int    `json:"port"`
		Proto  string `json:"proto"`
	} `json:"published"`
	ForwardedPort        int       `json:"forwarded_port"`
	ForwardedPortExpires time.Time `json:"forwarded_port_expires"`
	PortForward          *struct {
		Gateway string    `json:"gateway"`
		Port    int       `json:"port"`
		Expires time.Time `json:"expires"`
		Renewed time.Time `json:"renewed"`
		Error   string    `json:"error"`
	} `json:"port_forward"`
}

// portsInside starts a program inside namespace ns with `ip netns exec` (the witness's way in,
// not wgns's) and waits until something listens on port there (proto "tcp" or "udp").
func portsInside(t *testing.T, ns, proto string, port int, argv ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns}, argv...)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	startUntilEnd(t, cmd)
	waitFor(t, 20*time.Second, fmt.Sprintf("%s listening on %s port %d inside %s", argv[0], proto, port, ns), func() bool {
		return listening(ns, proto, "sport", "= :"+strconv.Itoa(port))
	})
	return cmd
}

// portsWebInside starts a web server inside namespace ns on addr:port (python3 -m http.server,
// started as portsInside starts it) serving one file, hello.txt, that says hello.
func portsWebInside(t *testing.T, ns, addr string, port int, hello string) *exec.Cmd {
	t.Helper()
	dir := t.TempDir()
	os.Chmod(dir, 0o755)
	if err := os.WriteFile(filepath.Join(dir, "hello.txt"), []byte(hello), 0o644); err != nil {
		t.Fatal(err)
	}
	return portsInside(t, ns, "tcp", port, "/usr/bin/python3", "-m", "http.server", strconv.Itoa(port), "--bind", addr, "--directory", dir)
}

// portsListening reports whether anything in the host world listens on TCP addr.
func portsListening(t *testing.T, addr string) bool {
	t.Helper()
	out := mustRun(t, "ss", "-ltnH", "src", addr)
	return strings.TrimSpace(out) != ""
}

// portsUDPAsk sends msg to addr and returns the answer, or an error after a second.
func portsUDPAsk(addr, msg string) (string, error) {
	c, err := net.Dial("udp", addr)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte(msg)); err != nil {
		return "", err
	}
	buf := make([]byte, 1500)
	n, err := c.Read(buf)
	return string(buf[:n]), err
}

// portsUDPEcho answers each datagram to ADDR PORT with "echo: " and the datagram.
const portsUDPEcho = `
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], int(sys.argv[2])))
while True:
    b, src = s.recvfrom(2048)
    s.sendto(b"echo: " + b, src)
`

// portsFlood is a hostile local user's program: it opens n connections to addr at once and
// holds them, then says how many the other side held open (nothing to read after two seconds)
// and how many it reset or closed. It exits when its stdin closes.
const portsFlood = `
import select, socket, sys, time
n, host, port = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
socks, refused = [], 0
for i in range(n):
    s = socket.socket()
    try:
        s.connect((host, port))
        socks.append(s)
    except OSError:
        refused += 1
time.sleep(2)
readable, _, _ = select.select(socks, [], [], 0)
for s in readable:
    try:
        s.recv(1)
    except OSError:
        pass
    refused += 1
print("held=%d refused=%d" % (len(socks) - len(readable), refused), flush=True)
sys.stdin.read()
`

// TestIntegrationPublish: [Namespace] Publish, with whatever WireGuard `wgns up` picks. curl on
// the host reaches a web server inside over IPv4 and IPv6 (the server sees its own loopback),
// byte for byte, and the supervisor splices the bytes (strace sees splice(2)); a UDP echo
// answers through its published port; status shows what is published; the namespace gets no
// interface and a process inside reaches nothing through the published port. A local user who
// floods a published port gets at most 256 connections, and meanwhile the supervisor goes on
// serving (status, the UDP port, the tunnel). down closes the listeners.
func TestIntegrationPublish(t *testing.T) {
	const name = "pb"
	p := newPeer(t, name)
	startDNS(t, p, dnsName, dnsAddr) // the tunnel's DNS server answers: check asks it
	p.writeConfig(t, p.ConfigPath, "\n[Namespace]\nPublish = 18080:8080, [::1]:18081:8080, 15353:5353/udp\n")
	mustWgns(t, "up", "--name", name, p.ConfigPath)
	t.Cleanup(func() { wgnsRun(t, "down", "--force", name) })

	// A web server inside, on the namespace's 127.0.0.1 only, serving a file of random bytes.
	dir := t.TempDir()
	os.Chmod(dir, 0o755)
	blob := make([]byte, 8<<20)
	rand.Read(blob)
	if err := os.WriteFile(filepath.Join(dir, "blob"), blob, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "hello.txt"), []byte("hello from inside\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	web := portsInside(t, name, "tcp", 8080, "/usr/bin/python3", "-m", "http.server", "8080", "--bind", "127.0.0.1", "--directory", dir)
	portsInside(t, name, "udp", 5353, "/usr/bin/python3", "-c", portsUDPEcho, "127.0.0.1", "5353")

	t.Run("curl reaches the web server inside", func(t *testing.T) {
		for _, url := range []string{"http://127.0.0.1:18080/hello.txt", "http://[::1]:18081/hello.txt"} {
			if out := mustRun(t, "curl", "-sS", "--max-time", "10", url); out != "hello from inside\n" {
				t.Errorf("curl %s: %q", url, out)
			}
		}
		// The server saw the connections come from its own loopback.
		if out := web.Stdout.(*bytes.Buffer).String(); !strings.Contains(out, "127.0.0.1 - - ") {
			t.Errorf("the web server's log shows no client on 127.0.0.1:\n%s", out)
		}
	})

	t.Run("spliced, byte for byte", func(t *testing.T) {
		pid := statusAs[portsStatus](t, name).PID
		trace := filepath.Join(t.TempDir(), "strace")
		st := exec.Command("strace", "-f", "-e", "trace=splice", "-o", trace, "-p", strconv.Itoa(pid))
		var stErr bytes.Buffer
		st.Stderr = &stErr
		if err := st.Start(); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 10*time.Second, "strace to attach to the supervisor", func() bool {
			return strings.Contains(stErr.String(), "attached")
		})
		got := filepath.Join(t.TempDir(), "blob")
		mustRun(t, "curl", "-sS", "--max-time", "30", "-o", got, "http://127.0.0.1:18080/blob")
		st.Process.Signal(syscall.SIGINT)
		st.Wait()
		b, err := os.ReadFile(got)
		if err != nil {
			t.Fatal(err)
		}
		if sha256.Sum256(b) != sha256.Sum256(blob) {
			t.Fatalf("downloaded %d bytes through the published port, not the %d served", len(b), len(blob))
		}
		tr, _ := os.ReadFile(trace)
		if n := strings.Count(string(tr), "splice("); n < 2 {
			t.Errorf("strace saw %d splice calls in the supervisor while 8 MiB went through:\n%s", n, tr)
		} else {
			t.Logf("strace saw %d splice calls in the supervisor for 8 MiB", n)
		}
	})

	t.Run("UDP echo", func(t *testing.T) {
		for i := range 3 {
			msg := fmt.Sprintf("ping %d", i)
			if got, err := portsUDPAsk("127.0.0.1:15353", msg+"\n"); err != nil || got != "echo: "+msg+"\n" {
				t.Errorf("UDP through 127.0.0.1:15353: %q, %v", got, err)
			}
		}
	})

	t.Run("status shows what is published", func(t *testing.T) {
		st := statusAs[portsStatus](t, name)
		var got []string
		for _, p := range st.Published {
			got = append(got, fmt.Sprintf("%s->%d/%s", p.Listen, p.Port, p.Proto))
		}
		if want := "127.0.0.1:18080->8080/tcp [::1]:18081->8080/tcp 127.0.0.1:15353->5353/udp"; strings.Join(got, " ") != want {
			t.Errorf("status --json published: %v, want %s", got, want)
		}
		if out := mustWgns(t, "status", name); !strings.Contains(out, "  published: 127.0.0.1:18080 -> 8080/tcp, [::1]:18081 -> 8080/tcp, 127.0.0.1:15353 -> 5353/udp\n") {
			t.Errorf("status:\n%s", out)
		}
		assertCheck(t, name, nil)
	})

	t.Run("a second up is refused, the first goes on", func(t *testing.T) {
		_, e, code := wgnsRun(t, "up", "--name", name, p.ConfigPath)
		if code == 0 || !strings.Contains(e, "already up") {
			t.Errorf("second up: exit %d, stderr %q", code, e)
		}
		if out := mustRun(t, "curl", "-sS", "--max-time", "10", "http://127.0.0.1:18080/hello.txt"); out != "hello from inside\n" {
			t.Errorf("curl after the second up: %q", out)
		}
	})

	t.Run("nothing inside gains a way out", func(t *testing.T) {
		if got := linkNames(mustRun(t, "ip", "-n", name, "-o", "link", "show")); strings.Join(got, ",") != "lo,"+name {
			t.Errorf("links inside: %v, want lo and %s only", got, name)
		}
		// Inside, the published host ports are nobody's: the listener is the host's.
		for _, addr := range []string{"127.0.0.1 18080", hostUnderlay4 + " 18080", "::1 18081"} {
			if _, err := run("ip", "netns", "exec", name, "sh", "-c", "nc -z -w1 "+addr); err == nil {
				t.Errorf("from inside, %s took a connection", addr)
			}
		}
		if out := mustRun(t, "ip", "netns", "exec", name, "ss", "-tanH", "state", "listening"); strings.Contains(out, "18080") {
			t.Errorf("a listener on 18080 inside:\n%s", out)
		}
	})

	t.Run("a local user's flood", func(t *testing.T) {
		flood := asNobody("/usr/bin/python3", "-c", portsFlood, "300", "127.0.0.1", "18080")
		in, err := flood.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		flood.Stdout, flood.Stderr = &out, &out
		if err := flood.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { in.Close(); flood.Wait() })
		for deadline := time.Now().Add(60 * time.Second); !strings.Contains(out.String(), "held="); time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("the flood did not count its connections in 60s; it said:\n%s", out.String())
			}
		}
		if got := strings.TrimSpace(out.String()); got != "held=256 refused=44" {
			t.Errorf("300 connections by user nobody: %s, want 256 held and 44 refused", got)
		}
		// Meanwhile the supervisor answers: status, the UDP port, the tunnel.
		start := time.Now()
		statusAs[portsStatus](t, name)
		if got, err := portsUDPAsk("127.0.0.1:15353", "still there\n"); err != nil || got != "echo: still there\n" {
			t.Errorf("UDP during the flood: %q, %v", got, err)
		}
		mustWgns(t, "exec", name, "--", "ping", "-c1", "-W5", peerTunnel4)
		t.Logf("status, UDP and a ping through the tunnel took %s during the flood", time.Since(start).Round(time.Millisecond))
		in.Close()
		flood.Wait()
		waitFor(t, 30*time.Second, "the published port to take connections again", func() bool {
			out, err := run("curl", "-sS", "--max-time", "5", "http://127.0.0.1:18080/hello.txt")
			return err == nil && out == "hello from inside\n"
		})
	})

	t.Run("down closes the listeners", func(t *testing.T) {
		if !portsListening(t, "127.0.0.1:18080") {
			t.Fatal("nothing listens on 127.0.0.1:18080 before down")
		}
		mustWgns(t, "down", "--force", name)
		for _, addr := range []string{"127.0.0.1:18080", "[::1]:18081"} {
			if portsListening(t, addr) {
				t.Errorf("%s still listens after down", addr)
			}
		}
		if _, err := run("curl", "-sS", "--max-time", "5", "http://127.0.0.1:18080/hello.txt"); err == nil {
			t.Error("curl still reaches 127.0.0.1:18080 after down")
		}
		if out := mustRun(t, "ss", "-lunH", "sport", "= :15353"); strings.TrimSpace(out) != "" {
			t.Errorf("UDP 15353 still open after down:\n%s", out)
		}
		assertNoTrace(t, name)
	})
}

// TestIntegrationPublishBindErrors: a published port that cannot be bound (in use, or an
// address that is not the host's) fails up with the config line, and leaves nothing.
func TestIntegrationPublishBindErrors(t *testing.T) {
	const name = "pbe"
	p := newPeer(t, name)
	busy, err := net.Listen("tcp", "127.0.0.1:18090")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	for _, tc := range []struct {
		publish, want string
	}{
		{"18090:80", "Publish 127.0.0.1:18090:80/tcp: listening: address already in use"},
		{"192.0.2.99:18091:80/udp", "Publish 192.0.2.99:18091:80/udp: listening: cannot assign requested address"},
	} {
		p.writeConfig(t, p.ConfigPath, "[Namespace]\nPublish = "+tc.publish+"\n")
		before := snapshot(t, name)
		_, stderr, code := wgnsRun(t, "up", "--name", name, p.ConfigPath)
		if code == 0 {
			wgnsRun(t, "down", "--force", name)
			t.Fatalf("up with Publish = %s succeeded", tc.publish)
		}
		conf, _ := os.ReadFile(p.ConfigPath)
		line := strings.Count(string(conf[:bytes.Index(conf, []byte("Publish"))]), "\n") + 1
		lines := strings.Split(strings.TrimSpace(stderr), "\n")
		if want := fmt.Sprintf("wgns: %s:%d: %s", p.ConfigPath, line, tc.want); lines[len(lines)-1] != want {
			t.Errorf("up with Publish = %s:\n got %q\nwant %q", tc.publish, stderr, want)
		}
		assertNoTrace(t, name)
		if after := snapshot(t, name); after != before {
			t.Errorf("a failed up changed the world:\n%s", lineDiff(before, after))
		}
	}
}

// TestIntegrationLeakPublished is the leak matrix with published ports in place, on every
// address of the host world and on exactly the ports the probes from inside try (TCP 80 and 53,
// UDP 9 and 53), each carried to a server inside: were the namespace able to reach the host
// world, the probes of the host's addresses would land on the published ports. They stay
// clean in every state, the host world's network is the same while the ports are published as
// before, and the published ports do work from the host world meanwhile.
func TestIntegrationLeakPublished(t *testing.T) {
	const name = "lp"
	extra := "\n[Namespace]\nPublish = 0.0.0.0:80:8080, [::]:80:8080, 0.0.0.0:53:8080, [::]:53:8080, 0.0.0.0:9:5353/udp, [::]:9:5353/udp, 0.0.0.0:53:5353/udp, [::]:53:5353/udp\n"
	runLeakMatrix(t, name, extra, func(t *testing.T) {
		before := hostSnapshot(t)
		portsWebInside(t, name, "127.0.0.1", 8080, "hello from inside\n")
		portsInside(t, name, "udp", 5353, "/usr/bin/python3", "-c", portsUDPEcho, "127.0.0.1", "5353")
		for _, addr := range []string{"127.0.0.1:80", "[::1]:53", hostUnderlay4 + ":80", "[" + hostUnderlay6 + "]:53"} {
			if out, err := run("curl", "-sS", "--max-time", "10", "http://"+addr+"/hello.txt"); err != nil || out != "hello from inside\n" {
				t.Errorf("curl from the host world to %s: %q, %v", addr, out, err)
			}
		}
		for _, addr := range []string{"127.0.0.1:9", "[::1]:53"} {
			if got, err := portsUDPAsk(addr, "ping\n"); err != nil || got != "echo: ping\n" {
				t.Errorf("UDP from the host world to %s: %q, %v", addr, got, err)
			}
		}
		// The probes of the connected state once more, with the servers behind the ports.
		for label, ok := range runOutsideProbes(t, name) {
			if ok && !strings.HasPrefix(label, "t:") {
				t.Errorf("LEAK: probe %s got through with servers behind the published ports", label)
			}
		}
		if during := hostSnapshot(t); during != before {
			t.Errorf("publishing changed the host world's network:\n%s", lineDiff(before, during))
		}
	})
}
