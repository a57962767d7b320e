package integration

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// The exec service attacked as local users could attack it: each attempt fails, runs nothing,
// and leaves the service serving others.

// svcClient is testdata/execsvcclient run as u; it returns its output.
func svcClient(t *testing.T, u worldUser, args ...string) string {
	t.Helper()
	o, e, _ := runCmd(t, userCmd(t, u, append([]string{worldTool(t, "execsvcclient")}, args...)...))
	return o + e
}

// svcStart starts execsvcclient as u, with a pipe on its stdin (closing it ends the tool), and
// waits until it has printed ready.
func svcStart(t *testing.T, u worldUser, ready string, args ...string) (stop func() string) {
	t.Helper()
	cmd := userCmd(t, u, append([]string{worldTool(t, "execsvcclient")}, args...)...)
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	outR, outW := io.Pipe()
	cmd.Stdout, cmd.Stderr = outW, outW
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var out strings.Builder
	got := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(outR)
		once := sync.Once{}
		for sc.Scan() {
			mu.Lock()
			out.WriteString(sc.Text() + "\n")
			mu.Unlock()
			if strings.Contains(sc.Text(), ready) {
				once.Do(func() { close(got) })
			}
		}
	}()
	select {
	case <-got:
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("execsvcclient %q did not print %q", args, ready)
	}
	stopped := false
	stop = func() string {
		if !stopped {
			stopped = true
			in.Close()
			cmd.Wait()
			outW.Close()
		}
		mu.Lock()
		defer mu.Unlock()
		return out.String()
	}
	t.Cleanup(func() { stop() })
	return stop
}

// TestIntegrationServiceHostile: against the exec service, as local users: another user's
// tunnel, a forged credential (another user's uid, another process's PID), a connection handed
// from a granted user to another user's process, more descriptors than the standard files, a
// request larger than allowed, bytes that are not the protocol, a client that sends nothing, and
// a flood of connections. Each is refused (or cut off), runs nothing, and the service goes on
// serving the granted user promptly.
func TestIntegrationServiceHostile(t *testing.T) {
	alice := addUser(t, "wgnsalice")
	bob := addUser(t, "wgnsbob")
	mine := newSvcTunnel(t, "svcmine", "[Namespace]\nUsers = wgnsalice\n")
	const bobs = "svcbobs"
	otherTunnel(t, mine.p, bobs, "[Namespace]\nUsers = wgnsbob\n")
	svc := startService(t)
	front := copyWgns(t)
	dir := worldDir(t)
	marker := filepath.Join(dir, "ran")
	touch := []string{"sh", "-c", "touch " + marker + "; id -u >> " + marker}
	ran := func() string {
		b, err := os.ReadFile(marker)
		if err != nil {
			return ""
		}
		return strings.TrimSpace(string(b))
	}
	served := func(t *testing.T) {
		t.Helper()
		start := time.Now()
		_, e, code := runCmd(t, userCmd(t, alice, front, "exec", mine.name, "--", "true"))
		if code != 0 {
			t.Fatalf("the granted user is not served: exit %d: %s", code, e)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("the granted user waited %v", d)
		}
	}
	served(t)

	t.Run("another user's tunnel", func(t *testing.T) {
		_, e, code := runCmd(t, userCmd(t, alice, append([]string{front, "exec", bobs, "--"}, touch...)...))
		if code != 125 || !strings.Contains(e, `user "wgnsalice" is not granted to run programs in tunnel "svcbobs"`) {
			t.Errorf("exit %d: %s", code, e)
		}
	})
	t.Run("a caller in a sandbox", func(t *testing.T) {
		// A program the user confined (a user namespace of its own, a seccomp filter) asks for
		// a command: it would run outside that confinement, so it is refused.
		for _, tc := range []struct {
			argv []string
			want string
		}{
			{[]string{"unshare", "--user", "--map-current-user", front, "exec", mine.name, "--"}, "runs in a user namespace of its own (a container or a sandbox)"},
			{[]string{worldTool(t, "execsvcclient"), "seccomp", front, "exec", mine.name, "--"}, "runs under a seccomp filter the service does not (a sandbox)"},
		} {
			_, e, code := runCmd(t, userCmd(t, alice, append(tc.argv, touch...)...))
			if code != 125 || !strings.Contains(e, tc.want) {
				t.Errorf("%q: exit %d, %s; want 125 and %q", tc.argv[:2], code, e, tc.want)
			}
		}
	})
	t.Run("a forged uid", func(t *testing.T) {
		// bob claims alice's uid: the kernel refuses to send the message.
		out := svcClient(t, bob, append([]string{"forge", strconv.Itoa(alice.UID), strconv.Itoa(bob.GID), "0", mine.name}, touch...)...)
		if !strings.Contains(out, "sendmsg: operation not permitted") {
			t.Errorf("bob sent credentials with alice's uid: %s", out)
		}
	})
	t.Run("a forged PID", func(t *testing.T) {
		// alice claims another process's PID (the service's own, root's).
		pid := strconv.Itoa(svc.cmd.Process.Pid)
		out := svcClient(t, alice, append([]string{"forge", strconv.Itoa(alice.UID), strconv.Itoa(alice.GID), pid, mine.name}, touch...)...)
		if !strings.Contains(out, "sendmsg: operation not permitted") {
			t.Errorf("alice sent credentials with PID %s: %s", pid, out)
		}
	})
	t.Run("a connection handed to another user", func(t *testing.T) {
		// bob listens; alice, who may use the tunnel, connects to the service and hands bob the
		// connection; bob sends a request on it.
		listener := filepath.Join(dir, "bob.sock")
		stopBob := svcStart(t, bob, "listening", append([]string{"receive", listener, mine.name}, touch...)...)
		stopAlice := svcStart(t, alice, "passed", "pass", listener)
		var out string
		waitFor(t, 20*time.Second, "bob's answer", func() bool {
			out = stopBob()
			return strings.Contains(out, "answer:") || strings.Contains(out, "closed")
		})
		stopAlice()
		if !strings.Contains(out, "answer: 125 refused: the request was sent by process") || !strings.Contains(out, "a connection to the service cannot be handed on") {
			t.Errorf("bob's request on alice's connection: %s", out)
		}
	})
	t.Run("more descriptors than the standard files", func(t *testing.T) {
		out := svcClient(t, alice, append([]string{"fds", mine.name}, touch...)...)
		if !strings.Contains(out, "answer: 125 not the wgns exec protocol") {
			t.Errorf("four descriptors: %s", out)
		}
	})
	t.Run("a request too large", func(t *testing.T) {
		out := svcClient(t, alice, "big")
		if !strings.Contains(out, "answer: 125 not the wgns exec protocol: a frame of type 'R' and 3145729 bytes where a request was due") {
			t.Errorf("an oversized request: %s", out)
		}
	})
	t.Run("not the protocol", func(t *testing.T) {
		out := svcClient(t, bob, "garbage")
		if !strings.Contains(out, "answer: 125 not the wgns exec protocol") {
			t.Errorf("garbage: %s", out)
		}
	})
	t.Run("a client that sends nothing", func(t *testing.T) {
		// It is hung up on at the deadline; meanwhile the granted user is served at once.
		idle := make(chan string, 1)
		go func() {
			cmd := userCmd(t, bob, worldTool(t, "execsvcclient"), "idle")
			o, _ := cmd.CombinedOutput()
			idle <- string(o)
		}()
		served(t)
		select {
		case o := <-idle:
			if !strings.Contains(o, "answer: 125 no whole request within 10s of connecting") {
				t.Errorf("the client that sent nothing: %s", o)
			}
			var secs int
			if _, err := fmt.Sscanf(o[strings.Index(o, "hung up after"):], "hung up after %d s", &secs); err != nil || secs < 9 || secs > 15 {
				t.Errorf("hung up after %d s (%v), want the 10 s deadline: %s", secs, err, o)
			}
		case <-time.After(40 * time.Second):
			t.Error("a client that sent nothing was not hung up on within 40 s")
		}
	})
	t.Run("a flood of connections", func(t *testing.T) {
		// bob holds 200 connections that send nothing: those over the limit of pending requests
		// are answered at once; the granted user is served at once all along, and not a session
		// is started for bob.
		stopFlood := svcStart(t, bob, "connected", "flood", "200")
		served(t)
		served(t)
		if n := strings.Count(svc.log.String(), "uid "+strconv.Itoa(bob.UID)+" in "); n != 0 {
			t.Errorf("%d sessions were started for bob", n)
		}
		if n := strings.Count(svc.log.String(), "has 4 requests to the wgns service pending"); n < 150 {
			t.Errorf("%d of 200 connections were refused as over the limit of pending requests", n)
		}
		if out := stopFlood(); !strings.Contains(out, "connected 200") {
			t.Errorf("flood: %s", out)
		}
		served(t)
	})
	if got := ran(); got != "" {
		t.Errorf("a refused attempt ran its command (as uid %s)", got)
	}
	waitFor(t, 20*time.Second, "the granted user's sessions to end", func() bool { return len(sessionProcs()) == 0 })
	if strings.Contains(svc.log.String(), "panic") {
		t.Errorf("the service panicked:\n%s", svc.log)
	}
}
