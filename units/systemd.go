package units

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/coreos/go-systemd/v22/daemon"
	"github.com/coreos/go-systemd/v22/dbus"
)

// ErrNoSystemd reports that systemd is not the running init system, so there
// is no manager to reload; the caller can tell the user to reload later.
var ErrNoSystemd = errors.New("systemd is not running")

// Reload asks the system's systemd for a daemon-reload over D-Bus (the system
// bus, or systemd's private socket when root and the bus is down), so that
// installed or removed drop-ins take effect. It returns an error wrapping
// ErrNoSystemd when systemd is not running, checked like sd_booted(3) does.
func Reload(ctx context.Context) error {
	return defaultReloader.reload(ctx)
}

// managerConn is the part of a systemd D-Bus connection that Reload uses.
type managerConn interface {
	ReloadContext(ctx context.Context) error
	Close()
}

// reloader holds Reload's side effects, replaced in tests.
type reloader struct {
	// bootedPath is the directory that exists only when systemd is PID 1.
	bootedPath string
	connect    func(ctx context.Context) (managerConn, error)
}

var defaultReloader = reloader{
	bootedPath: "/run/systemd/system",
	connect: func(ctx context.Context) (managerConn, error) {
		c, err := dbus.NewWithContext(ctx)
		if err != nil {
			return nil, err
		}
		return c, nil
	},
}

func (r reloader) reload(ctx context.Context) error {
	const act = "reloading systemd units (daemon-reload)"
	fi, err := os.Lstat(r.bootedPath)
	switch {
	case errors.Is(err, fs.ErrNotExist) || err == nil && !fi.IsDir():
		return fmt.Errorf("%s: no %s: %w", act, r.bootedPath, ErrNoSystemd)
	case err != nil:
		return fmt.Errorf("%s: checking for systemd: %w", act, err)
	}
	conn, err := r.connect(ctx)
	if err != nil {
		return fmt.Errorf("%s: connecting to systemd: %w", act, err)
	}
	defer conn.Close()
	if err := conn.ReloadContext(ctx); err != nil {
		return fmt.Errorf("%s: %w", act, err)
	}
	return nil
}

// Notifier sends sd_notify(3) messages to the service manager that started
// this process, through the socket named by NOTIFY_SOCKET. Without that
// variable its methods do nothing and return nil. It is safe for concurrent
// use.
type Notifier struct {
	enabled bool
}

// NewNotifier returns a Notifier for the NOTIFY_SOCKET of the environment.
func NewNotifier() *Notifier {
	return &Notifier{enabled: os.Getenv("NOTIFY_SOCKET") != ""}
}

// Enabled reports whether NOTIFY_SOCKET was set when the Notifier was made,
// that is whether a service manager is listening (Type=notify).
func (n *Notifier) Enabled() bool {
	return n.enabled
}

// Ready tells the service manager that start-up has finished (READY=1).
func (n *Notifier) Ready() error {
	return n.send(daemon.SdNotifyReady)
}

// Status sets the free-form status line that systemctl status shows
// (STATUS=...). Line breaks in s become spaces, so s cannot add other
// assignments to the message.
func (n *Notifier) Status(s string) error {
	return n.send("STATUS=" + strings.NewReplacer("\r\n", " ", "\n", " ", "\r", " ").Replace(s))
}

// Stopping tells the service manager that shutdown has begun (STOPPING=1).
func (n *Notifier) Stopping() error {
	return n.send(daemon.SdNotifyStopping)
}

func (n *Notifier) send(state string) error {
	if !n.enabled {
		return nil
	}
	if _, err := daemon.SdNotify(false, state); err != nil {
		return fmt.Errorf("notifying the service manager of %q: %w", state, err)
	}
	return nil
}
