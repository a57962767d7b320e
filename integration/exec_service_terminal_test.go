package integration

import (
	"errors"
	"os/exec"
	"reflect"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// TestIntegrationServiceTerminal: a user's command run through the service from the user's
// terminal behaves like a local program: it gets a terminal of its own (owned by the user, with
// the user's window size, following its changes), reads what is typed, shows what it writes, is
// interrupted by Ctrl-C (wgns ends by SIGINT too: status 130), and its exit status comes back;
// the user's terminal settings are as they were afterwards. In a shell of the user's, the
// same command line works, and the shell reads its terminal again once it has ended.
func TestIntegrationServiceTerminal(t *testing.T) {
	alice := addUser(t, "wgnsalice")
	st := newSvcTunnel(t, "svctty", "[Namespace]\nUsers = wgnsalice\n")
	startService(t)
	front := copyWgns(t)

	// A terminal of the user's, as a terminal emulator or sshd the user runs would have.
	mine := func(tp *termPair) *termPair {
		if err := tp.slave.Chown(alice.UID, -1); err != nil {
			t.Fatal(err)
		}
		return tp
	}
	run := func(tp *termPair, script string) *exec.Cmd {
		cmd := userCmd(t, alice, front, "exec", st.name, "--", "sh", "-c", script)
		cmd.Env = append(cmd.Env, "TERM=dumb")
		cmd.Stdin, cmd.Stdout, cmd.Stderr = tp.slave, tp.slave, tp.slave
		cmd.SysProcAttr.Setsid, cmd.SysProcAttr.Setctty, cmd.SysProcAttr.Ctty = true, true, 0
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Ended before the terminal is closed (a failed test leaves it running).
		t.Cleanup(func() { cmd.Process.Kill() })
		return cmd
	}
	status := func(cmd *exec.Cmd) int {
		err := cmd.Wait()
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			t.Fatal(err)
		}
		return shellStatus(cmd.ProcessState)
	}

	tp := mine(newTerm(t))
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
		t.Errorf("the command's terminal is %s; the user's is %s: want one of its own", m[1], tp.slave.Name())
	}
	if m[2] != strconv.Itoa(alice.UID) {
		t.Errorf("the command's terminal belongs to uid %s, want %d", m[2], alice.UID)
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
	if code := status(cmd); code != 130 {
		t.Errorf("after Ctrl-C: status %d, want 130\n%s", code, tp.shown())
	}
	if ws := cmd.ProcessState.Sys().(syscall.WaitStatus); !ws.Signaled() || ws.Signal() != unix.SIGINT {
		t.Errorf("after Ctrl-C wgns ended with %v; want it ended by SIGINT, as the command was", cmd.ProcessState)
	}
	after, err := unix.IoctlGetTermios(int(tp.slave.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(before, after) {
		t.Errorf("the user's terminal settings changed:\nbefore %+v\nafter  %+v", before, after)
	}

	for _, tc := range []struct {
		script string
		want   int
	}{{"exit 7", 7}, {"exit 0", 0}, {"kill -TERM $$", 143}} {
		tp := mine(newTerm(t))
		if code := status(run(tp, tc.script)); code != tc.want {
			t.Errorf("sh -c %q: status %d, want %d\n%s", tc.script, code, tc.want, tp.shown())
		}
	}

	// From the user's interactive shell.
	tp = mine(newTerm(t))
	shell := userCmd(t, alice, "bash", "--norc", "--noprofile", "-i")
	shell.Env = append(userEnv(alice), "TERM=dumb", "PS1=alice$ ")
	shell.Stdin, shell.Stdout, shell.Stderr = tp.slave, tp.slave, tp.slave
	shell.SysProcAttr.Setsid, shell.SysProcAttr.Setctty, shell.SysProcAttr.Ctty = true, true, 0
	if err := shell.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { shell.Process.Kill(); shell.Wait() })
	tp.expect(t, `alice\$ `)
	tp.typeIn(t, front+" exec "+st.name+" -- sh -c 'read x; echo \"inside:$x:$(id -un)\"'; echo exit-$?-done\n")
	tp.typeIn(t, "typed\r")
	tp.expect(t, `inside:typed:wgnsalice`)
	tp.expect(t, `exit-0-done`)
	tp.typeIn(t, "echo mark-$((6*7))\n")
	tp.expect(t, `mark-42`)

	// A terminal that is not the user's (root's, say, after su): the service does not open it
	// for the user, and says so.
	tp = newTerm(t)
	if code := status(run(tp, "echo ran")); code != 125 || !strings.Contains(tp.shown(), "wgns exec: opening the caller's terminal "+tp.slave.Name()+" again, with the caller's rights: permission denied") || strings.Contains(tp.shown(), "ran") {
		t.Errorf("on root's terminal: status %d\n%s", code, tp.shown())
	}
}
