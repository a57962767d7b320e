package ports

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/wgns/wgns/identity"
	"github.com/wgns/wgns/wgns/config"
)

// CommandTimeout bounds one run of PortForwardCommand.
const CommandTimeout = 60 * time.Second

// PortEnv is the variable that holds the forwarded port in PortForwardCommand's environment;
// TunnelEnv holds the tunnel's name.
const (
	PortEnv   = "WGNS_FORWARDED_PORT"
	TunnelEnv = "WGNS_TUNNEL"
)

// CheckCommand checks, at up, that PortForwardCommand can run: its user exists and is not root,
// and its file is there and executable. path names the config in errors.
func CheckCommand(path string, pf *config.PortForward) error {
	if pf == nil || pf.Command == nil {
		return nil
	}
	who, err := identity.Resolve(pf.User, func(string) string { return "" }, 0)
	if err != nil {
		return fmt.Errorf("%s:%d: PortForwardUser: %w", path, pf.UserLine, err)
	}
	if who.Root {
		return fmt.Errorf("%s:%d: PortForwardUser %q is root (uid 0); the command never runs as root", path, pf.UserLine, pf.User)
	}
	fi, err := os.Stat(pf.Command[0])
	switch {
	case err != nil:
		return fmt.Errorf("%s:%d: PortForwardCommand: %w", path, pf.CommandLine, err)
	case !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0:
		return fmt.Errorf("%s:%d: PortForwardCommand %s: not an executable file", path, pf.CommandLine, pf.Command[0])
	}
	return nil
}

// Announcer runs PortForwardCommand inside the tunnel, as its user, each time the forwarded
// port is granted or changes, one run at a time: a port that changes during a run is announced
// once the run ends, and only the latest port is. It runs `wgns exec --user USER
// --no-new-privs NAME -- COMMAND`, so the command gets exactly what exec gives any command (the
// namespace, its DNS view, the user's identity and environment), plus WGNS_FORWARDED_PORT and
// WGNS_TUNNEL.
type Announcer struct {
	run  func(ctx context.Context, port uint16) (output []byte, err error)
	logf func(string, ...any)

	mu      sync.Mutex
	pending bool
	port    uint16
	kick    chan struct{}
	done    chan struct{}
	stop    context.CancelFunc
	ctx     context.Context
	timeout time.Duration
}

// NewAnnouncer returns an Announcer of pf's command for tunnel name, run through the wgns binary
// self. Start it with Start; Stop ends it.
func NewAnnouncer(self, name string, pf *config.PortForward, logf func(string, ...any)) *Announcer {
	run := func(ctx context.Context, port uint16) ([]byte, error) {
		args := append([]string{"exec", "--user", pf.User, "--no-new-privs", name, "--"}, pf.Command...)
		cmd := exec.CommandContext(ctx, self, args...)
		// Nothing of the supervisor's own environment (NOTIFY_SOCKET, say) reaches the command.
		cmd.Env = []string{"PATH=" + identity.RootPath, "LANG=C.UTF-8", PortEnv + "=" + strconv.Itoa(int(port)), TunnelEnv + "=" + name}
		cmd.Dir = "/"
		var out limitedBuffer
		cmd.Stdout, cmd.Stderr = &out, &out
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
		cmd.WaitDelay = time.Second
		err := cmd.Run()
		return out.b.Bytes(), err
	}
	return newAnnouncer(run, logf)
}

func newAnnouncer(run func(context.Context, uint16) ([]byte, error), logf func(string, ...any)) *Announcer {
	ctx, cancel := context.WithCancel(context.Background())
	return &Announcer{run: run, logf: logf, kick: make(chan struct{}, 1), done: make(chan struct{}),
		ctx: ctx, stop: cancel, timeout: CommandTimeout}
}

// Start starts the goroutine that runs the command.
func (a *Announcer) Start() {
	go func() {
		defer close(a.done)
		for {
			select {
			case <-a.ctx.Done():
				return
			case <-a.kick:
			}
			a.mu.Lock()
			port, pending := a.port, a.pending
			a.pending = false
			a.mu.Unlock()
			if pending {
				a.once(port)
			}
		}
	}()
}

// Announce asks for a run with port; it never blocks. Port 0 (the lease ran out) is not
// announced: the command is told the next port.
func (a *Announcer) Announce(port uint16) {
	if port == 0 {
		return
	}
	a.mu.Lock()
	a.port, a.pending = port, true
	a.mu.Unlock()
	select {
	case a.kick <- struct{}{}:
	default:
	}
}

// Stop ends a run in progress and the goroutine.
func (a *Announcer) Stop() {
	a.stop()
	<-a.done
}

func (a *Announcer) once(port uint16) {
	ctx, cancel := context.WithTimeout(a.ctx, a.timeout)
	defer cancel()
	out, err := a.run(ctx, port)
	text := strings.TrimSpace(string(out))
	if text != "" {
		text = ": " + strings.ReplaceAll(text, "\n", " | ")
	}
	switch {
	case a.ctx.Err() != nil:
	case ctx.Err() != nil:
		a.logf("port forwarding: PortForwardCommand for port %d did not finish in %s; ended%s", port, a.timeout, text)
	case err != nil:
		a.logf("port forwarding: PortForwardCommand for port %d: %v%s", port, err, text)
	default:
		a.logf("port forwarding: PortForwardCommand told port %d%s", port, text)
	}
}

// limitedBuffer keeps the first 4 KiB written to it.
type limitedBuffer struct{ b bytes.Buffer }

const maxOutput = 4 << 10

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if room := maxOutput - l.b.Len(); room > 0 {
		l.b.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}
