package integration

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wgns/wgns/wgns"
)

// asNobody runs a command as the unprivileged user nobody, as a hostile local user would.
func asNobody(name string, args ...string) *exec.Cmd {
	return exec.Command("setpriv", append([]string{"--reuid=65534", "--regid=65534", "--clear-groups", "--", name}, args...)...)
}

// abstractSockets lists the abstract unix socket names (without the @) that contain part.
func abstractSockets(t *testing.T, part string) []string {
	t.Helper()
	f, err := os.Open("/proc/net/unix")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if n := len(fields); n >= 8 && strings.HasPrefix(fields[n-1], "@") && strings.Contains(fields[n-1], part) {
			out = append(out, strings.TrimPrefix(fields[n-1], "@"))
		}
	}
	return out
}

// The files of the pause hook of a test build (internal/testhook): a process paused at
// the point WGNS_TEST_PAUSE_AT names creates pauseFile, and goes on once releaseFile exists.
const (
	pauseFile   = "/run/wgns-test-paused"
	releaseFile = "/run/wgns-test-release"
)

// clearPause removes the pause hook's files, now and at the end of the test.
func clearPause(t *testing.T) {
	t.Helper()
	clear := func() { os.Remove(pauseFile); os.Remove(releaseFile) }
	clear()
	t.Cleanup(clear)
}

// `wgns up` learns that its supervisor is ready over a pipe of its own: no other local user can
// send it READY (it used to listen on the abstract socket @wgns-notify-PID-NAME, where anyone
// could, and `up` then said "is up" for a tunnel still being made) or take the name first (which
// made `up` fail).
func TestIntegrationReadinessCannotBeForged(t *testing.T) {
	p := newPeer(t, "rdy")
	clearPause(t)

	// Forged: while the supervisor is paused before its DNS step, nobody sends READY=1 to every
	// abstract socket of wgns it can find.
	up := exec.Command(wgnsBin, "up", p.ConfigPath)
	up.Env = append(os.Environ(), "WGNS_TEST_PAUSE_AT=dns")
	var out strings.Builder
	up.Stdout, up.Stderr = &out, &out
	if err := up.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- up.Wait() }()
	waitFor(t, 30*time.Second, "the supervisor to pause before its DNS step", func() bool {
		_, err := os.Stat(pauseFile)
		return err == nil
	})
	names := abstractSockets(t, "wgns")
	for _, n := range names {
		if o, err := asNobody("socat", "-u", "STDIN", "ABSTRACT-SENDTO:"+n).CombinedOutput(); err != nil {
			t.Logf("sending READY=1 to @%s as nobody: %v %s", n, err, o)
		}
	}
	select {
	case err := <-exited:
		t.Fatalf("up returned while its tunnel was still being made (it found %d wgns sockets to forge READY on: %q): %v\n%s", len(names), names, err, out.String())
	case <-time.After(2 * time.Second): // up must still be waiting: it returns only on its supervisor's word
	}
	if err := os.WriteFile(releaseFile, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := <-exited; err != nil {
		t.Fatalf("up: %v\n%s", err, out.String())
	}
	if _, err := os.Stat(wgns.ReadyPath("rdy")); err != nil {
		t.Errorf("up returned, but the tunnel is not ready: %v", err)
	}
	mustWgns(t, "down", "rdy")
}

// See TestIntegrationReadinessCannotBeForged.
func TestIntegrationReadinessCannotBeSquatted(t *testing.T) {
	p := newPeer(t, "rdy")
	// Squatted: nobody binds the names up would use for the next PIDs (made predictable with
	// ns_last_pid in the test world's own pid namespace) before up runs.
	base := 30000
	var squatters []*exec.Cmd
	for pid := base + 1; pid <= base+5; pid++ {
		s := asNobody("socat", "-u", "ABSTRACT-RECV:wgns-notify-"+strconv.Itoa(pid)+"-rdy", "/dev/null")
		if err := s.Start(); err != nil {
			t.Fatal(err)
		}
		squatters = append(squatters, s)
	}
	t.Cleanup(func() {
		for _, s := range squatters {
			s.Process.Kill()
			s.Wait()
		}
	})
	waitFor(t, 10*time.Second, "nobody's sockets", func() bool { return len(abstractSockets(t, "wgns-notify-")) == 5 })
	if err := os.WriteFile("/proc/sys/kernel/ns_last_pid", []byte(strconv.Itoa(base)), 0o644); err != nil {
		t.Fatal(err)
	}
	o, e, code := wgnsRun(t, "up", p.ConfigPath)
	if code != 0 {
		t.Fatalf("up with the readiness names taken: exit %d\n%s%s", code, o, e)
	}
	mustWgns(t, "down", "rdy")
}

// The supervisor that `wgns up` leaves behind holds nothing of its caller: a lock a script held
// around `wgns up` is free once the script ends, not for the tunnel's life.
func TestIntegrationSupervisorHoldsNothingOfItsCaller(t *testing.T) {
	p := newPeer(t, "fds")
	lockFile := filepath.Join(t.TempDir(), "script.lock")
	// flock(1) keeps its lock on a descriptor that the command it runs inherits.
	o, err := exec.Command("flock", lockFile, wgnsBin, "up", p.ConfigPath).CombinedOutput()
	if err != nil {
		t.Fatalf("flock ... wgns up: %v\n%s", err, o)
	}
	t.Cleanup(func() { wgnsRun(t, "down", "--force", "fds") })
	if o, err := exec.Command("flock", "--nonblock", lockFile, "true").CombinedOutput(); err != nil {
		t.Errorf("the script's lock is still held after it ended (by the tunnel's supervisor): %v %s", err, o)
	}
	st, err := wgns.ReadState("fds")
	if err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", st.PID))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		target, _ := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", st.PID, e.Name()))
		if target == lockFile {
			t.Errorf("the supervisor holds the caller's %s as descriptor %s", lockFile, e.Name())
		}
	}
}

// A tunnel recovers from the config as it was read at up: an appended "Firewall = off" does not
// take the firewall away when the supervisor remakes a deleted interface.
func TestIntegrationRecoveryUsesTheConfigReadAtUp(t *testing.T) {
	p := newPeer(t, "cfgup")
	mustWgns(t, "up", "--userspace", p.ConfigPath)
	t.Cleanup(func() { wgnsRun(t, "down", "--force", "cfgup") })
	f, err := os.OpenFile(p.ConfigPath, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(f, "\n[Namespace]\nFirewall = off\n")
	f.Close()
	before := mustRun(t, "ip", "-n", "cfgup", "-o", "link", "show", "cfgup")
	mustRun(t, "ip", "-n", "cfgup", "link", "del", "cfgup")
	waitFor(t, 30*time.Second, "the supervisor to remake the interface", func() bool {
		after, err := run("ip", "-n", "cfgup", "-o", "link", "show", "cfgup")
		return err == nil && after != before && strings.Contains(after, "UP")
	})
	waitFor(t, 30*time.Second, "the tunnel to be ready again", func() bool {
		_, err := os.Stat(wgns.ReadyPath("cfgup"))
		return err == nil
	})
	if o, err := run("ip", "netns", "exec", "cfgup", "nft", "list", "table", "inet", "wgns"); err != nil {
		t.Errorf("the firewall is gone after recovery (the changed file was used): %v\n%s", err, o)
	}
}

// down --force signals the processes it found inside through pidfds held since it found them: a
// process that exits meanwhile, and whose PID a new process outside gets, is never hit.
func TestIntegrationDownForceNeverSignalsAReusedPID(t *testing.T) {
	p := newPeer(t, "reuse")
	clearPause(t)
	mustWgns(t, "up", p.ConfigPath)
	t.Cleanup(func() { wgnsRun(t, "down", "--force", "reuse") })
	victim := exec.Command("ip", "netns", "exec", "reuse", "sleep", "600")
	if err := victim.Start(); err != nil {
		t.Fatal(err)
	}
	victimDone := make(chan struct{})
	go func() { victim.Wait(); close(victimDone) }()
	pid := victim.Process.Pid
	waitFor(t, 10*time.Second, "the victim inside", func() bool {
		o, _ := run("ip", "netns", "pids", "reuse")
		return strings.Contains(o, strconv.Itoa(pid))
	})

	down := exec.Command(wgnsBin, "down", "--force", "reuse")
	down.Env = append(os.Environ(), "WGNS_TEST_PAUSE_AT=down-signal")
	var out strings.Builder
	down.Stdout, down.Stderr = &out, &out
	if err := down.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "down to have found the processes inside", func() bool {
		_, err := os.Stat(pauseFile)
		return err == nil
	})
	// The victim exits; an innocent process outside gets its PID.
	victim.Process.Kill()
	<-victimDone
	if err := os.WriteFile("/proc/sys/kernel/ns_last_pid", []byte(strconv.Itoa(pid-1)), 0o644); err != nil {
		t.Fatal(err)
	}
	innocent := exec.Command("sleep", "600")
	if err := innocent.Start(); err != nil {
		t.Fatal(err)
	}
	defer innocent.Process.Kill()
	if innocent.Process.Pid != pid {
		t.Skipf("could not give the innocent process the victim's PID %d (it got %d)", pid, innocent.Process.Pid)
	}
	innocentDone := make(chan error, 1)
	go func() { innocentDone <- innocent.Wait() }()
	if err := os.WriteFile(releaseFile, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := down.Wait(); err != nil {
		t.Fatalf("down --force: %v\n%s", err, out.String())
	}
	select {
	case err := <-innocentDone:
		t.Errorf("down --force hit process %d outside the tunnel, which reused a PID it had seen inside: %v", pid, err)
	default:
		if err := innocent.Process.Signal(syscall.Signal(0)); err != nil {
			t.Errorf("the innocent process is gone: %v", err)
		}
	}
}

// The shipped binary has no test hooks: WGNS_TEST_CRASH_AT, which kills a test build at the
// named step, does nothing to it.
func TestIntegrationProductionBinaryIgnoresTestHooks(t *testing.T) {
	prod := os.Getenv("WGNS_PROD_BIN")
	if prod == "" {
		t.Skip("WGNS_PROD_BIN (the production build) is not set; make integration sets it")
	}
	p := newPeer(t, "prod")
	up := exec.Command(prod, "up", p.ConfigPath)
	up.Env = append(os.Environ(), "WGNS_TEST_CRASH_AT=namespace", "WGNS_TEST_PAUSE_AT=firewall")
	if o, err := up.CombinedOutput(); err != nil {
		t.Fatalf("the production binary obeyed a test hook: %v\n%s", err, o)
	}
	if o, err := exec.Command(prod, "down", "prod").CombinedOutput(); err != nil {
		t.Fatalf("down: %v\n%s", err, o)
	}
}
