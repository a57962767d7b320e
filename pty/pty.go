// Package pty runs a program on a pseudo-terminal of its own and relays the caller's terminal to
// it, as sudo's use_pty does.
//
// A program that root starts as another user must not hold root's terminal: with it, the
// program could push input into root's shell (TIOCSTI, on kernels that still allow it), read
// what root types after the program has ended (a background process keeps the descriptor), or
// change the terminal's settings. Run gives the program a pseudo-terminal instead, with the
// caller's settings and window size, puts the caller's terminal in raw mode and copies bytes
// both ways: the program cannot reach the caller's terminal, and interactive programs work as
// before (the program's pseudo-terminal turns Ctrl-C into SIGINT for it, and its exit status
// comes back). When the caller has no terminal, the program runs in a session of its own, with
// no controlling terminal at all.
//
// The caller's side need not be this process's own terminal: Start takes the caller's standard
// files, and Session's Signal and Resize take what a terminal would send, so that a service that
// runs programs for clients (with the client's terminal, passed over a socket) can use it too.
package pty

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
	"golang.org/x/term"
)

// Open returns a new pseudo-terminal: its master, non-blocking (so that reads can be
// interrupted), and its slave, opened without becoming this process's controlling terminal. Both
// are close-on-exec.
func Open() (master, slave *os.File, err error) {
	mfd, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("opening a pseudo-terminal: /dev/ptmx: %w", err)
	}
	if err := unix.IoctlSetPointerInt(mfd, unix.TIOCSPTLCK, 0); err != nil {
		unix.Close(mfd)
		return nil, nil, fmt.Errorf("unlocking a pseudo-terminal: %w", err)
	}
	sfd, err := openPeer(mfd)
	if err != nil {
		unix.Close(mfd)
		return nil, nil, err
	}
	// A non-blocking descriptor makes a pollable *os.File: its reads wait in Go's poller and
	// stop at a deadline.
	return os.NewFile(uintptr(mfd), "/dev/ptmx"), os.NewFile(uintptr(sfd), "pty slave"), nil
}

// openPeer opens the slave of the master mfd: through the master itself (TIOCGPTPEER, which
// cannot be raced by a rename in /dev/pts), or by its number on kernels before 4.13.
func openPeer(mfd int) (int, error) {
	const flags = unix.O_RDWR | unix.O_NOCTTY | unix.O_CLOEXEC
	fd, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(mfd), unix.TIOCGPTPEER, flags)
	if errno == 0 {
		return int(fd), nil
	}
	if errno != unix.EINVAL && errno != unix.ENOTTY {
		return -1, fmt.Errorf("opening the slave of a pseudo-terminal: %w", errno)
	}
	n, err := unix.IoctlGetUint32(mfd, unix.TIOCGPTN)
	if err != nil {
		return -1, fmt.Errorf("finding the slave of a pseudo-terminal: %w", err)
	}
	path := "/dev/pts/" + strconv.FormatUint(uint64(n), 10)
	sfd, err := unix.Open(path, flags, 0)
	if err != nil {
		return -1, fmt.Errorf("opening the slave of a pseudo-terminal: %s: %w", path, err)
	}
	return sfd, nil
}

// Options are the caller's side of a Session.
type Options struct {
	// Stdin, Stdout and Stderr are the caller's standard files. The program gets the
	// pseudo-terminal's slave in place of each that is a terminal, and the others as they are.
	Stdin, Stdout, Stderr *os.File
	// Owner, when not -1, is the uid the slave is given to (the user the program runs as, as
	// login and sudo do), so that the program can open its terminal by name, /dev/pts/N.
	Owner int
	// Background says that the caller is a background job of its terminal: the program gets
	// the output side only, as when this process is not in its terminal's foreground. A
	// service acting for a caller elsewhere sets it from what the caller says (this process,
	// in no session of that terminal, cannot tell).
	Background bool
	// Reopen, if set, opens the caller's terminal anew in place of the package's own reopen
	// (through /proc/self/fd, with this process's rights); a service that holds a caller's
	// terminal reopens it with the caller's rights instead, so that it gets no access the
	// caller's own descriptor did not give. The result must be non-blocking and close-on-exec.
	Reopen func(*os.File) (*os.File, error)
}

// StartFunc starts the program with files as its descriptors 0, 1 and 2, as the leader of a new
// session (setsid) and, when ctty >= 0, with files[ctty] as its controlling terminal
// (TIOCSCTTY); it returns the started process. nsmgr.Start with nsmgr.Child{Setsid: true}
// does this.
type StartFunc func(files [3]*os.File, ctty int) (*os.Process, error)

// Session is a program started by Start, with the relay between the caller's terminal and the
// program's pseudo-terminal when it has one.
type Session struct {
	proc *os.Process

	sigMu  sync.Mutex // held while signalling, so that no signal is sent once the program is reaped
	exited bool
	hungUp bool // Hangup closed the program's terminal (under sigMu)

	// With a pseudo-terminal (all unset without one):
	master *os.File      // the program's terminal, our side
	in     *os.File      // the caller's terminal input, reopened (nil when it is not relayed)
	out    *os.File      // where the program's terminal output goes, reopened
	sizeFd int           // a descriptor of the caller's terminal, for its window size
	rawFd  int           // a descriptor of the caller's terminal put in raw mode, or -1
	raw    *term.State   // its settings to restore
	done   chan struct{} // closed when the output relay ends
	outMu  sync.Mutex    // serialises writes to out by the relay and Wait's drain

	hangOnce sync.Once // lets go of the caller's terminal once: Hangup, or Wait
}

// Start starts the program, with a pseudo-terminal of its own when any of the caller's standard
// files is a terminal (then it relays as the package documentation says), else in a session of
// its own with the caller's files. The caller's terminal is put in raw mode, and its input
// relayed, when Stdin is a terminal and the caller is in its foreground (or it is not this
// process's controlling terminal at all, as for a terminal passed from elsewhere); in the
// background the program gets the output side only. The caller's own open files are not
// changed (the relay reopens the terminal). Nothing is left changed if Start fails.
//
// The caller must call Wait, and may call Signal and Resize until Wait returns.
func Start(opts Options, start StartFunc) (*Session, error) {
	std := [3]*os.File{opts.Stdin, opts.Stdout, opts.Stderr}
	var tty [3]bool
	anyTTY := false
	for i, f := range std {
		// Fd does not change the mode of a file that was not made non-blocking by Go.
		tty[i] = f != nil && term.IsTerminal(int(f.Fd()))
		anyTTY = anyTTY || tty[i]
	}
	if !anyTTY {
		p, err := start(std, -1)
		if err != nil {
			return nil, err
		}
		return &Session{proc: p}, nil
	}

	s := &Session{done: make(chan struct{}), rawFd: -1}
	ok := false
	defer func() {
		if !ok {
			s.closeFiles()
		}
	}()
	master, slave, err := Open()
	if err != nil {
		return nil, err
	}
	defer slave.Close() // the program has its own copies once started
	s.master = master
	if opts.Owner != -1 {
		if err := slave.Chown(opts.Owner, -1); err != nil {
			return nil, fmt.Errorf("giving the pseudo-terminal to uid %d: %w", opts.Owner, err)
		}
	}

	// The caller's terminal: its input (stdin) if that is one, and where output goes (stdout,
	// else stderr, else stdin). Each is reopened, so that the relay's reads and writes can be
	// non-blocking and interrupted without changing the caller's own open file (O_NONBLOCK
	// belongs to an open file, which every descriptor of it shares).
	outIdx := 0
	for _, i := range []int{1, 2, 0} {
		if tty[i] {
			outIdx = i
			break
		}
	}
	reopenTTY := reopen
	if opts.Reopen != nil {
		reopenTTY = opts.Reopen
	}
	if s.out, err = reopenTTY(std[outIdx]); err != nil {
		return nil, err
	}
	s.sizeFd = int(std[outIdx].Fd())
	if tty[0] {
		inFd := int(std[0].Fd())
		s.sizeFd = inFd
		// Give the program the caller's terminal settings (erase and interrupt characters,
		// modes).
		if t, err := unix.IoctlGetTermios(inFd, unix.TCGETS); err == nil {
			unix.IoctlSetTermios(int(slave.Fd()), unix.TCSETS, t)
		}
		if !opts.Background && foreground(inFd) {
			if s.in, err = reopenTTY(std[0]); err != nil {
				return nil, err
			}
			s.rawFd = inFd
		}
	}
	s.Resize()

	files := std
	ctty := -1
	for i := range files {
		if tty[i] {
			files[i] = slave
			if ctty < 0 {
				ctty = i
			}
		}
	}
	if s.rawFd >= 0 {
		if s.raw, err = term.MakeRaw(s.rawFd); err != nil {
			return nil, fmt.Errorf("putting the terminal in raw mode: %w", err)
		}
	}
	if s.proc, err = start(files, ctty); err != nil {
		s.restore()
		return nil, err
	}
	ok = true
	go s.relayOutput()
	if s.in != nil {
		go io.Copy(s.master, s.in) // ends when Wait closes s.in
	}
	return s, nil
}

// reopen opens the terminal f anew, non-blocking (so pollable), through /proc/self/fd, without
// making it a controlling terminal.
func reopen(f *os.File) (*os.File, error) {
	path := "/proc/self/fd/" + strconv.Itoa(int(f.Fd()))
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("opening the terminal %s again: %w", f.Name(), err)
	}
	return os.NewFile(uintptr(fd), f.Name()), nil
}

// foreground reports whether this process may read from the terminal fd: it is not its
// controlling terminal, or this process's group is in the terminal's foreground.
func foreground(fd int) bool {
	pgrp, err := unix.IoctlGetInt(fd, unix.TIOCGPGRP)
	if err != nil {
		return true // not our controlling terminal (ENOTTY): nothing stops us reading it
	}
	return pgrp == unix.Getpgrp()
}

// relayOutput copies the program's terminal output to the caller's terminal until the master
// has no writer left (EIO) or Wait stops it.
func (s *Session) relayOutput() {
	defer close(s.done)
	buf := make([]byte, 32<<10)
	for {
		n, err := s.master.Read(buf)
		if n > 0 {
			s.outMu.Lock()
			s.out.Write(buf[:n])
			s.outMu.Unlock()
		}
		if err != nil {
			return
		}
	}
}

// PID returns the program's process ID.
func (s *Session) PID() int { return s.proc.Pid }

// Signal passes on sig as a terminal would: SIGINT, SIGQUIT and SIGTSTP go to the foreground
// process group of the program's terminal (or, without one, to the program's process group);
// any other signal goes to the program itself.
func (s *Session) Signal(sig syscall.Signal) error {
	s.sigMu.Lock()
	defer s.sigMu.Unlock()
	if s.exited {
		return nil
	}
	switch sig {
	case unix.SIGINT, unix.SIGQUIT, unix.SIGTSTP:
		if s.master != nil && !s.hungUp {
			if err := unix.IoctlSetInt(int(s.master.Fd()), unix.TIOCSIG, int(sig)); err != nil {
				return fmt.Errorf("sending %v to the program's terminal: %w", sig, err)
			}
			return nil
		}
		// The program leads a session, and so its own process group, which exists until it
		// has been waited for.
		if err := unix.Kill(-s.proc.Pid, sig); err != nil && err != unix.ESRCH {
			return fmt.Errorf("sending %v to process group %d: %w", sig, s.proc.Pid, err)
		}
		return nil
	}
	if err := s.proc.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("sending %v to process %d: %w", sig, s.proc.Pid, err)
	}
	return nil
}

// Resize gives the program's terminal the window size of the caller's (which makes the kernel
// send the program SIGWINCH when it changes). Without a pseudo-terminal it does nothing.
func (s *Session) Resize() error {
	s.sigMu.Lock()
	defer s.sigMu.Unlock()
	if s.master == nil || s.hungUp {
		return nil
	}
	ws, err := unix.IoctlGetWinsize(s.sizeFd, unix.TIOCGWINSZ)
	if err != nil {
		return fmt.Errorf("reading the terminal's window size: %w", err)
	}
	if err := unix.IoctlSetWinsize(int(s.master.Fd()), unix.TIOCSWINSZ, ws); err != nil {
		return fmt.Errorf("setting the program's window size: %w", err)
	}
	return nil
}

// Exit is how the program ended.
type Exit struct {
	// Code is the status as a shell reports it: the exit code, or 128+N when signal N ended it.
	Code int
	// Signal is the signal that ended the program, or 0 if it exited.
	Signal syscall.Signal
}

// Wait waits for the program to end, copies what it wrote before it ended to the caller's
// terminal, restores the caller's terminal settings, and returns how the program ended. A
// background process the program left behind keeps its pseudo-terminal but loses the caller's.
func (s *Session) Wait() (Exit, error) {
	// Wait for the end without reaping: until it is reaped, the program's PID and process group
	// cannot be reused, and Signal may still address them.
	var info unix.Siginfo
	for {
		if err := unix.Waitid(unix.P_PID, s.proc.Pid, &info, unix.WEXITED|unix.WNOWAIT, nil); err != unix.EINTR {
			break
		}
	}
	s.sigMu.Lock()
	s.exited = true
	s.sigMu.Unlock()
	st, err := s.proc.Wait()
	if s.master != nil {
		s.hangOnce.Do(func() {
			// Stop the relay, then copy what is left without waiting for more.
			s.master.SetReadDeadline(time.Now())
			<-s.done
			s.drain()
			s.restore()
			s.closeFiles()
		})
	}
	if err != nil {
		return Exit{}, fmt.Errorf("waiting for process %d: %w", s.proc.Pid, err)
	}
	ws := st.Sys().(syscall.WaitStatus)
	if ws.Signaled() {
		return Exit{Code: 128 + int(ws.Signal()), Signal: ws.Signal()}, nil
	}
	return Exit{Code: ws.ExitStatus()}, nil
}

// drain copies to the caller's terminal what the master holds now, without waiting.
func (s *Session) drain() {
	rc, err := s.master.SyscallConn()
	if err != nil {
		return
	}
	s.master.SetReadDeadline(time.Time{})
	buf := make([]byte, 32<<10)
	rc.Read(func(fd uintptr) bool {
		for {
			n, err := unix.Read(int(fd), buf)
			if n > 0 {
				s.outMu.Lock()
				s.out.Write(buf[:n])
				s.outMu.Unlock()
			}
			if err == unix.EINTR {
				continue
			}
			if n <= 0 || err != nil { // EAGAIN: nothing now; EIO: no writer left
				return true
			}
		}
	})
}

// Hangup lets go of the caller's terminal while the program runs on, as when a terminal hangs
// up: the relays stop, the caller's terminal gets its settings back, and the program's terminal
// is hung up (its master closed: the kernel sends SIGHUP to the program's session). Without a
// pseudo-terminal, the program itself gets SIGHUP. A service calls it when its caller is gone.
// Wait still returns how the program ended.
func (s *Session) Hangup() {
	if s.master == nil {
		s.Signal(unix.SIGHUP)
		return
	}
	s.hangOnce.Do(func() {
		s.master.SetReadDeadline(time.Now())
		<-s.done
		s.restore()
		s.sigMu.Lock()
		s.hungUp = true
		s.closeFiles()
		s.sigMu.Unlock()
	})
}

// restore puts the caller's terminal back as it was.
func (s *Session) restore() {
	if s.raw != nil {
		term.Restore(s.rawFd, s.raw)
		s.raw = nil
	}
}

func (s *Session) closeFiles() {
	for _, f := range []*os.File{s.master, s.in, s.out} {
		if f != nil {
			f.Close()
		}
	}
}

// forwarded are the signals Run passes on to the program: those a terminal sends, and those
// that ask a process to end or to act.
var forwarded = []os.Signal{unix.SIGINT, unix.SIGQUIT, unix.SIGTERM, unix.SIGHUP, unix.SIGUSR1, unix.SIGUSR2, unix.SIGWINCH}

// Run is Start and Wait for a process acting for its own terminal: while the program runs, the
// signals this process gets are passed on (SIGWINCH as Resize, the others as Signal), so that
// a Ctrl-C at a terminal not in raw mode, a kill of this process or the terminal's hang-up
// reach the program; this process itself ends only when the program does.
func Run(opts Options, start StartFunc) (Exit, error) {
	sigs := make(chan os.Signal, 16)
	signal.Notify(sigs, forwarded...)
	defer signal.Stop(sigs)
	s, err := Start(opts, start)
	if err != nil {
		return Exit{}, err
	}
	stop := make(chan struct{})
	forwarding := make(chan struct{})
	go func() {
		defer close(forwarding)
		for {
			select {
			case sig := <-sigs:
				if sig == unix.SIGWINCH {
					s.Resize()
				} else {
					s.Signal(sig.(syscall.Signal))
				}
			case <-stop:
				return
			}
		}
	}()
	exit, err := s.Wait()
	close(stop)
	<-forwarding
	return exit, err
}
