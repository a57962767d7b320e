package pty

import (
	"os"
	"reflect"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The options a service uses when the caller's terminal came from elsewhere (a socket).

// TestSessionReopen: the caller's terminal is reopened only through Options.Reopen, once for
// its input and once for its output, and a failing Reopen fails Start, leaving the terminal's
// settings as they were.
func TestSessionReopen(t *testing.T) {
	callerMaster, callerTTY := callerTerminal(t, 24, 80)
	before, _ := unix.IoctlGetTermios(int(callerTTY.Fd()), unix.TCGETS)
	var reopened []string
	opts := Options{Stdin: callerTTY, Stdout: callerTTY, Stderr: callerTTY, Owner: -1,
		Reopen: func(f *os.File) (*os.File, error) {
			reopened = append(reopened, f.Name())
			return reopen(f)
		}}
	var rec recorder
	s, err := Start(opts, rec.start(nil, "/bin/sh", "-c", "read x; echo got:$x"))
	if err != nil {
		t.Fatal(err)
	}
	callerMaster.Write([]byte("typed\r"))
	(&screen{f: callerMaster}).expect(t, "got:typed")
	if exit, err := s.Wait(); err != nil || exit.Code != 0 {
		t.Fatalf("Wait = %+v, %v", exit, err)
	}
	if want := []string{callerTTY.Name(), callerTTY.Name()}; !reflect.DeepEqual(reopened, want) {
		t.Errorf("Reopen was called for %q, want %q", reopened, want)
	}

	opts.Reopen = func(*os.File) (*os.File, error) { return nil, syscall.EACCES }
	if _, err := Start(opts, rec.start(nil, "/bin/true")); err == nil {
		t.Fatal("Start succeeded with a Reopen that fails")
	}
	if after, _ := unix.IoctlGetTermios(int(callerTTY.Fd()), unix.TCGETS); !reflect.DeepEqual(before, after) {
		t.Errorf("a failed Start changed the terminal's settings")
	}
}

// TestSessionBackground: for a caller in the background of its terminal, the program gets its
// own terminal but none of the caller's input, and the caller's terminal stays in cooked mode
// (the shell in the foreground keeps reading it).
func TestSessionBackground(t *testing.T) {
	callerMaster, callerTTY := callerTerminal(t, 24, 80)
	before, _ := unix.IoctlGetTermios(int(callerTTY.Fd()), unix.TCGETS)
	var rec recorder
	s, err := Start(Options{Stdin: callerTTY, Stdout: callerTTY, Stderr: callerTTY, Owner: -1, Background: true},
		rec.start(nil, "/bin/sh", "-c", "echo READY; sleep 1; echo END"))
	if err != nil {
		t.Fatal(err)
	}
	scr := &screen{f: callerMaster}
	scr.expect(t, "READY")
	during, _ := unix.IoctlGetTermios(int(callerTTY.Fd()), unix.TCGETS)
	if !reflect.DeepEqual(before, during) {
		t.Errorf("the terminal of a background caller was changed (lflag %#x, was %#x)", during.Lflag, before.Lflag)
	}
	callerMaster.Write([]byte("for the shell\n"))
	scr.expect(t, "END")
	if _, err := s.Wait(); err != nil {
		t.Fatal(err)
	}
	// What was typed is still there for the foreground's reader.
	callerTTY.SetReadDeadline(time.Now().Add(5 * time.Second))
	b := make([]byte, 64)
	n, _ := callerTTY.Read(b)
	if string(b[:n]) != "for the shell\n" {
		t.Errorf("the foreground read %q after the program; want what was typed", b[:n])
	}
}

// TestSessionHangup: when the caller goes away, Hangup hangs up the program's terminal (a shell
// that waits there gets SIGHUP), gives the caller's terminal its settings back, and Wait still
// reports how the program ended; signals and resizes after it are not errors.
func TestSessionHangup(t *testing.T) {
	callerMaster, callerTTY := callerTerminal(t, 24, 80)
	before, _ := unix.IoctlGetTermios(int(callerTTY.Fd()), unix.TCGETS)
	var rec recorder
	s, err := Start(Options{Stdin: callerTTY, Stdout: callerTTY, Stderr: callerTTY, Owner: -1},
		rec.start(nil, "/bin/sh", "-c", "echo READY; exec sleep 60"))
	if err != nil {
		t.Fatal(err)
	}
	(&screen{f: callerMaster}).expect(t, "READY")
	s.Hangup()
	if after, _ := unix.IoctlGetTermios(int(callerTTY.Fd()), unix.TCGETS); !reflect.DeepEqual(before, after) {
		t.Errorf("Hangup left the caller's terminal changed")
	}
	if err := s.Resize(); err != nil {
		t.Errorf("Resize after Hangup: %v", err)
	}
	exit, err := s.Wait()
	if err != nil || exit != (Exit{Code: 129, Signal: unix.SIGHUP}) {
		t.Errorf("after Hangup: Wait = %+v, %v; want 129, SIGHUP", exit, err)
	}
	if err := s.Signal(unix.SIGINT); err != nil {
		t.Errorf("Signal after the end: %v", err)
	}
}

// TestSessionHangupWithoutTerminal: without a terminal, Hangup sends the program SIGHUP.
func TestSessionHangupWithoutTerminal(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var rec recorder
	s, err := Start(Options{Stdout: w, Owner: -1}, rec.start(nil, "/bin/sh", "-c", "echo READY; exec sleep 60"))
	w.Close()
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 6)
	if _, err := r.Read(b); err != nil {
		t.Fatal(err)
	}
	s.Hangup()
	if exit, err := s.Wait(); err != nil || exit != (Exit{Code: 129, Signal: unix.SIGHUP}) {
		t.Errorf("Wait = %+v, %v; want 129, SIGHUP", exit, err)
	}
}
