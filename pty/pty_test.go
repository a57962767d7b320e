package pty

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The test binary doubles as a program that pushes input into its terminal (TIOCSTI), the way a
// hostile program would try to type into the shell that started it.
const helperEnv = "PTY_TEST_HELPER"

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) == "tiocsti" {
		n := 0
		targets := []int{0, 1, 2}
		if fd, err := unix.Open("/dev/tty", unix.O_RDWR, 0); err == nil {
			targets = append(targets, fd)
		}
		for _, fd := range targets {
			for _, c := range []byte("echo INJECTED\n") {
				if unix.IoctlSetPointerInt(fd, unix.TIOCSTI, int(c)) == nil {
					n++
				}
			}
		}
		fmt.Printf("pushed %d bytes\n", n)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// start returns a StartFunc that runs argv the way nsmgr.Start does for Session: as a session
// leader, with files[ctty] as its controlling terminal. It records what it was given.
type recorder struct {
	files [3]*os.File
	ctty  int
}

func (r *recorder) start(env []string, argv ...string) StartFunc {
	return func(files [3]*os.File, ctty int) (*os.Process, error) {
		r.files, r.ctty = files, ctty
		sys := &syscall.SysProcAttr{Setsid: true}
		if ctty >= 0 {
			sys.Setctty, sys.Ctty = true, ctty
		}
		return os.StartProcess(argv[0], argv, &os.ProcAttr{Files: files[:], Sys: sys, Env: append(os.Environ(), env...)})
	}
}

// callerTerminal returns a pseudo-terminal that plays the caller's terminal: the test types into
// master and reads what appears on the screen from it; slave is what the caller's program holds.
func callerTerminal(t *testing.T, rows, cols uint16) (master, slave *os.File) {
	t.Helper()
	master, slave, err := Open()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { master.Close(); slave.Close() })
	if err := unix.IoctlSetWinsize(int(slave.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: rows, Col: cols}); err != nil {
		t.Fatal(err)
	}
	return master, slave
}

// screen collects what a terminal's master shows.
type screen struct {
	f   *os.File
	buf bytes.Buffer
}

// expect reads from the terminal until want has appeared, for at most 10 s.
func (s *screen) expect(t *testing.T, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	b := make([]byte, 4096)
	for !strings.Contains(s.buf.String(), want) {
		s.f.SetReadDeadline(deadline)
		n, err := s.f.Read(b)
		s.buf.Write(b[:n])
		if err != nil {
			t.Fatalf("waiting for %q on the terminal: %v; it shows %q", want, err, s.buf.String())
		}
	}
}

func rdev(t *testing.T, f *os.File) uint64 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	return st.Rdev
}

func TestOpen(t *testing.T) {
	master, slave, err := Open()
	if err != nil {
		t.Fatal(err)
	}
	defer master.Close()
	defer slave.Close()
	if _, err := slave.Write([]byte("ping\n")); err != nil {
		t.Fatal(err)
	}
	s := &screen{f: master}
	s.expect(t, "ping")
	for _, f := range []*os.File{master, slave} {
		if flags, err := unix.FcntlInt(f.Fd(), unix.F_GETFD, 0); err != nil || flags&unix.FD_CLOEXEC == 0 {
			t.Errorf("%s is not close-on-exec (flags %v, %v)", f.Name(), flags, err)
		}
	}
}

// TestStartWithoutTerminal: with no terminal among the caller's files the program gets them as
// they are, leads a session of its own (so it has no controlling terminal), and its exit status
// comes back.
func TestStartWithoutTerminal(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var rec recorder
	s, err := Start(Options{Stdin: nil, Stdout: w, Stderr: w, Owner: -1},
		rec.start(nil, "/bin/sh", "-c", `echo "$$ $(cut -d' ' -f6 /proc/$$/stat)"; (exec 3</dev/tty) 2>/dev/null && echo has-a-tty; exit 3`))
	w.Close()
	if err != nil {
		t.Fatal(err)
	}
	exit, err := s.Wait()
	if err != nil {
		t.Fatal(err)
	}
	code := exit.Code
	out := new(bytes.Buffer)
	out.ReadFrom(r)
	if code != 3 || rec.ctty != -1 || rec.files[1] != w || rec.files[0] != nil {
		t.Errorf("exit %d, ctty %d, files %v; want 3, -1, the caller's", code, rec.ctty, rec.files)
	}
	var pid, sid int
	if _, err := fmt.Sscan(out.String(), &pid, &sid); err != nil || pid != sid {
		t.Errorf("the program printed %q: want its pid equal to its session id", out)
	}
	if strings.Contains(out.String(), "has-a-tty") {
		t.Errorf("the program opened /dev/tty: %q", out)
	}
}

// TestStartGivesItsOwnTerminal: each of the caller's files that is a terminal is replaced by a
// pseudo-terminal of the program's own (another device, given to Owner), the others are passed
// as they are, and the first terminal is the controlling one.
func TestStartGivesItsOwnTerminal(t *testing.T) {
	_, callerTTY := callerTerminal(t, 24, 80)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	owner := os.Getuid()
	if owner == 0 {
		owner = 4242
	}
	var rec recorder
	var slave unix.Stat_t // the program's terminal, while Start holds it
	start := rec.start(nil, "/bin/true")
	s, err := Start(Options{Stdin: r, Stdout: callerTTY, Stderr: callerTTY, Owner: owner}, func(files [3]*os.File, ctty int) (*os.Process, error) {
		if err := unix.Fstat(int(files[1].Fd()), &slave); err != nil {
			return nil, err
		}
		return start(files, ctty)
	})
	if err != nil {
		t.Fatal(err)
	}
	if exit, err := s.Wait(); exit != (Exit{}) || err != nil {
		t.Fatalf("Wait = %+v, %v", exit, err)
	}
	if rec.files[0] != r || rec.ctty != 1 || rec.files[1] != rec.files[2] {
		t.Errorf("files %v, ctty %d: want the pipe as 0, one pseudo-terminal as 1 and 2, controlling 1", rec.files, rec.ctty)
	}
	if slave.Rdev == rdev(t, callerTTY) || slave.Mode&unix.S_IFMT != unix.S_IFCHR {
		t.Errorf("the program got the caller's terminal, or no terminal (mode %#o)", slave.Mode)
	}
	if slave.Uid != uint32(owner) {
		t.Errorf("the program's terminal belongs to uid %d, want %d", slave.Uid, owner)
	}
}

// TestSessionIsInteractive: through the relay the program shows its output, reads what is typed,
// has the caller's window size and follows its changes, is interrupted by Ctrl-C (exit status
// 130, as a shell reports it), and the caller's terminal settings are restored afterwards.
func TestSessionIsInteractive(t *testing.T) {
	callerMaster, callerTTY := callerTerminal(t, 33, 101)
	before, err := unix.IoctlGetTermios(int(callerTTY.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	var rec recorder
	script := `stty size; read line; echo "got:$line"; trap 'stty size' WINCH; echo READY; while :; do sleep 0.05; done`
	s, err := Start(Options{Stdin: callerTTY, Stdout: callerTTY, Stderr: callerTTY, Owner: -1}, rec.start(nil, "/bin/sh", "-c", script))
	if err != nil {
		t.Fatal(err)
	}
	scr := &screen{f: callerMaster}
	scr.expect(t, "33 101")
	during, _ := unix.IoctlGetTermios(int(callerTTY.Fd()), unix.TCGETS)
	if during.Lflag&(unix.ICANON|unix.ECHO|unix.ISIG) != 0 {
		t.Errorf("the caller's terminal is not in raw mode while the program runs (lflag %#x)", during.Lflag)
	}
	callerMaster.Write([]byte("hello\r"))
	scr.expect(t, "got:hello")
	scr.expect(t, "READY")
	if err := unix.IoctlSetWinsize(int(callerTTY.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: 40, Col: 120}); err != nil {
		t.Fatal(err)
	}
	if err := s.Resize(); err != nil {
		t.Fatal(err)
	}
	scr.expect(t, "40 120")
	callerMaster.Write([]byte{3}) // Ctrl-C
	exit, err := s.Wait()
	if err != nil || exit != (Exit{Code: 130, Signal: unix.SIGINT}) {
		t.Errorf("after Ctrl-C: Wait = %+v, %v; want 130, SIGINT", exit, err)
	}
	after, err := unix.IoctlGetTermios(int(callerTTY.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(before, after) {
		t.Errorf("the caller's terminal settings were not restored:\nbefore %+v\nafter  %+v", before, after)
	}
}

// TestSessionKeepsOutputWrittenBeforeTheEnd: what the program writes just before it ends reaches
// the caller's terminal, even when a process it left behind keeps its terminal open.
func TestSessionKeepsOutputWrittenBeforeTheEnd(t *testing.T) {
	callerMaster, callerTTY := callerTerminal(t, 24, 80)
	var rec recorder
	// The background sleep holds the pseudo-terminal after sh exits.
	script := `sleep 30 & i=0; while [ $i -lt 200 ]; do echo "line $i"; i=$((i+1)); done; echo LAST; exit 5`
	s, err := Start(Options{Stdin: nil, Stdout: callerTTY, Stderr: callerTTY, Owner: -1}, rec.start(nil, "/bin/sh", "-c", script))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	scr := &screen{f: callerMaster}
	go func() {
		defer close(done)
		scr.expect(t, "LAST")
	}()
	exit, err := s.Wait()
	if exit != (Exit{Code: 5}) || err != nil {
		t.Errorf("Wait = %+v, %v; want 5", exit, err)
	}
	<-done
}

// TestSessionSignal: without a terminal, SIGINT reaches the program's process group and SIGTERM
// the program; a signal after the end is not an error.
func TestSessionSignal(t *testing.T) {
	for _, tc := range []struct {
		sig  syscall.Signal
		want int
	}{{unix.SIGINT, 130}, {unix.SIGTERM, 143}} {
		t.Run(tc.sig.String(), func(t *testing.T) {
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
			if _, err := r.Read(b); err != nil || string(b) != "READY\n" {
				t.Fatalf("read %q, %v", b, err)
			}
			if err := s.Signal(tc.sig); err != nil {
				t.Fatal(err)
			}
			if exit, err := s.Wait(); exit != (Exit{Code: tc.want, Signal: tc.sig}) || err != nil {
				t.Errorf("Wait = %+v, %v; want %d", exit, err, tc.want)
			}
			if err := s.Signal(unix.SIGTERM); err != nil {
				t.Errorf("Signal after the end: %v", err)
			}
		})
	}
}

// TestSessionStopsInjection: a program that pushes input into its terminal (TIOCSTI) reaches
// only its own pseudo-terminal, not the caller's; the control shows that the same program run
// on the caller's terminal does reach it.
func TestSessionStopsInjection(t *testing.T) {
	pending := func(f *os.File) string {
		n, err := unix.IoctlGetInt(int(f.Fd()), unix.TIOCINQ)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			return ""
		}
		b := make([]byte, n)
		m, _ := unix.Read(int(f.Fd()), b)
		return string(b[:max(m, 0)])
	}
	helper := []string{"/proc/self/exe"}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	helper[0] = exe

	// Control: the helper with the caller's terminal as its own.
	_, ctlTTY := callerTerminal(t, 24, 80)
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), helperEnv+"=tiocsti")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = ctlTTY, nil, nil
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	if got := pending(ctlTTY); !strings.Contains(got, "echo INJECTED") {
		t.Skipf("TIOCSTI does not work here (%s, input %q): nothing to stop", strings.TrimSpace(string(out)), got)
	}

	// The caller's input is a pipe, so the relay does not read the caller's terminal: anything
	// pushed into it would stay there for the caller's shell to read.
	callerMaster, callerTTY := callerTerminal(t, 24, 80)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	var rec recorder
	s, err := Start(Options{Stdin: r, Stdout: callerTTY, Stderr: callerTTY, Owner: -1},
		rec.start([]string{helperEnv + "=tiocsti"}, helper...))
	if err != nil {
		t.Fatal(err)
	}
	scr := &screen{f: callerMaster}
	scr.expect(t, "bytes")
	if exit, err := s.Wait(); exit != (Exit{}) || err != nil {
		t.Fatalf("Wait = %+v, %v", exit, err)
	}
	if got := pending(callerTTY); got != "" {
		t.Errorf("the caller's terminal has input %q pushed by the program", got)
	}
	if !strings.Contains(scr.buf.String(), "pushed 42 bytes") {
		t.Errorf("the program did not push into its own terminal (fds 1, 2 and /dev/tty): %q", scr.buf.String())
	}
}
