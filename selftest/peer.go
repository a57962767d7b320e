package selftest

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
	"golang.zx2c4.com/wireguard/conn"
	"golang.zx2c4.com/wireguard/device"
	"golang.zx2c4.com/wireguard/tun"

	"github.com/wgns/wgns/internal/syncbuf"
	"github.com/wgns/wgns/nsmgr"
)

// The peer is a process of its own, all of it (every thread, its UDP socket, its TUN, its
// servers) in the peer's network namespace: RunPeer enters it with nsmgr.Exec and runs this
// binary again there with --inside. It talks to the steps over its stdin and stdout:
//
//	stdin:  the UAPI configuration (peerUAPI), ended by a blank line; then one command a line
//	stdout: "READY" once it serves; then one reply a line
//
// The only command is "stats", answered by "stats " and a peerStats as JSON. It ends on EOF of
// stdin or on SIGTERM.

// peerStats is what the peer counted.
type peerStats struct {
	DNSUDP  int64 `json:"dns_udp"` // DNS messages over UDP
	DNSTCP  int64 `json:"dns_tcp"` // DNS messages over TCP
	Echo    int64 `json:"echo"`    // echo connections
	Dropped int64 `json:"dropped"` // packets from the tunnel to an address outside it
}

// RunPeer is the hidden command CmdPeer. Without inside, it re-executes this binary in the
// peer's namespace (which the steps made) with inside set; with it, it serves as the peer until
// stdin ends or SIGTERM. It returns the exit status.
func RunPeer(inside bool) int {
	fail := func(err error) int {
		fmt.Fprintln(os.Stderr, "wgns selftest peer:", err)
		return 1
	}
	if err := checkWorld(roleHelper); err != nil {
		return fail(err)
	}
	if !inside {
		self, err := os.Executable()
		if err != nil {
			return fail(fmt.Errorf("finding this program: %w", err))
		}
		ns, err := nsmgr.Open(peerNS)
		if err != nil {
			return fail(err)
		}
		err = nsmgr.Exec(peerNS, ns, nsmgr.ExecOptions{Path: self, Argv: []string{self, CmdPeer, "--inside"}})
		return fail(err)
	}
	if err := servePeer(os.Stdin, os.Stdout); err != nil {
		return fail(err)
	}
	return 0
}

// servePeer is the peer, in its namespace: WireGuard on the underlay, and behind it a DNS server
// and an echo server on the tunnel's addresses.
func servePeer(in io.Reader, out io.Writer) error {
	want, err := nsmgr.IDByName(peerNS)
	if err != nil {
		return err
	}
	var st unix.Stat_t
	if err := unix.Stat("/proc/self/ns/net", &st); err != nil {
		return fmt.Errorf("identifying this process's network namespace: %w", err)
	}
	if (nsmgr.ID{Dev: st.Dev, Ino: st.Ino}) != want {
		return fmt.Errorf("not in network namespace %q", peerNS)
	}
	br := bufio.NewReader(in)
	var uapi strings.Builder
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return fmt.Errorf("reading the WireGuard configuration from stdin: %w", err)
		}
		if line == "\n" {
			break
		}
		uapi.WriteString(line)
	}

	t, err := tun.CreateTUN(peerTUN, device.DefaultMTU)
	if err != nil {
		return fmt.Errorf("creating TUN device %q: %w", peerTUN, err)
	}
	ft := &filterTUN{Device: t, allow: []netip.Prefix{peerTun4.Masked(), peerTun6.Masked()}}
	logger := &device.Logger{
		Verbosef: device.DiscardLogf,
		Errorf: func(format string, args ...any) {
			fmt.Fprintf(os.Stderr, "wgns selftest peer: wireguard: "+format+"\n", args...)
		},
	}
	dev := device.NewDevice(ft, conn.NewDefaultBind(), logger)
	defer dev.Close()
	if err := dev.IpcSet(uapi.String()); err != nil {
		return fmt.Errorf("configuring the peer's WireGuard device: %w", err)
	}
	uapi.Reset()
	link, err := netlink.LinkByName(peerTUN)
	if err != nil {
		return fmt.Errorf("finding interface %q: %w", peerTUN, err)
	}
	for _, p := range []netip.Prefix{peerTun4, peerTun6} {
		a := &netlink.Addr{IPNet: &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}}
		if p.Addr().Is6() {
			a.Flags = unix.IFA_F_NODAD
		}
		if err := netlink.AddrAdd(link, a); err != nil {
			return fmt.Errorf("adding address %s to interface %q: %w", p, peerTUN, err)
		}
	}
	if err := netlink.LinkSetUp(link); err != nil {
		return fmt.Errorf("bringing interface %q up: %w", peerTUN, err)
	}
	if err := dev.Up(); err != nil {
		return fmt.Errorf("bringing the peer's WireGuard device up: %w", err)
	}

	dns := &dnsServer{zone: peerZone}
	var closers []io.Closer
	defer func() {
		for _, c := range closers {
			c.Close()
		}
	}()
	for _, a := range []netip.Addr{peerTun4.Addr(), peerTun6.Addr()} {
		cs, err := dns.listen(netip.AddrPortFrom(a, 53))
		if err != nil {
			return fmt.Errorf("starting the peer's DNS server on %s: %w", a, err)
		}
		closers = append(closers, cs...)
	}
	// The echo server listens on every address, the underlay's too: reachable from the world,
	// and from the tunnel only at the tunnel's addresses (filterTUN drops the rest).
	echo, err := net.Listen("tcp", fmt.Sprintf(":%d", echoPort))
	if err != nil {
		return fmt.Errorf("starting the peer's echo server: %w", err)
	}
	closers = append(closers, echo)
	var echoes atomic.Int64
	go serveEcho(echo, &echoes)

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	cmds := make(chan string)
	go func() {
		defer close(cmds)
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				return
			}
			cmds <- strings.TrimSpace(line)
		}
	}()
	if _, err := fmt.Fprintln(out, "READY"); err != nil {
		return err
	}
	for {
		select {
		case <-sigs:
			return nil
		case <-dev.Wait():
			return errors.New("the peer's WireGuard device stopped")
		case c, ok := <-cmds:
			if !ok {
				return nil
			}
			switch c {
			case "stats":
				b, _ := json.Marshal(peerStats{DNSUDP: dns.udp.Load(), DNSTCP: dns.tcp.Load(),
					Echo: echoes.Load(), Dropped: ft.dropped.Load()})
				fmt.Fprintf(out, "stats %s\n", b)
			default:
				fmt.Fprintf(out, "error unknown command %q\n", c)
			}
		}
	}
}

// serveEcho sends back what each connection of l sends, until l is closed.
func serveEcho(l net.Listener, count *atomic.Int64) {
	acceptEach(l, func(c net.Conn) {
		count.Add(1)
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		io.Copy(c, c)
	})
}

// acceptEach serves each connection of l with serve, on a goroutine of its own, until l is
// closed; a failed accept that does not close l is passed over.
func acceptEach(l net.Listener, serve func(net.Conn)) {
	for {
		c, err := l.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		go serve(c)
	}
}

// filterTUN is the peer's TUN as its WireGuard device sees it: packets that come out of the
// tunnel for an address outside allow are dropped and counted rather than handed to the
// peer's kernel, which would accept those for its own underlay address. The peer is then a
// server that serves only its tunnel, and a connection attempt from inside to the underlay
// fails whichever way it goes.
type filterTUN struct {
	tun.Device
	allow   []netip.Prefix
	dropped atomic.Int64
}

// Write hands the packets of bufs whose destination is in allow to the TUN device.
func (f *filterTUN) Write(bufs [][]byte, offset int) (int, error) {
	keep := make([][]byte, 0, len(bufs))
	for _, b := range bufs {
		if dst, ok := destination(b[offset:]); ok && f.allowed(dst) {
			keep = append(keep, b)
		} else {
			f.dropped.Add(1)
		}
	}
	if len(keep) > 0 {
		if _, err := f.Device.Write(keep, offset); err != nil {
			return 0, err
		}
	}
	return len(bufs), nil
}

func (f *filterTUN) allowed(a netip.Addr) bool {
	for _, p := range f.allow {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// destination returns the destination address of an IPv4 or IPv6 packet.
func destination(pkt []byte) (netip.Addr, bool) {
	if len(pkt) == 0 {
		return netip.Addr{}, false
	}
	switch pkt[0] >> 4 {
	case 4:
		if len(pkt) >= 20 {
			return netip.AddrFrom4([4]byte(pkt[16:20])), true
		}
	case 6:
		if len(pkt) >= 40 {
			return netip.AddrFrom16([16]byte(pkt[24:40])), true
		}
	}
	return netip.Addr{}, false
}

// peerProc is the running peer, seen from the steps.
type peerProc struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	lines  chan string // the peer's stdout, a line at a time; closed at its EOF
	stderr *syncbuf.Buffer
	exited chan struct{}
	err    error // the peer's exit, once exited is closed
}

// startPeer starts the peer (this program, self, as CmdPeer), hands it its configuration on
// stdin, and waits until it reports READY, exits, or limit passes.
func startPeer(self, uapi string, limit time.Duration) (*peerProc, error) {
	p := &peerProc{cmd: exec.Command(self, CmdPeer), lines: make(chan string, 16),
		stderr: &syncbuf.Buffer{}, exited: make(chan struct{})}
	p.cmd.Stderr = p.stderr
	p.cmd.Dir = "/"
	var err error
	if p.stdin, err = p.cmd.StdinPipe(); err != nil {
		return nil, err
	}
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting the peer: %w", err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			p.lines <- sc.Text()
		}
		close(p.lines)
	}()
	go func() {
		p.err = p.cmd.Wait()
		close(p.exited)
	}()
	if _, err := io.WriteString(p.stdin, uapi+"\n"); err != nil {
		p.stop(time.Second)
		return nil, fmt.Errorf("handing the peer its configuration: %w", err)
	}
	line, err := p.readLine(limit)
	if err != nil || line != "READY" {
		p.stop(time.Second)
		if err == nil {
			err = fmt.Errorf("said %q instead of READY", line)
		}
		return nil, fmt.Errorf("starting the peer: %w", err)
	}
	return p, nil
}

// readLine returns the next line the peer prints.
func (p *peerProc) readLine(limit time.Duration) (string, error) {
	select {
	case line, ok := <-p.lines:
		if !ok {
			<-p.exited
			return "", fmt.Errorf("it exited (%v): %s", p.err, strings.TrimSpace(p.stderr.String()))
		}
		return line, nil
	case <-time.After(limit):
		return "", fmt.Errorf("no answer in %v", limit)
	}
}

// stats asks the peer what it counted.
func (p *peerProc) stats() (peerStats, error) {
	var s peerStats
	if _, err := io.WriteString(p.stdin, "stats\n"); err != nil {
		return s, fmt.Errorf("asking the peer for its counts: %w", err)
	}
	line, err := p.readLine(5 * time.Second)
	if err != nil {
		return s, fmt.Errorf("asking the peer for its counts: %w", err)
	}
	b, ok := strings.CutPrefix(line, "stats ")
	if !ok {
		return s, fmt.Errorf("asking the peer for its counts: it said %q", line)
	}
	if err := json.Unmarshal([]byte(b), &s); err != nil {
		return s, fmt.Errorf("asking the peer for its counts: %w", err)
	}
	return s, nil
}

// stop closes the peer's stdin, which ends it, and waits up to limit; then it kills it. It
// returns the peer's exit error, or why it had to be killed.
func (p *peerProc) stop(limit time.Duration) error {
	p.stdin.Close()
	select {
	case <-p.exited:
		if p.err != nil {
			return fmt.Errorf("the peer exited with %v: %s", p.err, strings.TrimSpace(p.stderr.String()))
		}
		return nil
	case <-time.After(limit):
		p.cmd.Process.Kill()
		<-p.exited
		return fmt.Errorf("the peer did not stop within %v of its stdin closing; killed it", limit)
	}
}
