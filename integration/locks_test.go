package integration

import (
	"bufio"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wgns/wgns/internal/syncbuf"
)

// The locks tests: no lock that an unprivileged user can take stalls wgns, and a wait for a
// lock that only root can take is bounded and names the holder.

// lkUser is the unprivileged user of these tests (addFixedUsers adds it).
var lkUser = &syscall.Credential{Uid: 4711, Gid: 4711}

// lkHolder is a process that holds locks; it prints a line as it takes each.
type lkHolder struct {
	cmd   *exec.Cmd
	lines chan string
	seen  map[string]bool
}

// lkStart starts argv (as cred, if not nil) in a process group of its own; t.Cleanup kills the
// group. Its output lines arrive on lines.
func lkStart(t *testing.T, cred *syscall.Credential, argv ...string) *lkHolder {
	t.Helper()
	h := &lkHolder{cmd: exec.Command(argv[0], argv[1:]...), lines: make(chan string, 16), seen: map[string]bool{}}
	h.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Credential: cred}
	// A program that exec runs as another user is in a session of its own, out of the group
	// that the cleanup kills: its children may keep the output open, so waiting stops once
	// the process itself is gone (the tunnel's down --force ends them).
	h.cmd.WaitDelay = time.Second
	h.cmd.Env = envWithoutSudo()
	out, err := h.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var errOut syncbuf.Buffer
	h.cmd.Stderr = &errOut
	if err := h.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			h.lines <- sc.Text()
		}
		close(h.lines)
	}()
	t.Cleanup(func() {
		syscall.Kill(-h.cmd.Process.Pid, syscall.SIGKILL)
		h.cmd.Wait()
		if t.Failed() {
			t.Logf("%q wrote on stderr:\n%s", argv, errOut.String())
		}
	})
	return h
}

// await waits until the holder has printed want (it prints it once it holds a lock), in any
// order with its other lines.
func (h *lkHolder) await(t *testing.T, want string) {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for !h.seen[want] {
		select {
		case l, ok := <-h.lines:
			if !ok {
				t.Fatalf("%q ended before it printed %q", h.cmd.Args, want)
			}
			h.seen[l] = true
		case <-deadline:
			t.Fatalf("%q did not print %q in 20s", h.cmd.Args, want)
		}
	}
}

// TestIntegrationLocksConfinedUserCannotStallExec: an unprivileged program inside `wgns exec`
// locks /etc and /run (the shared link farms, as it sees them) and holds the locks; after the
// host's /etc changed, the next `wgns exec` must bring the farms up to date, and does so at
// once. The lock wgns takes is a file the user cannot open.
func TestIntegrationLocksConfinedUserCannotStallExec(t *testing.T) {
	const name = "lkx"
	p := newPeer(t, name)
	tunnelUp(t, p, name)
	addFixedUsers(t)

	h := lkStart(t, nil, wgnsBin, "exec", "--user", "wgnsexec", name, "--", "sh", "-c",
		`flock -x /etc -c 'echo etc; exec sleep 600' &
		 flock -x /run -c 'echo run; exec sleep 600' &
		 for l in /run/.wgns-host/wgns/links/lock /run/.wgns-host/wgns/netns.lock; do
			flock -n $l true 2>/dev/null && echo "$l: locked" || echo "$l: refused"
		 done
		 wait`)
	for _, want := range []string{"etc", "run", "/run/.wgns-host/wgns/links/lock: refused", "/run/.wgns-host/wgns/netns.lock: refused"} {
		h.await(t, want)
	}

	// The host adds an entry to /etc: the next exec brings the farm up to date, under its lock.
	keepFile(t, "/etc/wgns-locktest")
	replaceFile(t, "/etc/wgns-locktest", "after\n")
	o, e, code, took := runWithin(t, 30*time.Second, wgnsBin, "exec", name, "--", "cat", "/etc/wgns-locktest")
	if code != 0 || o != "after\n" {
		t.Fatalf("wgns exec while a confined user holds locks on /etc and /run: exit %d after %v (-1: still waiting at the limit)\nstdout: %q\nstderr: %s",
			code, took.Round(time.Millisecond), o, e)
	}
	if took > 10*time.Second {
		t.Errorf("wgns exec took %v while a confined user held locks on /etc and /run", took)
	}
}

// TestIntegrationLocksLinkLockHolderNamed: while another process (here root's flock(1), as a
// wgns stuck in the middle of an update would be) holds the lock of the link farms and the
// farms need an update, `wgns exec` waits 10 seconds at most, then fails naming the holder; once
// it lets go, exec works.
func TestIntegrationLocksLinkLockHolderNamed(t *testing.T) {
	const name = "lkl"
	const lock = "/run/wgns/links/lock"
	p := newPeer(t, name)
	tunnelUp(t, p, name)
	if err := os.MkdirAll("/run/wgns/links", 0o700); err != nil {
		t.Fatal(err)
	}
	h := lkStart(t, nil, "flock", "-x", lock, "-c", "echo locked; exec sleep 600")
	h.await(t, "locked")

	keepFile(t, "/etc/wgns-locktest")
	replaceFile(t, "/etc/wgns-locktest", "after\n")
	o, e, code, took := runWithin(t, 60*time.Second, wgnsBin, "exec", name, "--", "cat", "/etc/wgns-locktest")
	want := "locking " + lock + ": lock not free in time: held by PID " + strconv.Itoa(h.cmd.Process.Pid) + " (flock, uid 0) for more than 10s"
	if code != 125 || o != "" || !strings.Contains(e, want) {
		t.Errorf("wgns exec while root's flock(1) holds %s: exit %d after %v, stdout %q, stderr %q\nwant exit 125 and %q",
			lock, code, took.Round(time.Millisecond), o, e, want)
	}
	if took < 10*time.Second || took > 40*time.Second {
		t.Errorf("wgns exec gave up after %v, want about 10s", took.Round(time.Millisecond))
	}

	syscall.Kill(-h.cmd.Process.Pid, syscall.SIGKILL)
	h.cmd.Wait()
	if o, e, code, _ := runWithin(t, 30*time.Second, wgnsBin, "exec", name, "--", "cat", "/etc/wgns-locktest"); code != 0 || o != "after\n" {
		t.Errorf("wgns exec once the lock is free: exit %d, stdout %q, stderr %q", code, o, e)
	}
}

// TestIntegrationLocksUserCannotStallUp: an unprivileged user holds a lock on /run/netns (the
// lock `ip netns add` takes, iproute2 6.1) for as long as they like. `wgns up` is not stalled,
// whether /run/netns is a mount point already (it needs no lock then) or not yet (it waits two
// seconds at most for iproute2's lock, then goes on; a lock file only root can open keeps two
// wgns from binding /run/netns twice). The user cannot open that lock file.
func TestIntegrationLocksUserCannotStallUp(t *testing.T) {
	addFixedUsers(t)
	if err := os.MkdirAll("/run/wgns", 0o700); err != nil {
		t.Fatal(err)
	}
	refused := exec.Command("flock", "-n", "/run/wgns/netns.lock", "true")
	refused.SysProcAttr = &syscall.SysProcAttr{Credential: lkUser}
	if out, err := refused.CombinedOutput(); err == nil || !strings.Contains(string(out), "Permission denied") {
		t.Errorf("the user's flock of /run/wgns/netns.lock: %v %s, want permission denied", err, out)
	}
	// userLock has the user take the lock and hold it until the test ends. (Only once the peer is
	// made: `ip netns add` itself would wait for it for as long as the user holds it.)
	userLock := func(t *testing.T) {
		if err := os.MkdirAll("/run/netns", 0o755); err != nil {
			t.Fatal(err)
		}
		h := lkStart(t, lkUser, "flock", "-s", "/run/netns", "-c", "echo locked; exec sleep 600")
		h.await(t, "locked")
	}

	t.Run("/run/netns a mount point", func(t *testing.T) {
		const name = "lku"
		p := newPeer(t, name)
		// Registered before the user's lock, so that it runs after the lock is let go.
		t.Cleanup(func() { wgnsRun(t, "down", "--force", name) })
		userLock(t)
		o, e, code, took := runWithin(t, 60*time.Second, wgnsBin, "up", "--userspace", "--name", name, p.ConfigPath)
		if code != 0 {
			t.Fatalf("wgns up while a user holds a lock on /run/netns: exit %d after %v (-1: still waiting at the limit)\n%s%s",
				code, took.Round(time.Millisecond), o, e)
		}
		mustWgns(t, "exec", name, "--", "ping", "-c1", "-W5", peerTunnel4)
	})

	t.Run("/run/netns not a mount point yet", func(t *testing.T) {
		const name = "lkn"
		p := newPeer(t, name)
		userLock(t)
		// A mount namespace of its own in which /run/netns is a plain directory again, as before
		// the first namespace of a boot; up, exec and down all run in it.
		script := `set -e
umount -l /run/netns 2>/dev/null || true
echo "before: $(grep -c ' /run/netns ' /proc/self/mountinfo || true)"
"$0" up --userspace --name "$1" "$2" >/dev/null
"$0" exec "$1" -- ping -c1 -W5 ` + peerTunnel4 + ` >/dev/null
echo "after: $(grep ' /run/netns ' /proc/self/mountinfo | grep -c shared:)"
"$0" down "$1" >/dev/null
`
		o, e, code, took := runWithin(t, 60*time.Second, "unshare", "--mount", "--propagation", "private",
			"sh", "-c", script, wgnsBin, name, p.ConfigPath)
		if code != 0 || o != "before: 0\nafter: 1\n" {
			t.Fatalf("up, exec and down with /run/netns not a mount point, while a user holds its lock: exit %d after %v (-1: still waiting at the limit)\nstdout: %q\nstderr: %s",
				code, took.Round(time.Millisecond), o, e)
		}
		// up waited for iproute2's lock (as `ip netns add` would have), but not for long.
		if took < 2*time.Second || took > 30*time.Second {
			t.Errorf("up, exec and down took %v, want 2s (the wait for iproute2's lock) and a little more", took)
		}
	})
}
