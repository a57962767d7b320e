package wgns

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/vishvananda/netns"
	"golang.org/x/net/dns/dnsmessage"

	"github.com/wgns/wgns/nsmgr"
)

// nameserverWait bounds each query of the nameserver check.
var nameserverWait = 2 * time.Second

// nameserverFact is what one DNS server of the config did with a query from inside.
type nameserverFact struct {
	server netip.Addr
	rtt    time.Duration
	rcode  dnsmessage.RCode
	err    error // no answer
}

// gatherNameservers asks every DNS server of the config, at once, for the root's NS records from
// a socket made inside the namespace ns: the only way out of it is the tunnel. Any answer counts,
// even a refusal: the server is reachable, and answers.
func gatherNameservers(ns netns.NsHandle, servers []netip.Addr) []nameserverFact {
	facts := make([]nameserverFact, len(servers))
	var wg sync.WaitGroup
	for i, s := range servers {
		facts[i].server = s
		wg.Add(1)
		go func() {
			defer wg.Done()
			facts[i].rtt, facts[i].rcode, facts[i].err = queryFrom(ns, s, nameserverWait)
		}()
	}
	wg.Wait()
	return facts
}

// queryFrom sends a DNS query from inside ns to server and waits up to wait for its answer.
func queryFrom(ns netns.NsHandle, server netip.Addr, wait time.Duration) (time.Duration, dnsmessage.RCode, error) {
	var c net.PacketConn
	err := nsmgr.Do(ns, func() (err error) {
		c, err = net.ListenPacket("udp", ":0")
		return err
	})
	if err != nil {
		return 0, 0, err
	}
	defer c.Close()
	id := uint16(time.Now().UnixNano())
	q := dnsmessage.Message{
		Header:    dnsmessage.Header{ID: id, RecursionDesired: true},
		Questions: []dnsmessage.Question{{Name: dnsmessage.MustNewName("."), Type: dnsmessage.TypeNS, Class: dnsmessage.ClassINET}},
	}
	pkt, err := q.Pack()
	if err != nil {
		return 0, 0, err
	}
	start := time.Now()
	c.SetDeadline(start.Add(wait))
	to := net.UDPAddrFromAddrPort(netip.AddrPortFrom(server, 53))
	if _, err := c.WriteTo(pkt, to); err != nil {
		return 0, 0, err
	}
	buf := make([]byte, 4096)
	for {
		n, from, err := c.ReadFrom(buf)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return 0, 0, fmt.Errorf("no answer in %s", wait)
			}
			return 0, 0, err
		}
		var h dnsmessage.Parser
		hdr, err := h.Start(buf[:n])
		if err != nil || hdr.ID != id || !hdr.Response || from.String() != to.String() {
			continue // not the answer to this query
		}
		return time.Since(start), hdr.RCode, nil
	}
}

func checkNameserver(f *checkFacts) CheckResult {
	switch {
	case f.nsErr != nil:
		return noNamespace(CheckNameserver)
	case f.cfg == nil:
		return noConfig(CheckNameserver)
	case len(f.nameservers) == 0:
		return pass(CheckNameserver, "no DNS server in the config: names resolve only from /etc/hosts inside")
	}
	var faults, oks []string
	for _, n := range f.nameservers {
		if n.err != nil {
			faults = append(faults, fmt.Sprintf("%s did not answer through the tunnel: %v (programs inside cannot resolve names through it)", n.server, n.err))
			continue
		}
		oks = append(oks, fmt.Sprintf("%s answered through the tunnel in %.1f ms (%s)", n.server, float64(n.rtt)/float64(time.Millisecond), strings.TrimPrefix(n.rcode.String(), "RCode")))
	}
	if len(faults) > 0 {
		return fail(CheckNameserver, faults...)
	}
	return pass(CheckNameserver, strings.Join(oks, "; "))
}
