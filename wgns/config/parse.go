package config

import (
	"bytes"
	"fmt"
	"io/fs"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"unicode/utf8"

	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"
)

type section int

const (
	secNone section = iota
	secInterface
	secPeer
	secNamespace
)

func (s section) String() string {
	switch s {
	case secInterface:
		return "[Interface]"
	case secPeer:
		return "[Peer]"
	case secNamespace:
		return "[Namespace]"
	}
	return "no section"
}

// keyKind says how a key's lines are read.
type keyKind int

const (
	keySingle  keyKind = iota // once per section
	keyList                   // repeatable; entries separated by commas or white space, as wg-quick splits Address and DNS
	keyHook                   // repeatable; never run, so ignored with a warning
	keyIgnored                // means nothing inside a namespace: ignored with a warning
)

// keySpec describes a key a section accepts.
type keySpec struct {
	name string // canonical spelling
	sec  section
	kind keyKind
}

var keySpecs = []keySpec{
	{"PrivateKey", secInterface, keySingle},
	{"PrivateKeyFile", secInterface, keySingle},
	{"Address", secInterface, keyList},
	{"DNS", secInterface, keyList},
	{"MTU", secInterface, keySingle},
	{"ListenPort", secInterface, keySingle},
	{"Table", secInterface, keyIgnored},
	{"FwMark", secInterface, keyIgnored},
	{"SaveConfig", secInterface, keyIgnored},
	{"PreUp", secInterface, keyHook},
	{"PostUp", secInterface, keyHook},
	{"PreDown", secInterface, keyHook},
	{"PostDown", secInterface, keyHook},
	{"PublicKey", secPeer, keySingle},
	{"PresharedKey", secPeer, keySingle},
	{"PresharedKeyFile", secPeer, keySingle},
	{"Endpoint", secPeer, keySingle},
	{"AllowedIPs", secPeer, keyList},
	{"PersistentKeepalive", secPeer, keySingle},
	{"AllowInbound", secNamespace, keyList},
	{"Firewall", secNamespace, keySingle},
	// Failover between redundant peers (failover.go).
	{"Failover", secNamespace, keySingle},
	{"FailoverTimeout", secNamespace, keySingle},
	{"FailoverCheck", secNamespace, keyList},
	// Ports (ports.go).
	{"Publish", secNamespace, keyList},
	{"PortForward", secNamespace, keySingle},
	{"PortForwardCommand", secNamespace, keySingle},
	{"PortForwardUser", secNamespace, keySingle},
	{"Users", secNamespace, keyList}, // users.go
}

// nearestKey is the key of section sec that k most likely misspells (at most two letters added,
// dropped, changed or swapped, case aside), or "".
func nearestKey(k string, sec section) string {
	best, bestDist := "", 3
	for _, spec := range keySpecs {
		if spec.sec != sec {
			continue
		}
		if d := editDistance(strings.ToLower(k), strings.ToLower(spec.name)); d < bestDist {
			best, bestDist = spec.name, d
		}
	}
	return best
}

// editDistance is the optimal string alignment distance of a and b: insertions, deletions,
// substitutions and swaps of neighbours each count one.
func editDistance(a, b string) int {
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
}

var keysByLower = func() map[string]keySpec {
	m := make(map[string]keySpec, len(keySpecs))
	for _, k := range keySpecs {
		m[strings.ToLower(k.name)] = k
	}
	return m
}()

// exclusive pairs keys of which a section may set only one.
var exclusive = map[string]string{
	"PrivateKey":       "PrivateKeyFile",
	"PrivateKeyFile":   "PrivateKey",
	"PresharedKey":     "PresharedKeyFile",
	"PresharedKeyFile": "PresharedKey",
}

const sectionsWanted = "expected [Interface], [Peer] or [Namespace]"

var bom = []byte("\xef\xbb\xbf")

type warning struct {
	line int
	msg  string
}

// peerState is a [Peer] being read.
type peerState struct {
	Peer
	pubLine     int
	pskLine     int // PresharedKey or PresharedKeyFile
	pskFile     string
	pskFromFile bool
	ipLines     map[netip.Prefix]int // the line of each of its AllowedIPs
}

// allowedAt records where an AllowedIPs prefix was first listed.
type allowedAt struct {
	line int        // the AllowedIPs line
	peer *peerState // its peer
}

// parser reads one configuration. It is used once.
type parser struct {
	name   string
	dir    string
	fs     fileSystem
	trust  trust
	strict bool
	perm   fs.FileMode // the config file's permissions; 0 when unknown

	cfg   Config
	warns []warning
	keys  map[string]bool // the body of every key written in the input

	sec  section
	seen map[string]int // canonical key -> line, in the current section

	ifaceLine   int
	nsLine      int
	privSet     bool
	privLine    int // PrivateKey or PrivateKeyFile
	privFile    string
	mtuLine     int
	addrs       map[netip.Addr]int
	dnsLines    map[netip.Addr]int
	peers       []*peerState
	allowed     map[netip.Prefix]allowedAt
	peerKeys    map[wgtypes.Key]*peerState
	inbound     map[Port]int
	inboundLine int
	firewallSet bool
	ports       portsState // Publish and PortForward (ports.go)

	fo        failoverLines // failover.go
	userLines map[User]int  // Users entries, where first listed (users.go)
}

func (l *loader) parse(name string, data []byte) (*Config, error) {
	return l.newParser(name).run(data)
}

// newParser returns a parser for one configuration named name.
func (l *loader) newParser(name string) *parser {
	p := &parser{
		name:     name,
		dir:      filepath.Dir(name),
		fs:       l.fs,
		trust:    l.trust,
		strict:   l.strict,
		addrs:    map[netip.Addr]int{},
		dnsLines: map[netip.Addr]int{},
		allowed:  map[netip.Prefix]allowedAt{},
		peerKeys: map[wgtypes.Key]*peerState{},
		inbound:  map[Port]int{},

		userLines: map[User]int{},
	}
	p.cfg.Path = name
	p.cfg.Namespace.Firewall = true
	p.cfg.Namespace.FailoverTimeout = DefaultFailoverTimeout
	return p
}

func (p *parser) errf(line int, format string, args ...any) error {
	return fmt.Errorf("%s:%d: "+format, append([]any{p.name, line}, args...)...)
}

// listedOnce records that line n lists entry k of the list key, or says that an earlier line
// did: an entry is listed once. seen maps the entries listed so far to their lines.
func listedOnce[K comparable](p *parser, seen map[K]int, k K, n int, key string) error {
	if first, dup := seen[k]; dup {
		return p.errf(n, "%s %v is listed twice (first on line %d)", key, k, first)
	}
	seen[k] = n
	return nil
}

func (p *parser) warnf(line int, format string, args ...any) {
	p.warns = append(p.warns, warning{line, fmt.Sprintf(format, args...)})
}

// run parses data, the whole configuration.
func (p *parser) run(data []byte) (*Config, error) {
	if err := p.read(data); err != nil {
		return nil, err
	}
	return &p.cfg, nil
}

func (p *parser) read(data []byte) error {
	if len(data) > MaxSize {
		return tooLarge(p.name, int64(len(data)))
	}
	data = bytes.TrimPrefix(data, bom)
	p.keys = keysIn(data)
	for n := 1; len(data) > 0; n++ {
		var line []byte
		line, data, _ = bytes.Cut(data, []byte("\n"))
		line = bytes.TrimSuffix(line, []byte("\r"))
		if err := p.checkText(n, line); err != nil {
			return err
		}
		if err := p.line(n, string(line)); err != nil {
			return err
		}
	}
	return p.finish()
}

// checkText refuses anything that is not a line of text.
func (p *parser) checkText(n int, line []byte) error {
	for _, c := range line {
		switch {
		case c == 0:
			return p.errf(n, "NUL byte; this is not a text file")
		case c < 0x20 && c != '\t' || c == 0x7f:
			return p.errf(n, "control character 0x%02x; this is not a text file", c)
		}
	}
	if !utf8.Valid(line) {
		return p.errf(n, "not valid UTF-8; this is not a text file")
	}
	return nil
}

// show quotes a value taken from the input for an error message, unless it
// holds what may be a key, or a key written elsewhere in the input without
// its "=".
func (p *parser) show(v string) string {
	if looksLikeKey(v) {
		return hiddenValue
	}
	run := 0
	for i := 0; i < len(v); i++ {
		if !isBase64Char(v[i]) {
			run = 0
			continue
		}
		if run++; run >= keyBody && p.keys[v[i+1-keyBody:i+1]] {
			return hiddenValue
		}
	}
	return show(v)
}

// keysIn returns the body of everything in data that may be a key: 43
// characters of the base64 alphabet before a "=".
func keysIn(data []byte) map[string]bool {
	keys := map[string]bool{}
	run := 0
	for i, c := range data {
		switch {
		case isBase64Char(c):
			run++
		case c == '=' && run >= keyBody:
			keys[string(data[i-keyBody:i])] = true
			fallthrough
		default:
			run = 0
		}
	}
	return keys
}

func trim(s string) string { return strings.Trim(s, " \t") }

func (p *parser) line(n int, s string) error {
	if i := strings.IndexByte(s, '#'); i >= 0 {
		s = s[:i]
	}
	s = trim(s)
	if s == "" {
		return nil
	}
	if s[0] == '[' {
		return p.header(n, s)
	}
	if p.sec == secNone {
		return p.errf(n, "outside any section; %s first", sectionsWanted)
	}
	k, v, ok := strings.Cut(s, "=")
	k, v = trim(k), trim(v)
	if !ok || !validKeyName(k) {
		return p.errf(n, "malformed line; expected Key = value")
	}
	spec, known := keysByLower[strings.ToLower(k)]
	if !known {
		if near := nearestKey(k, p.sec); near != "" {
			return p.errf(n, "unknown key %s in %v; did you mean %s?", p.show(k), p.sec, near)
		}
		return p.errf(n, "unknown key %s in %v", p.show(k), p.sec)
	}
	if spec.sec != p.sec {
		return p.errf(n, "%s belongs in %v, not in %v", spec.name, spec.sec, p.sec)
	}
	switch spec.kind {
	case keyHook:
		return p.ignore(n, "%s is not run: hooks would run as root on the host, and the namespace already fails closed", spec.name)
	case keyIgnored:
		return p.ignore(n, "%s means nothing inside a namespace", spec.name)
	case keyList:
		return p.list(n, spec.name, v)
	}
	if first, dup := p.seen[spec.name]; dup {
		return p.errf(n, "duplicate %s (first on line %d)", spec.name, first)
	}
	if other, ok := p.seen[exclusive[spec.name]]; ok {
		return p.errf(n, "%s conflicts with %s on line %d; use one of them", spec.name, exclusive[spec.name], other)
	}
	p.seen[spec.name] = n
	if v == "" {
		return p.errf(n, "%s has no value", spec.name)
	}
	return p.single(n, spec.name, v)
}

// ignore warns that line n is ignored, for the reason format says, or
// refuses it in strict mode.
func (p *parser) ignore(n int, format string, args ...any) error {
	if p.strict {
		return p.errf(n, format+"; refused (--strict)", args...)
	}
	p.warnf(n, format+"; ignored", args...)
	return nil
}

func validKeyName(k string) bool {
	if k == "" {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

func (p *parser) header(n int, s string) error {
	if !strings.HasSuffix(s, "]") {
		return p.errf(n, "malformed section header; %s", sectionsWanted)
	}
	name := trim(s[1 : len(s)-1])
	p.seen = map[string]int{}
	switch strings.ToLower(name) {
	case "interface":
		if p.ifaceLine != 0 {
			return p.errf(n, "second [Interface] section (first on line %d); only one is allowed", p.ifaceLine)
		}
		p.sec, p.ifaceLine = secInterface, n
	case "peer":
		p.sec = secPeer
		p.peers = append(p.peers, &peerState{Peer: Peer{Line: n}, ipLines: map[netip.Prefix]int{}})
	case "namespace":
		if p.nsLine != 0 {
			return p.errf(n, "second [Namespace] section (first on line %d); only one is allowed", p.nsLine)
		}
		p.sec, p.nsLine = secNamespace, n
	default:
		return p.errf(n, "unknown section %s; %s", p.show(name), sectionsWanted)
	}
	return nil
}

func (p *parser) peer() *peerState { return p.peers[len(p.peers)-1] }

// single handles a non-empty value of a single-valued key.
func (p *parser) single(n int, key, v string) error {
	switch key {
	case "PrivateKey":
		k, why := parseKey(v)
		if why != "" {
			return p.errf(n, "invalid PrivateKey: %s", why)
		}
		p.cfg.Interface.PrivateKey = Secret{k: k}
		p.privSet, p.privLine = true, n
		p.warnInline(n, key)
	case "PrivateKeyFile":
		p.privFile, p.privLine = v, n
	case "MTU":
		mtu, ok := parseUint(v)
		if !ok {
			return p.errf(n, "invalid MTU %s: not a whole number", p.show(v))
		}
		if mtu > 65535 {
			return p.errf(n, "MTU %d is too large (maximum 65535)", mtu)
		}
		p.cfg.Interface.MTU, p.mtuLine = mtu, n
	case "ListenPort":
		port, ok := parseUint(v)
		if !ok || port > 65535 {
			return p.errf(n, "invalid ListenPort %s: must be a port number 0-65535", p.show(v))
		}
		p.cfg.Interface.ListenPort = port
	case "PublicKey":
		k, why := parseKey(v)
		if why != "" {
			return p.errf(n, "invalid PublicKey: %s", why)
		}
		if other, dup := p.peerKeys[k]; dup {
			return p.errf(n, "same PublicKey as the [Peer] on line %d; list each peer once", other.Line)
		}
		peer := p.peer()
		p.peerKeys[k] = peer
		peer.PublicKey, peer.pubLine = k, n
	case "PresharedKey":
		k, why := parseKey(v)
		if why != "" {
			return p.errf(n, "invalid PresharedKey: %s", why)
		}
		p.peer().PresharedKey, p.peer().pskLine = &Secret{k: k}, n
		p.warnInline(n, key)
	case "PresharedKeyFile":
		peer := p.peer()
		peer.pskFile, peer.pskLine, peer.pskFromFile = v, n, true
	case "Endpoint":
		ep, why := parseEndpoint(v)
		if why != "" {
			return p.errf(n, "invalid Endpoint %s: %s", p.show(v), why)
		}
		peer := p.peer()
		peer.Endpoint, peer.EndpointHost, peer.EndpointPort = ep.norm, ep.host, ep.port
	case "PersistentKeepalive":
		secs, ok := 0, strings.EqualFold(v, "off")
		if !ok {
			secs, ok = parseUint(v)
		}
		if !ok || secs > 65535 {
			return p.errf(n, "invalid PersistentKeepalive %s: must be off or 0-65535 seconds", p.show(v))
		}
		p.peer().PersistentKeepalive = secs
	case "Firewall":
		on, ok := parseSwitch(v)
		if !ok {
			return p.errf(n, "invalid Firewall %s: must be on or off", p.show(v))
		}
		p.cfg.Namespace.Firewall, p.firewallSet = on, true
	case "PortForward", "PortForwardCommand", "PortForwardUser":
		return p.portForwardKey(n, key, v)
	case "Failover", "FailoverTimeout":
		return p.failoverKey(n, key, v)
	default:
		panic("config: no handler for " + key)
	}
	return nil
}

// warnInline warns about a key written into a config file others can read.
func (p *parser) warnInline(n int, key string) {
	if p.perm&0o044 != 0 {
		p.warnf(n, "%s is in a file readable by group or others (mode %04o); chmod 600 it, or move the key to a %sFile",
			key, p.perm, key)
	}
}

// list handles a line of a repeatable key: entries separated by commas or
// white space (or both), as wg-quick reads Address and DNS; empty entries are
// skipped. wg(8) itself would refuse AllowedIPs separated by spaces only,
// but no entry of any list can hold a space, so nothing else can be meant.
func (p *parser) list(n int, key, v string) error {
	for _, e := range strings.FieldsFunc(v, isListSeparator) {
		var err error
		switch key {
		case "Address":
			err = p.address(n, e)
		case "DNS":
			err = p.dns(n, e)
		case "AllowedIPs":
			err = p.allowedIP(n, e)
		case "AllowInbound":
			err = p.allowInbound(n, e)
		case "Publish":
			err = p.publish(n, e)
		case "FailoverCheck":
			err = p.failoverCheck(n, e)
		case "Users":
			err = p.users(n, e)
		default:
			panic("config: no handler for " + key)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// isListSeparator reports whether r separates the entries of a list.
func isListSeparator(r rune) bool { return r == ',' || r == ' ' || r == '\t' }

func (p *parser) address(n int, e string) error {
	pfx, why := parsePrefix(e)
	if why == "" {
		why = checkHostAddr(pfx.Addr())
	}
	if why != "" {
		return p.errf(n, "invalid Address %s: %s", p.show(e), why)
	}
	if err := listedOnce(p, p.addrs, pfx.Addr(), n, "Address"); err != nil {
		return err
	}
	p.cfg.Interface.Addresses = append(p.cfg.Interface.Addresses, pfx)
	return nil
}

func (p *parser) dns(n int, e string) error {
	if a, err := netip.ParseAddr(e); err == nil {
		why := checkHostAddr(a)
		if a.Zone() != "" {
			why = "IPv6 zones are not allowed"
		}
		if why != "" {
			return p.errf(n, "invalid DNS %s: %s", p.show(e), why)
		}
		if _, dup := p.dnsLines[a]; !dup {
			p.dnsLines[a] = n
		}
		p.cfg.Interface.DNS = append(p.cfg.Interface.DNS, a)
		return nil
	}
	if !validHostname(e) {
		return p.errf(n, "invalid DNS %s: neither an IP address nor a valid search domain", p.show(e))
	}
	p.cfg.Interface.Search = append(p.cfg.Interface.Search, e)
	return nil
}

func (p *parser) allowedIP(n int, e string) error {
	pfx, why := parsePrefix(e)
	if why != "" {
		return p.errf(n, "invalid AllowedIPs %s: %s", p.show(e), why)
	}
	pfx = pfx.Masked()
	peer := p.peer()
	if err := listedOnce(p, peer.ipLines, pfx, n, "AllowedIPs"); err != nil {
		return err
	}
	peer.AllowedIPs = append(peer.AllowedIPs, pfx)
	if first, dup := p.allowed[pfx]; dup {
		// Another peer's: Failover = on, which may come later in the file, can make the two one
		// failover group; finish decides (sharedAllowedIPs).
		p.fo.shared = append(p.fo.shared, sharedAt{pfx: pfx, line: n, peer: peer, first: first})
		return nil
	}
	p.allowed[pfx] = allowedAt{line: n, peer: peer}
	return nil
}

func (p *parser) allowInbound(n int, e string) error {
	port, why := parseInbound(e)
	if why != "" {
		return p.errf(n, "invalid AllowInbound %s: %s", p.show(e), why)
	}
	if err := listedOnce(p, p.inbound, port, n, "AllowInbound"); err != nil {
		return err
	}
	if p.inboundLine == 0 {
		p.inboundLine = n
	}
	p.cfg.Namespace.AllowInbound = append(p.cfg.Namespace.AllowInbound, port)
	return nil
}

// finish checks what needs the whole file, reads key files and fills in
// derived values.
func (p *parser) finish() error {
	c := &p.cfg
	if err := p.sharedAllowedIPs(); err != nil {
		return err
	}
	if p.ifaceLine == 0 {
		return fmt.Errorf("%s: no [Interface] section", p.name)
	}
	if p.privLine == 0 {
		return p.errf(p.ifaceLine, "[Interface] has neither PrivateKey nor PrivateKeyFile")
	}
	if len(c.Interface.Addresses) == 0 {
		return p.errf(p.ifaceLine, "[Interface] has no Address")
	}
	if len(p.peers) == 0 {
		return fmt.Errorf("%s: no [Peer] section; at least one is required", p.name)
	}
	for _, peer := range p.peers {
		if peer.pubLine == 0 {
			return p.errf(peer.Line, "[Peer] has no PublicKey")
		}
	}
	if p.mtuLine != 0 {
		mtu, v6 := c.Interface.MTU, p.hasIPv6()
		if lo := minMTU(v6); mtu < lo {
			if v6 {
				return p.errf(p.mtuLine, "MTU %d is too small: IPv6 needs at least %d", mtu, lo)
			}
			return p.errf(p.mtuLine, "MTU %d is too small (minimum %d)", mtu, lo)
		}
	}

	if !p.privSet {
		k, err := p.readKeyFile(p.privLine, "PrivateKeyFile", p.privFile)
		if err != nil {
			return err
		}
		c.Interface.PrivateKey = Secret{k: k}
	}
	for _, peer := range p.peers {
		if !peer.pskFromFile {
			continue
		}
		k, err := p.readKeyFile(peer.pskLine, "PresharedKeyFile", peer.pskFile)
		if err != nil {
			return err
		}
		peer.PresharedKey = &Secret{k: k}
	}
	if err := p.checkSecrets(); err != nil {
		return err
	}

	c.Interface.PublicKey = c.Interface.PrivateKey.k.PublicKey()
	if own, ok := p.peerKeys[c.Interface.PublicKey]; ok {
		return p.errf(own.pubLine, "PublicKey is this interface's own public key (from %s on line %d); a peer is the other end of the tunnel",
			p.privKey(), p.privLine)
	}

	anyEndpoint := false
	for _, peer := range p.peers {
		if len(peer.AllowedIPs) == 0 {
			p.warnf(peer.Line, "[Peer] has no AllowedIPs; nothing will be sent to it")
		}
		anyEndpoint = anyEndpoint || peer.Endpoint != ""
		c.Peers = append(c.Peers, peer.Peer)
	}
	if !anyEndpoint && len(p.peers) > 0 && c.Interface.ListenPort != 0 {
		// A server's config: it listens, and its clients find it. As a client, nothing would
		// ever go out.
		p.warnf(p.peers[0].Line, "no [Peer] has an Endpoint, and ListenPort is set: this looks like a server's config; nothing goes out until a peer reaches this tunnel first (a client's config names its server in Endpoint)")
	}
	for _, a := range c.Interface.DNS {
		if !p.routed(a) {
			p.warnf(p.dnsLines[a], "DNS server %v is in no peer's AllowedIPs; queries to it will fail", a)
			delete(p.dnsLines, a) // warn once
		}
	}
	if !c.Namespace.Firewall && p.inboundLine != 0 {
		p.warnf(p.inboundLine, "AllowInbound means nothing with Firewall = off: everything may come in")
	}
	if err := p.failoverGroups(); err != nil {
		return err
	}
	if err := p.finishPorts(); err != nil {
		return err
	}
	slices.SortStableFunc(p.warns, func(a, b warning) int { return a.line - b.line })
	for _, w := range p.warns {
		if w.line == 0 { // about the file as a whole
			c.Warnings = append(c.Warnings, fmt.Sprintf("%s: %s", p.name, w.msg))
			continue
		}
		c.Warnings = append(c.Warnings, fmt.Sprintf("%s:%d: %s", p.name, w.line, w.msg))
	}
	return nil
}

// privKey names the key the interface's private key came from.
func (p *parser) privKey() string {
	if p.privSet {
		return "PrivateKey"
	}
	return "PrivateKeyFile"
}

// pskKey names the key peer's preshared key came from.
func (peer *peerState) pskKey() string {
	if peer.pskFromFile {
		return "PresharedKeyFile"
	}
	return "PresharedKey"
}

// checkSecrets refuses a secret written where a public or another secret
// key belongs. A private or preshared key pasted as a peer's PublicKey would
// be shown by `up --dry-run` and `status`, which print public keys; a
// preshared key that is the private key is a mistake that can only fail the
// handshake. The keys themselves are never named, only their lines.
func (p *parser) checkSecrets() error {
	priv := p.cfg.Interface.PrivateKey
	for _, peer := range p.peers {
		pub := NewSecret(peer.PublicKey)
		if pub.Equal(priv) {
			return p.errf(peer.pubLine, "PublicKey is this interface's private key (from %s on line %d): a peer's PublicKey is the other end's public key; replace a private key that anyone else has seen",
				p.privKey(), p.privLine)
		}
		for _, other := range p.peers {
			if other.PresharedKey != nil && pub.Equal(*other.PresharedKey) {
				return p.errf(peer.pubLine, "PublicKey is a preshared key (from %s on line %d): a peer's PublicKey is the other end's public key; replace a preshared key that anyone else has seen",
					other.pskKey(), other.pskLine)
			}
		}
	}
	for _, peer := range p.peers {
		if peer.PresharedKey != nil && peer.PresharedKey.Equal(priv) {
			return p.errf(peer.pskLine, "%s holds this interface's private key (from %s on line %d); a preshared key is a secret of its own, shared with the peer (wg genpsk makes one)",
				peer.pskKey(), p.privKey(), p.privLine)
		}
	}
	return nil
}

// routed reports whether a is inside some peer's AllowedIPs, so that the
// tunnel can reach it.
func (p *parser) routed(a netip.Addr) bool {
	for pfx := range p.allowed {
		if pfx.Contains(a) {
			return true
		}
	}
	return false
}

// hasIPv6 is Config.HasIPv6 before finish fills in Config.Peers.
func (p *parser) hasIPv6() bool {
	c := Config{Interface: p.cfg.Interface}
	for _, peer := range p.peers {
		c.Peers = append(c.Peers, peer.Peer)
	}
	return c.HasIPv6()
}

// readKeyFile reads the key in a PrivateKeyFile or PresharedKeyFile, which
// must be a regular file that only root can change or read (see trust and
// keyProblem); a final symbolic link is not followed.
func (p *parser) readKeyFile(n int, key, path string) (wgtypes.Key, error) {
	if !filepath.IsAbs(path) && p.dir != "." {
		// Not filepath.Join: it would take "a/../b" lexically, and so
		// differently from the kernel when a is a symbolic link.
		path = strings.TrimSuffix(p.dir, "/") + "/" + path
	}
	what := key + " " + p.show(path)
	resolved, problem, err := walk(p.fs, path, false, p.trust)
	if err != nil {
		return wgtypes.Key{}, p.errf(n, "%s: %w", what, causeOf(err))
	}
	if problem != "" {
		return wgtypes.Key{}, p.errf(n, "%s: %s", what, problem)
	}
	fi, data, err := p.fs.ReadFile(resolved, maxKeyFile)
	defer clear(data)
	switch {
	case err != nil:
		return wgtypes.Key{}, p.errf(n, "%s: %w", what, causeOf(err))
	case !fi.Mode.IsRegular():
		return wgtypes.Key{}, p.errf(n, "%s: not a regular file (%s)", what, fileType(fi.Mode))
	}
	if problem := keyProblem(fi, p.trust); problem != "" {
		return wgtypes.Key{}, p.errf(n, "%s: %s", what, problem)
	}
	if len(data) > maxKeyFile {
		return wgtypes.Key{}, p.errf(n, "%s: too large to hold a key", what)
	}
	text := bytes.TrimSpace(data)
	if len(text) == 0 {
		return wgtypes.Key{}, p.errf(n, "%s: empty; it must hold a key", what)
	}
	k, why := parseKey(string(text))
	if why != "" {
		return wgtypes.Key{}, p.errf(n, "%s: does not hold a key: %s", what, why)
	}
	if would := rootWould(p.fs, p.trust, path, false, fi, keyProblem); would != "" {
		p.warnf(n, "%s: as root, wgns would refuse it: %s", what, would)
	}
	return k, nil
}

// keyProblem says why a key file described by fi is not trusted; "" if it
// is: it must be owned by a trusted user and not accessible by group or
// others at all.
func keyProblem(fi fileInfo, t trust) string {
	return fileProblem(fi, t, modeRule{0o044, "readable"}, modeRule{0o022, "writable"}, modeRule{0o011, "accessible"})
}
