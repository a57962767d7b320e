package supervisor

import (
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"

	"github.com/vishvananda/netns"

	"github.com/wgns/wgns/firewall"
	"github.com/wgns/wgns/nsmgr"
	"github.com/wgns/wgns/ports"
	"github.com/wgns/wgns/wgns"
	"github.com/wgns/wgns/wgns/config"
)

// natpmpLifetime is the lease the supervisor asks the provider's gateway for.
var natpmpLifetime = ports.Lifetime

// portsDuty is the supervisor's work for the tunnel's ports, beside the loop: the published
// ports ([Namespace] Publish) and the provider's port forwarding (PortForward). Made with
// listenPorts before the tunnel comes up (so that a port that cannot be bound fails the up and
// leaves nothing), started once it is up, stopped before it goes down.
type portsDuty struct {
	name string
	cfg  *config.Config
	logf func(string, ...any)

	pub    *ports.Publisher
	ns     netns.NsHandle
	in     *ports.Namespace
	rec    *ports.Recorder
	fwd    *ports.Forwarder
	ann    *ports.Announcer
	cancel context.CancelFunc
	done   chan struct{}
}

// listenPorts checks what the ports need at up (PortForwardCommand's user and file) and binds
// the published ports on the host's side. The error names the config line.
func listenPorts(name string, cfg *config.Config, logf func(string, ...any)) (*portsDuty, error) {
	d := &portsDuty{name: name, cfg: cfg, ns: netns.None(),
		logf: func(format string, args ...any) { logf("wgns: %s: %s", name, fmt.Sprintf(format, args...)) }}
	if err := ports.CheckCommand(cfg.Path, cfg.Namespace.PortForward); err != nil {
		return nil, err
	}
	if len(cfg.Namespace.Publish) > 0 {
		var err error
		if d.pub, err = ports.Listen(cfg.Path, cfg.Namespace.Publish, d.logf); err != nil {
			return nil, alreadyUp(name, err)
		}
	}
	return d, nil
}

// alreadyUp turns the error of a port in use into the refusal wgns.Up gives when the tunnel is
// up already (its supervisor holds the port): that is what a second up must say.
func alreadyUp(name string, err error) error {
	if !errors.Is(err, syscall.EADDRINUSE) {
		return err
	}
	if s, serr := wgns.GetStatus(name, true); serr == nil && s.State == "ready" {
		return fmt.Errorf("%w (since %s; `wgns down %s` first)", wgns.ErrAlreadyUp, s.Since.Format(time.RFC3339), name)
	}
	return err
}

// start serves the published ports and starts the port forwarding, in the tunnel's namespace.
func (d *portsDuty) start() error {
	if d == nil { // an attachment's supervisor: no ports
		return nil
	}
	pf := d.cfg.Namespace.PortForward
	if d.pub == nil && pf == nil {
		return nil
	}
	h, err := nsmgr.Open(d.name)
	if err != nil {
		return err
	}
	d.ns = h
	pid := os.Getpid()
	d.rec = ports.NewRecorder(wgns.PortsPath(d.name), pid, nsmgr.StartTime(pid), d.logf)
	in := ports.InNamespace(h)
	d.in = in
	if d.pub != nil {
		d.pub.Serve(in)
		d.rec.SetPublished(ports.PublishedPorts(d.pub.Published()))
	}
	if pf == nil {
		return nil
	}
	var fw func([]firewall.Port) error
	if d.cfg.Namespace.Firewall {
		fw = func(p []firewall.Port) error { return firewall.SetForwarded(int(h), p) }
	}
	if pf.Command != nil {
		self, err := os.Executable()
		if err != nil {
			return fmt.Errorf("finding the wgns binary for PortForwardCommand: %w", err)
		}
		d.ann = ports.NewAnnouncer(self, d.name, pf, d.logf)
		d.ann.Start()
	}
	portPath := wgns.PortPath(d.name)
	granted := func(port uint16) {
		if port == 0 {
			ports.RemovePort(portPath)
			return
		}
		if err := ports.WritePort(portPath, port); err != nil {
			d.logf("port forwarding: %v", err)
		}
		if d.ann != nil {
			d.ann.Announce(port)
		}
	}
	// A restarted supervisor asks first for the port the last one had.
	d.fwd = ports.NewForwarder(ports.ForwardOptions{Gateway: pf.Gateway, Namespace: in, Lifetime: natpmpLifetime,
		Last: ports.ReadPort(portPath), Firewall: fw, Granted: granted, Record: d.rec.SetForward, Logf: d.logf})
	ctx, cancel := context.WithCancel(context.Background())
	d.cancel, d.done = cancel, make(chan struct{})
	go func() { defer close(d.done); d.fwd.Run(ctx) }()
	return nil
}

// peerChanged asks the provider's gateway again at once: the hook for a failover to another
// peer (its gateway knows nothing of the lease the old one granted).
func (d *portsDuty) peerChanged() {
	if d != nil && d.fwd != nil {
		d.fwd.Reask()
	}
}

// stop gives the forwarded port back, closes the published ports and every connection through
// them, and removes the ports' files. It waits at most a few seconds for the gateway.
func (d *portsDuty) stop() {
	if d == nil {
		return
	}
	if d.cancel != nil {
		d.cancel()
		select {
		case <-d.done:
		case <-time.After(5 * time.Second):
		}
	}
	if d.ann != nil {
		d.ann.Stop()
	}
	if d.pub != nil {
		d.pub.Close()
	}
	if d.in != nil {
		d.in.Close()
	}
	if d.rec != nil {
		d.rec.Remove()
	}
	if d.cfg.Namespace.PortForward != nil {
		ports.RemovePort(wgns.PortPath(d.name))
	}
	if d.ns.IsOpen() {
		d.ns.Close()
	}
}
