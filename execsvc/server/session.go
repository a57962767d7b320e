package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/wgns/wgns/dnsbind"
	"github.com/wgns/wgns/execsvc"
	"github.com/wgns/wgns/handoff"
	"github.com/wgns/wgns/identity"
	"github.com/wgns/wgns/nsmgr"
	"github.com/wgns/wgns/pty"
)

// The descriptors a session process starts with (after 0-2).
const (
	fdConn  = 3 // the client's connection
	fdCtl   = 4 // the control pipe from the service
	fdNetns = 5 // the tunnel's namespace, as the service checked it
	fdStd   = 6 // the caller's standard files that were attached, in order
)

// signalsPassed are the signals a client may have passed on to its command: those `wgns exec`
// passes on itself. Anything else a client asks for is ignored: the session is root, and must
// send nothing the caller could not have sent through a terminal or to its own process.
var signalsPassed = map[uint32]bool{
	uint32(unix.SIGINT): true, uint32(unix.SIGQUIT): true, uint32(unix.SIGTERM): true,
	uint32(unix.SIGHUP): true, uint32(unix.SIGUSR1): true, uint32(unix.SIGUSR2): true,
}

// RunSession is a session process (`wgns serve --session`), started by the service with the
// descriptors above: it runs the command of one request as the caller and stays until
// everything the command started has ended. It returns the session process's exit status.
func RunSession() int {
	ctl := os.NewFile(fdCtl, "control")
	dec := json.NewDecoder(ctl)
	var first control
	if err := dec.Decode(&first); err != nil || first.Caller == nil || first.Request == nil {
		fmt.Fprintf(os.Stderr, "wgns serve --session: no request from the service (%v); it is started by wgns serve\n", err)
		return 2
	}
	connFile := os.NewFile(fdConn, "connection")
	conn, err := net.FileConn(connFile)
	connFile.Close()
	if err != nil {
		fmt.Fprintf(os.Stderr, "wgns serve --session: the connection: %v\n", err)
		return 2
	}
	r := &runner{conn: conn, who: first.Caller, req: first.Request, ended: make(chan struct{})}
	var files [3]*os.File
	next := fdStd
	for i := range files {
		if r.req.Files&(1<<i) != 0 {
			files[i] = os.NewFile(uintptr(next), "the caller's file")
			next++
		}
	}
	go func() {
		// Further control messages: why to end. The end of the pipe is the service's end.
		var m control
		for dec.Decode(&m) == nil {
			if m.End != "" {
				r.end(m.End)
				return
			}
		}
		r.end("ended, with everything it started: the wgns service stopped")
	}()
	return r.run(netns.NsHandle(fdNetns), files)
}

// runner is one session.
type runner struct {
	conn net.Conn
	who  *Caller
	req  *execsvc.Request

	mu       sync.Mutex
	reason   string        // why everything is being ended; "" while it is not
	ended    chan struct{} // closed once end was called
	endOnce  sync.Once
	mainPID  int
	mainGone bool
	sendMu   sync.Mutex
	exitSent bool
	sigchld  chan os.Signal
}

// run starts the command, relays until it ends, reports how, and waits for what it left
// behind.
func (r *runner) run(ns netns.NsHandle, files [3]*os.File) int {
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		r.sendExit(execsvc.Exit{Code: 125, Message: fmt.Sprintf("making the session the reaper of its programs: %v", err)})
		return 1
	}
	r.sigchld = make(chan os.Signal, 1)
	signal.Notify(r.sigchld, unix.SIGCHLD)
	// The service's shutdown reaches the session through the pipe; a session must not die of a
	// signal sent to its process group. (Caught, not ignored: the command must not inherit an
	// ignored disposition.)
	signal.Notify(make(chan os.Signal, 1), unix.SIGTERM, unix.SIGINT, unix.SIGHUP)

	// The caller's files stay open while the command runs: the relay restores the caller's
	// terminal and reads its window size through them.
	closeFiles := func() {
		for i, f := range files {
			if f != nil {
				f.Close()
				files[i] = nil
			}
		}
	}
	defer closeFiles()
	ps, err := r.start(ns, files)
	if err != nil {
		r.sendExit(execsvc.Exit{Code: execCode(err), Message: err.Error()})
		return 0
	}
	r.mu.Lock()
	r.mainPID = ps.PID()
	r.mu.Unlock()
	r.send(execsvc.StartedFrame())
	go r.relay(ps)
	go r.reapOthers()

	exit, err := ps.Wait()
	closeFiles()
	r.mu.Lock()
	r.mainGone = true
	reason := r.reason
	r.mu.Unlock()
	if err != nil {
		r.sendExit(execsvc.Exit{Code: 125, Message: err.Error()})
	} else {
		r.sendExit(execsvc.Exit{Code: exit.Code, Signal: int(exit.Signal), Message: reason})
	}
	r.linger()
	return 0
}

// start starts the command as the caller, with the caller's resource limits.
func (r *runner) start(ns netns.NsHandle, files [3]*os.File) (*pty.Session, error) {
	who, req := r.who, r.req
	cred := &nsmgr.Credential{UID: who.UID, GID: who.GID, Groups: who.Groups}
	env := make([]string, 0, len(req.Env)+1)
	for _, kv := range req.Env {
		if !strings.HasPrefix(kv, "DBUS_SESSION_BUS_ADDRESS=") {
			env = append(env, kv)
		}
	}
	env = append(env, "DBUS_SESSION_BUS_ADDRESS="+identity.NoSessionBus)
	opts := nsmgr.ExecOptions{
		Argv:       req.Argv,
		Env:        env,
		Dir:        req.Dir,
		View:       dnsbind.Entry{Name: req.Name},
		Mounts:     func() error { return handoff.HideSessionBus(who.UID) },
		Check:      func(path string) error { return handoff.Check(req.Name, path, req.Argv, env) },
		Cred:       cred,
		Umask:      &who.Umask,
		NoNewPrivs: req.Flags&execsvc.FlagNoNewPrivs != 0 || who.NoNewPrivs,
	}
	restore, err := setRlimits(who.Rlimits)
	if err != nil {
		return nil, err
	}
	defer restore()
	return pty.Start(pty.Options{
		Stdin: files[0], Stdout: files[1], Stderr: files[2],
		Owner:      int(who.UID),
		Background: req.Flags&execsvc.FlagBackground != 0,
		Reopen:     reopenAs(cred),
	}, func(files [3]*os.File, ctty int) (*os.Process, error) {
		return nsmgr.Start(req.Name, ns, opts, nsmgr.Child{Files: files[:], Setsid: true, Ctty: ctty})
	})
}

// reopenAs opens a terminal the caller handed over anew, with the caller's rights: the session
// gets no access to it that the caller does not have.
func reopenAs(cred *nsmgr.Credential) func(*os.File) (*os.File, error) {
	return func(f *os.File) (*os.File, error) {
		var out *os.File
		link := "/proc/self/fd/" + strconv.Itoa(int(f.Fd()))
		name, _ := os.Readlink(link)
		err := nsmgr.AsUser(cred, func() error {
			fd, err := unix.Open(link, unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
			if err != nil {
				return fmt.Errorf("opening the caller's terminal %s again, with the caller's rights: %w", name, err)
			}
			out = os.NewFile(uintptr(fd), name)
			return nil
		})
		return out, err
	}
}

// setRlimits gives this process the resource limits lims (so the command, forked from it,
// starts with them), and returns what puts this process's own back. A limit above this
// process's hard limit can be set only with CAP_SYS_RESOURCE; without it, that resource keeps
// this process's limits, which are lower.
func setRlimits(lims []unix.Rlimit) (func(), error) {
	own := make([]unix.Rlimit, len(lims))
	for res := range lims {
		if err := unix.Getrlimit(res, &own[res]); err != nil {
			return nil, fmt.Errorf("reading resource limit %d: %w", res, err)
		}
	}
	set := func(res int, l unix.Rlimit) error {
		if res == unix.RLIMIT_NOFILE {
			// Through syscall, so that the runtime gives children this limit rather than the
			// one this process started with.
			return syscall.Setrlimit(res, &syscall.Rlimit{Cur: l.Cur, Max: l.Max})
		}
		return unix.Setrlimit(res, &l)
	}
	restore := func() {
		for res, l := range own {
			set(res, l)
		}
	}
	for res, l := range lims {
		if err := set(res, l); err != nil && err != unix.EPERM {
			restore()
			return nil, fmt.Errorf("giving the command the caller's resource limit %d: %w", res, err)
		}
	}
	return restore, nil
}

// relay passes the client's signals and window size changes to the command until the client
// goes away, and then hangs up the command's terminal, as a terminal that goes away would.
func (r *runner) relay(ps *pty.Session) {
	h := make([]byte, execsvc.HeaderSize)
	for {
		if _, err := io.ReadFull(r.conn, h); err != nil {
			break
		}
		typ, n := execsvc.Header(h)
		if n > execsvc.MaxFrame {
			break // not the protocol: treat as gone
		}
		p := make([]byte, n)
		if _, err := io.ReadFull(r.conn, p); err != nil {
			break
		}
		switch typ {
		case execsvc.FrameSignal:
			if sig, err := execsvc.ParseSignal(p); err == nil && signalsPassed[sig] {
				ps.Signal(syscall.Signal(sig))
			}
		case execsvc.FrameResize:
			ps.Resize()
		}
	}
	ps.Hangup()
}

// end ends everything the session started, for reason: SIGTERM, then, after endGrace, SIGKILL
// until nothing is left.
func (r *runner) end(reason string) {
	r.endOnce.Do(func() {
		r.mu.Lock()
		r.reason = reason
		r.mu.Unlock()
		close(r.ended)
		go func() {
			self := os.Getpid()
			signalTree(self, unix.SIGTERM)
			deadline := time.Now().Add(endGrace)
			for time.Now().Before(deadline) && len(descendants(self, false)) > 0 {
				time.Sleep(50 * time.Millisecond)
			}
			for i := 0; i < 100 && len(descendants(self, false)) > 0; i++ {
				signalTree(self, unix.SIGKILL)
				time.Sleep(20 * time.Millisecond)
			}
		}()
	})
}

// reapOthers reaps, while the command runs, the processes that are this session's children and
// are not the command: orphans of the command's, reparented here. The command itself is the
// pty session's to wait for.
func (r *runner) reapOthers() {
	for range r.sigchld {
		r.mu.Lock()
		main, gone := r.mainPID, r.mainGone
		r.mu.Unlock()
		if gone {
			return // linger reaps from now on
		}
		for _, pid := range children(os.Getpid()) {
			if pid != main {
				var ws unix.WaitStatus
				unix.Wait4(pid, &ws, unix.WNOHANG, nil)
			}
		}
	}
}

// linger waits until every process the command left behind has ended (or been ended), reaping
// them.
func (r *runner) linger() {
	for {
		var ws unix.WaitStatus
		_, err := unix.Wait4(-1, &ws, 0, nil)
		if err == unix.ECHILD {
			return
		}
		if err != nil && err != unix.EINTR {
			return
		}
	}
}

// send writes a frame to the client, if it is still there.
func (r *runner) send(b []byte) {
	r.sendMu.Lock()
	defer r.sendMu.Unlock()
	r.conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	r.conn.Write(b)
}

// sendExit tells the client how the command ended (once).
func (r *runner) sendExit(e execsvc.Exit) {
	r.sendMu.Lock()
	sent := r.exitSent
	r.exitSent = true
	r.sendMu.Unlock()
	if !sent {
		r.send(e.Marshal())
	}
}

// execCode is the exit status for an error of starting the command: nsmgr's Code, else 125.
func execCode(err error) int {
	var ee *nsmgr.ExecError
	if errors.As(err, &ee) {
		return ee.Code
	}
	return 125
}
