package selftest

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"os/user"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The probe runs inside the tunnel, started the way a user starts anything there:
// `wgns exec st -- wgns selftest-probe`. It checks what a program in the tunnel sees, and
// prints one probeResult as JSON on stdout.

// probeCheck is one thing the probe checked.
type probeCheck struct {
	ID     string `json:"id"`
	Status string `json:"status"` // "ok", "fail" or "skip"
	What   string `json:"what"`   // what was checked, and on success what was seen
	Why    string `json:"why,omitempty"`
}

// probeResult is the probe's output.
type probeResult struct {
	UID    int          `json:"uid"`  // the user the probe ran as
	User   string       `json:"user"` // its name, if it has one
	Checks []probeCheck `json:"checks"`
}

// getentPath is where glibc's getent lives on Debian (package libc-bin, which is essential).
var getentPath = "/usr/bin/getent"

// leakTimeout bounds each connection attempt to an address outside the tunnel. Those attempts
// go into the tunnel and the peer drops them, so each lasts until the timeout.
const leakTimeout = 1500 * time.Millisecond

// RunProbe is the hidden command CmdProbe: it runs every check at once, prints the results as
// JSON to out, and returns 0 if all passed or were skipped, 1 otherwise.
func RunProbe(out io.Writer) int {
	checks := []func(context.Context) probeCheck{
		checkResolvConf,
		func(ctx context.Context) probeCheck {
			return checkEcho(ctx, "tcp4", peerTun4.Addr(), clientTun4.Addr())
		},
		func(ctx context.Context) probeCheck {
			return checkEcho(ctx, "tcp6", peerTun6.Addr(), clientTun6.Addr())
		},
		func(ctx context.Context) probeCheck { return checkGoResolver(ctx, "udp") },
		func(ctx context.Context) probeCheck { return checkGoResolver(ctx, "tcp") },
		checkGetent,
		checkUnderlay,
		checkResolverSockets,
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res := probeResult{UID: os.Getuid(), Checks: make([]probeCheck, len(checks))}
	if u, err := user.LookupId(strconv.Itoa(res.UID)); err == nil {
		res.User = u.Username
	}
	var wg sync.WaitGroup
	for i, c := range checks {
		wg.Go(func() { res.Checks[i] = c(ctx) })
	}
	wg.Wait()
	e := json.NewEncoder(out)
	e.SetIndent("", "  ")
	e.Encode(res)
	for _, c := range res.Checks {
		if c.Status == "fail" {
			return 1
		}
	}
	return 0
}

func okCheck(id, what string) probeCheck { return probeCheck{ID: id, Status: "ok", What: what} }

func failCheck(id, what string, err error) probeCheck {
	return probeCheck{ID: id, Status: "fail", What: what, Why: err.Error()}
}

// checkResolvConf reads the resolv.conf a program inside sees: only the tunnel's DNS server.
func checkResolvConf(context.Context) probeCheck {
	const id, what = "resolv.conf", "/etc/resolv.conf inside names only the tunnel's DNS server"
	b, err := os.ReadFile("/etc/resolv.conf")
	if err != nil {
		return failCheck(id, what, err)
	}
	servers := nameservers(b)
	if want := []string{peerTun4.Addr().String()}; !slices.Equal(servers, want) {
		return failCheck(id, what, fmt.Errorf("it names %q, want %q", servers, want))
	}
	return okCheck(id, "/etc/resolv.conf inside names only "+servers[0]+", the tunnel's DNS server")
}

// nameservers returns the addresses of the nameserver lines of a resolv.conf.
func nameservers(resolvConf []byte) []string {
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(resolvConf))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) >= 2 && f[0] == "nameserver" {
			out = append(out, f[1])
		}
	}
	return out
}

// checkEcho makes a TCP connection to the peer's echo server at dst, which the tunnel carries,
// and checks that what it sends comes back and that it left from the tunnel's address src.
func checkEcho(ctx context.Context, id string, dst, src netip.Addr) probeCheck {
	family := "IPv4"
	if dst.Is6() {
		family = "IPv6"
	}
	to := netip.AddrPortFrom(dst, echoPort)
	what := fmt.Sprintf("TCP over %s through the tunnel to %s", family, to)
	var d net.Dialer
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	c, err := d.DialContext(ctx, "tcp", to.String())
	if err != nil {
		return failCheck(id, what, err)
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	token := make([]byte, 16)
	rand.Read(token)
	msg := []byte("wgns selftest " + hex.EncodeToString(token) + "\n")
	if _, err := c.Write(msg); err != nil {
		return failCheck(id, what, err)
	}
	back := make([]byte, len(msg))
	if _, err := io.ReadFull(c, back); err != nil {
		return failCheck(id, what, fmt.Errorf("reading the echo: %w", err))
	}
	if !bytes.Equal(back, msg) {
		return failCheck(id, what, fmt.Errorf("the echo was %q, want %q", back, msg))
	}
	local := c.LocalAddr().(*net.TCPAddr).AddrPort().Addr().Unmap()
	if local != src {
		return failCheck(id, what, fmt.Errorf("it left from %s, not from the tunnel's address %s", local, src))
	}
	return okCheck(id, fmt.Sprintf("%s: %d bytes echoed, sent from %s", what, len(msg), local))
}

// wantAddrs are the addresses a lookup of dnsName must give: the peer's, from its DNS server.
func wantAddrs() []netip.Addr { return []netip.Addr{peerTun4.Addr(), peerTun6.Addr()} }

// checkGoResolver looks dnsName up with Go's own resolver, which reads /etc/resolv.conf (the
// namespace's), over UDP or over TCP.
func checkGoResolver(ctx context.Context, network string) probeCheck {
	id := "dns-go-" + network
	what := fmt.Sprintf("DNS over %s (Go resolver): %s", strings.ToUpper(network), strings.TrimSuffix(dnsName, "."))
	r := &net.Resolver{PreferGo: true}
	if network == "tcp" {
		// A resolver's dial that returns a stream connection makes it speak DNS over TCP.
		r.Dial = func(ctx context.Context, _, address string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "tcp", address)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	got, err := r.LookupNetIP(ctx, "ip", dnsName)
	if err != nil {
		return failCheck(id, what, err)
	}
	for i := range got {
		got[i] = got[i].Unmap()
	}
	slices.SortFunc(got, netip.Addr.Compare)
	if !slices.Equal(got, wantAddrs()) {
		return failCheck(id, what, fmt.Errorf("got %v, want %v (the peer's answer)", got, wantAddrs()))
	}
	return okCheck(id, fmt.Sprintf("%s -> %v", what, joinAddrs(got)))
}

// checkGetent looks dnsName up the way C programs do, through glibc's NSS (nsswitch.conf, then
// resolv.conf), with getent.
func checkGetent(ctx context.Context) probeCheck {
	const id = "dns-getent"
	what := "DNS through glibc (getent hosts " + strings.TrimSuffix(dnsName, ".") + ")"
	if _, err := os.Stat(getentPath); err != nil {
		return probeCheck{ID: id, Status: "skip", What: what, Why: getentPath + " is not installed"}
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, getentPath, "hosts", strings.TrimSuffix(dnsName, ".")).Output()
	if err != nil {
		return failCheck(id, what, fmt.Errorf("%w: %s", err, strings.TrimSpace(string(out))))
	}
	f := strings.Fields(string(out))
	if len(f) == 0 {
		return failCheck(id, what, errors.New("no output"))
	}
	a, err := netip.ParseAddr(f[0])
	if err != nil || !slices.Contains(wantAddrs(), a.Unmap()) {
		return failCheck(id, what, fmt.Errorf("got %q, want one of %v (the peer's answer)", strings.TrimSpace(string(out)), wantAddrs()))
	}
	return okCheck(id, what+" -> "+a.String())
}

// checkUnderlay tries TCP connections to addresses outside the tunnel that listen in the world:
// every attempt must fail.
func checkUnderlay(ctx context.Context) probeCheck {
	const id = "underlay"
	var names []string
	for _, t := range underlayTargets {
		names = append(names, t.String())
	}
	what := "no connection from inside to the world or the peer's underlay (" + strings.Join(names, ", ") + ")"
	errs := make([]error, len(underlayTargets))
	var wg sync.WaitGroup
	for i, t := range underlayTargets {
		wg.Go(func() {
			d := net.Dialer{Timeout: leakTimeout}
			c, err := d.DialContext(ctx, "tcp", t.String())
			if err == nil {
				c.Close()
				errs[i] = fmt.Errorf("connected to %s from inside", t)
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return failCheck(id, what, err)
	}
	return okCheck(id, what)
}

// checkResolverSockets tries the host resolver services' unix sockets (decoys here): `wgns exec`
// must hide them, since a path socket crosses network namespaces.
func checkResolverSockets(ctx context.Context) probeCheck {
	const id = "resolver-sockets"
	what := "host resolver sockets hidden inside (" + strings.Join(decoySockets, ", ") + ")"
	var errs []error
	for _, p := range decoySockets {
		d := net.Dialer{Timeout: time.Second}
		c, err := d.DialContext(ctx, "unix", p)
		if err == nil {
			c.Close()
			errs = append(errs, fmt.Errorf("connected to %s from inside", p))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return failCheck(id, what, err)
	}
	return okCheck(id, what)
}

func joinAddrs(as []netip.Addr) string {
	s := make([]string, len(as))
	for i, a := range as {
		s[i] = a.String()
	}
	return strings.Join(s, ", ")
}
