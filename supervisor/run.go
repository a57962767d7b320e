package supervisor

import (
	"context"
	"fmt"
	"io"
	"log"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"github.com/wgns/wgns/units"
	"github.com/wgns/wgns/wgns"
	"github.com/wgns/wgns/wgns/config"
)

// RunOptions says which tunnel Run brings up and supervises.
type RunOptions struct {
	Name       string
	ConfigPath string
	Mode       wgns.Mode // "" picks kernel WireGuard when the kernel has it
	Strict     bool      // refuse a config with lines wgns would ignore
	// ReadyFD is the readiness pipe from Start (see the package documentation); 0 when systemd
	// started the supervisor.
	ReadyFD int
	// Attach, when set, is a CNI attachment to make and hold instead of a tunnel (Name,
	// ConfigPath, Mode and Strict are then unused: its config is already read).
	Attach *wgns.AttachOptions
}

// reresolveEvery is how often the supervisor checks endpoints given as host names.
var reresolveEvery = 15 * time.Second

// Run is the supervisor: it brings the tunnel up, says it is ready (on the readiness pipe, and
// READY=1 to systemd), and supervises it until SIGTERM, SIGINT or SIGHUP, when it tears it down.
// It returns nil after a clean teardown. Errors before readiness are also sent on the pipe.
func Run(o RunOptions) error {
	return run(o, machine)
}

// held is the tunnel a supervisor holds (*wgns.Tunnel): what the loop acts on, and what the
// failover prober reads.
type held interface {
	tunnel
	failoverTunnel
	Config() *config.Config
	OpenEcho() (*wgns.Echo, error)
}

// duty is the supervisor's work beside the loop (*portsDuty): started once the tunnel is up,
// told when a failover changed the peer, stopped before the tunnel goes down.
type duty interface {
	start() error
	peerChanged()
	stop()
}

// system is how Run reaches the machine: machine in production, fakes in the tests, so that
// its wiring (what is made in which order, what a failure undoes) is tested without root.
type system struct {
	bringUp      func(o RunOptions, warn func(string), before func(*config.Config) error) (held, error)
	listenPorts  func(name string, cfg *config.Config, logf func(string, ...any)) (duty, error)
	signals      func(c chan<- os.Signal) (stop func())
	watchNetwork func(ctx context.Context, settle time.Duration, changed func()) error
	watchSleep   func(ctx context.Context, events chan<- eventKind, logf func(string, ...any))
	stderr       io.Writer
}

var machine = system{
	bringUp: func(o RunOptions, warn func(string), before func(*config.Config) error) (held, error) {
		t, err := bringUp(o, warn, before)
		if err != nil {
			return nil, err // not a nil *wgns.Tunnel in a non-nil held
		}
		return t, nil
	},
	listenPorts: func(name string, cfg *config.Config, logf func(string, ...any)) (duty, error) {
		d, err := listenPorts(name, cfg, logf)
		if err != nil {
			return nil, err
		}
		return d, nil
	},
	signals: func(c chan<- os.Signal) func() {
		signal.Notify(c, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
		return func() { signal.Stop(c) }
	},
	watchNetwork: wgns.WatchNetwork,
	watchSleep:   watchSleep,
	stderr:       os.Stderr,
}

// run is Run on the given system.
func run(o RunOptions, sys system) error {
	rep := newReporter(o.ReadyFD)
	defer rep.close()
	sigs := make(chan os.Signal, 1)
	defer sys.signals(sigs)()
	warn := func(s string) {
		fmt.Fprintln(sys.stderr, "wgns: warning:", s)
		rep.warn(s)
	}
	logf := log.New(sys.stderr, "", 0).Printf
	// Ports (ports.go): the published ports are bound before the tunnel is made, so that one
	// that cannot be bound fails the up and leaves nothing; they are served once it is up.
	var pd duty = noDuty{}
	t, err := sys.bringUp(o, warn, func(cfg *config.Config) error {
		d, err := sys.listenPorts(o.Name, cfg, logf)
		if err == nil {
			pd = d
		}
		return err
	})
	if err != nil {
		pd.stop()
		rep.fail(err)
		return err
	}
	if err := pd.start(); err != nil {
		pd.stop()
		if derr := t.Down(); derr != nil {
			err = fmt.Errorf("%w (and tearing down: %v)", err, derr)
		}
		rep.fail(err)
		return err
	}
	failovers, stopFailover := startFailover(o.Name, t, logf) // its groups are recorded before ready
	defer stopFailover()
	n := units.NewNotifier()
	n.Ready()
	rep.ready()

	stopStatus := func() {}
	if n.Enabled() {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { reportStatus(ctx, n, o.Name); close(done) }()
		stopStatus = func() { cancel(); <-done }
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	events := make(chan eventKind, 2)
	t.UplinkChanged() // remember the way to the peers as it is now
	if err := sys.watchNetwork(ctx, networkSettle, func() { post(events, networkChanged) }); err != nil {
		logf("wgns: %s: %v (a new uplink will be noticed by WireGuard's own timers only)", o.Name, err)
	}
	go sys.watchSleep(ctx, events, logf)
	l := &loop{name: o.Name, t: t, clk: realClock{}, n: n, sigs: sigs, events: events, reresolveEvery: reresolveEvery,
		logf: logf, beforeDown: func() { stopStatus(); stopFailover(); pd.stop() }, failovers: failovers, peerChanged: pd.peerChanged}
	return l.run()
}

// noDuty is the duty of a supervisor whose ports were not set up (an attachment, or an up
// that failed before).
type noDuty struct{}

func (noDuty) start() error { return nil }
func (noDuty) peerChanged() {}
func (noDuty) stop()        {}

// bringUp makes the tunnel (or the attachment) this supervisor holds; before, if not nil, is
// given a tunnel's config once read, before anything is made (an attachment has none).
func bringUp(o RunOptions, warn func(string), before func(*config.Config) error) (*wgns.Tunnel, error) {
	if o.Attach != nil {
		a := *o.Attach
		a.Warn = warn
		return wgns.Attach(a)
	}
	var opts []config.Option
	if o.Strict {
		opts = append(opts, config.Strict())
	}
	cfg, err := config.Load(o.ConfigPath, opts...)
	if err != nil {
		return nil, err
	}
	for _, w := range cfg.Warnings {
		warn(w)
	}
	if before != nil {
		if err := before(cfg); err != nil {
			return nil, err
		}
	}
	return wgns.Up(wgns.UpOptions{Name: o.Name, Config: cfg, Mode: o.Mode, Warn: warn})
}

// tunnel is what the loop supervises: a *wgns.Tunnel held by this process.
type tunnel interface {
	Mode() wgns.Mode
	Dead() <-chan struct{}
	Recover() ([]string, error)
	NamedEndpoints() bool
	Reresolve(ctx context.Context) ([]string, error)
	UplinkChanged() bool
	Rebind(ctx context.Context) ([]string, error)
	Rehandshake(ctx context.Context) ([]string, error)
	Failover(ctx context.Context, group int) (from, to wgtypes.Key, err error)
	Down() error
}

var _ tunnel = (*wgns.Tunnel)(nil)

// clock is the loop's time: the real one, or a fake in tests.
type clock interface {
	now() time.Time
	after(d time.Duration) <-chan time.Time
	ticker(d time.Duration) (c <-chan time.Time, stop func())
}

type realClock struct{}

func (realClock) now() time.Time { return time.Now() }

func (realClock) after(d time.Duration) <-chan time.Time { return time.After(d) }

func (realClock) ticker(d time.Duration) (<-chan time.Time, func()) {
	t := time.NewTicker(d)
	return t.C, t.Stop
}

// notifier is the service manager's side (units.Notifier; without systemd it does nothing).
type notifier interface {
	Status(string) error
	Stopping() error
}

// loop is the supervisor's decisions: what it does on each event, one at a time.
type loop struct {
	name           string
	t              tunnel
	clk            clock
	n              notifier
	sigs           <-chan os.Signal
	events         <-chan eventKind // from the watchers
	reresolveEvery time.Duration
	logf           func(format string, args ...any)
	beforeDown     func()                 // stops what reports status, so that no STATUS= follows STOPPING=1
	failovers      <-chan failoverRequest // from the failover prober (failover.go)
	// peerChanged is called after a failover moved a group to another peer: the provider's
	// port forwarding then asks the new peer's gateway at once. Nil for none.
	peerChanged func()

	lastResume time.Time
}

// resumeEvery is how often a resume is acted on at most: a flood of forged or repeated signals
// costs one new handshake per interval.
const resumeEvery = 5 * time.Second

// maxBackoff bounds the wait between two failed attempts to recover the device.
const maxBackoff = 30 * time.Second

// run handles events until a signal tears the tunnel down.
func (l *loop) run() error {
	// Endpoints given as host names are resolved again when handshakes stop; a tunnel with
	// literal addresses only has nothing to check, and its supervisor sleeps.
	var reresolve <-chan time.Time
	if l.t.NamedEndpoints() {
		c, stop := l.clk.ticker(l.reresolveEvery)
		defer stop()
		reresolve = c
	}
	for {
		select {
		case sig := <-l.sigs:
			return l.down(sig)
		case <-l.t.Dead():
			if sig := l.recover(); sig != nil {
				return l.down(sig)
			}
		case <-reresolve:
			l.reresolve()
		case ev := <-l.events:
			l.handle(ev)
		case req := <-l.failovers:
			l.failover(req)
		}
	}
}

// handle acts on what a watcher saw: after a change of the host's network that moved the way
// to the peers, it points them at their endpoints afresh (WireGuard would keep sending from a
// source address that may be gone); after a resume, it also starts new sessions at once.
func (l *loop) handle(ev eventKind) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var done []string
	var err error
	switch ev {
	case networkChanged:
		if !l.t.UplinkChanged() {
			return
		}
		done, err = l.t.Rebind(ctx)
	case resumed:
		if now := l.clk.now(); !l.lastResume.IsZero() && now.Sub(l.lastResume) < resumeEvery {
			return
		} else {
			l.lastResume = now
		}
		done, err = l.t.Rehandshake(ctx)
	}
	if err != nil {
		l.logf("wgns: %s: %s: %v", l.name, ev, err)
		return
	}
	l.logf("wgns: %s: %s: %s", l.name, ev, strings.Join(done, "; "))
}

// recover makes the device again after it stopped, retrying with a growing pause until it
// works. Meanwhile the namespace and its firewall stay: nothing inside gets a path out. It
// returns the signal that interrupted it, if one did.
func (l *loop) recover() os.Signal {
	l.n.Status(fmt.Sprintf("%s: WireGuard device stopped; recreating it", l.name))
	for attempt := 1; ; attempt++ {
		actions, err := l.t.Recover()
		if err == nil {
			l.logf("wgns: %s: WireGuard device stopped; recovered: %s", l.name, strings.Join(actions, "; "))
			l.n.Status(fmt.Sprintf("%s is up (%s WireGuard), recovered", l.name, l.t.Mode()))
			return nil
		}
		pause := min(time.Duration(attempt)*time.Second, maxBackoff)
		l.logf("wgns: %s: recovering the WireGuard device (attempt %d, next in %s): %v", l.name, attempt, pause, err)
		select {
		case sig := <-l.sigs:
			return sig
		case <-l.clk.after(pause):
		}
	}
}

func (l *loop) reresolve() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	moved, err := l.t.Reresolve(ctx)
	switch {
	case err != nil:
		l.logf("wgns: %s: re-resolving endpoints: %v", l.name, err)
	case len(moved) > 0:
		l.logf("wgns: %s: endpoint moved: %s", l.name, strings.Join(moved, ", "))
	}
}

func (l *loop) down(sig os.Signal) error {
	if l.beforeDown != nil {
		l.beforeDown()
	}
	l.n.Stopping()
	if err := l.t.Down(); err != nil {
		return fmt.Errorf("tearing down on %v: %w", sig, err)
	}
	return nil
}
