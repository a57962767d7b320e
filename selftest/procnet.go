package selftest

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

// udpSocket is one line of /proc/net/udp or /proc/net/udp6.
type udpSocket struct {
	Port  int
	Inode uint64
}

// parseProcUDP reads the table of /proc/PID/net/udp or udp6: a header line, then one socket a
// line, "sl local_address rem_address st ... uid timeout inode ...", with the local address as
// hex ADDR:PORT.
func parseProcUDP(r io.Reader) ([]udpSocket, error) {
	sc := bufio.NewScanner(r)
	var out []udpSocket
	for first := true; sc.Scan(); first = false {
		f := strings.Fields(sc.Text())
		if first || len(f) == 0 {
			continue
		}
		if len(f) < 10 {
			return nil, fmt.Errorf("reading a UDP socket table: short line %q", sc.Text())
		}
		_, portHex, ok := strings.Cut(f[1], ":")
		if !ok {
			return nil, fmt.Errorf("reading a UDP socket table: local address %q", f[1])
		}
		port, err := strconv.ParseUint(portHex, 16, 16)
		if err != nil {
			return nil, fmt.Errorf("reading a UDP socket table: port of %q: %w", f[1], err)
		}
		inode, err := strconv.ParseUint(f[9], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("reading a UDP socket table: inode %q: %w", f[9], err)
		}
		out = append(out, udpSocket{Port: int(port), Inode: inode})
	}
	return out, sc.Err()
}

// udpSockets returns the UDP sockets (IPv4 and IPv6) of the network namespace that dir
// describes: "/proc/PID/net" for the namespace of PID's main thread, "/proc/thread-self/net"
// for the calling thread's.
func udpSockets(dir string) ([]udpSocket, error) {
	var all []udpSocket
	for _, f := range []string{"udp", "udp6"} {
		p := dir + "/" + f
		file, err := os.Open(p)
		if err != nil {
			return nil, fmt.Errorf("listing UDP sockets: %w", err)
		}
		s, err := parseProcUDP(file)
		file.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		all = append(all, s...)
	}
	return all, nil
}

// socketInodes returns the inodes of the sockets that process pid has open.
func socketInodes(pid int) (map[uint64]bool, error) {
	dir := "/proc/" + strconv.Itoa(pid) + "/fd"
	d, err := os.Open(dir)
	if err != nil {
		return nil, fmt.Errorf("listing the open files of process %d: %w", pid, err)
	}
	names, err := d.Readdirnames(-1)
	d.Close()
	if err != nil {
		return nil, fmt.Errorf("listing the open files of process %d: %w", pid, err)
	}
	out := map[uint64]bool{}
	for _, n := range names {
		l, err := os.Readlink(dir + "/" + n)
		if err != nil {
			continue
		}
		if s, ok := strings.CutPrefix(l, "socket:["); ok {
			if ino, err := strconv.ParseUint(strings.TrimSuffix(s, "]"), 10, 64); err == nil {
				out[ino] = true
			}
		}
	}
	return out, nil
}
