package integration

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/wgns/wgns/internal/syncbuf"
	"golang.org/x/sys/unix"
)

// svcProgram is a command a user started through the service that stays: the client, what it
// printed, and the PIDs of the command and of a daemon it left (setsid, its parent gone).
type svcProgram struct {
	cmd     *exec.Cmd
	out     *syncbuf.Buffer
	main    int
	daemon  int
	done    chan struct{}
	stopped sync.Once
}

// svcLongRunning starts `wgns exec name -- ...` as u: a command that starts a daemon of its own
// and then waits, both for 300 s; it returns once both run.
func svcLongRunning(t *testing.T, u worldUser, front, name string) *svcProgram {
	t.Helper()
	dir := worldDir(t)
	script := `(setsid sleep 301 & echo $! > ` + dir + `/daemon); echo $$ > ` + dir + `/main; exec sleep 300`
	p := &svcProgram{out: &syncbuf.Buffer{}, done: make(chan struct{})}
	p.cmd = userCmd(t, u, front, "exec", name, "--", "sh", "-c", script)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	p.cmd.WaitDelay = time.Second // the command holds the pipe after the client ends
	p.cmd.SysProcAttr.Setsid = true
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() { p.cmd.Process.Kill(); <-p.done })
	read := func(f string) int {
		b, _ := os.ReadFile(filepath.Join(dir, f))
		n, _ := strconv.Atoi(strings.TrimSpace(string(b)))
		return n
	}
	waitFor(t, 20*time.Second, u.Name+"'s command and its daemon to start", func() bool {
		p.main, p.daemon = read("main"), read("daemon")
		return p.main > 0 && p.daemon > 0
	})
	return p
}

// running reports whether the command and its daemon both run.
func (p *svcProgram) running() bool {
	return unix.Kill(p.main, 0) == nil && unix.Kill(p.daemon, 0) == nil
}

// ended waits for the client to end, and returns its status and what it printed.
func (p *svcProgram) ended(t *testing.T) (int, string) {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		t.Fatalf("the client did not end within 30 s; it printed %q", p.out)
	}
	return shellStatus(p.cmd.ProcessState), p.out.String()
}

// TestIntegrationServiceRevokedGrantEndsPrograms: the grant is the config as up or repair read
// it. A user removed from Users keeps running until the admin's repair; then what the user
// started through the service ends, the daemon it left included, and the user's wgns exec says
// why (status 143: SIGTERM). A user removed from a group that Users names loses the grant at
// once (the user database changed). Other users' programs go on.
func TestIntegrationServiceRevokedGrantEndsPrograms(t *testing.T) {
	alice := addUser(t, "wgnsalice")
	carol := addUser(t, "wgnscarol")
	dave := addUser(t, "wgnsdave")
	mustRun(t, "groupadd", "--system", "wgnsdesk")
	t.Cleanup(func() { run("groupdel", "wgnsdesk") })
	mustRun(t, "usermod", "-aG", "wgnsdesk", "wgnscarol")
	mustRun(t, "usermod", "-aG", "wgnsdesk", "wgnsdave")
	st := newSvcTunnel(t, "svcrev", "[Namespace]\nUsers = wgnsalice, @wgnsdesk\n")
	svc := startService(t)
	front := copyWgns(t)

	a := svcLongRunning(t, alice, front, st.name)
	c := svcLongRunning(t, carol, front, st.name)
	d := svcLongRunning(t, dave, front, st.name)

	// The admin takes alice out of the config: nothing changes until repair reads it.
	st.p.writeConfig(t, st.p.ConfigPath, "[Namespace]\nUsers = @wgnsdesk\n")
	if _, e, code := runCmd(t, userCmd(t, alice, front, "exec", st.name, "--", "true")); code != 0 || !a.running() {
		t.Fatalf("before repair, alice's grant is the one up read: exit %d, %s; running %v", code, e, a.running())
	}
	out := mustWgns(t, "repair", st.name)
	if !strings.Contains(out, "let @wgnsdesk run programs in svcrev without sudo (was wgnsalice, @wgnsdesk)") {
		t.Errorf("repair said:\n%s", out)
	}
	code, said := a.ended(t)
	want := `user "wgnsalice" is not granted to run programs in tunnel "svcrev"`
	if code != 143 || !strings.Contains(said, "wgns exec: ended by the wgns service, with everything it started: "+want) {
		t.Errorf("alice's wgns exec ended with %d and said %q; want 143 and %q", code, said, want)
	}
	svcWaitGone(t, "alice's command and its daemon", a.main, a.daemon)
	if _, e, code := runCmd(t, userCmd(t, alice, front, "exec", st.name, "--", "true")); code != 125 || !strings.Contains(e, want) {
		t.Errorf("alice after the repair: exit %d, %s", code, e)
	}

	// carol leaves the group: her grant goes with the change of /etc/group.
	mustRun(t, "gpasswd", "-d", "wgnscarol", "wgnsdesk")
	code, said = c.ended(t)
	if code != 143 || !strings.Contains(said, `user "wgnscarol" is not granted`) {
		t.Errorf("carol's wgns exec ended with %d and said %q", code, said)
	}
	svcWaitGone(t, "carol's command and its daemon", c.main, c.daemon)

	// dave, still in the group, runs on.
	if !d.running() {
		t.Errorf("dave's command or daemon was ended")
	}
	select {
	case <-d.done:
		t.Errorf("dave's wgns exec ended: %s", d.out)
	default:
	}

	// The service stops (systemctl stop wgns): what it started ends with it, and says so.
	svc.cmd.Process.Signal(syscall.SIGTERM)
	code, said = d.ended(t)
	if code != 143 || !strings.Contains(said, "wgns exec: ended by the wgns service, with everything it started: the service stopped") {
		t.Errorf("dave's wgns exec ended with %d and said %q", code, said)
	}
	svcWaitGone(t, "dave's command and its daemon", d.main, d.daemon)
}

// TestIntegrationServiceRacingDown: while the admin takes a tunnel down (down --force), a
// granted user starts commands through the service as fast as it can. When down has returned,
// nothing the user started runs, anywhere (not even in the namespace that is gone, held by a
// command that started late), the service has no session left, and later requests are told
// the tunnel is not up. Brought up again, the tunnel serves the user again.
func TestIntegrationServiceRacingDown(t *testing.T) {
	alice := addUser(t, "wgnsalice")
	st := newSvcTunnel(t, "svcrace", "[Namespace]\nUsers = wgnsalice\n")
	svc := startService(t)
	front := copyWgns(t)

	var wg sync.WaitGroup
	stop := make(chan struct{})
	var mu sync.Mutex
	outcomes := map[string]int{}
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				cmd := userCmd(t, alice, front, "exec", st.name, "--", "sh", "-c", "setsid sleep 120 & exec sleep 120")
				var e syncbuf.Buffer
				cmd.Stderr = &e
				cmd.WaitDelay = time.Second
				cmd.SysProcAttr.Setsid = true
				cmd.Start()
				done := make(chan struct{})
				go func() { cmd.Wait(); close(done) }()
				select {
				case <-done:
				case <-time.After(300 * time.Millisecond):
					// Started and running: leave it to the race.
					go func() { <-done }()
					mu.Lock()
					outcomes["running"]++
					mu.Unlock()
					continue
				}
				what, _, _ := strings.Cut(e.String(), "\n")
				mu.Lock()
				outcomes[what]++
				mu.Unlock()
			}
		}()
	}
	waitFor(t, 30*time.Second, "commands to run", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return outcomes["running"] >= 4
	})
	mustWgns(t, "down", "--force", st.name)
	// The clients go on asking after down, until they have been refused a few times.
	waitFor(t, 30*time.Second, "refusals after down", func() bool {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for what, c := range outcomes {
			if strings.HasSuffix(what, "is not up") {
				n += c
			}
		}
		return n >= 4
	})
	close(stop)
	wg.Wait()
	t.Logf("outcomes: %v", outcomes)

	waitFor(t, 30*time.Second, "everything alice started to end", func() bool {
		return len(procsOf(alice.UID)) == 0 && len(sessionProcs()) == 0
	})
	if _, e, code := runCmd(t, userCmd(t, alice, front, "exec", st.name, "--", "true")); code != 125 || !strings.Contains(e, `tunnel "svcrace" is not up`) {
		t.Errorf("after down: exit %d, %s", code, e)
	}
	assertNoTrace(t, st.name)

	mustWgns(t, "up", "--userspace", "--name", st.name, st.p.ConfigPath)
	if o, e, code := runCmd(t, userCmd(t, alice, front, "exec", st.name, "--", "curl", "-sS", "--max-time", "20", "http://"+dnsName+"/")); code != 0 || o != webPage {
		t.Errorf("up again: exit %d, %q, %s", code, o, e)
	}
	if strings.Contains(svc.log.String(), "panic") {
		t.Errorf("the service panicked:\n%s", svc.log)
	}
}

// procsOf returns the PIDs of uid's processes.
func procsOf(uid int) []int {
	return pidsWhere(func(pid int) bool {
		var st syscall.Stat_t
		return syscall.Stat("/proc/"+strconv.Itoa(pid), &st) == nil && int(st.Uid) == uid && processLives(pid)
	})
}
