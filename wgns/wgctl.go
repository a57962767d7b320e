package wgns

import (
	"fmt"
	"time"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
	"golang.zx2c4.com/wireguard/wgctrl"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"github.com/wgns/wgns/nsmgr"
)

// wgTimeout bounds every exchange with a WireGuard device: wgctrl sets no deadline on the
// embedded WireGuard's control socket, so a stopped or hung holder would hang its caller.
var wgTimeout = 2 * time.Second

// withWG runs fn with a wgctrl client opened inside ns (a kernel device is only visible there;
// the embedded one is reached by its socket), giving up after wgTimeout. A hung exchange is left
// behind on its own goroutine, with its own copy of the namespace handle.
func withWG(ns netns.NsHandle, name string, fn func(*wgctrl.Client) error) error {
	dup, err := unix.FcntlInt(uintptr(ns), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("duplicating the handle of namespace %q: %w", name, err)
	}
	done := make(chan error, 1)
	go func() {
		defer unix.Close(dup)
		done <- nsmgr.Do(netns.NsHandle(dup), func() error {
			c, err := wgctrl.New()
			if err != nil {
				return fmt.Errorf("opening WireGuard control in namespace %q: %w", name, err)
			}
			defer c.Close()
			return fn(c)
		})
	}()
	select {
	case err := <-done:
		return err
	case <-time.After(wgTimeout):
		return fmt.Errorf("WireGuard interface %q: no answer in %s (is its process stopped or hung?)", name, wgTimeout)
	}
}

// readDevice reads WireGuard interface name in ns.
func readDevice(ns netns.NsHandle, name string) (*wgtypes.Device, error) {
	var d *wgtypes.Device
	err := withWG(ns, name, func(c *wgctrl.Client) error {
		var err error
		if d, err = c.Device(name); err != nil {
			return fmt.Errorf("reading WireGuard interface %q: %w", name, err)
		}
		return nil
	})
	return d, err
}

// configureDevice applies cfg to WireGuard interface name in ns.
func configureDevice(ns netns.NsHandle, name string, cfg wgtypes.Config) error {
	return withWG(ns, name, func(c *wgctrl.Client) error {
		if err := c.ConfigureDevice(name, cfg); err != nil {
			return fmt.Errorf("configuring WireGuard interface %q: %w", name, err)
		}
		return nil
	})
}
