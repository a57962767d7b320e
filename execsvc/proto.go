// Package execsvc is the client side of sudo-free `wgns exec`, and the wire protocol it speaks
// with the root service `wgns serve` (package execsvc/server).
//
// A user named in a tunnel's [Namespace] Users runs `wgns exec NAME -- CMD` without sudo: wgns,
// not being root, connects to the service's socket (Socket) and sends one request: the tunnel,
// the command, its environment and working directory, with the caller's standard files attached
// (SCM_RIGHTS) and its credentials (SCM_CREDENTIALS). The service checks who the caller is from
// the kernel, not from anything the request says, runs the command as exactly that caller, and
// answers Started; then the client passes on the signals it gets and its terminal's window
// size changes, and the service sends Exit when the command ends (or could not start, with
// wgns's own status 125-127 and why).
//
// The protocol: a stream of frames, each a type byte, the payload's length (uint32, little
// endian) and the payload. Strings are a uint32 length and the bytes; lists a uint32 count and
// the strings. The request must arrive whole within the service's deadline and is bounded
// (MaxRequest); every other frame is small (MaxFrame).
//
// This package is part of `wgns exec` and must stay small: no initialisation at start-up.
package execsvc

import (
	"errors"
	"fmt"
)

// Socket is where the service listens (systemd's wgns.socket, or `wgns serve` started by hand).
const Socket = "/run/wgns.sock"

// Frame types.
const (
	// FrameRequest (client to service) is the request: a Request, with the standard files and
	// credentials attached.
	FrameRequest = 'R'
	// FrameStarted (service to client): the command runs.
	FrameStarted = 'S'
	// FrameExit (service to client): how the command ended, or why it did not start (an Exit).
	FrameExit = 'E'
	// FrameSignal (client to service): pass on a signal (uint32).
	FrameSignal = 'K'
	// FrameResize (client to service): the caller's terminal changed its window size.
	FrameResize = 'W'
)

// Version is the protocol's version, the first field of a request.
const Version = 1

// MaxRequest bounds a request's payload: more than the kernel lets a command line and
// environment be (ARG_MAX is 2 MiB by default).
const MaxRequest = 3 << 20

// MaxFrame bounds every other frame's payload.
const MaxFrame = 4096

// headerSize is a frame's type and length.
const headerSize = 5

// Flags of a request.
const (
	// FlagNoNewPrivs asks for no_new_privs (exec --no-new-privs).
	FlagNoNewPrivs = 1 << iota
	// FlagBackground says the client is a background job of its terminal: the command gets no
	// input from it.
	FlagBackground
)

// Request is what the client asks for.
type Request struct {
	Name  string   // the tunnel
	Argv  []string // the command and its arguments
	Env   []string // its environment
	Dir   string   // its working directory: the caller's
	Flags uint32
	// Files says which of the caller's standard files (bit i for descriptor i) are attached,
	// in that order; the others were closed.
	Files uint32
}

// Exit is how a command ended, or why it could not start.
type Exit struct {
	Code    int    // the exit status, as a shell reports it (128+N for signal N)
	Signal  int    // the signal that ended the command; 0 if it exited or did not start
	Message string // what wgns has to say (why it did not start, or why it was ended); "" if nothing
}

// ErrProtocol is wrapped by the errors of parsing a frame that does not follow the protocol.
var ErrProtocol = errors.New("not the wgns exec protocol")

// frame returns a frame of type typ with payload.
func frame(typ byte, payload []byte) []byte {
	b := make([]byte, headerSize, headerSize+len(payload))
	b[0] = typ
	putU32(b[1:], uint32(len(payload)))
	return append(b, payload...)
}

// Header parses a frame's header: its type and payload length.
func Header(h []byte) (typ byte, n uint32) {
	return h[0], getU32(h[1:headerSize])
}

// HeaderSize is the size of a frame's header.
const HeaderSize = headerSize

// Marshal returns r as a request frame.
func (r *Request) Marshal() []byte {
	var p []byte
	p = appendU32(p, Version)
	p = appendU32(p, r.Flags)
	p = appendU32(p, r.Files)
	p = appendString(p, r.Name)
	p = appendString(p, r.Dir)
	p = appendList(p, r.Argv)
	p = appendList(p, r.Env)
	return frame(FrameRequest, p)
}

// ParseRequest parses a request's payload.
func ParseRequest(p []byte) (*Request, error) {
	d := decoder{b: p}
	if v := d.u32(); v != Version && d.err == nil {
		return nil, fmt.Errorf("%w: version %d, this wgns speaks %d", ErrProtocol, v, Version)
	}
	r := &Request{Flags: d.u32(), Files: d.u32()}
	r.Name, r.Dir = d.str(), d.str()
	r.Argv, r.Env = d.list(), d.list()
	if err := d.done(); err != nil {
		return nil, err
	}
	return r, nil
}

// Marshal returns e as an exit frame.
func (e Exit) Marshal() []byte {
	var p []byte
	p = appendU32(p, uint32(int32(e.Code)))
	p = appendU32(p, uint32(int32(e.Signal)))
	msg := e.Message
	if len(msg) > MaxFrame-64 {
		msg = msg[:MaxFrame-64]
	}
	p = appendString(p, msg)
	return frame(FrameExit, p)
}

// ParseExit parses an exit frame's payload.
func ParseExit(p []byte) (Exit, error) {
	d := decoder{b: p}
	e := Exit{Code: int(int32(d.u32())), Signal: int(int32(d.u32())), Message: d.str()}
	return e, d.done()
}

// SignalFrame returns the frame that passes on signal sig.
func SignalFrame(sig uint32) []byte {
	return frame(FrameSignal, appendU32(nil, sig))
}

// ParseSignal parses a signal frame's payload.
func ParseSignal(p []byte) (uint32, error) {
	d := decoder{b: p}
	s := d.u32()
	return s, d.done()
}

// StartedFrame is the frame that says the command runs.
func StartedFrame() []byte { return frame(FrameStarted, nil) }

// ResizeFrame is the frame that says the caller's window size changed.
func ResizeFrame() []byte { return frame(FrameResize, nil) }

func appendString(b []byte, s string) []byte {
	b = appendU32(b, uint32(len(s)))
	return append(b, s...)
}

func appendList(b []byte, l []string) []byte {
	b = appendU32(b, uint32(len(l)))
	for _, s := range l {
		b = appendString(b, s)
	}
	return b
}

// decoder reads a payload; the first error sticks.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: %s", ErrProtocol, what)
	}
}

func (d *decoder) u32() uint32 {
	if d.err != nil || len(d.b) < 4 {
		d.fail("truncated")
		return 0
	}
	v := getU32(d.b)
	d.b = d.b[4:]
	return v
}

func (d *decoder) str() string {
	n := d.u32()
	if d.err != nil || uint64(n) > uint64(len(d.b)) {
		d.fail("a string longer than the frame")
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}

func (d *decoder) list() []string {
	n := d.u32()
	// Each entry takes at least its 4-byte length: a count beyond that is a lie.
	if d.err != nil || uint64(n)*4 > uint64(len(d.b)) {
		d.fail("a list longer than the frame")
		return nil
	}
	l := make([]string, 0, n)
	for i := uint32(0); i < n && d.err == nil; i++ {
		l = append(l, d.str())
	}
	return l
}

func (d *decoder) done() error {
	if d.err == nil && len(d.b) != 0 {
		d.fail("bytes after the end")
	}
	return d.err
}

// The integers of the protocol are little endian (encoding/binary would add a package to
// initialise at every `wgns exec`).

func putU32(b []byte, v uint32) {
	b[0], b[1], b[2], b[3] = byte(v), byte(v>>8), byte(v>>16), byte(v>>24)
}

func getU32(b []byte) uint32 {
	return uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24
}

func appendU32(b []byte, v uint32) []byte {
	return append(b, byte(v), byte(v>>8), byte(v>>16), byte(v>>24))
}
