package ports

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"time"
)

// NATPMPPort is the UDP port of a NAT-PMP server (RFC 6886).
const NATPMPPort = 5351

// NAT-PMP opcodes: a mapping request's opcode names the protocol; a response's is the request's
// plus 128.
const (
	opExternalAddress = 0
	opMapUDP          = 1
	opMapTCP          = 2
	opResponse        = 128
)

// ResultError is a NAT-PMP result code other than 0 (success), as the gateway sent it.
type ResultError uint16

// Error names the result code as RFC 6886 does.
func (e ResultError) Error() string {
	switch e {
	case 1:
		return "the gateway refused the request: unsupported version (result 1)"
	case 2:
		return "the gateway refused the request: not authorized (result 2)"
	case 3:
		return "the gateway failed: network failure (result 3)"
	case 4:
		return "the gateway refused the request: out of resources (result 4)"
	case 5:
		return "the gateway refused the request: unsupported opcode (result 5)"
	}
	return fmt.Sprintf("the gateway refused the request (result %d)", uint16(e))
}

// ErrNoAnswer is returned (wrapped) when the gateway does not answer a request.
var ErrNoAnswer = errors.New("no answer")

// mapping is a port mapping as the gateway granted it: traffic to external on the gateway's
// public address goes to internal here, for lifetime.
type mapping struct {
	proto    string
	internal uint16
	external uint16
	lifetime time.Duration
	epoch    uint32 // the gateway's seconds since its mappings began
}

func opOf(proto string) byte {
	if proto == "udp" {
		return opMapUDP
	}
	return opMapTCP
}

// mapRequest is a NAT-PMP mapping request (12 bytes): version 0, the opcode, two reserved bytes,
// the internal port, the suggested external port, the requested lifetime in seconds. Lifetime 0
// (with external 0) asks the gateway to delete the mapping of internal.
func mapRequest(proto string, internal, external uint16, lifetime uint32) []byte {
	b := make([]byte, 12)
	b[1] = opOf(proto)
	binary.BigEndian.PutUint16(b[4:], internal)
	binary.BigEndian.PutUint16(b[6:], external)
	binary.BigEndian.PutUint32(b[8:], lifetime)
	return b
}

// errNotOurs marks a datagram that is not the response to the request sent: it is ignored.
var errNotOurs = errors.New("not a response to this request")

// parseMapResponse reads a mapping response (16 bytes): version 0, opcode 128+op, the result
// code, the epoch, the internal port, the mapped external port, the lifetime granted.
func parseMapResponse(b []byte, proto string) (mapping, error) {
	if len(b) < 16 || b[0] != 0 || b[1] != opResponse+opOf(proto) {
		if len(b) >= 4 && b[0] == 0 && b[1] == opResponse+opOf(proto) {
			// A short error response (some gateways send 8 bytes for a failure).
			if rc := binary.BigEndian.Uint16(b[2:]); rc != 0 {
				return mapping{}, ResultError(rc)
			}
		}
		return mapping{}, errNotOurs
	}
	if rc := binary.BigEndian.Uint16(b[2:]); rc != 0 {
		return mapping{}, ResultError(rc)
	}
	m := mapping{
		proto:    proto,
		epoch:    binary.BigEndian.Uint32(b[4:]),
		internal: binary.BigEndian.Uint16(b[8:]),
		external: binary.BigEndian.Uint16(b[10:]),
		lifetime: time.Duration(binary.BigEndian.Uint32(b[12:])) * time.Second,
	}
	return m, nil
}

// gatewayConn is a UDP socket connected to the gateway: it receives only what the gateway's
// address and port send.
type gatewayConn interface {
	Write(b []byte) (int, error)
	Read(b []byte) (int, error)
	SetReadDeadline(t time.Time) error
	Close() error
}

// retransmit is how a request is repeated when no answer comes: RFC 6886 starts at 250 ms and
// doubles the wait after each try.
type retransmit struct {
	first time.Duration
	tries int
}

// defaultRetransmit gives up after 5 tries, 7.75 s in all (RFC 6886 allows 9, 64 s; the renewal
// loop retries with back-off anyway).
var defaultRetransmit = retransmit{first: 250 * time.Millisecond, tries: 5}

// ask sends a mapping request on c and returns the gateway's mapping, repeating the request as
// r says while no answer comes.
func ask(ctx context.Context, c gatewayConn, r retransmit, proto string, internal, external uint16, lifetime uint32) (mapping, error) {
	req := mapRequest(proto, internal, external, lifetime)
	buf := make([]byte, 64)
	wait := r.first
	for try := 0; try < r.tries; try++ {
		if err := ctx.Err(); err != nil {
			return mapping{}, err
		}
		if _, err := c.Write(req); err != nil {
			return mapping{}, fmt.Errorf("sending: %w", err)
		}
		deadline := time.Now().Add(wait)
		if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
			deadline = d
		}
		c.SetReadDeadline(deadline)
		for {
			n, err := c.Read(buf)
			if errors.Is(err, os.ErrDeadlineExceeded) {
				break // send again
			}
			if err != nil {
				// ECONNREFUSED: the gateway's port is closed (ICMP port unreachable).
				return mapping{}, fmt.Errorf("receiving: %w", err)
			}
			m, err := parseMapResponse(buf[:n], proto)
			if errors.Is(err, errNotOurs) {
				continue
			}
			return m, err
		}
		wait *= 2
	}
	if err := ctx.Err(); err != nil {
		return mapping{}, err
	}
	return mapping{}, fmt.Errorf("%w in %s (%d tries)", ErrNoAnswer, r.total(), r.tries)
}

// total is how long a request is tried before giving up.
func (r retransmit) total() time.Duration {
	var d time.Duration
	for i, w := 0, r.first; i < r.tries; i, w = i+1, w*2 {
		d += w
	}
	return d
}
