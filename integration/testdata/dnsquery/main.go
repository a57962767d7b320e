// Command dnsquery is a program that does its own DNS, for the wgns exec integration tests: it
// never goes through libc or NSS.
//
//	dnsquery [-server ADDR] [-type A|AAAA] NAME  send one UDP query for NAME to ADDR:53 (by
//	                                             default the first nameserver of
//	                                             /etc/resolv.conf, read by this program) and
//	                                             print "SERVER TYPE NAME ADDR" per answer
//	dnsquery connect PATH...                     try to connect to each unix socket PATH and
//	                                             print "PATH: connected" or "PATH: failed: ERROR"
//
// It exits 1 with a message on stderr when the query gets no answer or fails.
package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"time"

	"golang.org/x/net/dns/dnsmessage"
)

func main() {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case "connect":
			for _, p := range os.Args[2:] {
				c, err := net.Dial("unix", p)
				if err != nil {
					fmt.Printf("%s: failed: %v\n", p, err)
					continue
				}
				c.Close()
				fmt.Printf("%s: connected\n", p)
			}
			return
		}
	}
	server := flag.String("server", "", "the server's address (default: the first nameserver of /etc/resolv.conf)")
	qtype := flag.String("type", "A", "A or AAAA")
	flag.Parse()
	if flag.NArg() != 1 {
		fail(errors.New("usage: dnsquery [-server ADDR] [-type A|AAAA] NAME | connect PATH..."))
	}
	name := flag.Arg(0)
	t := map[string]dnsmessage.Type{"A": dnsmessage.TypeA, "AAAA": dnsmessage.TypeAAAA}[*qtype]
	if t == 0 {
		fail(fmt.Errorf("type %q: want A or AAAA", *qtype))
	}
	if *server == "" {
		s, err := firstNameserver("/etc/resolv.conf")
		if err != nil {
			fail(err)
		}
		*server = s
	}
	addrs, err := query(*server, name, t)
	if err != nil {
		fail(err)
	}
	for _, a := range addrs {
		fmt.Printf("%s %s %s %s\n", *server, *qtype, name, a)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "dnsquery:", err)
	os.Exit(1)
}

// firstNameserver returns the address of the first nameserver line of path.
func firstNameserver(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if fs := strings.Fields(sc.Text()); len(fs) >= 2 && fs[0] == "nameserver" {
			return fs[1], nil
		}
	}
	if err := sc.Err(); err != nil {
		return "", err
	}
	return "", fmt.Errorf("%s names no nameserver", path)
}

// query sends one query for name of type t to server:53 over UDP and returns the addresses of
// the answer's records of that type.
func query(server, name string, t dnsmessage.Type) ([]netip.Addr, error) {
	qname, err := dnsmessage.NewName(strings.TrimSuffix(name, ".") + ".")
	if err != nil {
		return nil, fmt.Errorf("bad name %q: %w", name, err)
	}
	const id = 0x5a17
	q := dnsmessage.Message{
		Header:    dnsmessage.Header{ID: id, RecursionDesired: true},
		Questions: []dnsmessage.Question{{Name: qname, Type: t, Class: dnsmessage.ClassINET}},
	}
	msg, err := q.Pack()
	if err != nil {
		return nil, fmt.Errorf("bad name %q: %w", name, err)
	}
	c, err := net.Dial("udp", net.JoinHostPort(server, "53"))
	if err != nil {
		return nil, err
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(5 * time.Second)); err != nil {
		return nil, err
	}
	if _, err := c.Write(msg); err != nil {
		return nil, fmt.Errorf("querying %s: %w", server, err)
	}
	buf := make([]byte, 1500)
	n, err := c.Read(buf)
	if err != nil {
		return nil, fmt.Errorf("querying %s: %w", server, err)
	}
	return parse(buf[:n], id, t)
}

// parse reads the addresses of type t from the answer section of the reply m to query id.
func parse(m []byte, id uint16, t dnsmessage.Type) ([]netip.Addr, error) {
	var r dnsmessage.Message
	if err := r.Unpack(m); err != nil {
		return nil, fmt.Errorf("reading the reply: %w", err)
	}
	if r.ID != id || !r.Response {
		return nil, errors.New("not a reply to our query")
	}
	if r.RCode != dnsmessage.RCodeSuccess {
		return nil, fmt.Errorf("reply code %d", r.RCode)
	}
	var addrs []netip.Addr
	for _, a := range r.Answers {
		switch b := a.Body.(type) {
		case *dnsmessage.AResource:
			if t == dnsmessage.TypeA {
				addrs = append(addrs, netip.AddrFrom4(b.A))
			}
		case *dnsmessage.AAAAResource:
			if t == dnsmessage.TypeAAAA {
				addrs = append(addrs, netip.AddrFrom16(b.AAAA))
			}
		}
	}
	if len(addrs) == 0 {
		return nil, errors.New("no address in the reply")
	}
	return addrs, nil
}
