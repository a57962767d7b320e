package integration

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wgns/wgns/internal/syncbuf"
)

// The port forwarding tests run Debian's miniupnpd (the nftables build) as the provider's
// NAT-PMP gateway in the peer's namespace: it listens on the peer's WireGuard interface, so the
// client reaches it only through the tunnel, and maps ports of the peer's underlay address (its
// "public" side, ext_ifname) to the client with nftables DNAT rules, as a provider's gateway
// does. natpmpc (libnatpmp's client) and nft are the witnesses.
//
// miniupnpd refuses to forward when its public address is private or reserved, as every
// TEST-NET address is, unless STUN says the address is reachable unfiltered; so a small STUN
// server in the host world tells it what it sees (the peer's underlay address and port, which
// is the truth: nothing filters between the two).

// stunServer answers STUN binding requests on addr (UDP) with the XOR-MAPPED-ADDRESS of their
// source (RFC 5389), until the test ends.
func stunServer(t *testing.T, addr string) {
	t.Helper()
	c, err := net.ListenPacket("udp4", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := c.ReadFrom(buf)
			if err != nil {
				return
			}
			if n < 20 || buf[0] != 0 || buf[1] != 1 { // a binding request
				continue
			}
			src := from.(*net.UDPAddr)
			resp := make([]byte, 32)
			binary.BigEndian.PutUint16(resp[0:], 0x0101) // binding success response
			binary.BigEndian.PutUint16(resp[2:], 12)
			copy(resp[4:20], buf[4:20]) // magic cookie and transaction id
			binary.BigEndian.PutUint16(resp[20:], 0x0020)
			binary.BigEndian.PutUint16(resp[22:], 8)
			resp[25] = 1 // IPv4
			binary.BigEndian.PutUint16(resp[26:], uint16(src.Port)^0x2112)
			binary.BigEndian.PutUint32(resp[28:], binary.BigEndian.Uint32(src.IP.To4())^0x2112A442)
			c.WriteTo(resp, from)
		}
	}()
}

// miniupnpd is Debian's miniupnpd running in the foreground in the peer's namespace.
type miniupnpd struct {
	t    *testing.T
	cmd  *exec.Cmd
	log  syncbuf.Buffer
	conf string
}

func (m *miniupnpd) Write(b []byte) (int, error) {
	return m.log.Write(b)
}

func (m *miniupnpd) logText() string {
	return m.log.String()
}

// natpmpPrepare readies the peer's namespace for a NAT-PMP gateway: forwarding on (in that
// namespace only), and the nftables table and chains miniupnpd fills in (as its nft_init.sh
// makes them, with replies allowed back through the forward chain). It returns miniupnpd's
// config, with extra lines (permission rules) first.
func natpmpPrepare(t *testing.T, p *peer) string {
	t.Helper()
	mustRun(t, "ip", "netns", "exec", p.NS, "sysctl", "-qw", "net.ipv4.ip_forward=1")
	ruleset := filepath.Join(t.TempDir(), "miniupnpd.nft")
	if err := os.WriteFile(ruleset, []byte(`table inet filter {
	chain forward {
		type filter hook forward priority 0; policy drop;
		ct state established,related accept
		jump miniupnpd
	}
	chain miniupnpd {
	}
	chain prerouting {
		type nat hook prerouting priority -100; policy accept;
		jump prerouting_miniupnpd
	}
	chain postrouting {
		type nat hook postrouting priority 100; policy accept;
		jump postrouting_miniupnpd
	}
	chain prerouting_miniupnpd {
	}
	chain postrouting_miniupnpd {
	}
}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	mustRun(t, "ip", "netns", "exec", p.NS, "nft", "-f", ruleset)
	stunServer(t, hostUnderlay4+":3478")
	return fmt.Sprintf(`ext_ifname=%s
listening_ip=%s
enable_natpmp=yes
enable_upnp=no
ext_perform_stun=yes
ext_stun_host=%s
ext_stun_port=3478
secure_mode=yes
system_uptime=no
uuid=3bbf5a6e-0b6d-4b2c-8f5a-6e0b6d4b2c8f
`, ifname("vp-"+strings.TrimPrefix(p.NS, "peer-")), p.Dev, hostUnderlay4)
}

// startMiniupnpd starts miniupnpd with conf plus perms (permission rules, first match wins) and
// waits until it takes NAT-PMP requests on the peer's tunnel address. It runs until owner (t or
// a test above it) ends.
func startMiniupnpd(t, owner *testing.T, p *peer, conf, perms string) *miniupnpd {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "miniupnpd.conf")
	if err := os.WriteFile(path, []byte(conf+perms+"allow 1024-65535 192.0.2.0/24 1024-65535\ndeny 0-65535 0.0.0.0/0 0-65535\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	m := &miniupnpd{t: t, conf: path}
	m.cmd = exec.Command("ip", "netns", "exec", p.NS, "miniupnpd", "-d", "-f", path, "-P", filepath.Join(dir, "pid"))
	m.cmd.Stdout, m.cmd.Stderr = m, m
	if err := m.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	owner.Cleanup(m.stop)
	waitFor(t, 20*time.Second, "miniupnpd to listen for NAT-PMP on "+peerTunnel4+":5351 with forwarding enabled", func() bool {
		return listening(p.NS, "udp", "src", peerTunnel4+":5351") && strings.Contains(m.logText(), "Port forwarding is now enabled")
	})
	return m
}

// stop ends miniupnpd (by its PID) and waits for it.
func (m *miniupnpd) stop() {
	if m.cmd.ProcessState != nil {
		return
	}
	m.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { m.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		m.cmd.Process.Kill()
		<-done
	}
}

// waitPorts waits until the tunnel's status says what cond wants, and returns it.
func waitPorts(t *testing.T, name string, limit time.Duration, what string, cond func(st portsStatus) bool) portsStatus {
	t.Helper()
	var st portsStatus
	waitFor(t, limit, what, func() bool {
		st = statusAs[portsStatus](t, name)
		return cond(st)
	})
	return st
}

// natpmpPortFile reads /run/wgns/NAME.port.
func natpmpPortFile(name string) string {
	b, _ := os.ReadFile("/run/wgns/" + name + ".port")
	return string(b)
}

// natpmpSet lists the ports in the tunnel namespace's forwarded set for proto, as nft does.
func natpmpSet(t *testing.T, name, proto string) string {
	t.Helper()
	out := mustRun(t, "ip", "netns", "exec", name, "nft", "list", "set", "inet", "wgns", "forwarded_"+proto)
	_, els, ok := strings.Cut(out, "elements = {")
	if !ok {
		return ""
	}
	els, _, _ = strings.Cut(els, "}")
	return strings.TrimSpace(els)
}

// natpmpUser is the unprivileged user PortForwardCommand runs as.
const (
	natpmpUser = "wgnspf"
	natpmpUID  = 4731
)

// natpmpWeb starts a web server inside the tunnel on port (all addresses of the namespace),
// serving hello.txt: "port PORT inside".
func natpmpWeb(t *testing.T, name string, port int) {
	t.Helper()
	portsWebInside(t, name, "0.0.0.0", port, fmt.Sprintf("port %d inside\n", port))
}

// natpmpReach fetches the web server inside through the peer's public side: the host world
// connects to the peer's underlay address on port, miniupnpd's DNAT sends it through the tunnel.
func natpmpReach(port int) (string, error) {
	return run("curl", "-sS", "--max-time", "5", fmt.Sprintf("http://%s:%d/hello.txt", peerUnderlay4, port))
}

// TestIntegrationPortForwardNATPMP: PortForward = natpmp against Debian's miniupnpd, with
// whatever WireGuard up picks and a lease of 4 s (a test build's hook; the product asks for
// 60 s). The mapping is granted through the tunnel and renewed; the port is open in the
// namespace's firewall and nowhere else, in status and in /run/wgns/NAME.port (readable by
// anyone, the directory not listable); the command ran inside as its user with the port; a
// connection from the peer's public side reaches a service inside. repair leaves the port open
// and check calls the table intact. A restarted gateway that will not give the old port again
// moves the opening to the new one; a restarted supervisor asks again for its port; with the
// gateway gone the tunnel works, the error is reported and, once the lease ends, the port
// closes.
func TestIntegrationPortForwardNATPMP(t *testing.T) {
	const name = "nf"
	p := newPeer(t, name)
	// The gateway is the tunnel's DNS server too (as ProtonVPN's is): check asks it.
	startDNS(t, p, dnsName, dnsAddr)
	conf := natpmpPrepare(t, p)
	gw := startMiniupnpd(t, t, p, conf, "")
	top := t

	// The command, and its user, who may write its report in out.
	for _, f := range []struct{ path, add string }{
		{"/etc/passwd", fmt.Sprintf("%s:x:%d:%d::/nonexistent:/usr/sbin/nologin\n", natpmpUser, natpmpUID, natpmpUID)},
		{"/etc/group", fmt.Sprintf("%s:x:%d:\n", natpmpUser, natpmpUID)},
	} {
		keepFile(t, f.path)
		replaceFile(t, f.path, readFile(t, f.path)+f.add)
	}
	// Not under t.TempDir(), whose parent only root may enter.
	dir, err := os.MkdirTemp("/tmp", "wgns-natpmp-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	out := filepath.Join(dir, "out")
	if err := os.Mkdir(out, 0o755); err != nil {
		t.Fatal(err)
	}
	os.Chown(out, natpmpUID, natpmpUID)
	tell := filepath.Join(dir, "tell")
	if err := os.WriteFile(tell, []byte(`#!/bin/sh
echo "port=$WGNS_FORWARDED_PORT tunnel=$WGNS_TUNNEL uid=$(id -u) net=$(readlink /proc/self/ns/net)" >> `+out+`/told
`), 0o755); err != nil {
		t.Fatal(err)
	}
	told := func() []string {
		b, _ := os.ReadFile(filepath.Join(out, "told"))
		return strings.Split(strings.TrimSpace(string(b)), "\n")
	}
	p.writeConfig(t, p.ConfigPath, fmt.Sprintf("\n[Namespace]\nPortForward = natpmp\nPortForwardCommand = %s\nPortForwardUser = %s\n", tell, natpmpUser))
	env := []string{"WGNS_TEST_NATPMP_LIFETIME=4s"}
	if o, e, code := wgnsRunEnv(t, env, "up", "--name", name, p.ConfigPath); code != 0 {
		t.Fatalf("wgns up: exit %d\n%s%s", code, o, e)
	}
	t.Cleanup(func() { wgnsRun(t, "down", "--force", name) })
	t.Cleanup(func() {
		if t.Failed() {
			log, _ := os.ReadFile("/run/wgns/" + name + ".log")
			t.Logf("the supervisor's log:\n%s\nminiupnpd's log:\n%s", log, gw.logText())
		}
	})
	var nsIno syscall.Stat_t
	if err := syscall.Stat("/run/netns/"+name, &nsIno); err != nil {
		t.Fatal(err)
	}

	st := waitPorts(t, name, 30*time.Second, "a forwarded port in status", func(st portsStatus) bool { return st.ForwardedPort != 0 })
	port := st.ForwardedPort
	ps := strconv.Itoa(port)
	if st.PortForward == nil || st.PortForward.Gateway != peerTunnel4 || st.ForwardedPortExpires.IsZero() {
		t.Errorf("status --json port_forward: %+v, expires %v", st.PortForward, st.ForwardedPortExpires)
	}

	t.Run("granted", func(t *testing.T) {
		// The gateway's own view: a DNAT of the port to the client, made by miniupnpd.
		rules := mustRun(t, "ip", "netns", "exec", p.NS, "nft", "list", "chain", "inet", "filter", "prerouting_miniupnpd")
		if strings.Count(rules, "th dport "+ps+" dnat ip to "+clientTunnel4+":"+ps+"\n") != 2 {
			t.Errorf("miniupnpd's DNAT rules for port %d:\n%s", port, rules)
		}
		// natpmpc, asking the same gateway from inside the tunnel, gets the same mapping.
		w := mustRun(t, "ip", "netns", "exec", name, "natpmpc", "-g", peerTunnel4, "-a", ps, ps, "tcp", "4")
		if !strings.Contains(w, "Public IP address : "+peerUnderlay4) || !strings.Contains(w, "Mapped public port "+ps+" protocol TCP to local port "+ps) {
			t.Errorf("natpmpc:\n%s", w)
		}
		// Open in the firewall for both protocols, and check agrees.
		if tcp, udp := natpmpSet(t, name, "tcp"), natpmpSet(t, name, "udp"); tcp != ps || udp != ps {
			t.Errorf("forwarded sets: tcp {%s} udp {%s}, want {%d}", tcp, udp, port)
		}
		r := assertCheck(t, name, nil)
		for _, c := range r.Checks {
			if c.Name == "firewall" && !strings.Contains(c.Detail, "forwarded port open: "+ps+"/tcp, "+ps+"/udp") {
				t.Errorf("check's firewall detail: %s", c.Detail)
			}
		}
		// The port file: the number only, root's, readable by anyone; /run/wgns not listable.
		if got := natpmpPortFile(name); got != ps+"\n" {
			t.Errorf("/run/wgns/%s.port holds %q", name, got)
		}
		var fst syscall.Stat_t
		if err := syscall.Stat("/run/wgns/"+name+".port", &fst); err != nil || fst.Uid != 0 || fst.Mode&0o777 != 0o644 {
			t.Errorf("/run/wgns/%s.port: uid %d mode %o, %v", name, fst.Uid, fst.Mode&0o777, err)
		}
		if o, err := asNobody("cat", "/run/wgns/"+name+".port").CombinedOutput(); err != nil || string(o) != ps+"\n" {
			t.Errorf("nobody reading the port file: %q, %v", o, err)
		}
		if o, err := asNobody("ls", "/run/wgns").CombinedOutput(); err == nil {
			t.Errorf("nobody can list /run/wgns:\n%s", o)
		}
		for _, f := range []string{name + ".json", name + ".ports", name + ".log"} {
			if o, err := asNobody("cat", "/run/wgns/"+f).CombinedOutput(); err == nil {
				t.Errorf("nobody can read /run/wgns/%s:\n%s", f, o)
			}
		}
		if s := mustWgns(t, "status", name); !strings.Contains(s, "  forwarded port: "+ps+" (NAT-PMP, gateway "+peerTunnel4+", lease ends in") {
			t.Errorf("status:\n%s", s)
		}
	})

	t.Run("the command was told, inside, as its user", func(t *testing.T) {
		want := fmt.Sprintf("port=%d tunnel=%s uid=%d net=net:[%d]", port, name, natpmpUID, nsIno.Ino)
		waitFor(t, 20*time.Second, "the command to report", func() bool { return told()[0] != "" })
		if got := told(); got[0] != want {
			t.Errorf("the command reported %q, want %q", got, want)
		}
	})

	natpmpWeb(t, name, port)
	t.Run("reaches a service inside from the peer's public side", func(t *testing.T) {
		if out, err := natpmpReach(port); err != nil || out != fmt.Sprintf("port %d inside\n", port) {
			t.Errorf("curl %s:%d from the host world: %q, %v", peerUnderlay4, port, out, err)
		}
	})

	t.Run("renewed", func(t *testing.T) {
		first := statusAs[portsStatus](t, name).PortForward.Renewed
		st := waitPorts(t, name, 20*time.Second, "two renewals", func(st portsStatus) bool {
			return st.PortForward.Renewed.Sub(first) >= 3*time.Second
		})
		if st.ForwardedPort != port || st.PortForward.Error != "" {
			t.Errorf("after renewals: port %d (was %d), error %q", st.ForwardedPort, port, st.PortForward.Error)
		}
		if n := strings.Count(gw.logText(), "NAT-PMP port mapping request : "+ps+"->"+clientTunnel4+":"+ps+" tcp lifetime=4s"); n < 3 {
			t.Errorf("miniupnpd logged %d TCP requests for %d with a 4 s lifetime:\n%s", n, port, gw.logText())
		}
	})

	t.Run("repair keeps it, check calls it intact", func(t *testing.T) {
		// Damage the table: repair replaces it, and the forwarded port stays open.
		mustRun(t, "ip", "netns", "exec", name, "nft", "flush", "chain", "inet", "wgns", "output")
		if o, _, code := wgnsRunEnv(t, env, "repair", name); code != 0 || !strings.Contains(o, "firewall") {
			t.Errorf("repair of the damaged table: exit %d\n%s", code, o)
		}
		if tcp := natpmpSet(t, name, "tcp"); tcp != ps {
			t.Errorf("after repair the forwarded set holds {%s}, want {%d}", tcp, port)
		}
		if o, _, code := wgnsRunEnv(t, env, "repair", "--dry-run", name); code != 0 || strings.Contains(o, "firewall") {
			t.Errorf("a second repair --dry-run: exit %d\n%s", code, o)
		}
		assertCheck(t, name, nil)
		if out, err := natpmpReach(port); err != nil {
			t.Errorf("after repair, the forwarded port from the peer's side: %q, %v", out, err)
		}
	})

	t.Run("a new port from a restarted gateway moves the opening", func(t *testing.T) {
		gw.stop()
		// The restarted gateway will not map the old port: it hands out the next one.
		gw = startMiniupnpd(t, top, p, conf, fmt.Sprintf("deny %d 0.0.0.0/0 0-65535\n", port))
		st := waitPorts(t, name, 30*time.Second, "the forwarded port to change", func(st portsStatus) bool {
			return st.ForwardedPort != 0 && st.ForwardedPort != port
		})
		moved := st.ForwardedPort
		ms := strconv.Itoa(moved)
		if tcp, udp := natpmpSet(t, name, "tcp"), natpmpSet(t, name, "udp"); tcp != ms || udp != ms {
			t.Errorf("forwarded sets after the move: tcp {%s} udp {%s}, want {%d} only", tcp, udp, moved)
		}
		waitFor(t, 5*time.Second, "the port file to follow", func() bool { return natpmpPortFile(name) == ms+"\n" })
		waitFor(t, 20*time.Second, "the command to be told the new port", func() bool {
			got := told()
			return strings.HasPrefix(got[len(got)-1], "port="+ms+" ")
		})
		natpmpWeb(t, name, moved)
		if out, err := natpmpReach(moved); err != nil || out != fmt.Sprintf("port %d inside\n", moved) {
			t.Errorf("the new port %d from the peer's side: %q, %v", moved, out, err)
		}
		assertCheck(t, name, nil)
		port, ps = moved, ms
	})

	t.Run("a restarted supervisor asks again", func(t *testing.T) {
		pid := statusAs[portsStatus](t, name).PID
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 10*time.Second, "the supervisor to be gone", func() bool { return syscall.Kill(pid, 0) != nil })
		before := strings.Count(gw.logText(), "NAT-PMP port mapping request")
		if o, e, code := wgnsRunEnv(t, env, "repair", name); code != 0 {
			t.Fatalf("repair after the supervisor's death: exit %d\n%s%s", code, o, e)
		}
		t.Cleanup(func() {
			if t.Failed() {
				log, _ := os.ReadFile("/run/wgns/" + name + ".log")
				rec, _ := os.ReadFile("/run/wgns/" + name + ".ports")
				s, _, _ := wgnsRun(t, "status", "--json", name)
				t.Logf("the supervisor's log:\n%s\nits record: %s\nstatus: %s", log, rec, s)
			}
		})
		st := waitPorts(t, name, 30*time.Second, "the new supervisor's lease", func(st portsStatus) bool {
			return st.PID != pid && st.ForwardedPort != 0
		})
		if st.ForwardedPort != port {
			t.Errorf("the new supervisor got port %d, the old one had %d", st.ForwardedPort, port)
		}
		if strings.Count(gw.logText(), "NAT-PMP port mapping request") <= before {
			t.Errorf("the new supervisor did not ask the gateway")
		}
		if tcp := natpmpSet(t, name, "tcp"); tcp != ps {
			t.Errorf("forwarded set after the restart: {%s}, want {%d}", tcp, port)
		}
	})

	t.Run("the gateway gone", func(t *testing.T) {
		gw.stop()
		st := waitPorts(t, name, 30*time.Second, "the failure in status", func(st portsStatus) bool {
			return st.PortForward != nil && st.PortForward.Error != ""
		})
		if !strings.Contains(st.PortForward.Error, "mapping tcp port "+ps) {
			t.Errorf("status error: %q", st.PortForward.Error)
		}
		mustWgns(t, "exec", name, "--", "ping", "-c1", "-W5", peerTunnel4)
		if s := mustWgns(t, "status", name); !strings.Contains(s, "  port forwarding failing since") {
			t.Errorf("status:\n%s", s)
		}
		// Once the lease has run out the port closes, everywhere.
		waitPorts(t, name, 30*time.Second, "the lease to run out", func(st portsStatus) bool { return st.ForwardedPort == 0 })
		if tcp, udp := natpmpSet(t, name, "tcp"), natpmpSet(t, name, "udp"); tcp != "" || udp != "" {
			t.Errorf("forwarded sets after the lease ran out: tcp {%s} udp {%s}", tcp, udp)
		}
		if _, err := os.Stat("/run/wgns/" + name + ".port"); err == nil {
			t.Error("the port file outlives the lease")
		}
		assertCheck(t, name, nil)
		mustWgns(t, "exec", name, "--", "ping", "-c1", "-W5", peerTunnel4)
	})

	t.Run("down removes the port file and the record", func(t *testing.T) {
		mustWgns(t, "down", "--force", name)
		for _, f := range []string{name + ".port", name + ".ports"} {
			if _, err := os.Stat("/run/wgns/" + f); err == nil {
				t.Errorf("/run/wgns/%s outlives down", f)
			}
		}
		assertNoTrace(t, name)
	})
}

// TestIntegrationPortForwardUserRefused: a PortForwardUser that does not exist, or is root
// under another name, fails up with the config line and leaves nothing.
func TestIntegrationPortForwardUserRefused(t *testing.T) {
	const name = "nfu"
	p := newPeer(t, name)
	keepFile(t, "/etc/passwd")
	replaceFile(t, "/etc/passwd", readFile(t, "/etc/passwd")+"toor:x:0:0::/root:/bin/sh\n")
	for _, tc := range []struct{ user, want string }{
		{"nosuchuser", `PortForwardUser: user "nosuchuser": no such user`},
		{"toor", `PortForwardUser "toor" is root (uid 0); the command never runs as root`},
	} {
		p.writeConfig(t, p.ConfigPath, "\n[Namespace]\nPortForward = natpmp\nPortForwardCommand = /bin/true\nPortForwardUser = "+tc.user+"\n")
		conf, _ := os.ReadFile(p.ConfigPath)
		line := strings.Count(string(conf[:bytes.Index(conf, []byte("PortForwardUser"))]), "\n") + 1
		_, stderr, code := wgnsRun(t, "up", "--name", name, p.ConfigPath)
		if code == 0 {
			wgnsRun(t, "down", "--force", name)
			t.Fatalf("up with PortForwardUser = %s succeeded", tc.user)
		}
		if want := fmt.Sprintf("wgns: %s:%d: %s\n", p.ConfigPath, line, tc.want); stderr != want {
			t.Errorf("up with PortForwardUser = %s:\n got %q\nwant %q", tc.user, stderr, want)
		}
		assertNoTrace(t, name)
	}
}
