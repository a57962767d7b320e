package integration

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wgns/wgns/internal/syncbuf"
	"golang.org/x/sys/unix"
)

// The tests of `wgns exec` run by root as another user, on a terminal: the program must not
// reach root's terminal, and must still behave like a program run on it.

// termPair is a pseudo-terminal made for a test: the test plays the person at the terminal
// through master (it types into it and reads the screen from it); slave is the terminal the
// programs under test are given.
type termPair struct {
	master, slave *os.File
	screen        syncbuf.Buffer
}

// newTerm opens a pseudo-terminal with x/sys only (not the product's package pty), starts
// collecting what it shows, and closes it when the test ends.
func newTerm(t *testing.T) *termPair {
	t.Helper()
	mfd, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.IoctlSetPointerInt(mfd, unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetUint32(mfd, unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	slave, err := os.OpenFile("/dev/pts/"+strconv.Itoa(int(n)), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	tp := &termPair{master: os.NewFile(uintptr(mfd), "ptmx"), slave: slave}
	done := make(chan struct{})
	go func() {
		defer close(done)
		b := make([]byte, 4096)
		for {
			n, err := tp.master.Read(b)
			tp.screen.Write(b[:n])
			if err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() {
		tp.slave.Close()
		tp.master.Close()
		<-done
	})
	return tp
}

// shown returns what the terminal has shown so far.
func (tp *termPair) shown() string {
	return tp.screen.String()
}

// expect waits until the screen matches re, for at most 20 s, and returns the match.
func (tp *termPair) expect(t *testing.T, re string) []string {
	t.Helper()
	r := regexp.MustCompile(re)
	var m []string
	waitFor(t, 20*time.Second, fmt.Sprintf("%q on the terminal", re), func() bool {
		m = r.FindStringSubmatch(tp.shown())
		return m != nil
	})
	return m
}

// typeIn types s at the terminal.
func (tp *termPair) typeIn(t *testing.T, s string) {
	t.Helper()
	if _, err := tp.master.WriteString(s); err != nil {
		t.Fatal(err)
	}
}

// legacyTIOCSTI makes sure the kernel lets unprivileged programs push input into their
// terminal (dev.tty.legacy_tiocsti=1, as on Debian 12's kernel), the condition of the attack.
// The sysctl is the machine's own, not the world's: when the test has to set it, it puts the old
// value back when it ends, and says so.
func legacyTIOCSTI(t *testing.T) {
	t.Helper()
	const path = "/proc/sys/dev/tty/legacy_tiocsti"
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return // a kernel before 6.2: TIOCSTI is always allowed
	}
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(string(b)) == "1" {
		return
	}
	if err := os.WriteFile(path, []byte("1\n"), 0o644); err != nil {
		t.Skipf("cannot set %s (the attack needs it): %v", path, err)
	}
	t.Logf("set the machine's dev.tty.legacy_tiocsti to 1 for this test; it is put back to %s at the end", strings.TrimSpace(string(b)))
	t.Cleanup(func() { os.WriteFile(path, b, 0o644) })
}

// TestIntegrationExecAsOtherUserCannotInjectIntoTerminal: root, at an interactive shell, runs a
// program as another user with `wgns exec --user`; the program pushes a command into its
// terminal with TIOCSTI. The pushes reach only the program's own terminal: root's shell, which
// reads its terminal again after the program ends, never runs the command.
func TestIntegrationExecAsOtherUserCannotInjectIntoTerminal(t *testing.T) {
	const name = "xtty"
	p := newPeer(t, name)
	tunnelUp(t, p, name)
	addUser(t, "wgnsalice")
	legacyTIOCSTI(t)
	tool := worldTool(t, "tiocsti")
	pwned := worldDir(t) + "/pwned"

	tp := newTerm(t)
	shell := exec.Command("bash", "--norc", "--noprofile", "-i")
	shell.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "TERM=dumb", "PS1=root$ ", "HOME=/root"}
	shell.Stdin, shell.Stdout, shell.Stderr = tp.slave, tp.slave, tp.slave
	shell.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	startUntilEnd(t, shell)
	tp.expect(t, `root\$ `)

	injected := `touch ` + pwned + `\n`
	tp.typeIn(t, fmt.Sprintf("%s exec --user wgnsalice %s -- %s '%s'; echo exit-$?-done\n", wgnsBin, name, tool, injected))
	m := tp.expect(t, `exit-(\d+)-done`)
	// Whatever the shell reads next from its terminal comes before this line; once its output
	// shows, anything pushed into the terminal has run.
	tp.typeIn(t, "echo mark-$((6*7))\n")
	tp.expect(t, `mark-42`)

	if _, err := os.Stat(pwned); err == nil {
		t.Errorf("root's shell ran a command that the program pushed into its terminal (%s exists)\n%s", pwned, tp.shown())
	}
	if m[1] != "0" {
		t.Errorf("wgns exec ended with %s\n%s", m[1], tp.shown())
	}
	// The pushes did happen, into the program's own terminal: the test is not vacuous.
	want := len(strings.ReplaceAll(injected, `\n`, "\n"))
	if !strings.Contains(tp.shown(), fmt.Sprintf("pushed %d of %d bytes", want, want)) {
		t.Errorf("the program could not push into its own terminal (so this test shows nothing):\n%s", tp.shown())
	}
}

// TestIntegrationExecAsOtherUserOnItsOwnTerminal: a program that root runs as another user from
// a terminal gets a terminal of its own (not root's; owned by that user) with root's window
// size; it shows its output, reads what is typed, follows window size changes, is interrupted
// by Ctrl-C like a local program (wgns ends by SIGINT too: status 130), its exit status comes
// back, and root's terminal settings are as they were afterwards.
func TestIntegrationExecAsOtherUserOnItsOwnTerminal(t *testing.T) {
	const name = "xown"
	p := newPeer(t, name)
	tunnelUp(t, p, name)
	alice := addUser(t, "wgnsalice")

	run := func(tp *termPair, script string) *exec.Cmd {
		cmd := exec.Command(wgnsBin, "exec", "--user", "wgnsalice", name, "--", "sh", "-c", script)
		cmd.Env = envWithoutSudo("TERM=dumb")
		cmd.Stdin, cmd.Stdout, cmd.Stderr = tp.slave, tp.slave, tp.slave
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd
	}
	assertOwnTerminal(t, alice.UID, "program", "root's", func() *termPair { return newTerm(t) }, run)
}

// assertOwnTerminal shows that a program run as the user of uid from a terminal (newTP makes one;
// whose names its owner in messages, "root's") behaves like a local program: run starts a
// script (the what, "program", in messages) as that user with the terminal as its standard
// files and controlling terminal. The program gets a terminal of its own, owned by uid, with
// the caller's window size, following its changes; it reads what is typed; Ctrl-C interrupts
// it and ends wgns by SIGINT too (status 130); its exit status comes back; and the caller's
// terminal settings are as they were.
func assertOwnTerminal(t *testing.T, uid int, what, whose string, newTP func() *termPair, run func(tp *termPair, script string) *exec.Cmd) {
	t.Helper()
	tp := newTP()
	if err := unix.IoctlSetWinsize(int(tp.slave.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: 33, Col: 101}); err != nil {
		t.Fatal(err)
	}
	before, err := unix.IoctlGetTermios(int(tp.slave.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	cmd := run(tp, `echo "tty=$(tty) owner=$(stat -c %u "$(tty)")"; stty size; read line; echo "got:$line"; trap 'stty size' WINCH; echo READY; while :; do sleep 0.05; done`)
	m := tp.expect(t, `tty=(\S+) owner=(\d+)`)
	if m[1] == tp.slave.Name() || !strings.HasPrefix(m[1], "/dev/pts/") {
		t.Errorf("the %s's terminal is %s; %s is %s: want one of its own", what, m[1], whose, tp.slave.Name())
	}
	if m[2] != strconv.Itoa(uid) {
		t.Errorf("the %s's terminal belongs to uid %s, want %d", what, m[2], uid)
	}
	tp.expect(t, `33 101`)
	tp.typeIn(t, "hello\r")
	tp.expect(t, `got:hello`)
	tp.expect(t, `READY`)
	if err := unix.IoctlSetWinsize(int(tp.slave.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: 40, Col: 120}); err != nil {
		t.Fatal(err)
	}
	// The kernel sends SIGWINCH to the terminal's foreground group, wgns, which passes it on.
	tp.expect(t, `40 120`)
	tp.typeIn(t, "\x03") // Ctrl-C
	if code := waitStatus(t, cmd); code != 130 {
		t.Errorf("after Ctrl-C: status %d, want 130\n%s", code, tp.shown())
	}
	if ws := cmd.ProcessState.Sys().(syscall.WaitStatus); !ws.Signaled() || ws.Signal() != unix.SIGINT {
		t.Errorf("after Ctrl-C wgns ended with %v; want it ended by SIGINT, as the %s was", cmd.ProcessState, what)
	}
	after, err := unix.IoctlGetTermios(int(tp.slave.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(before, after) {
		t.Errorf("%s terminal settings changed:\nbefore %+v\nafter  %+v", whose, before, after)
	}

	for _, tc := range []struct {
		script string
		want   int
	}{{"exit 7", 7}, {"exit 0", 0}, {"kill -TERM $$", 143}} {
		tp := newTP()
		if code := waitStatus(t, run(tp, tc.script)); code != tc.want {
			t.Errorf("sh -c %q: status %d, want %d\n%s", tc.script, code, tc.want, tp.shown())
		}
	}
}

// waitStatus waits for cmd and returns its status as a shell reports it.
func waitStatus(t *testing.T, cmd *exec.Cmd) int {
	t.Helper()
	err := cmd.Wait()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatal(err)
	}
	return shellStatus(cmd.ProcessState)
}

// TestIntegrationExecAsOtherUserWithoutTerminalHasNone: when root runs a program as another user
// without a terminal on its standard files (a script's redirections, in a session that has a
// terminal), the program leads a session of its own: it cannot open root's terminal through
// /dev/tty. Signals sent to wgns reach it, and its status comes back.
func TestIntegrationExecAsOtherUserWithoutTerminalHasNone(t *testing.T) {
	const name = "xnotty"
	p := newPeer(t, name)
	tunnelUp(t, p, name)
	addUser(t, "wgnsalice")
	dir := worldDir(t)

	// A shell that leads a session with the terminal runs wgns with its files redirected.
	tp := newTerm(t)
	script := `echo "pid=$$ sid=$(cut -d' ' -f6 /proc/$$/stat)"; (exec 3</dev/tty) 2>/dev/null && echo tty-open; exit 4`
	shell := exec.Command("sh", "-c", `"$@" </dev/null >"$OUT" 2>&1; echo "status=$?" >>"$OUT"`, "sh",
		wgnsBin, "exec", "--user", "wgnsalice", name, "--", "sh", "-c", script)
	shell.Env = envWithoutSudo("OUT=" + dir + "/out")
	shell.Stdin, shell.Stdout, shell.Stderr = tp.slave, tp.slave, tp.slave
	shell.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := shell.Run(); err != nil {
		t.Fatalf("%v\n%s", err, tp.shown())
	}
	out := readFile(t, dir+"/out")
	var pid, sid, status int
	if _, err := fmt.Sscanf(out, "pid=%d sid=%d\nstatus=%d", &pid, &sid, &status); err != nil || pid != sid || status != 4 {
		t.Errorf("the program printed %q: want pid = sid (a session of its own), no tty-open, status 4", out)
	}
	if strings.Contains(out, "tty-open") {
		t.Errorf("the program opened root's terminal: %q", out)
	}

	// Signals to wgns reach the program (here without any terminal at all).
	for _, tc := range []struct {
		sig  syscall.Signal
		want int
	}{{unix.SIGTERM, 143}, {unix.SIGINT, 130}, {unix.SIGHUP, 129}} {
		cmd := exec.Command(wgnsBin, "exec", "--user", "wgnsalice", name, "--", "sh", "-c", "echo READY; exec sleep 60")
		cmd.Env = envWithoutSudo()
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		b := make([]byte, 6)
		if _, err := stdout.Read(b); err != nil || string(b) != "READY\n" {
			t.Fatalf("read %q, %v", b, err)
		}
		cmd.Process.Signal(tc.sig)
		cmd.Wait()
		if code := shellStatus(cmd.ProcessState); code != tc.want {
			t.Errorf("wgns exec sent %v: status %d (%v), want %d", tc.sig, code, cmd.ProcessState, tc.want)
		}
	}
}
