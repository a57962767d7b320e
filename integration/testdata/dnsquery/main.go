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
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"time"
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
	t := map[string]uint16{"A": 1, "AAAA": 28}[*qtype]
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
func query(server, name string, t uint16) ([]netip.Addr, error) {
	c, err := net.Dial("udp", net.JoinHostPort(server, "53"))
	if err != nil {
		return nil, err
	}
	defer c.Close()
	const id = 0x5a17
	msg := binary.BigEndian.AppendUint16(nil, id)
	msg = append(msg, 0x01, 0x00) // a standard query, recursion desired
	msg = append(msg, 0, 1, 0, 0, 0, 0, 0, 0)
	for _, label := range strings.Split(strings.TrimSuffix(name, "."), ".") {
		if len(label) == 0 || len(label) > 63 {
			return nil, fmt.Errorf("bad name %q", name)
		}
		msg = append(msg, byte(len(label)))
		msg = append(msg, label...)
	}
	msg = append(msg, 0)
	msg = binary.BigEndian.AppendUint16(msg, t)
	msg = binary.BigEndian.AppendUint16(msg, 1) // IN
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
func parse(m []byte, id, t uint16) ([]netip.Addr, error) {
	if len(m) < 12 || binary.BigEndian.Uint16(m) != id || m[2]&0x80 == 0 {
		return nil, errors.New("not a reply to our query")
	}
	if rcode := m[3] & 0x0f; rcode != 0 {
		return nil, fmt.Errorf("reply code %d", rcode)
	}
	qd, an := binary.BigEndian.Uint16(m[4:]), binary.BigEndian.Uint16(m[6:])
	off := 12
	for range qd {
		var err error
		if off, err = skipName(m, off); err != nil {
			return nil, err
		}
		off += 4
	}
	var addrs []netip.Addr
	for range an {
		var err error
		if off, err = skipName(m, off); err != nil {
			return nil, err
		}
		if off+10 > len(m) {
			return nil, errors.New("truncated reply")
		}
		rt, rdlen := binary.BigEndian.Uint16(m[off:]), int(binary.BigEndian.Uint16(m[off+8:]))
		off += 10
		if off+rdlen > len(m) {
			return nil, errors.New("truncated reply")
		}
		if a, ok := netip.AddrFromSlice(m[off : off+rdlen]); ok && rt == t {
			addrs = append(addrs, a)
		}
		off += rdlen
	}
	if len(addrs) == 0 {
		return nil, errors.New("no address in the reply")
	}
	return addrs, nil
}

// skipName returns the offset just past the (possibly compressed) name at off.
func skipName(m []byte, off int) (int, error) {
	for off < len(m) {
		switch l := m[off]; {
		case l == 0:
			return off + 1, nil
		case l&0xc0 == 0xc0:
			return off + 2, nil
		default:
			off += 1 + int(l)
		}
	}
	return 0, errors.New("truncated name in the reply")
}
