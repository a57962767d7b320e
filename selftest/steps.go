package selftest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"github.com/wgns/wgns/internal/procstat"
	"github.com/wgns/wgns/nsmgr"
)

// RunSteps is the hidden command CmdSteps, run by the world's PID 1: it builds the rest of the
// world (the peer, the decoys), drives the real wgns commands through a tunnel to the peer,
// prints each step to out as it finishes, and cleans up. It returns 0 if every step passed.
func RunSteps(out io.Writer) int {
	r := newReport(out)
	if err := checkWorld(roleSteps); err != nil {
		r.fail("the private world", err, "")
		return 1
	}
	s := &steps{r: r}
	s.run()
	if _, failed := s.r.counts(); failed > 0 {
		return 1
	}
	return 0
}

// steps is the state of a self-test run inside the world.
type steps struct {
	r        *report
	self     string         // the copy of wgns that the steps run
	peerNS   netns.NsHandle // the peer's namespace, open while it exists
	peer     *peerProc
	decoys   *decoys
	config   string // the client config's path
	tunnelUp bool   // `wgns up` succeeded and `wgns down` has not
	holder   int    // the PID holding the tunnel's WireGuard device
	port     int    // the tunnel's WireGuard listen port (in the world)
	cleanups []func()
}

// run runs the steps in order. A step that the later ones depend on ends the run when it fails;
// the cleanups always run.
func (s *steps) run() {
	defer func() {
		for _, c := range slices.Backward(s.cleanups) {
			c()
		}
	}()
	for _, step := range []func() bool{
		s.world, s.startPeer, s.startDecoys, s.up, s.interfaces, s.routes, s.udpSocket,
		s.probe, s.decoysQuiet, s.status, s.down, s.stopPeer,
	} {
		if !step() {
			return
		}
	}
}

// cleanup registers f to run at the end, in reverse order of registration.
func (s *steps) cleanup(f func()) { s.cleanups = append(s.cleanups, f) }

// world checks that this is a fresh world and installs the copy of wgns the steps run.
func (s *steps) world() bool {
	const what = "private world built"
	names, err := linkNames(netlink.LinkList)
	if err != nil {
		s.r.fail(what, err, "")
		return false
	}
	if !slices.Equal(names, []string{"lo"}) {
		s.r.fail(what, fmt.Errorf("its network namespace has interfaces %v, want only lo", names), "")
		return false
	}
	if err := os.MkdirAll(stateDir, 0o755); err != nil {
		s.r.fail(what, err, "")
		return false
	}
	if s.self, err = installSelf(stateDir); err != nil {
		s.r.fail(what, err, "")
		return false
	}
	s.r.ok("private world built: its own network, mount and PID namespaces; tmpfs on /run, overlay on /etc")
	return true
}

// startPeer makes the peer's namespace, the underlay (a veth pair) and starts the peer.
func (s *steps) startPeer() bool {
	const what = "local WireGuard peer started"
	ns, err := nsmgr.Create(peerNS)
	if err != nil {
		s.r.fail(what, err, "")
		return false
	}
	s.peerNS = ns
	s.cleanup(func() { ns.Close() })
	if err := makeUnderlay(ns); err != nil {
		s.r.fail(what, err, "")
		return false
	}
	peerKey, err := wgtypes.GeneratePrivateKey()
	if err != nil {
		s.r.fail(what, err, "")
		return false
	}
	clientKey, err := wgtypes.GeneratePrivateKey()
	if err != nil {
		s.r.fail(what, err, "")
		return false
	}
	start := time.Now()
	p, err := startPeer(s.self, peerUAPI(peerKey, clientKey.PublicKey()), 10*time.Second)
	if err != nil {
		s.r.fail(what, err, "")
		return false
	}
	s.peer = p
	s.cleanup(func() {
		if s.peer != nil {
			s.peer.stop(2 * time.Second)
		}
	})
	s.config = filepath.Join(stateDir, tunnelName+".conf")
	if err := os.WriteFile(s.config, []byte(clientConfig(clientKey, peerKey.PublicKey())), 0o600); err != nil {
		s.r.fail(what, fmt.Errorf("writing the client config: %w", err), "")
		return false
	}
	s.r.ok("local WireGuard peer started in namespace %s in %d ms (wgns's embedded WireGuard on %s, DNS and echo servers on %s and %s)",
		peerNS, time.Since(start).Milliseconds(), netip.AddrPortFrom(peerUnder4.Addr(), peerPort), peerTun4.Addr(), peerTun6.Addr())
	return true
}

// makeUnderlay joins the world to the peer's namespace with a veth pair and gives both ends
// their addresses (IPv6 without duplicate address detection, so they are usable at once).
func makeUnderlay(peer netns.NsHandle) error {
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: worldVeth}, PeerName: peerVeth,
		PeerNamespace: netlink.NsFd(int(peer))}
	if err := netlink.LinkAdd(veth); err != nil {
		return fmt.Errorf("adding veth pair %s/%s: %w", worldVeth, peerVeth, err)
	}
	h, err := netlink.NewHandleAt(peer)
	if err != nil {
		return fmt.Errorf("opening netlink in namespace %q: %w", peerNS, err)
	}
	defer h.Close()
	worldHandle, err := netlink.NewHandle()
	if err != nil {
		return fmt.Errorf("opening netlink in the world: %w", err)
	}
	defer worldHandle.Close()
	for _, end := range []struct {
		h      *netlink.Handle
		ns     string
		name   string
		addrs  []netip.Prefix
		needLo bool
	}{
		{worldHandle, "the world", worldVeth, []netip.Prefix{worldUnder4, worldUnder6}, false},
		{h, peerNS, peerVeth, []netip.Prefix{peerUnder4, peerUnder6}, true},
	} {
		link, err := end.h.LinkByName(end.name)
		if err != nil {
			return fmt.Errorf("finding %s in %s: %w", end.name, end.ns, err)
		}
		for _, p := range end.addrs {
			if err := end.h.AddrAdd(link, addrOf(p)); err != nil {
				return fmt.Errorf("adding address %s to %s in %s: %w", p, end.name, end.ns, err)
			}
		}
		if err := end.h.LinkSetUp(link); err != nil {
			return fmt.Errorf("bringing %s up in %s: %w", end.name, end.ns, err)
		}
		if end.needLo {
			lo, err := end.h.LinkByName("lo")
			if err == nil {
				err = end.h.LinkSetUp(lo)
			}
			if err != nil {
				return fmt.Errorf("bringing lo up in %s: %w", end.ns, err)
			}
		}
	}
	return nil
}

// addrOf is p as a netlink address; IPv6 without duplicate address detection.
func addrOf(p netip.Prefix) *netlink.Addr {
	a := &netlink.Addr{IPNet: &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}}
	if p.Addr().Is6() {
		a.Flags = unix.IFA_F_NODAD
	}
	return a
}

// decoys are the world's resolvers that nothing inside the tunnel may reach: a DNS server that
// the world's /etc/resolv.conf names, and unix sockets where nscd's and systemd-resolved's
// would be.
type decoys struct {
	dns   dnsServer
	unix  atomic.Int64
	base  [2]int64 // DNS messages and unix connections counted before the probe ran
	close []io.Closer
}

// startDecoys starts the decoys and points the world's /etc/resolv.conf at the DNS one. It then
// shows that the decoys and the underlay targets are live from the world, so that not reaching
// them from inside means something.
func (s *steps) startDecoys() bool {
	const what = "decoys in the world"
	d := &decoys{dns: dnsServer{zone: decoyZone}}
	s.decoys = d
	s.cleanup(func() {
		for _, c := range d.close {
			c.Close()
		}
	})
	for _, a := range []netip.Addr{worldUnder4.Addr(), worldUnder6.Addr()} {
		cs, err := d.dns.listen(netip.AddrPortFrom(a, 53))
		if err != nil {
			s.r.fail(what, fmt.Errorf("starting the decoy DNS server on %s: %w", a, err), "")
			return false
		}
		d.close = append(d.close, cs...)
	}
	for _, p := range decoySockets {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			s.r.fail(what, err, "")
			return false
		}
		l, err := net.Listen("unix", p)
		if err != nil {
			s.r.fail(what, fmt.Errorf("listening on decoy socket %s: %w", p, err), "")
			return false
		}
		d.close = append(d.close, l)
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				d.unix.Add(1)
				c.Close()
			}
		}()
	}
	// /etc is the world's overlay: this changes nothing outside the world. Remove first, as
	// resolv.conf may be a symlink whose target must not be written through.
	resolv := fmt.Sprintf("# wgns selftest decoy: nothing inside the tunnel may ask these.\nnameserver %s\nnameserver %s\n",
		worldUnder4.Addr(), worldUnder6.Addr())
	if err := os.Remove("/etc/resolv.conf"); err != nil && !errors.Is(err, fs.ErrNotExist) {
		s.r.fail(what, fmt.Errorf("replacing the world's /etc/resolv.conf: %w", err), "")
		return false
	}
	if err := os.WriteFile("/etc/resolv.conf", []byte(resolv), 0o644); err != nil {
		s.r.fail(what, fmt.Errorf("replacing the world's /etc/resolv.conf: %w", err), "")
		return false
	}

	// The controls: from the world, each decoy answers, and each underlay target accepts.
	if err := decoyControl(); err != nil {
		s.r.fail(what, err, "")
		return false
	}
	// Each decoy socket accepted one control connection; wait until the decoy has counted them.
	for deadline := time.Now().Add(2 * time.Second); d.unix.Load() < int64(len(decoySockets)) && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	s.r.ok("decoys in the world, each answering there: /etc/resolv.conf names DNS servers %s and %s (wrong answers on purpose); sockets %s",
		worldUnder4.Addr(), worldUnder6.Addr(), strings.Join(decoySockets, ", "))
	return true
}

// decoyControl shows, from the world, that its resolver reaches the decoy DNS server, that the
// decoy sockets accept, and that the underlay targets accept TCP connections. Each is retried
// until it works or 5s pass: a busy machine may be slow to resolve a new neighbour.
func decoyControl() error {
	deadline := time.Now().Add(5 * time.Second)
	retry := func(what string, try func() error) error {
		for {
			err := try()
			if err == nil {
				return nil
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("%s from the world: %w", what, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	err := retry("looking up "+dnsName+" (through the decoy)", func() error {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		r := &net.Resolver{PreferGo: true}
		got, err := r.LookupNetIP(ctx, "ip4", dnsName)
		if err != nil {
			return err
		}
		if len(got) != 1 || got[0].Unmap() != wrongAnswer4 {
			return fmt.Errorf("got %v, want the decoy's %s", got, wrongAnswer4)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, p := range decoySockets {
		if err := retry("connecting to decoy socket "+p, func() error { return dialClose("unix", p) }); err != nil {
			return err
		}
	}
	for _, t := range underlayTargets {
		if err := retry("connecting to "+t.String(), func() error { return dialClose("tcp", t.String()) }); err != nil {
			return err
		}
	}
	return nil
}

// dialClose connects to address and closes the connection.
func dialClose(network, address string) error {
	c, err := net.DialTimeout(network, address, time.Second)
	if err != nil {
		return err
	}
	return c.Close()
}

// cmdResult is what a wgns command did.
type cmdResult struct {
	stdout, stderr string
	took           time.Duration
	err            error
}

// output is the command's stdout and stderr, for a report.
func (c cmdResult) output() string {
	return strings.TrimSpace(strings.TrimSpace(c.stdout) + "\n" + strings.TrimSpace(c.stderr))
}

// wgns runs the wgns binary with args, as a user would, bounded by limit.
func (s *steps) wgns(limit time.Duration, args ...string) cmdResult {
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	cmd := exec.CommandContext(ctx, s.self, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.Dir = "/"
	start := time.Now()
	err := cmd.Run()
	res := cmdResult{stdout: stdout.String(), stderr: stderr.String(), took: time.Since(start), err: err}
	if ctx.Err() != nil {
		res.err = fmt.Errorf("did not finish within %v", limit)
	}
	return res
}

// up brings the tunnel up with `wgns up --userspace CONFIG`.
func (s *steps) up() bool {
	what := "wgns up --userspace " + s.config
	res := s.wgns(30*time.Second, "up", "--userspace", s.config)
	if res.err != nil {
		s.r.fail(what, res.err, res.output())
		return false
	}
	s.tunnelUp = true
	s.cleanup(func() {
		if s.tunnelUp {
			s.wgns(15*time.Second, "down", "--force", tunnelName)
		}
	})
	s.r.ok("%s: ready in %d ms", what, res.took.Milliseconds())
	return true
}

// tunnelHandle opens the tunnel's namespace and a netlink handle in it; the caller must call
// the returned function.
func tunnelHandle() (*netlink.Handle, func(), error) {
	ns, err := nsmgr.Open(tunnelName)
	if err != nil {
		return nil, nil, err
	}
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		ns.Close()
		return nil, nil, fmt.Errorf("opening netlink in namespace %q: %w", tunnelName, err)
	}
	return h, func() { h.Close(); ns.Close() }, nil
}

// linkNames returns the names of the interfaces list lists (netlink.LinkList, or a handle's).
func linkNames(list func() ([]netlink.Link, error)) ([]string, error) {
	links, err := list()
	if err != nil {
		return nil, fmt.Errorf("listing interfaces: %w", err)
	}
	var names []string
	for _, l := range links {
		names = append(names, l.Attrs().Name)
	}
	return names, nil
}

// interfaces checks that the tunnel's namespace holds lo and the tunnel, and nothing else.
func (s *steps) interfaces() bool {
	what := fmt.Sprintf("namespace %s holds only lo and %s", tunnelName, tunnelName)
	h, done, err := tunnelHandle()
	if err != nil {
		s.r.fail(what, err, "")
		return true
	}
	defer done()
	names, err := linkNames(h.LinkList)
	if err != nil {
		s.r.fail(what, err, "")
		return true
	}
	slices.Sort(names)
	if want := []string{"lo", tunnelName}; !slices.Equal(names, want) {
		s.r.fail(what, fmt.Errorf("it holds %v", names), "")
		return true
	}
	s.r.ok("%s", what)
	return true
}

// routes checks the main routing table of the tunnel's namespace: every route goes through the
// tunnel (or is loopback's own), and the underlay's addresses, which the world can reach,
// route through the tunnel too.
func (s *steps) routes() bool {
	what := fmt.Sprintf("main routing table of %s routes only via %s (IPv4 and IPv6)", tunnelName, tunnelName)
	h, done, err := tunnelHandle()
	if err != nil {
		s.r.fail(what, err, "")
		return true
	}
	defer done()
	link, err := h.LinkByName(tunnelName)
	if err != nil {
		s.r.fail(what, fmt.Errorf("finding interface %q: %w", tunnelName, err), "")
		return true
	}
	counts := map[int]int{}
	var bad []string
	for _, fam := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
		rs, err := h.RouteListFiltered(fam, &netlink.Route{Table: unix.RT_TABLE_MAIN}, netlink.RT_FILTER_TABLE)
		if err != nil {
			s.r.fail(what, fmt.Errorf("listing routes: %w", err), "")
			return true
		}
		for _, r := range rs {
			if r.LinkIndex == link.Attrs().Index || isLoopbackRoute(h, r) {
				counts[fam]++
				continue
			}
			bad = append(bad, routeString(h, r))
		}
	}
	if len(bad) > 0 {
		s.r.fail(what, fmt.Errorf("routes not via %s: %s", tunnelName, strings.Join(bad, "; ")), "")
		return true
	}
	for _, t := range underlayTargets {
		rs, err := h.RouteGet(t.Addr().AsSlice())
		if err != nil || len(rs) == 0 || rs[0].LinkIndex != link.Attrs().Index {
			s.r.fail(what, fmt.Errorf("the route to %s is not via %s: %v %v", t.Addr(), tunnelName, rs, err), "")
			return true
		}
	}
	if counts[netlink.FAMILY_V4] == 0 || counts[netlink.FAMILY_V6] == 0 {
		s.r.fail(what, fmt.Errorf("%d IPv4 and %d IPv6 routes, want some of each", counts[netlink.FAMILY_V4], counts[netlink.FAMILY_V6]), "")
		return true
	}
	s.r.ok("%s: %d IPv4 and %d IPv6 routes; the world's and the peer's underlay addresses route via %s",
		what, counts[netlink.FAMILY_V4], counts[netlink.FAMILY_V6], tunnelName)
	return true
}

// routeString describes r the way `ip route` does.
func routeString(h *netlink.Handle, r netlink.Route) string {
	var b strings.Builder
	if r.Dst == nil {
		b.WriteString("default")
	} else {
		b.WriteString(r.Dst.String())
	}
	if r.Gw != nil {
		b.WriteString(" via " + r.Gw.String())
	}
	if l, err := h.LinkByIndex(r.LinkIndex); err == nil {
		b.WriteString(" dev " + l.Attrs().Name)
	} else if r.LinkIndex != 0 {
		fmt.Fprintf(&b, " dev #%d", r.LinkIndex)
	}
	return b.String()
}

// isLoopbackRoute reports whether r is a route of lo to a loopback destination (the kernel adds
// ::1 to the main table when lo comes up).
func isLoopbackRoute(h *netlink.Handle, r netlink.Route) bool {
	lo, err := h.LinkByName("lo")
	if err != nil || r.LinkIndex != lo.Attrs().Index || r.Dst == nil {
		return false
	}
	p, ok := netip.AddrFromSlice(r.Dst.IP)
	return ok && p.Unmap().IsLoopback()
}

// tunnelStatus is the part of `wgns status --json` the steps read.
type tunnelStatus struct {
	Name       string `json:"name"`
	State      string `json:"state"`
	Mode       string `json:"mode"`
	PID        int    `json:"pid"`
	ListenPort int    `json:"listen_port"`
	Firewall   string `json:"firewall"`
	Peers      []struct {
		PublicKey     string    `json:"public_key"`
		Endpoint      string    `json:"endpoint"`
		LastHandshake time.Time `json:"latest_handshake"`
		RxBytes       int64     `json:"transfer_rx"`
		TxBytes       int64     `json:"transfer_tx"`
	} `json:"peers"`
}

// statusJSON runs `wgns status --json st`.
func (s *steps) statusJSON() (*tunnelStatus, cmdResult, error) {
	res := s.wgns(10*time.Second, "status", "--json", tunnelName)
	if res.err != nil {
		return nil, res, res.err
	}
	var list []tunnelStatus
	if err := json.Unmarshal([]byte(res.stdout), &list); err != nil {
		return nil, res, fmt.Errorf("reading its output: %w", err)
	}
	if len(list) != 1 || list[0].Name != tunnelName {
		return nil, res, fmt.Errorf("it listed %d tunnels, want %s alone", len(list), tunnelName)
	}
	return &list[0], res, nil
}

// udpSocket checks that the tunnel's encrypted UDP socket is in the world (the host's side),
// held by the process that holds the WireGuard device, and that the namespace has no UDP
// socket at all.
func (s *steps) udpSocket() bool {
	const what = "WireGuard's UDP socket is in the world, none in the tunnel's namespace"
	st, res, err := s.statusJSON()
	if err != nil {
		s.r.fail(what, fmt.Errorf("wgns status --json %s: %w", tunnelName, err), res.output())
		return true
	}
	s.holder, s.port = st.PID, st.ListenPort
	if s.holder == 0 || s.port == 0 {
		s.r.fail(what, fmt.Errorf("wgns status --json %s shows holder PID %d and listen port %d", tunnelName, s.holder, s.port), "")
		return true
	}
	worldNS, err := nsIDOf("/proc/self/ns/net")
	if err != nil {
		s.r.fail(what, err, "")
		return true
	}
	proc := "/proc/" + strconv.Itoa(s.holder)
	if holderNS, err := nsIDOf(proc + "/ns/net"); err != nil || holderNS != worldNS {
		s.r.fail(what, fmt.Errorf("the holder (PID %d) is not in the world's network namespace (%v)", s.holder, err), "")
		return true
	}
	socks, err := udpSockets(proc + "/net")
	if err != nil {
		s.r.fail(what, err, "")
		return true
	}
	fds, err := socketInodes(s.holder)
	if err != nil {
		s.r.fail(what, err, "")
		return true
	}
	held := 0
	for _, sk := range socks {
		if sk.Port == s.port && fds[sk.Inode] {
			held++
		}
	}
	if held == 0 {
		s.r.fail(what, fmt.Errorf("no UDP socket on port %d held by PID %d in the world", s.port, s.holder), "")
		return true
	}
	var inside []udpSocket
	err = nsmgr.Do(s.tunnelNS(), func() error {
		var err error
		inside, err = udpSockets("/proc/thread-self/net")
		return err
	})
	if err != nil {
		s.r.fail(what, fmt.Errorf("listing UDP sockets in %s: %w", tunnelName, err), "")
		return true
	}
	if len(inside) > 0 {
		s.r.fail(what, fmt.Errorf("namespace %s has %d UDP sockets: %v", tunnelName, len(inside), inside), "")
		return true
	}
	s.r.ok("WireGuard's UDP socket (port %d, %d socket(s) of holder PID %d) is in the world; namespace %s has no UDP socket",
		s.port, held, s.holder, tunnelName)
	return true
}

// tunnelNS opens the tunnel's namespace for nsmgr.Do; on failure it returns a handle that Do
// fails to enter. The handle is closed at the end of the run.
func (s *steps) tunnelNS() netns.NsHandle {
	ns, err := nsmgr.Open(tunnelName)
	if err != nil {
		return netns.None()
	}
	s.cleanup(func() { ns.Close() })
	return ns
}

// probe runs the probe inside the tunnel with `wgns exec`, and the checks that need the peer's
// counts afterwards.
func (s *steps) probe() bool {
	what := fmt.Sprintf("wgns exec %s -- wgns %s", tunnelName, CmdProbe)
	before, err := s.peer.stats()
	if err != nil {
		s.r.fail(what, err, "")
		return true
	}
	d := s.decoys
	d.base = [2]int64{d.dns.udp.Load() + d.dns.tcp.Load(), d.unix.Load()}
	res := s.wgns(30*time.Second, "exec", tunnelName, "--", s.self, CmdProbe)
	var pr probeResult
	if jerr := json.Unmarshal([]byte(res.stdout), &pr); jerr != nil || len(pr.Checks) == 0 {
		err := res.err
		if err == nil {
			err = fmt.Errorf("reading its output: %v", jerr)
		}
		s.r.fail(what, err, res.output())
		return true
	}
	who := "uid " + strconv.Itoa(pr.UID)
	if pr.User != "" {
		who += " (" + pr.User + ")"
	}
	s.r.ok("%s: the probe ran inside the tunnel as %s", what, who)
	ran := map[string]bool{}
	for _, c := range pr.Checks {
		ran[c.ID] = c.Status == "ok"
		switch c.Status {
		case "ok":
			s.r.ok("%s", c.What)
		case "skip":
			s.r.skip(c.What, c.Why)
		default:
			s.r.fail(c.What, errors.New(c.Why), "")
		}
	}
	after, err := s.peer.stats()
	if err != nil {
		s.r.fail("the peer's DNS server answered the lookups", err, "")
		return true
	}
	udp, tcp := after.DNSUDP-before.DNSUDP, after.DNSTCP-before.DNSTCP
	dnsWhat := fmt.Sprintf("the peer's DNS server, behind the tunnel, answered the lookups: %d over UDP, %d over TCP", udp, tcp)
	switch {
	case ran["dns-go-udp"] && udp < 2, ran["dns-go-tcp"] && tcp < 2:
		s.r.fail(dnsWhat, errors.New("want at least 2 (A and AAAA) for each lookup that passed"), "")
	case udp+tcp == 0:
		s.r.fail(dnsWhat, errors.New("no lookup reached it"), "")
	default:
		s.r.ok("%s", dnsWhat)
	}
	dropped := after.Dropped - before.Dropped
	dropWhat := fmt.Sprintf("the attempts to reach the underlay went into the tunnel: the peer dropped %d packets for addresses outside it", dropped)
	if dropped < int64(len(underlayTargets)) {
		s.r.fail(dropWhat, fmt.Errorf("want at least %d (a SYN for each of %d attempts)", len(underlayTargets), len(underlayTargets)), "")
	} else {
		s.r.ok("%s", dropWhat)
	}
	return true
}

// decoysQuiet checks that nothing reached the decoys while the probe ran inside the tunnel.
func (s *steps) decoysQuiet() bool {
	d := s.decoys
	dns := d.dns.udp.Load() + d.dns.tcp.Load() - d.base[0]
	conns := d.unix.Load() - d.base[1]
	what := fmt.Sprintf("nothing leaked to the world's resolvers: decoy DNS got %d queries, decoy sockets %d connections", dns, conns)
	if dns != 0 || conns != 0 {
		s.r.fail(what, errors.New("want 0 and 0"), "")
		return true
	}
	s.r.ok("%s", what)
	return true
}

// status checks what `wgns status --json` says of the tunnel: ready, firewall on, a handshake
// with the peer, and traffic both ways.
func (s *steps) status() bool {
	what := fmt.Sprintf("wgns status --json %s", tunnelName)
	st, res, err := s.statusJSON()
	if err != nil {
		s.r.fail(what, err, res.output())
		return true
	}
	switch {
	case st.State != "ready":
		err = fmt.Errorf("state %q, want ready", st.State)
	case st.Firewall != "on":
		err = fmt.Errorf("firewall %q, want on", st.Firewall)
	case len(st.Peers) != 1:
		err = fmt.Errorf("%d peers, want 1", len(st.Peers))
	case st.Peers[0].LastHandshake.IsZero() || st.Peers[0].LastHandshake.Year() < 2000:
		err = errors.New("no handshake recorded")
	case st.Peers[0].RxBytes == 0 || st.Peers[0].TxBytes == 0:
		err = fmt.Errorf("transfer %d B received, %d B sent; want both above 0", st.Peers[0].RxBytes, st.Peers[0].TxBytes)
	}
	if err != nil {
		s.r.fail(what, err, "")
		return true
	}
	p := st.Peers[0]
	s.r.ok("%s: ready, firewall on, handshake with %s %s ago, %d B received, %d B sent", what, p.Endpoint,
		time.Since(p.LastHandshake).Round(time.Second), p.RxBytes, p.TxBytes)
	return true
}

// down takes the tunnel down with `wgns down st` and checks that nothing is left of it.
func (s *steps) down() bool {
	what := "wgns down " + tunnelName
	res := s.wgns(30*time.Second, "down", tunnelName)
	if res.err != nil {
		s.r.fail(what, res.err, res.output())
		return true
	}
	s.tunnelUp = false
	var left []string
	for _, p := range []string{
		nsmgr.Path(tunnelName),
		"/run/wgns/" + tunnelName + ".json",
		"/run/wgns/" + tunnelName + ".ready",
		"/etc/netns/" + tunnelName,
		"/var/run/wireguard/" + tunnelName + ".sock",
	} {
		if _, err := os.Lstat(p); !errors.Is(err, fs.ErrNotExist) {
			left = append(left, p)
		}
	}
	if _, err := netlink.LinkByName(tunnelName); err == nil {
		left = append(left, "interface "+tunnelName+" in the world")
	}
	if s.holder != 0 && !waitExited(s.holder, 5*time.Second) {
		left = append(left, fmt.Sprintf("the holder process %d", s.holder))
	}
	if len(left) > 0 {
		s.r.fail(what, fmt.Errorf("left behind: %s", strings.Join(left, ", ")), "")
		return true
	}
	s.r.ok("%s in %d ms left nothing: no %s, state, DNS view, UAPI socket or holder process",
		what, res.took.Milliseconds(), nsmgr.Path(tunnelName))
	return true
}

// waitExited waits until process pid is gone (or a zombie about to be reaped), up to limit.
func waitExited(pid int, limit time.Duration) bool {
	deadline := time.Now().Add(limit)
	for {
		if f := procstat.Fields(pid); len(f) == 0 || f[0] == "Z" {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// stopPeer stops the peer and removes its namespace and the underlay.
func (s *steps) stopPeer() bool {
	const what = "peer stopped; its namespace and the underlay removed"
	p := s.peer
	s.peer = nil
	var errs []error
	if err := p.stop(5 * time.Second); err != nil {
		errs = append(errs, err)
	}
	if l, err := netlink.LinkByName(worldVeth); err == nil {
		if err := netlink.LinkDel(l); err != nil {
			errs = append(errs, fmt.Errorf("deleting %s: %w", worldVeth, err))
		}
	}
	if err := nsmgr.Delete(peerNS); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		s.r.fail(what, err, "")
		return true
	}
	s.r.ok("%s", what)
	return true
}
