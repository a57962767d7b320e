package wgns

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"github.com/vishvananda/netns"
	"golang.zx2c4.com/wireguard/wgctrl"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"github.com/wgns/wgns/internal/uapi"
	"github.com/wgns/wgns/nsmgr"
	"golang.org/x/sys/unix"
	"golang.zx2c4.com/wireguard/conn"
	"golang.zx2c4.com/wireguard/device"
	"golang.zx2c4.com/wireguard/ipc"
	"golang.zx2c4.com/wireguard/tun"
)

// ErrNoKernelWireGuard is returned when the kernel cannot make WireGuard interfaces.
var ErrNoKernelWireGuard = errors.New("the kernel has no WireGuard support")

// kernelBackend is the kernel's WireGuard: made in the host namespace, moved into the tunnel's,
// configured there through wgctrl. It needs no process once made.
type kernelBackend struct {
	// hostName, when set, is the name the interface is made under in the host namespace, and
	// renamed from once inside its own: an attachment's, unique on the host (every pod's wg0
	// would collide there, and two attachments being made at once too).
	hostName string
	name     string
	ns       netnsView     // during create and configure only
	deadCh   chan struct{} // closed when the interface is deleted (see watch)
	stop     chan struct{} // ends the watch
}

var _ backend = (*kernelBackend)(nil)

func (*kernelBackend) mode() Mode { return ModeKernel }

func (k *kernelBackend) create(name string, mtu int, ns netnsView) error {
	host := name
	if k.hostName != "" {
		host = k.hostName
	}
	err := netlink.LinkAdd(&netlink.Wireguard{LinkAttrs: netlink.LinkAttrs{Name: host, MTU: mtu}})
	if errors.Is(err, unix.EOPNOTSUPP) {
		return ErrNoKernelWireGuard
	}
	if err != nil {
		return err
	}
	crashPoint("move")
	l, err := netlink.LinkByName(host)
	if err == nil {
		err = netlink.LinkSetNsFd(l, ns.fd())
	}
	if err != nil {
		if l != nil {
			netlink.LinkDel(l)
		}
		return fmt.Errorf("moving it into its namespace: %w", err)
	}
	if host != name {
		crashPoint("rename")
		if err := ns.linkRename(host, name); err != nil {
			ns.linkDel(host)
			return fmt.Errorf("renaming it from %s inside its namespace: %w", host, err)
		}
	}
	k.name, k.ns = name, ns
	return nil
}

// configure applies c through wgctrl inside the namespace. Its error is wgctrl's own, as the
// embedded WireGuard's is: the caller says what it was doing ("configuring WireGuard interface
// NAME"), which the namespace view's configure would have said a second time.
func (k *kernelBackend) configure(c wgtypes.Config) error {
	return withWG(netns.NsHandle(k.ns.fd()), k.name, func(wc *wgctrl.Client) error {
		return wc.ConfigureDevice(k.name, c)
	})
}

// start greets the peers that have an endpoint: a peer with a persistent keepalive got one (and
// so a handshake) when it was configured; the others get a keepalive by the same means, the
// interval set to one second and back to none.
func (k *kernelBackend) start(c wgtypes.Config) error {
	var on, off wgtypes.Config
	one, zero := time.Second, time.Duration(0)
	for _, p := range c.Peers {
		if p.Endpoint != nil && (p.PersistentKeepaliveInterval == nil || *p.PersistentKeepaliveInterval == 0) {
			on.Peers = append(on.Peers, wgtypes.PeerConfig{PublicKey: p.PublicKey, UpdateOnly: true, PersistentKeepaliveInterval: &one})
			off.Peers = append(off.Peers, wgtypes.PeerConfig{PublicKey: p.PublicKey, UpdateOnly: true, PersistentKeepaliveInterval: &zero})
		}
	}
	if len(on.Peers) == 0 {
		return nil
	}
	if err := k.ns.configure(k.name, on); err != nil {
		return err
	}
	return k.ns.configure(k.name, off)
}

// watch subscribes to the namespace's link events (the netlink socket is opened inside it) and
// closes the dead channel when interface name is deleted, or when the subscription ends (the
// loop then checks the tunnel again, which for a live interface does nothing, and watches anew).
func (k *kernelBackend) watch(name string, ns netnsView) error {
	k.name, k.deadCh, k.stop = name, make(chan struct{}), make(chan struct{})
	updates := make(chan netlink.LinkUpdate, 64)
	err := nsmgr.Do(netns.NsHandle(ns.fd()), func() error {
		return netlink.LinkSubscribeWithOptions(updates, k.stop, netlink.LinkSubscribeOptions{})
	})
	if err != nil {
		return fmt.Errorf("watching interface %q: %w", name, err)
	}
	dead, stop := k.deadCh, k.stop
	if _, ok := ns.link(name); !ok { // deleted before the watch began
		close(dead)
		return nil
	}
	go func() {
		defer close(dead)
		for u := range updates {
			if u.Header.Type == unix.RTM_DELLINK && u.Attrs().Name == name {
				return
			}
		}
		select {
		case <-stop: // closed on purpose: dead stays open for no one
		default:
		}
	}()
	return nil
}

func (k *kernelBackend) dead() <-chan struct{} { return k.deadCh }

func (k *kernelBackend) close() error {
	if k.stop != nil {
		close(k.stop)
		k.stop = nil
	}
	return nil
}

// rehandshake makes the kernel start new sessions with peers: it has no call for that, so each
// peer is removed and added again as it was (key, preshared key, endpoint, allowed IPs,
// keepalive), which drops its session; the keepalive that a peer gets when its interval goes
// from 0 to non-zero then starts the handshake at once. The peers' transfer counts start over.
func (k *kernelBackend) rehandshake(ns netnsView, peers []wgtypes.Peer) error {
	var readd, restore wgtypes.Config
	for _, p := range peers {
		readd.Peers = append(readd.Peers, wgtypes.PeerConfig{PublicKey: p.PublicKey, Remove: true})
		pc := peerConfigOf(p)
		ka := p.PersistentKeepaliveInterval
		if ka == 0 {
			one := time.Second
			pc.PersistentKeepaliveInterval = &one // sends the keepalive; set back to 0 below
			zero := time.Duration(0)
			restore.Peers = append(restore.Peers, wgtypes.PeerConfig{PublicKey: p.PublicKey, UpdateOnly: true, PersistentKeepaliveInterval: &zero})
		}
		readd.Peers = append(readd.Peers, pc)
	}
	if err := ns.configure(k.name, readd); err != nil {
		return err
	}
	if len(restore.Peers) > 0 {
		return ns.configure(k.name, restore)
	}
	return nil
}

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

// userspaceBackend is the embedded wireguard-go. It lives as long as this process: the process
// holding it is the tunnel's holder.
type userspaceBackend struct {
	// sock, when set, names the control socket (/var/run/wireguard/SOCK.sock) instead of the
	// interface: an attachment's, as every pod's wg0 would claim the same socket.
	sock string
	name string
	dev  *device.Device
	uapi net.Listener
	once sync.Once
}

var _ backend = (*userspaceBackend)(nil)

func (*userspaceBackend) mode() Mode { return ModeUserspace }

func (u *userspaceBackend) create(name string, mtu int, view netnsView) error {
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
	err := nsmgr.Do(netns.NsHandle(view.fd()), func() error {
		t, err := tun.CreateTUN(name, mtu)
		if err != nil {
			return err
		}
		// No IPv6 link-local address, as kernel WireGuard's interface has none: with one the
		// kernel sends router solicitations into the tunnel, to a peer that routes nothing back.
		if l, err := netlink.LinkByName(name); err != nil {
			t.Close()
			return err
		} else if err := netlink.LinkSetIP6AddrGenMode(l, nl.IN6_ADDR_GEN_MODE_NONE); err != nil {
			t.Close()
			return fmt.Errorf("turning off IPv6 link-local addresses: %w", err)
		}
		dev = device.NewDevice(t, conn.NewDefaultBind(), logger)
		return nil
	})
	if err != nil {
		return fmt.Errorf("creating TUN device: %w", err)
	}
	crashPoint("move")
	if u.sock == "" {
		u.sock = name
	}
	f, err := ipc.UAPIOpen(u.sock)
	if err != nil {
		dev.Close()
		return fmt.Errorf("opening the UAPI socket %s: %w", uapiPath(u.sock), err)
	}
	// A plain listener, not ipc.UAPIListen: that one spends an inotify instance per device (to
	// notice the socket file being removed), and fs.inotify.max_user_instances (128 by default,
	// machine-wide for root) then caps how many tunnels can be up. close removes the file.
	l, err := net.FileListener(f)
	f.Close()
	if err != nil {
		dev.Close()
		os.Remove(uapiPath(u.sock))
		return fmt.Errorf("listening on the UAPI socket %s: %w", uapiPath(u.sock), err)
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

func (*userspaceBackend) watch(string, netnsView) error { return nil } // dead is the device's own

// rehandshake expires each peer's session and sends it a handshake initiation at once.
func (u *userspaceBackend) rehandshake(_ netnsView, peers []wgtypes.Peer) error {
	for _, p := range peers {
		if peer := u.dev.LookupPeer(device.NoisePublicKey(p.PublicKey)); peer != nil {
			peer.ExpireCurrentKeypairs()
			peer.SendHandshakeInitiation(false)
		}
	}
	return nil
}

// configure applies cfg through the device's own UAPI handler, in this process: what wgctrl
// would send over the socket, without the socket and wgctrl's probing.
func (u *userspaceBackend) configure(cfg wgtypes.Config) error { return u.dev.IpcSet(uapi.Config(cfg)) }

// start brings the device up (its own link watcher is in the host namespace, so it never sees
// the link come up in the tunnel's) and sends a handshake initiation to every peer that has an
// endpoint, so that the tunnel is known to work, or not, at once rather than at the first packet.
func (u *userspaceBackend) start(c wgtypes.Config) error {
	if err := u.dev.Up(); err != nil {
		return err
	}
	// wireguard-go forgets the port when it fails to bind it (BindUpdate sets it to 0): if the
	// TUN's link event brought the device up first and the port was taken, that Up failed and
	// this one bound a random port. A ListenPort is the config's promise: say it is taken.
	if want := c.ListenPort; want != nil && *want != 0 {
		if got := u.listenPort(); got != *want {
			return fmt.Errorf("listening on UDP port %d (bound %d instead): %w", *want, got, unix.EADDRINUSE)
		}
	}
	for _, p := range c.Peers {
		if peer := u.dev.LookupPeer(device.NoisePublicKey(p.PublicKey)); peer != nil && p.Endpoint != nil {
			peer.SendHandshakeInitiation(false)
		}
	}
	return nil
}

// listenPort returns the UDP port the device listens on (0 if none, or unknown).
func (u *userspaceBackend) listenPort() int {
	conf, err := u.dev.IpcGet()
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(conf, "\n") {
		if v, ok := strings.CutPrefix(line, "listen_port="); ok {
			port, _ := strconv.Atoi(v)
			return port
		}
	}
	return 0
}

func (u *userspaceBackend) dead() <-chan struct{} {
	if u.dev == nil {
		return nil
	}
	return u.dev.Wait()
}

func (u *userspaceBackend) close() error {
	u.once.Do(func() {
		if u.uapi != nil {
			u.uapi.Close()
			os.Remove(uapiPath(u.sock))
		}
		if u.dev != nil {
			u.dev.Close()
		}
	})
	return nil
}

// uapiDir holds the embedded WireGuard's control sockets, where wg(8) looks for them (a test
// directory in tests).
var uapiDir = "/var/run/wireguard"

func uapiPath(name string) string { return filepath.Join(uapiDir, name+".sock") }

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
