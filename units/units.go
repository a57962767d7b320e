// Package units is wgns's systemd side: the shipped units (the templates
// wgns@.service and wgns-netns@.service, and wgns.socket and wgns.service for
// `wgns serve`), drop-ins that confine a service to a tunnel, daemon-reload
// over D-Bus, and sd_notify for `wgns up --foreground`.
//
// A tunnel NAME appears in systemd in two forms: escaped in unit names
// (wgns@my\x2dvpn.service, see [InstanceName]) and plain in paths
// (/run/netns/my-vpn). wgns-netns@.service turns the one into the other with
// %I. wgns@.service passes %i to wgns, which takes the name as it is written:
// ExecStart= undoes its \xNN escapes, so wgns@my\x2dvpn.service and
// wgns@my-vpn.service are both tunnel my-vpn (with %I, the second would be
// "my/vpn"). wgns's own drop-ins always name the escaped form.
//
// # How a drop-in confines a service
//
// Both styles add BindsTo= and After= on wgns@NAME.service: BindsTo= pulls the
// tunnel in like Requires= does and, together with After=, lets the service
// be active only while the tunnel is active; it is stopped when the tunnel
// stops or fails. Requires= would add nothing. The tunnel's side
// ([TunnelDropIn], a drop-in of wgns@NAME.service) has Wants= on the service,
// so that it starts again with the tunnel: after a restart by hand, and after
// Restart= brought a failed tunnel back.
//
// StylePath sets NetworkNamespacePath=/run/netns/NAME: systemd opens the path
// each time it starts a process of the service. A missing path fails the
// service (exit status 225/NETWORK) instead of running it on the host network.
//
// StyleJoins uses JoinsNamespaceOf=. systemd keeps one network namespace per
// group of units joined this way (in a socket pair of the unit's shared
// runtime), taken from the first of them that starts a process with
// PrivateNetwork= or NetworkNamespacePath= set, and held while any of them is
// active. wgns@NAME.service cannot be that unit: wgns must run in the host
// namespace (the embedded WireGuard's UDP socket lives there) and it creates
// /run/netns/NAME only after it started. So a second template,
// wgns-netns@.service, runs /bin/true with NetworkNamespacePath=/run/netns/%I
// after wgns@%i.service is ready and stays active (Type=oneshot,
// RemainAfterExit=yes); that process stores the namespace in the shared
// runtime. A joined service has BindsTo=/After= on it, JoinsNamespaceOf= it and
// PrivateNetwork=yes. Should the joined service ever start without the helper's
// namespace, PrivateNetwork=yes gives it an empty namespace with only lo: it
// fails closed. Joined units share the helper's runtime entirely, so the helper
// sets PrivateTmp=yes and PrivateIPC=yes: otherwise those settings of a joined
// service would silently be dropped (systemd takes /tmp and the IPC namespace
// from the shared runtime, which would have none). Services joined to the same
// tunnel thus share one private /tmp.
//
// # DNS inside the service
//
// systemd makes no /etc/netns bind mounts for NetworkNamespacePath= or
// JoinsNamespaceOf=, so the drop-in puts the namespace's DNS view in place
// itself, with PrivateMounts=yes (implied only from systemd 254 on) and the
// read-only bind mounts of dnsbind.ServiceBinds: the same view of /etc that
// `wgns exec` gives a program. Binding the namespace's files over
// /etc/resolv.conf and /etc/nsswitch.conf would not last: a bind mount is
// detached when the host replaces the file below it by rename (resolvconf,
// NetworkManager, dpkg and systemd-resolved do), and the service would then
// read the host's file. So /etc is covered by dnsbind.LinkDir, a directory of
// symlinks into the host's /etc (bound below it, at /etc/.wgns-host, and live),
// whose resolv.conf and nsswitch.conf lead to the namespace's files: no host
// rename can reach them. systemd resolves the sources of all these mounts
// before it mounts the first (checked with Debian 12's systemd 252 in
// integration/dns_hostevents_test.go), so the host's /etc can be bound below the
// directory that covers it. A missing source fails the service with
// 226/NAMESPACE: it never starts with the host's view. What the service may
// notice: /etc is read-only (as with ProtectSystem=full; ReadWritePaths= and
// ConfigurationDirectory= still work), its entries are symlinks, and a name the
// host adds to /etc appears once wgns brought dnsbind.LinkDir up to date (every
// `wgns up`, `wgns repair` and `wgns exec` does); a bind mount of the unit's own
// onto a name the host's /etc lacks fails the service, since systemd cannot
// create its mount point in the read-only dnsbind.LinkDir.
//
// The directories through which a lookup would be answered on the host's
// network are covered by an empty read-only directory: nscd (/run/nscd),
// systemd-resolved's (/run/systemd/resolve, whose io.systemd.Resolve socket
// nss-resolve asks) and avahi's for nss-mdns (/run/avahi-daemon). Directories,
// not socket files: a daemon that restarts unlinks its socket and binds a new
// one, which a mount on the old file does not cover. systemd creates a missing
// directory (on the host's /run) before it mounts on it, so a daemon installed
// or started later finds its directory covered. Unlike `wgns exec`, which
// covers all of /run with a directory of symlinks, a service keeps the host's
// /run (services write their own files there); a directory that the host
// removes and re-creates while the service runs (RuntimeDirectory= without
// RuntimeDirectoryPreserve=; Debian 12's nscd, systemd-resolved and
// avahi-daemon do not) is visible to the service until it restarts, and
// `wgns check` reports it.
package units

import (
	_ "embed"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/coreos/go-systemd/v22/unit"

	"github.com/wgns/wgns/dnsbind"
	"github.com/wgns/wgns/internal/shellquote"
)

// Names of the shipped template units.
const (
	// TemplateName is the template unit of a tunnel, wgns@.service.
	TemplateName = "wgns@.service"
	// NetnsTemplateName is the template unit that holds a tunnel's network
	// namespace for services confined with StyleJoins.
	NetnsTemplateName = "wgns-netns@.service"
	// SocketName is the socket of `wgns serve` (sudo-free exec).
	SocketName = "wgns.socket"
	// ServiceName is `wgns serve`, started by SocketName.
	ServiceName = "wgns.service"
)

// DefaultBinary is where the wgns binary is installed; the shipped
// wgns@.service runs it.
const DefaultBinary = "/usr/local/bin/wgns"

// DefaultDir is the directory for local unit files and drop-ins.
const DefaultDir = "/etc/systemd/system"

// Sentinels for input that is refused before any file is touched.
var (
	// ErrInvalidName marks a tunnel name that cannot be used in a unit file.
	ErrInvalidName = errors.New("invalid tunnel name")
	// ErrInvalidUnit marks a unit name that is not a service systemd would
	// accept, or one of wgns's own units.
	ErrInvalidUnit = errors.New("invalid unit name")
)

//go:embed wgns@.service
var templateText string

//go:embed wgns-netns@.service
var netnsTemplateText string

//go:embed wgns.socket
var socketText string

//go:embed wgns.service
var serviceText string

// execPlaceholder is the text of the shipped wgns@.service that Template
// replaces.
const execPlaceholder = "ExecStart=" + DefaultBinary + " "

// Template returns the text of wgns@.service running the wgns binary at the
// given path ("" means DefaultBinary). The path is quoted for ExecStart= as
// needed (a space, or %, which starts a specifier); systemd itself refuses an
// executable whose name has quotes, backslashes or control characters.
func Template(binary string) string { return withBinary(templateText, binary) }

// withBinary returns a shipped unit's text running the wgns binary at the
// given path ("" means DefaultBinary).
func withBinary(text, binary string) string {
	if binary == "" {
		binary = DefaultBinary
	}
	return strings.Replace(text, execPlaceholder, "ExecStart="+execWord(binary)+" ", 1)
}

// Service returns the text of wgns.service running the wgns binary at the
// given path ("" means DefaultBinary), quoted as Template quotes it.
func Service(binary string) string { return withBinary(serviceText, binary) }

// Socket returns the text of wgns.socket.
func Socket() string { return socketText }

// NetnsTemplate returns the text of wgns-netns@.service.
func NetnsTemplate() string {
	return netnsTemplateText
}

// TemplateFiles returns every shipped unit, by file name, for the wgns binary
// at the given path ("" means DefaultBinary). Install all of them in the unit
// directory: drop-ins of StyleJoins need wgns-netns@.service, and sudo-free
// exec wgns.socket and wgns.service.
func TemplateFiles(binary string) map[string]string {
	return map[string]string{
		TemplateName:      Template(binary),
		NetnsTemplateName: NetnsTemplate(),
		SocketName:        Socket(),
		ServiceName:       Service(binary),
	}
}

// execWord returns path as the command word of an ExecStart= line. systemd
// expands specifiers (%) in it, but not environment variables ($), which it
// substitutes in the arguments only.
func execWord(path string) string {
	s := strings.ReplaceAll(path, "%", "%%")
	if !strings.ContainsFunc(s, func(r rune) bool {
		return r <= ' ' || r == 0x7f || r == '"' || r == '\'' || r == '\\'
	}) {
		return s
	}
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c < ' ' || c == 0x7f:
			fmt.Fprintf(&b, `\x%02x`, c)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// InstanceName returns the name of the wgns@.service instance of tunnel
// name: "wgns@" + the name escaped like systemd-escape does + ".service".
// It is the form wgns's drop-ins name; wgns@.service also accepts the name
// unescaped (see the package documentation).
func InstanceName(name string) string {
	return "wgns@" + unit.UnitNameEscape(name) + ".service"
}

// NetnsInstanceName returns the name of the wgns-netns@.service instance of
// tunnel name.
func NetnsInstanceName(name string) string {
	return "wgns-netns@" + unit.UnitNameEscape(name) + ".service"
}

// Style says how a drop-in puts a service into a tunnel's network namespace.
type Style string

// The styles of drop-in.
const (
	// StylePath sets NetworkNamespacePath=/run/netns/NAME.
	StylePath Style = "path"
	// StyleJoins sets JoinsNamespaceOf=wgns-netns@NAME.service and
	// PrivateNetwork=yes.
	StyleJoins Style = "joins"
)

// DefaultStyle is the style used when none is given.
const DefaultStyle = StylePath

// ParseStyle returns the Style named s ("path" or "joins").
func ParseStyle(s string) (Style, error) {
	switch st := Style(s); st {
	case StylePath, StyleJoins:
		return st, nil
	}
	return "", fmt.Errorf("unknown drop-in style %q: use %q or %q", s, StylePath, StyleJoins)
}

// checkName refuses tunnel names that cannot be written into a unit file or a
// path as they are. Callers check the full rules for names (length and so on);
// this keeps the unit files well-formed whatever they pass.
func checkName(name string) error {
	if name == "" {
		return fmt.Errorf("%w: the name is empty", ErrInvalidName)
	}
	if name == "." || name == ".." {
		return fmt.Errorf("%w %q: not . or ..", ErrInvalidName, name)
	}
	for _, r := range name {
		if !isAlnum(r) && !strings.ContainsRune("_=+.-", r) {
			return fmt.Errorf("%w %q: %q is not allowed; use letters, digits and _=+.-", ErrInvalidName, name, r)
		}
	}
	return nil
}

// unitNameMax is systemd's UNIT_NAME_MAX (256, counting the final NUL).
const unitNameMax = 256

// checkUnitName refuses anything but a service unit name that systemd
// accepts: plain (foo.service), instance (foo@bar.service) or template
// (foo@.service, whose drop-in applies to every instance).
func checkUnitName(name string) error {
	const suffix = ".service"
	switch {
	case name == "":
		return fmt.Errorf("%w: the name is empty; name a service like %q", ErrInvalidUnit, "transmission-daemon.service")
	case len(name) >= unitNameMax:
		return fmt.Errorf("%w %q: longer than %d characters", ErrInvalidUnit, name, unitNameMax-1)
	case !strings.HasSuffix(name, suffix) || name == suffix:
		return fmt.Errorf("%w %q: not a service; name one like %q or %q",
			ErrInvalidUnit, name, "transmission-daemon.service", "foo@bar.service")
	}
	prefix := strings.TrimSuffix(name, suffix)
	for _, r := range prefix {
		if !isAlnum(r) && !strings.ContainsRune(`:_.\@-`, r) {
			return fmt.Errorf(`%w %q: %q is not allowed; systemd allows letters, digits and :_.\@- (see systemd-escape)`,
				ErrInvalidUnit, name, r)
		}
	}
	if strings.HasPrefix(prefix, "@") {
		return fmt.Errorf("%w %q: nothing before the @", ErrInvalidUnit, name)
	}
	if name == ServiceName {
		return fmt.Errorf("%w %q: a unit of wgns itself cannot be confined to a tunnel", ErrInvalidUnit, name)
	}
	for _, own := range []string{TemplateName, NetnsTemplateName} {
		if strings.HasPrefix(name, strings.TrimSuffix(own, suffix)) {
			return fmt.Errorf("%w %q: a unit of wgns itself cannot be confined to a tunnel", ErrInvalidUnit, name)
		}
	}
	return nil
}

func isAlnum(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9'
}

// DropIn returns the text of the drop-in that confines the service unitName
// to tunnel name, in the given style. See the package comment for what it
// sets and why.
func DropIn(name, unitName string, style Style) (string, error) {
	if err := checkName(name); err != nil {
		return "", err
	}
	if err := checkUnitName(unitName); err != nil {
		return "", err
	}
	if _, err := ParseStyle(string(style)); err != nil {
		return "", err
	}

	tunnel := InstanceName(name)
	opts := []*unit.UnitOption{
		unit.NewUnitOption("Unit", "BindsTo", tunnel),
		unit.NewUnitOption("Unit", "After", tunnel),
	}
	switch style {
	case StylePath:
		opts = append(opts,
			unit.NewUnitOption("Service", "NetworkNamespacePath", "/run/netns/"+name))
	case StyleJoins:
		netns := NetnsInstanceName(name)
		opts = append(opts,
			unit.NewUnitOption("Unit", "BindsTo", netns),
			unit.NewUnitOption("Unit", "After", netns),
			unit.NewUnitOption("Unit", "JoinsNamespaceOf", netns),
			unit.NewUnitOption("Service", "PrivateNetwork", "yes"))
	}
	opts = append(opts, unit.NewUnitOption("Service", "PrivateMounts", "yes"))
	for _, b := range dnsbind.ServiceBinds(name) {
		opts = append(opts, unit.NewUnitOption("Service", "BindReadOnlyPaths", b.Source+":"+b.Target))
	}

	var b strings.Builder
	fmt.Fprintf(&b, "# Written by wgns unit install; remove with: wgns unit remove %s %s\n",
		shellquote.Word(name), shellquote.Word(unitName))
	if _, err := io.Copy(&b, unit.Serialize(opts)); err != nil {
		return "", fmt.Errorf("serialising drop-in for %s: %w", unitName, err)
	}
	return b.String(), nil
}

// TunnelDropIn returns the text of the tunnel's side of the confinement of
// unitName to tunnel name: Wants= on the service, so that starting the
// tunnel's unit (at boot, by hand, or when Restart= brings it back after a
// crash) starts the service again after it. The service's own drop-in has
// BindsTo= and After= on the tunnel, so it stops with the tunnel and starts
// only once the tunnel is ready; without this, a service stopped by a crash of
// its tunnel would stay stopped. A service stopped by hand stays stopped until
// the tunnel next starts.
func TunnelDropIn(name, unitName string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# Written by wgns unit install: %s is confined to this tunnel and starts again with it.\n# Remove with: wgns unit remove %s %s\n",
		unitName, shellquote.Word(name), shellquote.Word(unitName))
	io.Copy(&b, unit.Serialize([]*unit.UnitOption{unit.NewUnitOption("Unit", "Wants", unitName)}))
	return b.String()
}
