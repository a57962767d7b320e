package integration

import (
	"bufio"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// testBusConfig is a system bus for the test world, with a policy that lets anyone own names and
// send signals (so that the forger below can try).
const testBusConfig = `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=/run/dbus/system_bus_socket</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_requested_reply="true" send_type="method_return"/>
    <allow send_requested_reply="true" send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow receive_type="signal"/>
  </policy>
</busconfig>
`

// startSystemBus runs a real dbus-daemon as the world's system bus (the world has its own /run).
func startSystemBus(t *testing.T) {
	t.Helper()
	if err := os.MkdirAll("/run/dbus", 0o755); err != nil {
		t.Fatal(err)
	}
	conf := t.TempDir() + "/system.conf"
	if err := os.WriteFile(conf, []byte(testBusConfig), 0o644); err != nil {
		t.Fatal(err)
	}
	bus := exec.Command("dbus-daemon", "--nofork", "--nopidfile", "--config-file="+conf)
	bus.Stderr = os.Stderr
	if err := bus.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bus.Process.Kill(); bus.Wait(); os.Remove("/run/dbus/system_bus_socket") })
	waitFor(t, 10*time.Second, "the system bus socket", func() bool {
		_, err := os.Stat("/run/dbus/system_bus_socket")
		return err == nil
	})
}

// login1 is the stand-in for logind: lines written to it become PrepareForSleep signals.
type login1 struct {
	in  io.WriteCloser
	out *bufio.Scanner
}

func startLogin1(t *testing.T, cmd *exec.Cmd) *login1 {
	t.Helper()
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { in.Close(); cmd.Process.Kill(); cmd.Wait() })
	l := &login1{in: in, out: bufio.NewScanner(out)}
	l.expect(t, "ready")
	return l
}

func (l *login1) expect(t *testing.T, want string) {
	t.Helper()
	if !l.out.Scan() || l.out.Text() != want {
		t.Fatalf("login1 stand-in said %q (%v), want %q", l.out.Text(), l.out.Err(), want)
	}
}

func (l *login1) send(t *testing.T, sleeping bool) {
	t.Helper()
	v := strconv.FormatBool(sleeping)
	if _, err := io.WriteString(l.in, v+"\n"); err != nil {
		t.Fatal(err)
	}
	l.expect(t, "sent "+v)
}

// peerHandshake is the peer's latest handshake with the client, in Unix seconds (0: none).
func (p *peer) handshake(t *testing.T) int64 {
	t.Helper()
	out := mustRun(t, "ip", "netns", "exec", p.NS, "wg", "show", p.Dev, "latest-handshakes")
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(line)
		if len(f) == 2 && f[0] == p.ClientKey.PublicKey().String() {
			n, _ := strconv.ParseInt(f[1], 10, 64)
			return n
		}
	}
	return 0
}

// On resume from sleep (logind's PrepareForSleep(false) on the system bus), the supervisor starts
// a new session with the peer at once, which the peer sees as a new handshake. The same signal
// from a client that does not own org.freedesktop.login1 does nothing.
func TestIntegrationResumeStartsANewSession(t *testing.T) {
	startSystemBus(t)
	p := newPeer(t, "sleep")
	mustWgns(t, "up", p.ConfigPath)
	t.Cleanup(func() { wgnsRun(t, "down", "sleep") })
	var first int64
	waitFor(t, 10*time.Second, "the first handshake (up greets the peer)", func() bool { first = p.handshake(t); return first > 0 })

	// The handshake times have a resolution of a second: go on once the clock has passed it.
	waitFor(t, 3*time.Second, "the next second", func() bool { return time.Now().Unix() > first })
	forger := startLogin1(t, asNobody(worldTool(t, "login1"), "-forge"))
	logind := startLogin1(t, exec.Command(worldTool(t, "login1")))

	forger.send(t, false)
	logind.send(t, true) // going to sleep: nothing to do
	// Neither is acted on: give the supervisor time to have done something, as long as a real
	// resume takes below.
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		if h := p.handshake(t); h != first {
			t.Fatalf("a forged resume (or going to sleep) made a new handshake (%d after %d)", h, first)
		}
		time.Sleep(50 * time.Millisecond)
	}

	sent := time.Now()
	logind.send(t, false)
	waitFor(t, 5*time.Second, "a new handshake after the resume", func() bool { return p.handshake(t) > first })
	t.Logf("new handshake seen by the peer %s after the resume signal", time.Since(sent).Round(10*time.Millisecond))
	if o, e, _ := wgnsRun(t, "status", "sleep"); !strings.Contains(o, "latest handshake") {
		t.Errorf("status after resume: %s %s", o, e)
	}
}
