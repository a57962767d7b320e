package integration

import (
	"os/exec"
	"strings"
	"testing"
	"time"
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
	assertOwnTerminal(t, alice.UID, "command", "the user's", func() *termPair { return mine(newTerm(t)) }, run)

	// From the user's interactive shell.
	tp := mine(newTerm(t))
	shell := userCmd(t, alice, "bash", "--norc", "--noprofile", "-i")
	shell.Env = append(userEnv(alice), "TERM=dumb", "PS1=alice$ ")
	shell.Stdin, shell.Stdout, shell.Stderr = tp.slave, tp.slave, tp.slave
	shell.SysProcAttr.Setsid, shell.SysProcAttr.Setctty, shell.SysProcAttr.Ctty = true, true, 0
	startUntilEnd(t, shell)
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
	code := waitStatus(t, run(tp, "echo ran"))
	// The message reaches the terminal's reader after the exit status: wait for it.
	want := "wgns exec: opening the caller's terminal " + tp.slave.Name() + " again, with the caller's rights: permission denied"
	waitFor(t, 10*time.Second, "the refusal on the terminal", func() bool { return strings.Contains(tp.shown(), want) })
	if code != 125 || strings.Contains(tp.shown(), "ran") {
		t.Errorf("on root's terminal: status %d\n%s", code, tp.shown())
	}
}
