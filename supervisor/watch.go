package supervisor

import (
	"context"
	"time"

	"github.com/coreos/go-systemd/v22/login1"
	"github.com/godbus/dbus/v5"
)

// eventKind is what a watcher saw.
type eventKind int

const (
	// networkChanged: the host's routes, addresses or interfaces changed (a new uplink, a
	// Wi-Fi roam, a moved default route).
	networkChanged eventKind = iota
	// resumed: the machine woke up from sleep (logind's PrepareForSleep(false)).
	resumed
)

func (k eventKind) String() string {
	switch k {
	case networkChanged:
		return "the host's network changed"
	case resumed:
		return "resumed from sleep"
	}
	return "?"
}

// post sends e without blocking: events of a kind that is already waiting add nothing.
func post(events chan<- eventKind, e eventKind) {
	select {
	case events <- e:
	default:
	}
}

// networkSettle is how long the host's network must stay quiet after a change before the
// supervisor looks at it: a new uplink comes as a burst of address, route and link messages.
const networkSettle = 100 * time.Millisecond

// login1Name is the bus name of systemd-logind, whose Manager sends PrepareForSleep.
const login1Name = "org.freedesktop.login1"

// watchSleep posts resumed each time logind says the machine woke up (the signal
// PrepareForSleep with false), until ctx ends. Only signals sent by the owner of
// org.freedesktop.login1 count: any client of the system bus can emit a signal of that name.
// Without a system bus (a machine without D-Bus) it tries again every minute, quietly.
func watchSleep(ctx context.Context, events chan<- eventKind, logf func(string, ...any)) {
	retry := time.Minute
	for {
		if err := watchSleepOnce(ctx, events); err != nil && ctx.Err() == nil {
			logf("wgns: watching for resume from sleep: %v (trying again in %s)", err, retry)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(retry):
		}
	}
}

func watchSleepOnce(ctx context.Context, events chan<- eventKind) error {
	c, err := login1.New()
	if err != nil {
		return err
	}
	defer c.Close()
	signals := c.Subscribe("PrepareForSleep")
	bus, err := dbus.SystemBus()
	if err != nil {
		return err
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case s, ok := <-signals:
			if !ok {
				return nil // the bus went away
			}
			if s.Name != "org.freedesktop.login1.Manager.PrepareForSleep" || len(s.Body) != 1 {
				continue
			}
			if sleeping, ok := s.Body[0].(bool); !ok || sleeping {
				continue
			}
			var owner string
			if err := bus.BusObject().Call("org.freedesktop.DBus.GetNameOwner", 0, login1Name).Store(&owner); err != nil || owner != s.Sender {
				continue // not logind's
			}
			post(events, resumed)
		}
	}
}
