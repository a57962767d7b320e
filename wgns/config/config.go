// Package config reads and validates wg-quick style tunnel configurations
// (`.conf` files) for wgns.
//
// A configuration is read line by line; every problem is reported as
// "FILE:LINE: what is wrong", where FILE is the path or name the caller gave.
// Everything is validated before anything touches the system. Keys never
// appear in error text or warnings, and a [Secret] refuses to print itself.
//
// The format is wg-quick's: [Interface] (exactly one), [Peer] (one or more),
// plus wgns's own optional [Namespace] section. Section and key names are
// case-insensitive, "#" starts a comment, CRLF line endings and a leading
// UTF-8 byte order mark are accepted.
//
// All functions are safe for concurrent use.
package config

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/netip"
	"os"
	"strconv"
	"syscall"

	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"
)

// MaxSize is the largest configuration file Load and Parse accept, in bytes.
const MaxSize = 1 << 20

const hidden = "(hidden)"

// Secret holds a 32-byte WireGuard key (private or preshared) that must never
// be printed: String, GoString and Format (every verb) render "(hidden)", and
// so do MarshalJSON and MarshalText. Use Key to get the key itself, only to
// hand it to WireGuard.
type Secret struct {
	k wgtypes.Key
}

// NewSecret wraps k so that it cannot be printed by accident.
func NewSecret(k wgtypes.Key) Secret { return Secret{k: k} }

// Key returns the key held by s. Do not print or log it.
func (s Secret) Key() wgtypes.Key { return s.k }

// IsZero reports whether s holds no key (the all-zero key, which Parse never
// accepts).
func (s Secret) IsZero() bool { return s.k == wgtypes.Key{} }

// Equal reports whether s and o hold the same key, in constant time. It lets
// go-cmp compare values that contain a Secret.
func (s Secret) Equal(o Secret) bool { return subtle.ConstantTimeCompare(s.k[:], o.k[:]) == 1 }

// String returns "(hidden)".
func (Secret) String() string { return hidden }

// GoString returns "(hidden)".
func (Secret) GoString() string { return hidden }

// Format writes "(hidden)" whatever the verb and flags.
func (Secret) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, hidden) }

// MarshalJSON returns the JSON string "(hidden)".
func (Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + hidden + `"`), nil }

// MarshalText returns "(hidden)".
func (Secret) MarshalText() ([]byte, error) { return []byte(hidden), nil }

// Config is a parsed and validated tunnel configuration.
type Config struct {
	// Path is the file it was read from (the name given to Parse).
	Path string
	// Interface is the [Interface] section.
	Interface Interface
	// Peers holds at least one peer, in file order.
	Peers []Peer
	// Namespace is the [Namespace] section, or its defaults.
	Namespace Namespace
	// Warnings lists accepted-but-ignored settings and similar notes, each
	// "FILE:LINE: ...", e.g. "FILE:LINE: Table means nothing inside a
	// namespace; ignored". They never contain key material.
	Warnings []string
}

// Interface is the [Interface] section.
type Interface struct {
	// PrivateKey comes from PrivateKey or from the file named by PrivateKeyFile.
	PrivateKey Secret
	// PublicKey is derived from PrivateKey.
	PublicKey wgtypes.Key
	// Addresses are the interface's addresses as written, e.g. 10.0.0.2/32 or
	// fd00::2/128 (a bare address gets a host prefix); the address bits are
	// kept, Masked is NOT applied. At least one.
	Addresses []netip.Prefix
	// DNS holds the DNS entries that are IP addresses (the servers).
	DNS []netip.Addr
	// Search holds the DNS entries that are not IP addresses: search domains,
	// validated as host names.
	Search []string
	// MTU is 0 when not set; see EffectiveMTU.
	MTU int
	// ListenPort is 0 when not set (a random port).
	ListenPort int
}

// Peer is one [Peer] section.
type Peer struct {
	// PublicKey is the peer's key; no two peers share one, and it is not the
	// interface's own.
	PublicKey wgtypes.Key
	// PresharedKey is nil when unset.
	PresharedKey *Secret
	// Endpoint is "" or host:port as written, normalised to "[v6]:port" for
	// IPv6 literals; host names are not resolved here.
	Endpoint string
	// EndpointHost is the host name or IP literal (without brackets).
	EndpointHost string
	// EndpointPort is 1-65535 when Endpoint is set, else 0.
	EndpointPort int
	// AllowedIPs are masked prefixes; no prefix belongs to two peers.
	AllowedIPs []netip.Prefix
	// PersistentKeepalive is in seconds; 0 is off.
	PersistentKeepalive int
	// Line is the line of the [Peer] header.
	Line int
}

// Port is an inbound port opened by [Namespace] AllowInbound.
type Port struct {
	// Port is 1-65535.
	Port uint16
	// Proto is "tcp" or "udp".
	Proto string
}

// String returns the port as written in a config, e.g. "51413/tcp".
func (p Port) String() string { return strconv.Itoa(int(p.Port)) + "/" + p.Proto }

// Namespace is wgns's own optional [Namespace] section.
type Namespace struct {
	// AllowInbound lists the ports on which connections coming in through
	// the tunnel are accepted.
	AllowInbound []Port
	// Firewall is true unless the config says "Firewall = off".
	Firewall bool
}

// HasIPv6 reports whether any Address or any peer's AllowedIPs is IPv6.
func (c *Config) HasIPv6() bool {
	for _, p := range c.Interface.Addresses {
		if p.Addr().Is6() {
			return true
		}
	}
	for _, peer := range c.Peers {
		for _, p := range peer.AllowedIPs {
			if p.Addr().Is6() {
				return true
			}
		}
	}
	return false
}

// EffectiveMTU returns the tunnel MTU: MTU if the config sets it, else
// uplinkMTU-80 when uplinkMTU > 0 (wg-quick's rule), else 1420. A derived
// value is raised to the minimum the config's address families allow (1280
// with IPv6, else 576).
func (c *Config) EffectiveMTU(uplinkMTU int) int {
	if c.Interface.MTU > 0 {
		return c.Interface.MTU
	}
	mtu := 1420
	if uplinkMTU > 0 {
		mtu = uplinkMTU - 80
	}
	if lo := minMTU(c.HasIPv6()); mtu < lo {
		mtu = lo
	}
	return mtu
}

func minMTU(ipv6 bool) int {
	if ipv6 {
		return 1280
	}
	return 576
}

// Load reads and parses the configuration file at path; see Parse. A symbolic
// link to a regular file is followed; anything else that is not a regular
// file is refused without being read ("PATH: not a regular file (directory)"),
// as is a file larger than MaxSize. If the file cannot be opened the error
// is "reading config PATH: CAUSE" and wraps the cause, so
// errors.Is(err, fs.ErrNotExist) works. Key files named by the config are
// read too.
func Load(path string) (*Config, error) {
	return newLoader(osKeyFS{}).load(path)
}

// Parse parses and validates a configuration. name is used as FILE in error
// messages and warnings and becomes Config.Path; a relative PrivateKeyFile or
// PresharedKeyFile is taken relative to name's directory and read from the
// file system.
func Parse(name string, data []byte) (*Config, error) {
	return newLoader(osKeyFS{}).parse(name, data)
}

// loader parses configurations, reading key files through fs.
type loader struct {
	fs keyFS
}

func newLoader(fs keyFS) *loader { return &loader{fs: fs} }

func (l *loader) load(path string) (*Config, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("reading config %q: %w", path, causeOf(err))
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file (%s)", path, fileType(fi.Mode()))
	}
	if fi.Size() > MaxSize {
		return nil, tooLarge(path, fi.Size())
	}
	// O_NONBLOCK: should the file be swapped for a FIFO after the Stat, the
	// open must not hang; the Fstat below catches the swap.
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("reading config %q: %w", path, causeOf(err))
	}
	defer f.Close()
	fi, err = f.Stat()
	if err != nil {
		return nil, fmt.Errorf("reading config %q: %w", path, causeOf(err))
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file (%s)", path, fileType(fi.Mode()))
	}
	data, err := io.ReadAll(io.LimitReader(f, MaxSize+1))
	if err != nil {
		return nil, fmt.Errorf("reading config %q: %w", path, causeOf(err))
	}
	cfg, err := l.parseMode(path, data, fi.Mode().Perm())
	clear(data)
	return cfg, err
}

func tooLarge(name string, size int64) error {
	return fmt.Errorf("%s: too large (%d bytes; the limit is %d)", name, size, MaxSize)
}

// causeOf strips the path from a *fs.PathError so that a path is named once,
// by the caller's message, and keeps the cause for errors.Is.
func causeOf(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// fileType names the type of a file that is not regular.
func fileType(m fs.FileMode) string {
	switch {
	case m&fs.ModeDir != 0:
		return "directory"
	case m&fs.ModeSymlink != 0:
		return "symbolic link"
	case m&fs.ModeNamedPipe != 0:
		return "named pipe"
	case m&fs.ModeSocket != 0:
		return "socket"
	case m&fs.ModeCharDevice != 0:
		return "character device"
	case m&fs.ModeDevice != 0:
		return "block device"
	default:
		return "irregular file"
	}
}
