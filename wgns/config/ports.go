package config

import (
	"net/netip"
	"path/filepath"
	"strconv"
	"strings"
)

// Publish is one entry of [Namespace] Publish, docker's -p shape:
// "[HOSTIP:]HOSTPORT:PORT[/tcp|/udp]". The tunnel's supervisor listens on
// Host in the host namespace and forwards each connection (or UDP flow) to
// Port on the namespace's own loopback. Nothing inside the namespace gains a
// way out: the listener is the host's, and the namespace sees connections
// from its own lo only.
type Publish struct {
	// Host is where the supervisor listens: HOSTIP (127.0.0.1 when not
	// written; an unspecified address, 0.0.0.0 or ::, means every address
	// of that family) and HOSTPORT.
	Host netip.AddrPort
	// Port is the port on the namespace's loopback, 1-65535.
	Port uint16
	// Proto is "tcp" (the default) or "udp".
	Proto string
	// Line is the config line the entry is on, for errors found at up.
	Line int
}

// String returns the entry as a config writes it, HOSTIP always included:
// "127.0.0.1:8080:80/tcp", "[::1]:5353:53/udp".
func (p Publish) String() string {
	return p.Host.String() + ":" + strconv.Itoa(int(p.Port)) + "/" + p.Proto
}

// DefaultPublishHost is the HOSTIP of a Publish entry that names none: only
// the host itself can connect.
var DefaultPublishHost = netip.AddrFrom4([4]byte{127, 0, 0, 1})

// PortForward is [Namespace] PortForward, "natpmp[:GATEWAY]": provider port
// forwarding over NAT-PMP (RFC 6886), asked of Gateway through the tunnel,
// with the optional command to tell a service the port.
type PortForward struct {
	// Gateway is the NAT-PMP server, an IPv4 address routed through the
	// tunnel: GATEWAY, or the config's first IPv4 DNS server (which is the
	// gateway for ProtonVPN).
	Gateway netip.Addr
	// Command is PortForwardCommand split on white space (an absolute path
	// and its arguments), nil when unset. It runs inside the namespace, as
	// User, each time the forwarded port is granted or changes.
	Command []string
	// User is PortForwardUser: the user (a name, or a uid when all digits)
	// Command runs as; never root. "" when Command is unset.
	User string
	// Line, CommandLine and UserLine are the lines of PortForward,
	// PortForwardCommand and PortForwardUser (0 when absent), for errors
	// found at up.
	Line, CommandLine, UserLine int
}

// portsState is what the parser keeps of the Publish and PortForward lines.
type portsState struct {
	published   map[publishKey]int // listening address -> line
	forward     string             // PortForward as written ("" when absent)
	forwardLine int
	command     []string
	commandLine int
	user        string
	userLine    int
}

type publishKey struct {
	host  netip.AddrPort
	proto string
}

// publish handles one entry of a Publish line.
func (p *parser) publish(n int, e string) error {
	pub, why := parsePublish(e)
	if why != "" {
		return p.errf(n, "invalid Publish %s: %s", p.show(e), why)
	}
	pub.Line = n
	if p.ports.published == nil {
		p.ports.published = map[publishKey]int{}
	}
	k := publishKey{pub.Host, pub.Proto}
	if first, dup := p.ports.published[k]; dup {
		return p.errf(n, "Publish %s/%s is listed twice (first on line %d)", pub.Host, pub.Proto, first)
	}
	for other, line := range p.ports.published {
		if other.proto == pub.Proto && other.host.Port() == pub.Host.Port() && other.host.Addr().Is4() == pub.Host.Addr().Is4() &&
			(other.host.Addr().IsUnspecified() || pub.Host.Addr().IsUnspecified()) {
			return p.errf(n, "Publish %s/%s overlaps %s/%s on line %d (%s listens on every %s address)",
				pub.Host, pub.Proto, other.host, other.proto, line, unspecifiedOf(pub.Host, other.host), family(pub.Host.Addr()))
		}
	}
	p.ports.published[k] = n
	p.cfg.Namespace.Publish = append(p.cfg.Namespace.Publish, pub)
	return nil
}

// unspecifiedOf returns whichever of a and b has the unspecified address.
func unspecifiedOf(a, b netip.AddrPort) netip.AddrPort {
	if a.Addr().IsUnspecified() {
		return a
	}
	return b
}

// parsePublish parses "[HOSTIP:]HOSTPORT:PORT[/tcp|/udp]"; an IPv6 HOSTIP is
// written in brackets. It returns a non-empty reason when s is not one.
func parsePublish(s string) (Publish, string) {
	pub := Publish{Proto: "tcp"}
	rest := s
	if i := strings.LastIndexByte(rest, '/'); i >= 0 {
		pub.Proto = strings.ToLower(rest[i+1:])
		rest = rest[:i]
		if pub.Proto != "tcp" && pub.Proto != "udp" {
			return Publish{}, "protocol must be tcp or udp"
		}
	}
	host := DefaultPublishHost
	hostPart, ports := "", rest
	switch {
	case strings.HasPrefix(rest, "["):
		end := strings.IndexByte(rest, ']')
		if end < 0 {
			return Publish{}, `missing "]" after the IPv6 address`
		}
		if !strings.HasPrefix(rest[end+1:], ":") {
			return Publish{}, `expected ":" and HOSTPORT:PORT after "]"`
		}
		hostPart, ports = rest[1:end], rest[end+2:]
		a, err := netip.ParseAddr(hostPart)
		if err != nil || !a.Is6() {
			return Publish{}, "not an IPv6 address inside the brackets"
		}
		host = a
	case strings.Count(rest, ":") == 2:
		i := strings.IndexByte(rest, ':')
		hostPart, ports = rest[:i], rest[i+1:]
		a, err := netip.ParseAddr(hostPart)
		if err != nil || !a.Is4() {
			return Publish{}, "HOSTIP is not an IPv4 address (an IPv6 one goes in brackets, like [::1]:8080:80)"
		}
		host = a
	case strings.Count(rest, ":") > 2:
		return Publish{}, "an IPv6 HOSTIP must be in brackets, like [::1]:8080:80"
	}
	switch {
	case host.Zone() != "":
		return Publish{}, "IPv6 zones are not allowed"
	case host.IsMulticast():
		return Publish{}, "HOSTIP is a multicast address"
	case host.Is4In6():
		return Publish{}, "HOSTIP is an IPv4-mapped IPv6 address; write it as IPv4"
	}
	hostPort, port, ok := strings.Cut(ports, ":")
	if !ok {
		return Publish{}, "expected [HOSTIP:]HOSTPORT:PORT[/tcp|/udp], like 8080:80 or 127.0.0.1:8080:80/tcp"
	}
	hp, ok1 := parseUint(hostPort)
	pp, ok2 := parseUint(port)
	if !ok1 || hp < 1 || hp > 65535 {
		return Publish{}, "HOSTPORT must be 1-65535"
	}
	if !ok2 || pp < 1 || pp > 65535 {
		return Publish{}, "PORT must be 1-65535"
	}
	pub.Host = netip.AddrPortFrom(host, uint16(hp))
	pub.Port = uint16(pp)
	return pub, ""
}

// portForwardKey handles PortForward, PortForwardCommand and PortForwardUser.
func (p *parser) portForwardKey(n int, key, v string) error {
	s := &p.ports
	switch key {
	case "PortForward":
		method, gw, hasGW := strings.Cut(v, ":")
		if !strings.EqualFold(method, "natpmp") {
			return p.errf(n, "invalid PortForward %s: the only method is natpmp (natpmp or natpmp:GATEWAY)", p.show(v))
		}
		if hasGW {
			a, err := netip.ParseAddr(gw)
			switch {
			case err != nil || !a.Is4():
				return p.errf(n, "invalid PortForward %s: GATEWAY must be an IPv4 address (NAT-PMP is IPv4 only)", p.show(v))
			case a.IsUnspecified() || a.IsMulticast() || a == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
				return p.errf(n, "invalid PortForward %s: GATEWAY must be the address of one host", p.show(v))
			}
			p.cfg.Namespace.PortForward = &PortForward{Gateway: a}
		}
		s.forward, s.forwardLine = v, n
	case "PortForwardCommand":
		argv := strings.Fields(v)
		if !filepath.IsAbs(argv[0]) {
			return p.errf(n, "invalid PortForwardCommand %s: the command must be an absolute path (it is not looked up in PATH)", p.show(argv[0]))
		}
		s.command, s.commandLine = argv, n
	case "PortForwardUser":
		if strings.ContainsAny(v, ": \t") {
			return p.errf(n, "invalid PortForwardUser %s: not a user name or uid", p.show(v))
		}
		if v == "root" || isZeroUID(v) {
			return p.errf(n, "PortForwardUser %s is root; the command never runs as root: name the service's own user", p.show(v))
		}
		s.user, s.userLine = v, n
	}
	return nil
}

// isZeroUID reports whether s is a uid of all digits that is 0.
func isZeroUID(s string) bool {
	n, ok := parseUint(s)
	return ok && n == 0
}

// finishPorts checks what PortForward needs of the whole file, fills in the
// gateway, and warns about Publish entries that others can reach.
func (p *parser) finishPorts() error {
	s := &p.ports
	ns := &p.cfg.Namespace
	for _, pub := range ns.Publish {
		if a := pub.Host.Addr(); !a.IsLoopback() {
			p.warnf(pub.Line, "Publish %s listens on %s: anyone who can reach it reaches the service inside, not just this host's users", pub, a)
		}
	}
	if s.forwardLine == 0 {
		switch {
		case s.commandLine != 0:
			return p.errf(s.commandLine, "PortForwardCommand needs PortForward = natpmp[:GATEWAY]")
		case s.userLine != 0:
			return p.errf(s.userLine, "PortForwardUser needs PortForward = natpmp[:GATEWAY]")
		}
		return nil
	}
	switch {
	case s.commandLine != 0 && s.userLine == 0:
		return p.errf(s.commandLine, "PortForwardCommand needs PortForwardUser: the command never runs as root")
	case s.userLine != 0 && s.commandLine == 0:
		return p.errf(s.userLine, "PortForwardUser means nothing without PortForwardCommand")
	}
	if ns.PortForward == nil {
		ns.PortForward = &PortForward{}
		for _, a := range p.cfg.Interface.DNS {
			if a.Is4() {
				ns.PortForward.Gateway = a
				break
			}
		}
		if !ns.PortForward.Gateway.IsValid() {
			return p.errf(s.forwardLine, "PortForward = natpmp needs a gateway: write natpmp:GATEWAY, or give [Interface] an IPv4 DNS server (the provider's gateway)")
		}
	}
	pf := ns.PortForward
	if !p.routed(pf.Gateway) {
		return p.errf(s.forwardLine, "PortForward gateway %v is in no peer's AllowedIPs: the tunnel cannot reach it", pf.Gateway)
	}
	pf.Command, pf.User = s.command, s.user
	pf.Line, pf.CommandLine, pf.UserLine = s.forwardLine, s.commandLine, s.userLine
	return nil
}
