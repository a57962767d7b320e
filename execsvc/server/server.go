// Package server is `wgns serve`, the root service behind sudo-free `wgns exec` (the protocol
// and the client are package execsvc's).
//
// One service process accepts connections on the socket. For each it reads one request within
// a deadline, bounded in size, learns who the caller is from the kernel (SO_PEERCRED and
// SO_PEERGROUPS for the process that connected, which must also be the process that sent the
// request, SCM_CREDENTIALS; a pidfd against PID reuse), refuses root, callers in a container or
// sandbox of their own, callers the tunnel's Users do not name and tunnels that are not up, and
// starts a session: a process of its own (`wgns serve --session`) that runs the command as
// exactly that caller, relays its terminal and signals, reports how it ended, and stays while
// anything it started runs (it is their subreaper, so a program that daemonizes stays its
// descendant). The service keeps a record of every session's grant and watches the tunnels'
// records (/run/wgns) and the user database (/etc): when a grant is gone (the tunnel went down
// or was brought up anew, or the last up or repair no longer lets the user in), it tells the
// session, which ends everything it started and tells the client why.
//
// Nothing a user does holds a lock of the service: each connection has its own goroutine, its
// request a deadline and a size limit, and each user a bounded number of pending connections
// and sessions.
package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/wgns/wgns/execsvc"
	"github.com/wgns/wgns/nsmgr"
	"github.com/wgns/wgns/wgns/ready"
)

// Limits of what one user, or all together, can hold of the service.
const (
	// RequestTimeout is how long a client has, from connecting, to send its request whole.
	RequestTimeout = 10 * time.Second
	// maxPendingPerUser and maxPending bound connections whose request is not read yet.
	maxPendingPerUser = 4
	maxPending        = 64
	// maxSessionsPerUser and maxSessions bound the commands running through the service.
	maxSessionsPerUser = 128
	maxSessions        = 2048
	// endGrace is how long a session's programs get between SIGTERM and SIGKILL when their
	// grant is gone.
	endGrace = 3 * time.Second
)

// Server is the service.
type Server struct {
	// Session is how a session process is started: the wgns binary and the arguments that make
	// it one (`wgns serve --session`).
	Session []string
	// Log receives one line per request and per ended session.
	Log *log.Logger

	tunnels  tunnels
	accounts accounts

	mu       sync.Mutex
	pending  map[uint32]int
	npending int
	sessions map[*session]struct{}
	perUser  map[uint32]int
	closing  bool
	wg       sync.WaitGroup
}

// session is the service's record of a running session.
type session struct {
	grant
	proc   *os.Process
	ctl    *os.File // the session's control pipe: the service writes end messages
	ending bool
	done   chan struct{}
}

// New returns a service that starts sessions with the command line session.
func New(sessionCmd []string, logger *log.Logger) *Server {
	return &Server{Session: sessionCmd, Log: logger, tunnels: stateFiles{}, accounts: userDB{},
		pending: map[uint32]int{}, sessions: map[*session]struct{}{}, perUser: map[uint32]int{}}
}

// Serve accepts connections on ln until ctx is done, then ends every session (their programs
// too) and returns once they have ended. The listener must be a unix stream socket; Serve sets
// SO_PASSCRED on it so that every request carries its sender's credentials.
func (s *Server) Serve(ctx context.Context, ln *net.UnixListener) error {
	if err := setPassCred(ln); err != nil {
		return err
	}
	w, err := newWatcher()
	if err != nil {
		return err
	}
	defer w.close()
	go w.run(s.reevaluate)

	stop := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
			s.mu.Lock()
			s.closing = true
			s.mu.Unlock()
			ln.Close()
		case <-stop:
		}
	}()
	defer close(stop)
	for {
		c, err := ln.AcceptUnix()
		if err != nil {
			if ctx.Err() != nil {
				s.shutdown("ended by the wgns service, with everything it started: the service stopped")
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) {
				time.Sleep(100 * time.Millisecond) // out of descriptors for now: let sessions end
				continue
			}
			return fmt.Errorf("accepting connections: %w", err)
		}
		go s.handle(c)
	}
}

// setPassCred makes every message to a socket accepted from ln carry its sender's credentials.
func setPassCred(ln *net.UnixListener) error {
	rc, err := ln.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_PASSCRED, 1)
	}); err != nil {
		return err
	}
	if serr != nil {
		return fmt.Errorf("setting SO_PASSCRED on the service's socket: %w", serr)
	}
	return nil
}

// handle serves one connection: it reads and checks the request, and starts a session for it or
// says why not.
func (s *Server) handle(c *net.UnixConn) {
	defer c.Close()
	fd, err := connFd(c)
	if err != nil {
		return
	}
	who, pidfd, err := peer(fd)
	if err != nil {
		s.refuse(c, nil, 125, err)
		return
	}
	defer unix.Close(pidfd)
	if !s.enter(who.UID) {
		s.refuse(c, who, 125, fmt.Errorf("user %d has %d requests to the wgns service pending, the most it may have; try again", who.UID, maxPendingPerUser))
		return
	}
	req, files, err := s.readRequest(c, who)
	s.leave(who.UID)
	defer closeAll(files)
	if err != nil {
		s.refuse(c, who, 125, err)
		return
	}
	if err := s.start(c, who, pidfd, req, files); err != nil {
		s.refuse(c, who, 125, err)
	}
}

// enter counts a pending request of uid, or reports false when it has too many.
func (s *Server) enter(uid uint32) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pending[uid] >= maxPendingPerUser || s.npending >= maxPending {
		return false
	}
	s.pending[uid]++
	s.npending++
	return true
}

func (s *Server) leave(uid uint32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pending[uid]--; s.pending[uid] == 0 {
		delete(s.pending, uid)
	}
	s.npending--
}

// readRequest reads the request, with the files attached to it, within RequestTimeout, and
// checks that the process that connected sent it.
func (s *Server) readRequest(c *net.UnixConn, who *Caller) (*execsvc.Request, []*os.File, error) {
	c.SetReadDeadline(time.Now().Add(RequestTimeout))
	defer c.SetReadDeadline(time.Time{})
	buf := make([]byte, 64<<10)
	oob := make([]byte, 512)
	n, oobn, flags, _, err := c.ReadMsgUnix(buf, oob)
	if err != nil || n == 0 {
		return nil, nil, readError(err)
	}
	files, sent, err := parseControl(oob[:oobn])
	if err != nil {
		return nil, nil, err
	}
	if flags&unix.MSG_CTRUNC != 0 {
		closeAll(files)
		return nil, nil, fmt.Errorf("%w: more descriptors were attached to the request than the standard files", execsvc.ErrProtocol)
	}
	if err := who.verifySender(sent); err != nil {
		closeAll(files)
		return nil, nil, err
	}
	data := buf[:n]
	for len(data) < execsvc.HeaderSize {
		more := make([]byte, execsvc.HeaderSize-len(data))
		if _, err := io.ReadFull(c, more); err != nil {
			closeAll(files)
			return nil, nil, readError(err)
		}
		data = append(data, more...)
	}
	typ, size := execsvc.Header(data)
	if typ != execsvc.FrameRequest || size > execsvc.MaxRequest {
		closeAll(files)
		return nil, nil, fmt.Errorf("%w: a frame of type %q and %d bytes where a request was due", execsvc.ErrProtocol, typ, size)
	}
	total := execsvc.HeaderSize + int(size)
	if len(data) > total {
		closeAll(files)
		return nil, nil, fmt.Errorf("%w: bytes after the request", execsvc.ErrProtocol)
	}
	payload := make([]byte, total)
	copy(payload, data)
	if _, err := io.ReadFull(c, payload[len(data):]); err != nil {
		closeAll(files)
		return nil, nil, readError(err)
	}
	req, err := execsvc.ParseRequest(payload[execsvc.HeaderSize:])
	if err != nil {
		closeAll(files)
		return nil, nil, err
	}
	if bitCount(req.Files) != len(files) || req.Files > 7 {
		closeAll(files)
		return nil, nil, fmt.Errorf("%w: the request names %d standard files and has %d attached", execsvc.ErrProtocol, bitCount(req.Files), len(files))
	}
	return req, files, nil
}

// parseControl returns the descriptors and the sender's credentials attached to a message.
func parseControl(oob []byte) ([]*os.File, *unix.Ucred, error) {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: unreadable control data: %v", execsvc.ErrProtocol, err)
	}
	var files []*os.File
	var sent *unix.Ucred
	for i := range msgs {
		m := &msgs[i]
		if m.Header.Level != unix.SOL_SOCKET {
			continue
		}
		switch m.Header.Type {
		case unix.SCM_RIGHTS:
			fds, err := unix.ParseUnixRights(m)
			if err != nil {
				closeAll(files)
				return nil, nil, fmt.Errorf("%w: %v", execsvc.ErrProtocol, err)
			}
			for _, fd := range fds {
				unix.CloseOnExec(fd)
				files = append(files, os.NewFile(uintptr(fd), "the caller's file"))
			}
		case unix.SCM_CREDENTIALS:
			if sent, err = unix.ParseUnixCredentials(m); err != nil {
				closeAll(files)
				return nil, nil, fmt.Errorf("%w: %v", execsvc.ErrProtocol, err)
			}
		}
	}
	if len(files) > 3 {
		closeAll(files)
		return nil, nil, fmt.Errorf("%w: %d descriptors attached to the request, more than the standard files", execsvc.ErrProtocol, len(files))
	}
	return files, sent, nil
}

// start checks the caller and the grant, and starts the session.
func (s *Server) start(c *net.UnixConn, who *Caller, pidfd int, req *execsvc.Request, files []*os.File) error {
	if who.UID == 0 {
		return fmt.Errorf("%w: root runs wgns exec itself, not through the service", errRefused)
	}
	if err := nsmgr.ValidateName(req.Name); err != nil {
		return err
	}
	if len(req.Argv) == 0 || req.Argv[0] == "" {
		return errors.New("no command given (wgns exec NAME -- CMD [ARG...])")
	}
	if err := who.inspect(pidfd); err != nil {
		return err
	}
	netns, err := check(s.tunnels, s.accounts, req.Name, who.UID, nsmgr.ID{})
	if err != nil {
		return err
	}
	ns, err := ready.Open(req.Name)
	if err != nil {
		return err
	}
	nsFile := os.NewFile(uintptr(ns), "netns "+req.Name)
	defer nsFile.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(ns), &st); err != nil || (nsmgr.ID{Dev: st.Dev, Ino: st.Ino}) != netns {
		return fmt.Errorf("tunnel %q was brought up anew while starting; try again", req.Name)
	}

	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return errors.New("the wgns service is stopping")
	}
	if s.perUser[who.UID] >= maxSessionsPerUser || len(s.sessions) >= maxSessions {
		s.mu.Unlock()
		return fmt.Errorf("user %d runs %d commands through the wgns service, the most it may", who.UID, s.perUser[who.UID])
	}
	sess := &session{grant: grant{name: req.Name, uid: who.UID, netns: netns}, done: make(chan struct{})}
	s.sessions[sess] = struct{}{}
	s.perUser[who.UID]++
	s.mu.Unlock()

	if err := s.spawn(sess, c, who, req, nsFile, files); err != nil {
		s.forget(sess)
		return err
	}
	s.Log.Printf("uid %d (process %d) in %s: %q started (session %d)", who.UID, who.PID, req.Name, req.Argv, sess.proc.Pid)
	// A grant that went while this one was being checked: the watcher may have looked before
	// the session was recorded.
	if _, err := check(s.tunnels, s.accounts, sess.name, sess.uid, sess.netns); err != nil {
		s.end(sess, "ended by the wgns service, with everything it started: "+err.Error())
	}
	return nil
}

// spawn starts the session process with the connection, its control pipe, the namespace and
// the caller's files, and gives it the caller and the request.
func (s *Server) spawn(sess *session, c *net.UnixConn, who *Caller, req *execsvc.Request, ns *os.File, files []*os.File) error {
	conn, err := c.File()
	if err != nil {
		return fmt.Errorf("handing the connection to a session: %w", err)
	}
	defer conn.Close()
	r, w, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("making a session's control pipe: %w", err)
	}
	defer r.Close()
	cmd := exec.Command(s.Session[0], s.Session[1:]...)
	cmd.ExtraFiles = append([]*os.File{conn, r, ns}, files...)
	cmd.Stderr = os.Stderr
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		w.Close()
		return fmt.Errorf("starting a session: %w", err)
	}
	sess.proc, sess.ctl = cmd.Process, w
	enc := json.NewEncoder(w)
	if err := enc.Encode(control{Caller: who, Request: req}); err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		w.Close()
		return fmt.Errorf("starting a session: %w", err)
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		err := cmd.Wait()
		s.Log.Printf("uid %d in %s: session %d ended (%v)", sess.uid, sess.name, sess.proc.Pid, exitText(err))
		s.forget(sess)
	}()
	return nil
}

// control is what the service tells a session on its control pipe: first the caller and the
// request, later (once) why it must end everything it started.
type control struct {
	Caller  *Caller          `json:",omitempty"`
	Request *execsvc.Request `json:",omitempty"`
	End     string           `json:",omitempty"`
}

// forget removes a session from the record.
func (s *Server) forget(sess *session) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.sessions[sess]; !ok {
		return
	}
	delete(s.sessions, sess)
	if s.perUser[sess.uid]--; s.perUser[sess.uid] == 0 {
		delete(s.perUser, sess.uid)
	}
	if sess.ctl != nil {
		sess.ctl.Close()
	}
	close(sess.done)
}

// end tells a session to end everything it started, for reason (once).
func (s *Server) end(sess *session, reason string) {
	s.mu.Lock()
	if _, ok := s.sessions[sess]; !ok || sess.ending {
		s.mu.Unlock()
		return
	}
	sess.ending = true
	ctl := sess.ctl
	s.mu.Unlock()
	s.Log.Printf("uid %d in %s: ending session %d: %s", sess.uid, sess.name, sess.proc.Pid, reason)
	// The pipe holds far more than one message: this does not block on a session that reads
	// nothing (and a session that is gone closed its end).
	json.NewEncoder(ctl).Encode(control{End: reason})
}

// reevaluate checks every session's grant again, and ends those whose grant is gone.
func (s *Server) reevaluate() {
	s.mu.Lock()
	var all []*session
	for sess := range s.sessions {
		if !sess.ending {
			all = append(all, sess)
		}
	}
	s.mu.Unlock()
	for _, sess := range all {
		if _, err := check(s.tunnels, s.accounts, sess.name, sess.uid, sess.netns); err != nil {
			s.end(sess, "ended by the wgns service, with everything it started: "+err.Error())
		}
	}
}

// shutdown ends every session and waits until they are gone.
func (s *Server) shutdown(reason string) {
	s.mu.Lock()
	s.closing = true
	var all []*session
	for sess := range s.sessions {
		all = append(all, sess)
	}
	s.mu.Unlock()
	for _, sess := range all {
		s.end(sess, reason)
	}
	s.wg.Wait()
}

// refuse tells the client why its command does not run, and logs it.
func (s *Server) refuse(c *net.UnixConn, who *Caller, code int, err error) {
	if who != nil {
		s.Log.Printf("uid %d (process %d): refused: %v", who.UID, who.PID, err)
	} else {
		s.Log.Printf("refused: %v", err)
	}
	c.SetWriteDeadline(time.Now().Add(time.Second))
	c.Write(execsvc.Exit{Code: code, Message: err.Error()}.Marshal())
}

// connFd returns the descriptor of c (valid while c is open).
func connFd(c *net.UnixConn) (int, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return -1, err
	}
	fd := -1
	if err := rc.Control(func(f uintptr) { fd = int(f) }); err != nil {
		return -1, err
	}
	return fd, nil
}

func closeAll(files []*os.File) {
	for _, f := range files {
		f.Close()
	}
}

func bitCount(v uint32) int {
	n := 0
	for ; v != 0; v &= v - 1 {
		n++
	}
	return n
}

// readError says why a request could not be read.
func readError(err error) error {
	var ne net.Error
	switch {
	case err == nil, errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return errors.New("the client hung up before its request was whole")
	case errors.As(err, &ne) && ne.Timeout():
		return fmt.Errorf("no whole request within %v of connecting", RequestTimeout)
	}
	return fmt.Errorf("reading the request: %w", err)
}

func exitText(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}
