package integration

import (
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// upSteps are the steps of up, in order, as wgns records them (and WGNS_TEST_CRASH_AT names them).
var upSteps = []string{"namespace", "firewall", "interface", "move", "addresses", "routes", "peers", "dns", "ready"}

// TestIntegrationCrashAtEveryStep kills up with SIGKILL at every step; the next up ends with a
// working tunnel (and, as often, repair does), and down then leaves nothing behind.
func TestIntegrationCrashAtEveryStep(t *testing.T) {
	const name = "tc"
	p := newPeer(t, name)
	for i, step := range upSteps {
		t.Run(step, func(t *testing.T) {
			_, _, code := wgnsRunEnv(t, []string{"WGNS_TEST_CRASH_AT=" + step}, "up", p.ConfigPath)
			if code == 0 {
				t.Fatalf("up killed at %s reported success", step)
			}
			// The process that crashed is up itself or the tunnel's supervisor.
			waitFor(t, 5*time.Second, "the killed wgns process to be gone", func() bool { return len(wgnsPIDsFor(name)) == 0 })
			if i%2 == 0 {
				mustWgns(t, "up", p.ConfigPath)
			} else {
				out := mustWgns(t, "repair", name)
				if !strings.Contains(out, "ready") && !strings.Contains(out, "repaired") {
					t.Errorf("repair after a crash at %s said %q", step, out)
				}
			}
			mustWgns(t, "exec", name, "--", "ping", "-c1", "-W5", peerTunnel4)
			if out := mustWgns(t, "repair", name); !strings.Contains(out, "nothing to repair") {
				t.Errorf("a second repair did something:\n%s", out)
			}
			mustWgns(t, "down", name)
			assertNoTrace(t, name)
		})
	}
}

// TestIntegrationCrashAtRandomMoments kills the process doing up at 20 random moments.
func TestIntegrationCrashAtRandomMoments(t *testing.T) {
	const name = "tr"
	p := newPeer(t, name)
	t.Cleanup(func() { wgnsRun(t, "down", "--force", name) })
	for i := range 20 {
		cmd := exec.Command(wgnsBin, "up", p.ConfigPath)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// A random moment within up's first ~40 ms: kill the tunnel's supervisor if it already
		// exists, else the up that is starting it.
		time.Sleep(time.Duration(rand.IntN(40_000)) * time.Microsecond)
		victim := cmd.Process.Pid
		for _, pid := range wgnsPIDsFor(name) {
			if b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid)); strings.Contains(string(b), "--foreground") {
				victim = pid
			}
		}
		syscall.Kill(victim, syscall.SIGKILL)
		cmd.Wait()
		// No wait for the victim to finish exiting: the next up must cope with a holder that is
		// still dying.
		// The next up either finds the tunnel up (the kill came after ready) or completes it.
		if _, e, code := wgnsRun(t, "up", p.ConfigPath); code != 0 && !strings.Contains(e, "already up") {
			log, _ := os.ReadFile("/run/wgns/" + name + ".log")
			t.Fatalf("run %d: up after a kill: %s\nholder log:\n%s", i, e, log)
		}
		// -W12, not 5: the killed holder may have had an initiation accepted by the peer within
		// the last 20 ms; WireGuard then drops the new holder's first initiation (timestamps are
		// whitened to ~16.7 ms, initiations limited to one per 20 ms per peer) and retries after
		// REKEY_TIMEOUT, 5 s, plus jitter.
		if _, e, code := wgnsRun(t, "exec", name, "--", "ping", "-c1", "-W12", peerTunnel4); code != 0 {
			t.Fatalf("run %d: exec after the next up: %s\n%s", i, e, diagnose(name, p))
		}
		mustWgns(t, "down", name)
		assertNoTrace(t, name)
	}
}

// TestIntegrationConcurrentUp: ten concurrent ups of one NAME; exactly one succeeds, and there is
// one interface, one firewall table and one supervisor.
func TestIntegrationConcurrentUp(t *testing.T) {
	const name = "tu"
	p := newPeer(t, name)
	t.Cleanup(func() { wgnsRun(t, "down", "--force", name) })
	var wg sync.WaitGroup
	codes := make([]int, 10)
	errs := make([]string, 10)
	for i := range codes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i], codes[i] = wgnsRun(t, "up", p.ConfigPath)
		}()
	}
	wg.Wait()
	ok := 0
	for i, c := range codes {
		if c == 0 {
			ok++
		} else if !strings.Contains(errs[i], "already up") {
			t.Errorf("a losing up said %q", errs[i])
		}
	}
	if ok != 1 {
		t.Fatalf("%d ups succeeded, want exactly 1", ok)
	}
	if got := linkNames(mustRun(t, "ip", "-n", name, "-o", "link", "show")); strings.Join(got, ",") != "lo,"+name {
		t.Errorf("links: %v", got)
	}
	if n := strings.Count(mustRun(t, "ip", "netns", "exec", name, "nft", "list", "tables"), "table inet wgns"); n != 1 {
		t.Errorf("%d wgns tables", n)
	}
	if pids := wgnsPIDsFor(name); len(pids) != 1 {
		t.Errorf("supervisors: %v, want one", pids)
	}
	mustWgns(t, "exec", name, "--", "ping", "-c1", "-W5", peerTunnel4)
}

// TestIntegrationRepair: each lost piece is listed by repair --dry-run, restored by repair, and a
// second repair finds nothing to do.
func TestIntegrationRepair(t *testing.T) {
	const name = "tp"
	p := newPeer(t, name)
	tunnelUp(t, p, name)
	// The WireGuard device gone, and no process to bring it back: the embedded one goes with its
	// holder (killed); kernel WireGuard outlives its process (killed too, if the tunnel has one),
	// so its interface is deleted.
	gone, goneRepair := "holder killed", "start the embedded WireGuard"
	if kernelMode() {
		gone, goneRepair = "kernel interface deleted", "create WireGuard interface "+name+" (kernel"
	}
	cases := []struct {
		what   string
		break_ func(t *testing.T)
		want   string
	}{
		{gone, func(t *testing.T) {
			if pid := status(t, name).PID; pid != 0 {
				syscall.Kill(pid, syscall.SIGKILL)
				waitFor(t, 5*time.Second, "the tunnel's process to be gone", func() bool { return !processLives(pid) })
			}
			if kernelMode() {
				mustRun(t, "ip", "-n", name, "link", "del", name)
			}
			waitFor(t, 5*time.Second, "the interface to vanish", func() bool {
				out, _ := run("ip", "-n", name, "link", "show", name)
				return strings.Contains(out, "does not exist")
			})
		}, goneRepair},
		{"firewall table deleted", func(t *testing.T) {
			mustRun(t, "ip", "netns", "exec", name, "nft", "delete", "table", "inet", "wgns")
		}, "install firewall table"},
		{"firewall table altered", func(t *testing.T) {
			mustRun(t, "ip", "netns", "exec", name, "nft", "add", "rule", "inet", "wgns", "output", "accept")
		}, "reinstall the altered firewall table"},
		{"default route deleted", func(t *testing.T) {
			mustRun(t, "ip", "-n", name, "route", "del", "default")
		}, "add route 0.0.0.0/0"},
		{"v6 default route deleted", func(t *testing.T) {
			mustRun(t, "ip", "-n", name, "-6", "route", "del", "default")
		}, "add route ::/0"},
		{"address deleted", func(t *testing.T) {
			mustRun(t, "ip", "-n", name, "addr", "del", clientTunnel4+"/24", "dev", name)
		}, "add address " + clientTunnel4 + "/24"},
		{"DNS file deleted", func(t *testing.T) {
			if err := os.Remove(filepath.Join("/etc/netns", name, "resolv.conf")); err != nil {
				t.Fatal(err)
			}
		}, "write the DNS view"},
	}
	for _, c := range cases {
		t.Run(c.what, func(t *testing.T) {
			c.break_(t)
			before := snapshot(t, name)
			out := mustWgns(t, "repair", "--dry-run", name)
			if !strings.Contains(out, "would repair: "+c.want) {
				t.Fatalf("repair --dry-run does not list %q:\n%s", c.want, out)
			}
			if after := snapshot(t, name); after != before {
				t.Fatalf("repair --dry-run changed something:\n%s\n---\n%s", before, after)
			}
			out = mustWgns(t, "repair", name)
			if !strings.Contains(out, c.want) {
				t.Errorf("repair does not say it did %q:\n%s", c.want, out)
			}
			if out := mustWgns(t, "repair", name); !strings.Contains(out, "nothing to repair") {
				t.Errorf("a second repair did something:\n%s", out)
			}
			mustWgns(t, "exec", name, "--", "ping", "-c1", "-W5", peerTunnel4)
			mustWgns(t, "exec", name, "--", "ping", "-6", "-c1", "-W5", peerTunnel6)
		})
	}
}

// TestIntegrationHolderRecoversDeletedInterface: the tunnel's supervisor makes a deleted
// interface again in the same namespace, by itself (kernel or embedded WireGuard).
func TestIntegrationHolderRecoversDeletedInterface(t *testing.T) {
	const name = "tv"
	p := newPeer(t, name)
	tunnelUp(t, p, name)
	before := status(t, name)
	mustRun(t, "ip", "-n", name, "link", "del", name)
	waitFor(t, 10*time.Second, "the holder to recreate the interface", func() bool {
		out, err := run("ip", "netns", "exec", name, "ping", "-c1", "-W1", peerTunnel4)
		_ = out
		return err == nil
	})
	if after := status(t, name); after.PID != before.PID {
		t.Errorf("holder changed from %d to %d; want the same process to recover", before.PID, after.PID)
	}
}

// TestIntegrationDownWithProcessesInside: down refuses, naming the processes; --force ends them.
func TestIntegrationDownWithProcessesInside(t *testing.T) {
	const name = "tw"
	p := newPeer(t, name)
	tunnelUp(t, p, name)
	sleeper := exec.Command(wgnsBin, "exec", name, "--", "sleep", "1000")
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- sleeper.Wait() }()
	waitFor(t, 5*time.Second, "sleep to run inside", func() bool {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", sleeper.Process.Pid))
		return strings.TrimSpace(string(b)) == "sleep"
	})
	_, e, code := wgnsRun(t, "down", name)
	if code == 0 || !strings.Contains(e, fmt.Sprintf("%d (sleep)", sleeper.Process.Pid)) {
		t.Fatalf("down with a process inside: exit %d, %q", code, e)
	}
	mustWgns(t, "exec", name, "--", "ping", "-c1", "-W5", peerTunnel4) // still up
	mustWgns(t, "down", "--force", name)
	select {
	case <-done:
	case <-time.After(scaled(5 * time.Second)):
		t.Fatal("the process inside survived down --force")
	}
	assertNoTrace(t, name)
}

// diagnose gathers what a failed tunnel test needs to be understood.
func diagnose(name string, p *peer) string {
	var b strings.Builder
	for _, c := range [][]string{
		{"cat", "/run/wgns/" + name + ".json"}, {"cat", "/run/wgns/" + name + ".log"},
		{wgnsBin, "status", name}, {"ip", "-n", name, "addr"}, {"ip", "-n", name, "route"},
		{"ip", "netns", "exec", name, "nft", "list", "ruleset"}, {"ip", "netns", "exec", p.NS, "wg", "show"},
		{"ss", "-uanp"}, {"ls", "-l", "/var/run/wireguard"},
	} {
		out, err := run(c[0], c[1:]...)
		fmt.Fprintf(&b, "$ %s (%v)\n%s\n", strings.Join(c, " "), err, out)
	}
	return b.String()
}
