package wgns

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"github.com/wgns/wgns/nsmgr"
	"golang.org/x/sys/unix"
	"golang.zx2c4.com/wireguard/conn"
	"golang.zx2c4.com/wireguard/device"
	"golang.zx2c4.com/wireguard/ipc"
	"golang.zx2c4.com/wireguard/tun"
)

// wgDevice is one WireGuard implementation. Its encrypted UDP must use the host's uplink, and
// nothing else of it may leave the tunnel namespace:
//   - kernel WireGuard binds its UDP socket in the namespace the interface is created in, so
//     create makes it in the host namespace and moves it into the tunnel's;
//   - the embedded WireGuard's UDP socket belongs to this process (which runs in the host
//     namespace), not to its TUN, so create makes the TUN directly inside the tunnel namespace:
//     no move (about 14 ms here), and wireguard-go's link monitor watches the right namespace.
type wgDevice interface {
	mode() Mode
	// create makes interface name with the given MTU so that it ends up inside ns.
	create(name string, mtu int, ns netns.NsHandle) error
	// configure applies cfg; handled reports false when the device has no faster way than
	// wgctrl (the caller then uses wgctrl).
	configure(cfg wgtypes.Config) (handled bool, err error)
	// start is called once the interface is configured inside its namespace.
	start() error
	// dead is closed when the device stops by itself (nil if it cannot tell).
	dead() <-chan struct{}
	// close releases what create made that the namespace's deletion does not.
	close() error
}

// ErrNoKernelWireGuard is returned when the kernel cannot make WireGuard interfaces.
var ErrNoKernelWireGuard = errors.New("the kernel has no WireGuard support")

type kernelDevice struct{}

var _ wgDevice = kernelDevice{}

func (kernelDevice) mode() Mode { return ModeKernel }

func (kernelDevice) create(name string, mtu int, ns netns.NsHandle) error {
	err := netlink.LinkAdd(&netlink.Wireguard{LinkAttrs: netlink.LinkAttrs{Name: name, MTU: mtu}})
	if errors.Is(err, unix.EOPNOTSUPP) {
		return ErrNoKernelWireGuard
	}
	if err != nil {
		return err
	}
	crashPoint("move")
	l, err := netlink.LinkByName(name)
	if err == nil {
		err = netlink.LinkSetNsFd(l, int(ns))
	}
	if err != nil {
		if l != nil {
			netlink.LinkDel(l)
		}
		return fmt.Errorf("moving it into its namespace: %w", err)
	}
	return nil
}

func (kernelDevice) configure(wgtypes.Config) (bool, error) { return false, nil }

func (kernelDevice) start() error          { return nil }
func (kernelDevice) dead() <-chan struct{} { return nil }
func (kernelDevice) close() error          { return nil }

// KernelWireGuard reports whether the running kernel can make WireGuard interfaces, without
// making one: the generic netlink family is registered (built in or loaded), or a module exists
// that creating a link would load.
func KernelWireGuard() bool {
	if _, err := os.Stat("/sys/module/wireguard"); err == nil {
		return true
	}
	if _, err := netlink.GenlFamilyGet("wireguard"); err == nil {
		return true
	}
	var u unix.Utsname
	if unix.Uname(&u) != nil {
		return false
	}
	rel := unix.ByteSliceToString(u.Release[:])
	m, _ := filepath.Glob(filepath.Join("/lib/modules", rel, "kernel/drivers/net/wireguard/wireguard.ko*"))
	return len(m) > 0
}

// userspaceDevice is the embedded wireguard-go. It lives as long as this process: the process
// holding it is the tunnel's holder.
type userspaceDevice struct {
	name string
	dev  *device.Device
	uapi net.Listener
	once sync.Once
}

var _ wgDevice = (*userspaceDevice)(nil)

func (*userspaceDevice) mode() Mode { return ModeUserspace }

func (u *userspaceDevice) create(name string, mtu int, ns netns.NsHandle) error {
	logger := &device.Logger{
		Verbosef: device.DiscardLogf,
		Errorf: func(format string, args ...any) {
			// wireguard-go re-reads the MTU by name on link events, from a thread in the host
			// namespace, where the interface is not: the MTU is set once, at creation.
			if strings.HasPrefix(format, "Failed to load updated MTU") {
				return
			}
			fmt.Fprintf(os.Stderr, "wireguard %s: "+format+"\n", append([]any{name}, args...)...)
		},
	}
	// TUNSETIFF makes the interface in the namespace of the thread that calls it, and the TUN's
	// netlink monitor socket is bound there too; NewDevice reads the MTU by the interface's name,
	// which only resolves there. Neither opens a UDP socket (the device is still down), and the
	// goroutines they start do not inherit the namespace: they only use those descriptors. The
	// UDP sockets are opened later, when the device goes up, in the host namespace.
	var dev *device.Device
	err := nsmgr.Do(ns, func() error {
		t, err := tun.CreateTUN(name, mtu)
		if err != nil {
			return err
		}
		dev = device.NewDevice(t, conn.NewDefaultBind(), logger)
		return nil
	})
	if err != nil {
		return fmt.Errorf("creating TUN device: %w", err)
	}
	crashPoint("move")
	f, err := ipc.UAPIOpen(name)
	if err != nil {
		dev.Close()
		return fmt.Errorf("opening the UAPI socket %s: %w", uapiPath(name), err)
	}
	// A plain listener, not ipc.UAPIListen: that one spends an inotify instance per device (to
	// notice the socket file being removed), and fs.inotify.max_user_instances (128 by default,
	// machine-wide for root) then caps how many tunnels can be up. close removes the file.
	l, err := net.FileListener(f)
	f.Close()
	if err != nil {
		dev.Close()
		os.Remove(uapiPath(name))
		return fmt.Errorf("listening on the UAPI socket %s: %w", uapiPath(name), err)
	}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go dev.IpcHandle(c)
		}
	}()
	u.name, u.dev, u.uapi = name, dev, l
	return nil
}

// configure applies cfg through the device's own UAPI handler, in this process: what wgctrl
// would send over the socket, without the socket and wgctrl's probing.
func (u *userspaceDevice) configure(cfg wgtypes.Config) (bool, error) {
	if err := u.dev.IpcSet(uapiConfig(cfg)); err != nil {
		return true, err
	}
	return true, nil
}

// start brings the device up: its own link watcher stays in the host namespace after the move,
// so it never sees the link come up there.
func (u *userspaceDevice) start() error { return u.dev.Up() }

func (u *userspaceDevice) dead() <-chan struct{} {
	if u.dev == nil {
		return nil
	}
	return u.dev.Wait()
}

func (u *userspaceDevice) close() error {
	u.once.Do(func() {
		if u.uapi != nil {
			u.uapi.Close()
			os.Remove(uapiPath(u.name))
		}
		if u.dev != nil {
			u.dev.Close()
		}
	})
	return nil
}

func uapiPath(name string) string { return filepath.Join("/var/run/wireguard", name+".sock") }

// removeStaleUAPI removes name's UAPI socket if no process listens on it any more.
func removeStaleUAPI(name string) error {
	p := uapiPath(name)
	if _, err := os.Lstat(p); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if c, err := net.Dial("unix", p); err == nil {
		c.Close()
		return fmt.Errorf("%s is in use by a running WireGuard process", p)
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("removing stale %s: %w", p, err)
	}
	return nil
}
