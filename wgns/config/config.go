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
// UTF-8 byte order mark are accepted. List keys (Address, DNS, AllowedIPs,
// AllowInbound, FailoverCheck, Publish, Users) take entries separated by commas
// or white space, as wg-quick splits Address and DNS. A prefix may be in the
// AllowedIPs of one peer only, unless [Namespace] Failover = on makes peers
// with identical AllowedIPs a failover group (Config.Groups). Hooks (PreUp, PostUp, PreDown, PostDown)
// are never run, and Table, FwMark and SaveConfig mean nothing inside a
// namespace: each such line draws a warning, or an error with [Strict].
//
// A configuration and its key files are trusted only when no one but root
// can change them, as ssh checks its files (see [Load]).
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
	"time"

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
	// Groups are the failover groups (with Failover = on): peers whose AllowedIPs are
	// identical, at least two each, in the file order of their first peer.
	Groups []Group
	// Warnings lists accepted-but-ignored settings and similar notes, each
	// "FILE:LINE: ...", e.g. "FILE:LINE: Table means nothing inside a
	// namespace; ignored", or "FILE: ..." about the file as a whole. They
	// never contain key material.
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

	// Publish lists the host's ports forwarded to ports on the namespace's
	// loopback (see Publish).
	Publish []Publish
	// PortForward is the provider port forwarding the config asks for, nil
	// when it asks for none.
	PortForward *PortForward
	// Failover is true when the config says "Failover = on": peers whose AllowedIPs are
	// identical form failover groups (Config.Groups).
	Failover bool
	// FailoverTimeout is how long the active peer of a group may go without answering before
	// its AllowedIPs move to the next peer (DefaultFailoverTimeout unless set).
	FailoverTimeout time.Duration
	// FailoverCheck lists the addresses probed through the groups' active peers, as written;
	// nil when not set (each group then probes the first DNS server it routes).
	FailoverCheck []netip.Addr
	// FailoverCheckOff is true when the config says "FailoverCheck = none": no group is
	// probed, each is judged from WireGuard's own counters.
	FailoverCheckOff bool
	// Users are who may run programs in the tunnel without sudo, through
	// `wgns serve` (users, and groups whose members are meant), in file order.
	Users []User
}

// DefaultFailoverTimeout is FailoverTimeout when the config does not set it.
const DefaultFailoverTimeout = 2 * time.Second

// Group is a failover group: peers with identical AllowedIPs, of which one at a time (the
// active one) holds them.
type Group struct {
	// Peers are indices into Config.Peers, in file order; the first is the one that holds the
	// AllowedIPs when the tunnel comes up.
	Peers []int
	// Check is the address probed through the group's active peer (from FailoverCheck, or the
	// first DNS server the group routes); the zero Addr when there is none, and the group is
	// judged from WireGuard's own counters alone.
	Check netip.Addr
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

// Option changes how Load and Parse read a configuration.
type Option func(*loader)

// Strict makes lines wgns would ignore (PreUp, PostUp, PreDown, PostDown,
// Table, FwMark, SaveConfig) errors instead of warnings.
func Strict() Option { return func(l *loader) { l.strict = true } }

// Load reads and parses the configuration file at path; see Parse.
//
// The file must be one that only root can change, as ssh checks its files:
// owned by root and not writable by group or others, and reached only
// through directories owned by root that group and others cannot write
// (sticky directories such as /tmp excepted: no one else can rename or
// remove root's entries in them) and through symbolic links owned by root.
// Anything else is refused with what is wrong ("PATH: owned by uid 1000, not
// root; chown root it"). The same holds for PrivateKeyFile and
// PresharedKeyFile, which must not be accessible by group or others at all.
// Run by another user (a dry run, say), Load also trusts that user's own
// files and directories, and warns about each thing root would refuse, so
// that the user learns what a real `wgns up` would say.
//
// Symbolic links are followed; anything else that is not a regular file is
// refused without being read ("PATH: not a regular file (directory)"), as is
// a file larger than MaxSize. If the file cannot be reached the error is
// "reading config PATH: CAUSE" and wraps the cause, so
// errors.Is(err, fs.ErrNotExist) works. Key files named by the config are
// read too.
func Load(path string, opts ...Option) (*Config, error) {
	return newLoader(osFS{}, uint32(os.Geteuid()), opts...).load(path)
}

// Parse parses and validates a configuration. name is used as FILE in error
// messages and warnings and becomes Config.Path; a relative PrivateKeyFile or
// PresharedKeyFile is taken relative to name's directory and read from the
// file system, with the same trust rules as Load.
func Parse(name string, data []byte, opts ...Option) (*Config, error) {
	return newLoader(osFS{}, uint32(os.Geteuid()), opts...).parse(name, data)
}

// loader parses configurations, reading files through fs.
type loader struct {
	fs     fileSystem
	trust  trust // whose files are trusted
	strict bool  // refuse what would be ignored
}

// newLoader returns a loader that reads through fsys and trusts root's and
// uid's files.
func newLoader(fsys fileSystem, uid uint32, opts ...Option) *loader {
	l := &loader{fs: fsys, trust: trust{uid: uid}}
	for _, o := range opts {
		o(l)
	}
	return l
}

// rootWould returns what root would refuse about the file at path, which
// walk resolved for t and which fi describes, or "" when root would take it
// or t is root's anyway. problem is the check of the file itself.
func rootWould(fsys fileSystem, t trust, path string, follow bool, fi fileInfo, problem func(fileInfo, trust) string) string {
	if t.uid == 0 {
		return ""
	}
	root := trust{}
	if _, p, err := walk(fsys, path, follow, root); err != nil || p != "" {
		return p
	}
	return problem(fi, root)
}

func (l *loader) load(path string) (*Config, error) {
	resolved, problem, err := walk(l.fs, path, true, l.trust)
	if err != nil {
		return nil, fmt.Errorf("reading config %q: %w", path, causeOf(err))
	}
	if problem != "" {
		return nil, fmt.Errorf("%s: %s", path, problem)
	}
	fi, data, err := l.fs.ReadFile(resolved, MaxSize)
	defer clear(data)
	switch {
	case err != nil:
		return nil, fmt.Errorf("reading config %q: %w", path, causeOf(err))
	case !fi.Mode.IsRegular():
		return nil, fmt.Errorf("%s: not a regular file (%s)", path, fileType(fi.Mode))
	case fi.Size > MaxSize || len(data) > MaxSize:
		return nil, tooLarge(path, max(fi.Size, int64(len(data))))
	}
	if p := configProblem(fi, l.trust); p != "" {
		return nil, fmt.Errorf("%s: %s", path, p)
	}
	p := l.newParser(path)
	p.perm = fi.Mode.Perm()
	if would := rootWould(l.fs, l.trust, path, true, fi, configProblem); would != "" {
		p.warnf(0, "as root, wgns would refuse it: %s", would)
	}
	return p.run(data)
}

// configProblem says why a config file described by fi is not trusted; ""
// if it is.
func configProblem(fi fileInfo, t trust) string {
	return fileProblem(fi, t, modeRule{0o022, "writable"})
}

// modeRule is mode bits a trusted file must not have, and what having them makes it.
type modeRule struct {
	bits fs.FileMode
	what string
}

// fileProblem says why a file described by fi is not trusted, "" if it is: it must be owned by
// a trusted user and have none of the bits of rules (the first rule broken is named).
func fileProblem(fi fileInfo, t trust, rules ...modeRule) string {
	if !t.owner(fi.UID) {
		return t.notOwner(fi.UID) + "; chown root it"
	}
	perm := fi.Mode.Perm()
	for _, r := range rules {
		if perm&r.bits != 0 {
			return fmt.Sprintf("%s by group or others (mode %04o); chmod 600 it", r.what, perm)
		}
	}
	return ""
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
