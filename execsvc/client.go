package execsvc

import (
	"errors"
	"fmt"
	"os"
	"os/signal"

	"golang.org/x/sys/unix"
)

// ErrNoService is wrapped by the error of Run when no service answers at Socket.
var ErrNoService = errors.New("the wgns service is not running")

// forwarded are the signals Run passes on to the command: those a terminal sends, those that
// ask a process to end or to act, and window size changes (as FrameResize).
var forwarded = []os.Signal{unix.SIGINT, unix.SIGQUIT, unix.SIGTERM, unix.SIGHUP, unix.SIGUSR1, unix.SIGUSR2, unix.SIGWINCH}

// Run asks the service at Socket to run req's command as the user who runs this process, with
// this process's standard files (those that are open), and returns how it ended, or why it did
// not start: Exit.Code is then wgns's own status (125-127) and Exit.Message says why. While the
// command runs, the signals this process gets are passed on, as `wgns exec` passes them to a
// command it runs itself. req.Files and the background flag are filled in here.
//
// The error is for a service that cannot be reached, or that broke off the exchange: whether
// the command ran, and how it ended, is then not known.
func Run(req *Request) (Exit, error) {
	return run(Socket, req)
}

func run(socket string, req *Request) (Exit, error) {
	sigs := make(chan os.Signal, 16)
	signal.Notify(sigs, forwarded...)
	defer signal.Stop(sigs)

	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return Exit{}, fmt.Errorf("connecting to the wgns service: %w", err)
	}
	defer unix.Close(fd)
	if err := unix.Connect(fd, &unix.SockaddrUnix{Name: socket}); err != nil {
		if err == unix.ENOENT || err == unix.ECONNREFUSED {
			return Exit{}, fmt.Errorf("%w (connecting to %s: %v)", ErrNoService, socket, err)
		}
		return Exit{}, fmt.Errorf("connecting to the wgns service at %s: %w", socket, err)
	}

	var fds []int
	for i := 0; i < 3; i++ {
		if _, err := unix.FcntlInt(uintptr(i), unix.F_GETFD, 0); err == nil {
			fds = append(fds, i)
			req.Files |= 1 << i
		}
	}
	term, termErr := unix.IoctlGetTermios(0, unix.TCGETS)
	fg := termErr == nil && foreground(0)
	if termErr == nil && !fg {
		req.Flags |= FlagBackground
	}
	// The credentials are the kernel's to check: a process may send only its own.
	oob := unix.UnixCredentials(&unix.Ucred{Pid: int32(unix.Getpid()), Uid: uint32(unix.Getuid()), Gid: uint32(unix.Getgid())})
	if len(fds) > 0 {
		oob = append(oob, unix.UnixRights(fds...)...)
	}
	msg := req.Marshal()
	n, err := unix.SendmsgN(fd, msg, oob, nil, unix.MSG_NOSIGNAL)
	if err == nil {
		err = writeAll(fd, msg[n:])
	}
	if err != nil {
		return Exit{}, fmt.Errorf("sending the request to the wgns service: %w", err)
	}
	if fg {
		// The service puts the terminal in raw mode while the command runs, and puts it back;
		// should it not (it died), this does.
		defer restore(0, term)
	}

	frames := make(chan frameOrErr, 1)
	go readFrames(fd, frames)
	for {
		select {
		case s := <-sigs:
			out := ResizeFrame()
			if s != unix.SIGWINCH {
				out = SignalFrame(uint32(s.(unix.Signal)))
			}
			writeAll(fd, out) // an error shows as the end of the frames
		case f := <-frames:
			switch {
			case f.err != nil:
				return Exit{}, f.err
			case f.typ == FrameExit:
				e, err := ParseExit(f.payload)
				if err != nil {
					return Exit{}, fmt.Errorf("reading the wgns service's answer: %w", err)
				}
				return e, nil
			}
			// FrameStarted, or a frame of a later protocol: nothing to do.
		}
	}
}

// frameOrErr is a frame read from the service, or why there is none.
type frameOrErr struct {
	typ     byte
	payload []byte
	err     error
}

// readFrames reads the service's frames to out until the connection ends.
func readFrames(fd int, out chan<- frameOrErr) {
	h := make([]byte, headerSize)
	for {
		if err := readFull(fd, h); err != nil {
			out <- frameOrErr{err: fmt.Errorf("the wgns service broke off before the command's end (%w)", err)}
			return
		}
		typ, n := Header(h)
		if n > MaxFrame {
			out <- frameOrErr{err: fmt.Errorf("reading the wgns service's answer: %w: a frame of %d bytes", ErrProtocol, n)}
			return
		}
		p := make([]byte, n)
		if err := readFull(fd, p); err != nil {
			out <- frameOrErr{err: fmt.Errorf("the wgns service broke off before the command's end (%w)", err)}
			return
		}
		out <- frameOrErr{typ: typ, payload: p}
		if typ == FrameExit {
			return
		}
	}
}

// readFull reads len(b) bytes from fd; the end of the stream is io.ErrUnexpectedEOF's like.
func readFull(fd int, b []byte) error {
	for len(b) > 0 {
		n, err := unix.Read(fd, b)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		if n == 0 {
			return errors.New("connection closed")
		}
		b = b[n:]
	}
	return nil
}

// writeAll writes b to fd.
func writeAll(fd int, b []byte) error {
	for len(b) > 0 {
		n, err := unix.SendmsgN(fd, b, nil, nil, unix.MSG_NOSIGNAL)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		b = b[n:]
	}
	return nil
}

// foreground reports whether this process's group is in the foreground of the terminal fd (or
// the terminal is not this process's controlling one).
func foreground(fd int) bool {
	pgrp, err := unix.IoctlGetInt(fd, unix.TIOCGPGRP)
	return err != nil || pgrp == unix.Getpgrp()
}

// restore gives the terminal fd the settings t, if it has others now.
func restore(fd int, t *unix.Termios) {
	if now, err := unix.IoctlGetTermios(fd, unix.TCGETS); err == nil && *now != *t {
		unix.IoctlSetTermios(fd, unix.TCSETS, t)
	}
}
