package config

import (
	"encoding/base64"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"
)

const keyFormat = "must be 44 characters of base64 encoding 32 bytes"

// parseKey decodes a base64 WireGuard key the way wg(8) does: exactly 44
// characters, canonical padding, not all zeros. The reason never contains s.
func parseKey(s string) (wgtypes.Key, string) {
	if len(s) != base64.StdEncoding.EncodedLen(wgtypes.KeyLen) {
		return wgtypes.Key{}, keyFormat
	}
	b, err := base64.StdEncoding.Strict().DecodeString(s)
	if err != nil || len(b) != wgtypes.KeyLen {
		clear(b)
		return wgtypes.Key{}, keyFormat
	}
	k := wgtypes.Key(b)
	clear(b)
	if k == (wgtypes.Key{}) {
		return wgtypes.Key{}, "all zeros, which is not a usable key"
	}
	return k, ""
}

// maxShown caps how much of a value an error message echoes.
const maxShown = 64

// keyBody is the length of a base64 key without its final "=".
const keyBody = 43

const hiddenValue = "(value not shown: it looks like a key)"

// show quotes a value taken from the input for an error message, unless it
// may hold a key (see looksLikeKey). The parser's show also hides keys
// written elsewhere in the input.
func show(v string) string {
	if looksLikeKey(v) {
		return hiddenValue
	}
	if len(v) > maxShown {
		cut := maxShown
		for cut > 0 && !isRuneStart(v[cut]) {
			cut--
		}
		return strconv.Quote(v[:cut]) + "..."
	}
	return strconv.Quote(v)
}

// looksLikeKey reports whether v contains what may be a base64 key: 43
// characters of the base64 alphabet followed by "=" (every WireGuard key
// ends so). Long runs without "=", such as long paths, are not taken for
// keys: hiding them would make errors about them useless.
func looksLikeKey(v string) bool {
	run := 0
	for i := 0; i <= len(v); i++ {
		if i < len(v) && isBase64Char(v[i]) {
			run++
			continue
		}
		if run >= keyBody && i < len(v) && v[i] == '=' {
			return true
		}
		run = 0
	}
	return false
}

func isRuneStart(b byte) bool { return b&0xc0 != 0x80 }

// isBase64Char reports whether c is in the standard base64 alphabet (not
// counting the padding "=").
func isBase64Char(c byte) bool {
	return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '+' || c == '/'
}

// parseUint parses a non-empty string of ASCII digits. Values too large for
// any setting saturate at 1<<31 instead of failing.
func parseUint(s string) (int, bool) {
	if s == "" {
		return 0, false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		if n < 1<<31 {
			n = n*10 + int(c-'0')
		}
	}
	return min(n, 1<<31), true
}

func family(a netip.Addr) string {
	if a.Is4() {
		return "IPv4"
	}
	return "IPv6"
}

// parsePrefix parses "addr/bits" or a bare address (a host prefix). It
// returns a non-empty reason, which names what is wrong, when s is not one.
// Like wg(8), it takes a prefix length with leading zeros ("/024").
func parsePrefix(s string) (netip.Prefix, string) {
	pfx, why := parsePrefixOnly(s)
	if why != "" && strings.ContainsAny(s, ";|") {
		why += " (separate entries with commas or spaces)"
	}
	return pfx, why
}

func parsePrefixOnly(s string) (netip.Prefix, string) {
	addrPart, bitsPart, hasBits := strings.Cut(s, "/")
	a, err := netip.ParseAddr(addrPart)
	if err != nil {
		return netip.Prefix{}, "not an IP address or prefix"
	}
	if a.Zone() != "" {
		return netip.Prefix{}, "IPv6 zones are not allowed"
	}
	bits := a.BitLen()
	if hasBits {
		n, ok := parseUint(bitsPart)
		switch {
		case bitsPart == "":
			return netip.Prefix{}, `no prefix length after "/"`
		case !ok:
			return netip.Prefix{}, `the prefix length after "/" is not a number`
		case n > a.BitLen():
			return netip.Prefix{}, fmt.Sprintf("prefix length must be 0-%d for %s", a.BitLen(), family(a))
		}
		bits = n
	}
	return netip.PrefixFrom(a, bits), ""
}

// checkHostAddr refuses addresses no host can have or talk to.
func checkHostAddr(a netip.Addr) string {
	switch {
	case a.IsUnspecified():
		return "unspecified address"
	case a.IsMulticast():
		return "multicast address"
	case a.Is4In6():
		return "IPv4-mapped IPv6 address; write it as IPv4"
	}
	return ""
}

// validHostname reports whether s is a syntactically valid DNS name: labels
// of 1-63 letters, digits and hyphens (not at either end), at most 253
// characters, a single trailing dot allowed, the last label not all digits
// (so that a mistyped IPv4 address is not taken for a name).
func validHostname(s string) bool {
	s = strings.TrimSuffix(s, ".")
	if s == "" || len(s) > 253 {
		return false
	}
	var label string
	for rest := s; rest != ""; {
		label, rest, _ = strings.Cut(rest, ".")
		if len(label) == 0 || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
		if rest == "" && strings.HasSuffix(s, ".") {
			return false // an empty label: "a..b" or "a.b.."
		}
	}
	if _, ok := parseUint(label); ok {
		return false
	}
	return true
}

// endpoint is a parsed Endpoint.
type endpoint struct {
	norm string // "host:port", "[v6]:port"
	host string
	port int
}

// parseEndpoint parses "host:port", "v4:port" or "[v6]:port".
func parseEndpoint(s string) (endpoint, string) {
	var host, portPart string
	bracketed := false
	if strings.HasPrefix(s, "[") {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return endpoint{}, `missing "]" after the IPv6 address`
		}
		host, bracketed = s[1:end], true
		after := s[end+1:]
		if after == "" {
			return endpoint{}, "missing port; expected host:port or [IPv6]:port"
		}
		if after[0] != ':' {
			return endpoint{}, `expected ":" and a port after "]"`
		}
		portPart = after[1:]
	} else {
		i := strings.LastIndexByte(s, ':')
		if i < 0 {
			return endpoint{}, "missing port; expected host:port or [IPv6]:port"
		}
		host, portPart = s[:i], s[i+1:]
		if strings.Contains(host, ":") {
			return endpoint{}, "an IPv6 address must be in brackets, like [fd00::1]:51820"
		}
	}
	if host == "" {
		return endpoint{}, "missing host"
	}
	port, ok := parseUint(portPart)
	if !ok || port < 1 || port > 65535 {
		return endpoint{}, "port must be 1-65535"
	}
	if a, err := netip.ParseAddr(host); err == nil {
		if bracketed && !a.Is6() {
			return endpoint{}, "brackets are only for IPv6 addresses"
		}
		if a.Zone() != "" {
			return endpoint{}, "IPv6 zones are not supported"
		}
		if why := checkHostAddr(a); why != "" {
			return endpoint{}, why
		}
		ap := netip.AddrPortFrom(a, uint16(port))
		return endpoint{norm: ap.String(), host: a.String(), port: port}, ""
	}
	if bracketed {
		return endpoint{}, "not an IPv6 address inside the brackets"
	}
	if !validHostname(host) {
		return endpoint{}, "host is neither an IP address nor a valid host name"
	}
	return endpoint{norm: host + ":" + strconv.Itoa(port), host: host, port: port}, ""
}

// parseInbound parses an AllowInbound entry, "PORT/tcp" or "PORT/udp".
func parseInbound(s string) (Port, string) {
	portPart, proto, ok := strings.Cut(s, "/")
	if !ok {
		return Port{}, "needs a protocol, like 8080/tcp or 8080/udp"
	}
	portPart, proto = strings.Trim(portPart, " \t"), strings.ToLower(strings.Trim(proto, " \t"))
	n, ok := parseUint(portPart)
	if !ok || n < 1 || n > 65535 {
		return Port{}, "port must be 1-65535"
	}
	if proto != "tcp" && proto != "udp" {
		return Port{}, "protocol must be tcp or udp"
	}
	return Port{Port: uint16(n), Proto: proto}, ""
}

// parseSwitch parses on/off and its synonyms.
func parseSwitch(s string) (bool, bool) {
	switch strings.ToLower(s) {
	case "on", "true", "yes":
		return true, true
	case "off", "false", "no":
		return false, true
	}
	return false, false
}
