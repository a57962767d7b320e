package wgns

import (
	"context"
	"net"
	"net/netip"
	"time"

	"golang.org/x/sys/unix"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"github.com/wgns/wgns/dnsbind"
	"github.com/wgns/wgns/firewall"
	"github.com/wgns/wgns/nsmgr"
	"github.com/wgns/wgns/wgns/config"
)

// system is everything the reconciler reads and changes outside this process's memory: the
// tunnel's namespace file, interfaces left in the host namespace, endpoint resolution, the DNS
// view, and wgns's own records under RunDir. hostSystem is the real one; the unit tests use a
// fake that keeps a model of the machine and records each act as a line.
type system interface {
	// nsID identifies /run/netns/NAME; the error wraps fs.ErrNotExist when there is no file, and
	// says "not a network namespace" when the file is not one.
	nsID(name string) (nsmgr.ID, error)
	// nsOpen opens the namespace at /run/netns/NAME for acting inside it.
	nsOpen(name string) (netnsView, error)
	// nsCreate makes /run/netns/NAME, a new namespace, and opens it.
	nsCreate(name string) (netnsView, error)
	// nsHeld opens namespace id through a descriptor that process pid holds: a namespace whose
	// file was removed (ip netns del) lives on while held. The error wraps fs.ErrNotExist when
	// pid holds none.
	nsHeld(pid int, id nsmgr.ID) (netnsView, error)
	// nsAttach makes /run/netns/NAME name the namespace v is open on (as ip netns attach does).
	nsAttach(name string, v netnsView) error
	// nsDelete removes /run/netns/NAME (the namespace itself lives while used).
	nsDelete(name string) error
	// nsEmpty reports whether /run/netns/NAME is a namespace with only lo and no process: what
	// an up that died while creating it leaves.
	nsEmpty(name string) bool

	// hostLink reports the kind ("wireguard", "tuntap", "veth", ...) of the interface called
	// name in the host namespace, or "" if there is none.
	hostLink(name string) string
	// hostLinkDel deletes the interface called name in the host namespace.
	hostLinkDel(name string) error
	// resolve resolves the peers' endpoints in the host namespace (nil for a peer without one).
	resolve(cfg *config.Config, timeout time.Duration) ([]*net.UDPAddr, error)
	// uplinks describes the host's routes to the endpoints, to tell when they change.
	uplinks(endpoints []*net.UDPAddr) string
	// uplinkMTU is the MTU of the host's routes towards the endpoints, 0 if unknown.
	uplinkMTU(endpoints []*net.UDPAddr) int
	// backend returns a WireGuard implementation of the given mode.
	backend(m Mode) backend

	// dnsMatches reports whether NAME's DNS view is as v says; false (nil error) when missing.
	dnsMatches(name string, v dnsbind.View) (bool, error)
	dnsWrite(name string, v dnsbind.View) error
	dnsRemove(name string) error

	// loadConfig reads and checks the config file at path (config.Load).
	loadConfig(path string) (*config.Config, error)
	// lookup resolves p's endpoint in the host namespace.
	lookup(ctx context.Context, p config.Peer) (*net.UDPAddr, error)
	// readState reads NAME's record (ReadState); writeState records st under RunDir;
	// removeState removes the record, the ready marker and the ports' files (PortPath, PortsPath).
	readState(name string) (*State, error)
	writeState(st *State) error
	removeState(name string) error
	// ready reads the ready marker of NAME ("" if none); setReady writes it, clearReady removes it.
	ready(name string) string
	setReady(name string, id nsmgr.ID) error
	clearReady(name string)
	// removeStaleUAPI removes NAME's embedded WireGuard control socket if no process serves it.
	removeStaleUAPI(name string) error
	// inside holds the processes in namespace id (process leaders), each so that it can be
	// signalled without hitting another process that reuses its PID later.
	inside(id nsmgr.ID) ([]proc, error)
	// holder holds st's holder process; nil, nil when it no longer runs.
	holder(st *State) (proc, error)
	// waitExit waits until every process of ps has exited, at most limit; it returns those left.
	waitExit(ps []proc, limit time.Duration) []proc
	// removeLog removes NAME's log (RunDir/NAME.log), once nothing of the tunnel is left.
	removeLog(name string)
	// self is this process: its PID and start time, recorded as the tunnel's holder.
	self() (pid int, start uint64)
	// lock takes the tunnel's lock (see lock); the caller calls the function returned.
	lock(name string) (unlock func(), err error)
	// holderAlive reports whether the process st names as the tunnel's holder still runs.
	holderAlive(st *State) bool
	// checkpoint is called as the reconciler reaches each point of its work (the steps, and
	// "move" inside a backend's create); test builds can end the process there.
	checkpoint(point string)

	// For attachments (attach.go), which act on a namespace wgns did not make:
	// nsOpenPath opens the namespace at path (a container's); selfNS identifies the one this
	// process runs in, which must never be confined.
	nsOpenPath(path string) (netnsView, error)
	selfNS() (nsmgr.ID, error)
	// attachBackend returns a WireGuard implementation whose host-side names are hostName: the
	// kernel interface's before it is moved and renamed, the embedded one's control socket.
	attachBackend(m Mode, hostName string) backend
	// readAttachment reads the record RunDir/cni/ID.json (the error wraps fs.ErrNotExist when
	// there is none); writeAttachment records a; removeAttachment removes the record and the log
	// of attachment id; attachments lists every record.
	readAttachment(id string) (*Attachment, error)
	writeAttachment(a *Attachment) error
	removeAttachment(id string) error
	attachments() ([]*Attachment, error)
	// lockAttachment takes attachment id's lock; the caller calls the function returned, with
	// gone=true once the attachment's record is removed, so that the lock file goes too.
	lockAttachment(id string) (unlock func(gone bool), err error)

	// readFailovers reads NAME's failover record if st's holder wrote it (nil, nil otherwise);
	// writeFailovers writes it as holder pid's, started at start (failover.go).
	readFailovers(name string, st *State) (*FailoverRecord, error)
	writeFailovers(name string, pid int, start uint64, r *FailoverRecord) error
}

// netnsView acts inside one tunnel namespace. The caller must close it.
type netnsView interface {
	id() nsmgr.ID
	// fd is the namespace's descriptor, for a backend that must put a device into it.
	fd() int
	close()

	firewallState(r firewall.Rules) (firewall.State, error)
	// firewallInstall installs the table; fresh says the namespace was just made and has none.
	firewallInstall(r firewall.Rules, fresh bool) error
	firewallRemove() error

	// link describes the interface called name, ok=false if there is none.
	link(name string) (l linkState, ok bool)
	linkUp(name string) error
	// linkDel deletes interface name; linkRename renames interface from to to (it must be down).
	linkDel(name string) error
	linkRename(from, to string) error
	addrs(name string) ([]netip.Prefix, error)
	addrAdd(name string, p netip.Prefix) error
	addrDel(name string, p netip.Prefix) error
	// routes lists the destinations of the main table's routes through name.
	routes(name string) ([]netip.Prefix, error)
	routeAdd(name string, p netip.Prefix) error
	// routeVia routes p through gw on interface name (on-link when gw is the zero Addr);
	// routeDel removes the main table's route to p through name.
	routeVia(name string, p netip.Prefix, gw netip.Addr) error
	routeDel(name string, p netip.Prefix) error
	// gateways lists the next hops of the main table's default routes through name.
	gateways(name string) ([]netip.Addr, error)

	// device reads the WireGuard device name; configure changes it (through wgctrl).
	device(name string) (*wgtypes.Device, error)
	configure(name string, c wgtypes.Config) error
}

// proc is a process held so that a signal reaches it and no other (nsmgr.Handle).
type proc interface {
	info() nsmgr.Process
	signal(sig unix.Signal) error
	close()
}

// linkState is what the reconciler needs to know of an interface.
type linkState struct {
	up   bool
	kind string // "wireguard", "tuntap", "veth", ...
}

// backend is one WireGuard implementation. It does its whole job behind this interface: the
// reconciler never finishes a backend's work for it. Its encrypted UDP must use the host's
// uplink, and nothing else of it may leave the tunnel namespace:
//   - kernel WireGuard binds its UDP socket in the namespace the interface is created in, so
//     create makes it in the host namespace and moves it into the tunnel's;
//   - the embedded WireGuard's UDP socket belongs to this process (which runs in the host
//     namespace), not to its TUN, so create makes the TUN directly inside the tunnel namespace:
//     no move (about 14 ms here), and wireguard-go's link monitor watches the right namespace.
type backend interface {
	mode() Mode
	// create makes interface name with the given MTU so that it ends up inside ns.
	create(name string, mtu int, ns netnsView) error
	// configure gives the device created by create its key, port and peers.
	configure(c wgtypes.Config) error
	// start is called once the interface is configured (with c) and up inside its namespace; it
	// greets the peers that have an endpoint, so that a first handshake comes at once.
	start(c wgtypes.Config) error
	// watch begins watching the device in ns for its end (kernel WireGuard: its interface
	// deleted); it is called once the device is ready, by the process that holds the tunnel.
	watch(name string, ns netnsView) error
	// dead is closed when the device stops by itself or is deleted (nil before watch).
	dead() <-chan struct{}
	// rehandshake makes the device start a new session with each of peers at once (after a
	// resume from sleep, say, when the old sessions are dead on the other side).
	rehandshake(ns netnsView, peers []wgtypes.Peer) error
	// close releases what create made that deleting the namespace does not.
	close() error
}
