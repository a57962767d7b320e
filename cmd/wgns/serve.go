package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/coreos/go-systemd/v22/activation"
	"golang.org/x/sys/unix"

	"github.com/wgns/wgns/execsvc/server"
)

// ServeCmd is `wgns serve`: the root service behind sudo-free `wgns exec`.
type ServeCmd struct {
	Socket  string `default:"/run/wgns.sock" placeholder:"PATH" help:"Where to listen when not started by systemd's wgns.socket (which passes its socket instead)."`
	Session bool   `hidden:"" help:"Run one session (started by wgns serve itself)."`
}

// Run serves until SIGTERM or SIGINT, then ends every program started through it.
func (c *ServeCmd) Run() error {
	if c.Session {
		if code := server.RunSession(); code != 0 {
			return &exitError{code: code}
		}
		return nil
	}
	if err := needRoot("serve", "it runs programs as the users who ask, in their tunnels"); err != nil {
		return err
	}
	ln, err := c.listener()
	if err != nil {
		return err
	}
	defer ln.Close()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	logger := log.New(os.Stderr, "", 0)
	logger.Printf("wgns serve: listening on %s", ln.Addr())
	srv := server.New([]string{"/proc/self/exe", "serve", "--session"}, logger)
	return srv.Serve(ctx, ln)
}

// listener returns the socket systemd passed (wgns.socket), or listens on c.Socket.
func (c *ServeCmd) listener() (*net.UnixListener, error) {
	lns, err := activation.Listeners()
	if err != nil {
		return nil, fmt.Errorf("reading the sockets systemd passed: %w", err)
	}
	switch len(lns) {
	case 0:
	case 1:
		if ul, ok := lns[0].(*net.UnixListener); ok {
			return ul, nil
		}
		return nil, fmt.Errorf("systemd passed a socket of type %T; wgns.socket listens on a unix stream socket", lns[0])
	default:
		return nil, fmt.Errorf("systemd passed %d sockets; wgns.socket passes one", len(lns))
	}
	return listenUnix(c.Socket)
}

// listenUnix listens on path, a socket every user may connect to (the service decides who may
// do what). A socket left by a service that is gone is replaced; one that answers is not.
func listenUnix(path string) (*net.UnixListener, error) {
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err == nil {
		if st.Mode&unix.S_IFMT != unix.S_IFSOCK {
			return nil, fmt.Errorf("listening on %s: it exists and is not a socket; leaving it alone", path)
		}
		if c, err := net.Dial("unix", path); err == nil {
			c.Close()
			return nil, fmt.Errorf("listening on %s: a service answers there already", path)
		}
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("removing the stale socket %s: %w", path, err)
		}
	}
	old := unix.Umask(0o111)
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	unix.Umask(old)
	if err != nil {
		return nil, fmt.Errorf("listening on %s: %w", path, err)
	}
	ln.SetUnlinkOnClose(true)
	if err := os.Chmod(path, 0o666); err != nil {
		ln.Close()
		return nil, fmt.Errorf("letting every user connect to %s: %w", path, err)
	}
	return ln, nil
}
