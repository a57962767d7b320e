package main

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/alecthomas/kong"

	"github.com/wgns/wgns/internal/doc"
)

// docCmds are hidden (not in --help): `wgns __gen` writes the manual pages and the shell
// completions from this command line's model, so that they cannot drift from --help (make docs
// runs it); `wgns __complete` lists the names the completions offer.
type docCmds struct {
	Gen      genCmd      `cmd:"" name:"__gen" hidden:""`
	Complete completeCmd `cmd:"" name:"__complete" hidden:""`
}

// genCmd is `wgns __gen`.
type genCmd struct {
	What string `arg:"" enum:"wgns.8,wgns.conf.5,bash,zsh,fish" help:"What to write to standard output: a manual page (wgns.8, wgns.conf.5) or a shell's completion (bash, zsh, fish)."`
	Date string `placeholder:"YYYY-MM-DD" help:"The manual page's date (default: that of SOURCE_DATE_EPOCH, else none)."`
}

// Run writes what c asks for to standard output.
func (c *genCmd) Run(ctx *kong.Context) error {
	return generate(os.Stdout, ctx.Model, c.What, manDate(c.Date, os.Getenv("SOURCE_DATE_EPOCH")))
}

// generate writes a manual page or a completion script for the model app.
func generate(w io.Writer, app *kong.Application, what, date string) error {
	switch what {
	case "wgns.8":
		return wgnsPage(app, date).Write(w)
	case "wgns.conf.5":
		return confPage(date).Write(w)
	case "bash":
		return doc.Bash(w, completionSpec(app))
	case "zsh":
		return doc.Zsh(w, completionSpec(app))
	case "fish":
		return doc.Fish(w, completionSpec(app))
	}
	return fmt.Errorf("generating %q: wgns writes wgns.8, wgns.conf.5, bash, zsh and fish", what)
}

// manDate is date, else the date of the Unix time epoch (SOURCE_DATE_EPOCH, for reproducible
// builds), else "".
func manDate(date, epoch string) string {
	if date != "" {
		return date
	}
	if s, err := strconv.ParseInt(epoch, 10, 64); err == nil {
		return time.Unix(s, 0).UTC().Format(time.DateOnly)
	}
	return ""
}

// manualFooter is the source named in a page's footer.
func manualFooter() string { return "wgns " + version }

// wgnsPage is wgns(8): the model's synopsis, commands and options, between prose of its own.
func wgnsPage(app *kong.Application, date string) *doc.Page {
	synopsis, commands, options := doc.CommandSections(app)
	return &doc.Page{
		Name: "wgns", Section: 8, Date: date, Source: manualFooter(), Manual: "System Administration",
		Summary: "confine programs and systemd services to a WireGuard tunnel",
		Sections: []doc.Section{
			synopsis,
			{Title: "DESCRIPTION", Text: app.Help + "\n\n" + descriptionMore},
			commands,
			options,
			{Title: "SYSTEMD", Text: systemdText},
			{Title: "CNI PLUGIN", Text: cniText},
			{Title: "EXIT STATUS", Items: exitItems},
			{Title: "ENVIRONMENT", Items: envItems},
			{Title: "FILES", Items: fileItems},
			{Title: "SEE ALSO", Text: "wgns.conf(5), wg(8), wg-quick(8), ip-netns(8), systemd.exec(5), systemd-escape(1), sudo(8)"},
		},
	}
}

const descriptionMore = `NAME, a tunnel's name, is 1 to 15 characters of letters, digits and _=+.- (not . or ..), like
a WireGuard interface's. It names the namespace, the interface inside it, the DNS folder and the
systemd instance wgns@NAME.service.

Commands that make, change or inspect tunnels need root; run them with sudo (wgns exec then runs
the command as the user who called sudo, and only as that user, whatever --user says). --help,
version and up --dry-run need no root. When root runs a command as another user (exec --user),
the command gets a pseudo-terminal of its own, never root's terminal, as sudo's use_pty does.

wgns is two programs: /usr/bin/wgns runs exec itself, and runs the full wgns, found at
../libexec/wgns/wgns next to it, for every other command.

Every tunnel has a supervisor, a wgns process that lives as long as the tunnel: it holds the
embedded userspace WireGuard (wireguard-go) when the kernel has no WireGuard, remakes a deleted
interface, resolves endpoint host names again, follows a new uplink and starts new sessions
after a resume from sleep. Either way the encrypted UDP socket stays in the
host's namespace, so it uses the host's uplink, and the interface lives in the tunnel's
namespace, whose nftables table fails closed: if the tunnel dies, nothing inside gets out.`

const systemdText = `The unit template wgns@.service brings tunnel NAME up (wgns up --foreground NAME, Type=notify)
and tears it down when stopped. Instance names are escaped as systemd-escape does (a "-" becomes
\x2d):

    systemctl enable --now "wgns@$(systemd-escape NAME).service"

wgns unit install NAME UNIT confines a service to the tunnel with a drop-in: UNIT runs inside
NAME's namespace with its DNS, cannot start while the tunnel is down, and stops when it goes
down. The joins style (--style joins) uses the wgns-netns@.service template, for services that
join the namespace through JoinsNamespaceOf=.`

const cniText = `Run by a container runtime with CNI_COMMAND set, the full wgns is a CNI plugin (spec 1.1;
0.4.0 and 1.0.0 too): a network whose plugin has "type": "wgns" gives a container's namespace
what up gives a namespace of its own, firewall first. Link /usr/libexec/wgns/wgns (or
/usr/local/libexec/wgns/wgns) into the runtime's CNI_PATH. The plugin's keys: "config" (a config
path, checked as up checks it) or "configText" (the config itself), "interface" (the WireGuard
interface's name inside), "keep" (prefixes that stay on the primary interface), "primary" (the
pod's own interface when wgns is a secondary network), "mode" (kernel or userspace). DEL removes
only what ADD made; GC removes attachments not among cni.dev/valid-attachments; every command but
VERSION needs root. See the README's Containers section.`

var exitItems = []doc.Item{
	{Tag: []doc.Span{doc.B("0")}, Text: "Success; for down, also when NAME was not up."},
	{Tag: []doc.Span{doc.B("1")}, Text: "Failure: a message on standard error says what, where and why. For check, a check failed."},
	{Tag: []doc.Span{doc.B("2")}, Text: "The command line is wrong (an unknown command or flag, a missing argument); for exec, 125."},
	{Tag: []doc.Span{doc.B("125"), doc.R(", "), doc.B("126"), doc.R(", "), doc.B("127")}, Text: "exec only: wgns failed (its command line included), the command is not executable, or it was not found, like env(1) and sudo(8). Otherwise exec exits with the command's own status."},
}

var envItems = []doc.Item{
	{Tag: []doc.Span{doc.B("SUDO_UID"), doc.R(", "), doc.B("SUDO_USER"), doc.R(", "), doc.B("SUDO_GID")}, Text: "Under sudo, exec runs the command as the user sudo was called by, with that user's groups, HOME and SHELL and the PATH of that user's login (~/.local/bin, ~/bin, /usr/local/bin, /usr/bin, /bin, /usr/local/games, /usr/games), in which it looks the command up as that user; --user may name only that same user (only root may name another). They must agree with the password database, or exec refuses."},
	{Tag: []doc.Span{doc.B("NOTIFY_SOCKET")}, Text: "Set by systemd: up --foreground tells it READY=1 once the namespace is ready, and keeps a status line."},
	{Tag: []doc.Span{doc.B("CNI_COMMAND")}, Text: "Set by a container runtime: wgns answers as a CNI plugin (see CNI PLUGIN), with the other CNI_* variables and the network config on standard input."},
}

var fileItems = []doc.Item{
	{Tag: []doc.Span{doc.I("/etc/wgns/NAME.conf"), doc.R(", "), doc.I("/etc/wireguard/NAME.conf")}, Text: "The configs wgns up NAME reads, in this order; see wgns.conf(5). /etc/wgns is readable by root only."},
	{Tag: []doc.Span{doc.I("/run/netns/NAME")}, Text: "The tunnel's network namespace, made the iproute2 way: ip netns exec NAME and ip -n NAME work on it."},
	{Tag: []doc.Span{doc.I("/etc/netns/NAME/resolv.conf"), doc.R(", "), doc.I("nsswitch.conf")}, Text: "The namespace's DNS view, seen as /etc/resolv.conf and /etc/nsswitch.conf by what runs inside."},
	{Tag: []doc.Span{doc.I("/run/wgns/")}, Text: "Runtime state (NAME.json), locks, readiness markers and the embedded WireGuard's log (NAME.log); readable by root only."},
	{Tag: []doc.Span{doc.I("/var/run/wireguard/NAME.sock")}, Text: "The embedded WireGuard's control socket; wg show uses it."},
	{Tag: []doc.Span{doc.I("/run/wgns/cni/")}, Text: "The records of CNI attachments (ID.json), their locks and their holders' logs; an attachment's interface is wgcXXXXXXXXXXXX in the host namespace before it is moved, and its embedded WireGuard's control socket has that name."},
	{Tag: []doc.Span{doc.I("wgns@.service"), doc.R(", "), doc.I("wgns-netns@.service")}, Text: "The unit templates: in /lib/systemd/system from the Debian package, in /etc/systemd/system from make install. wgns unit template prints them."},
}

// confPage is wgns.conf(5), its keys from confKeys.
func confPage(date string) *doc.Page {
	p := &doc.Page{
		Name: "wgns.conf", Section: 5, Date: date, Source: manualFooter(), Manual: "File Formats",
		Summary: "configuration of a wgns tunnel",
		Sections: []doc.Section{
			{Title: "SYNOPSIS", Text: "/etc/wgns/NAME.conf\n\n/etc/wireguard/NAME.conf"},
			{Title: "DESCRIPTION", Text: confDescription},
		},
	}
	for _, sec := range []string{"Interface", "Peer", "Namespace"} {
		s := doc.Section{Title: "[" + sec + "] SECTION", Text: sectionText[sec]}
		for _, k := range confKeys {
			if k.Section == sec {
				s.Items = append(s.Items, doc.Item{Tag: []doc.Span{doc.B(k.Key), doc.R(" = "), doc.I(k.Value)}, Text: k.Doc})
			}
		}
		p.Sections = append(p.Sections, s)
	}
	p.Sections = append(p.Sections,
		doc.Section{Title: "EXAMPLE", Text: confExample},
		doc.Section{Title: "SEE ALSO", Text: "wgns(8), wg-quick(8), wg(8), resolv.conf(5)"},
	)
	return p
}

const confDescription = `A wgns configuration is a wg-quick(8) configuration: the file a VPN provider hands out works
as it comes. wgns up NAME reads /etc/wgns/NAME.conf, then /etc/wireguard/NAME.conf; wgns up
./path/x.conf reads that file, and the tunnel's name defaults to x.

The file is read line by line. Section and key names are case-insensitive; "#" starts a comment;
CRLF line endings and a leading byte order mark are accepted. Every problem is reported as
FILE:LINE: what is wrong, before anything on the system changes, and keys never appear in
output, logs, argv, the environment or error text.

There is exactly one [Interface] section, at least one [Peer] section, and optionally one
[Namespace] section with wgns's own settings.

wgns runs as root, so it trusts only what only root can change: a config file must be owned by
root and not writable by group or others, and so must every directory on its path (a sticky
directory such as /tmp excepted) and every symbolic link followed to it; key files named by
PrivateKeyFile and PresharedKeyFile likewise, and group and others may not read them. A running
tunnel keeps the config as it was read at up: wgns up and wgns repair, run by root, apply a
changed file.`

var sectionText = map[string]string{
	"Interface": "The tunnel's own end.",
	"Peer":      "The other end; one section per peer.",
	"Namespace": "wgns's own settings for the tunnel's namespace. wg-quick(8) does not know this section: a config that has it is for wgns only.",
}

const confExample = `    [Interface]
    PrivateKeyFile = /etc/wgns/work.key
    Address = 10.64.12.7/32, fc00:bbbb:bbbb:bb01::1:c06/128
    DNS = 10.64.0.1

    [Peer]
    PublicKey = <the server's key>
    AllowedIPs = 0.0.0.0/0, ::/0
    Endpoint = vpn.example.net:51820

    [Namespace]
    AllowInbound = 51413/tcp, 51413/udp`

// completionSpec is how wgns's values complete.
func completionSpec(app *kong.Application) doc.Spec {
	return doc.Spec{App: app, Prog: "wgns", Hook: "__complete", Complete: completeValue}
}

// completionKinds are the ways a value can complete, by the name a `completion:"..."` tag or
// completeValues gives them.
var completionKinds = map[string]doc.Completion{
	"tunnels":          {Dynamic: "tunnels"},
	"configs":          {Dynamic: "configs"},
	"configs-or-files": {Dynamic: "configs", Files: "*.conf"},
	"services":         {Dynamic: "services"},
	"files":            {Files: "*"},
	"dirs":             {Dirs: true},
	"users":            {Users: true},
	"command":          {Command: true},
	"none":             {},
}

// completeValues says how the values of the commands' arguments and flags complete, by
// "COMMAND PATH ARGUMENT" or "COMMAND PATH --FLAG". What is not here completes by the
// completion:"KIND" tag of its field, else by completeValue's defaults.
var completeValues = map[string]string{
	"up CONFIG|NAME":         "configs-or-files",
	"exec --user":            "users",
	"unit install name":      "configs",
	"unit remove name":       "configs",
	"unit show name":         "configs",
	"unit install unit":      "services",
	"unit remove unit":       "services",
	"unit show unit":         "services",
	"unit install --dir":     "dirs",
	"unit remove --dir":      "dirs",
	"unit show --dir":        "dirs",
	"unit template --binary": "files",
}

// completeValue is the doc.Completer of wgns: completeValues, else the field's completion tag,
// else: an argument called name completes with running tunnels, a passthrough argument as a
// command line, a --user flag with users; anything else by its enum, if it has one.
func completeValue(cmd *kong.Node, v *kong.Value) (doc.Completion, bool) {
	key := commandPathOf(cmd) + " " + v.Name
	if v.Flag != nil {
		key = commandPathOf(cmd) + " --" + v.Name
	}
	if kind, ok := completeValues[key]; ok {
		return completionKinds[kind], true
	}
	if kind := v.Tag.Get("completion"); kind != "" {
		c, ok := completionKinds[kind]
		return c, ok
	}
	switch {
	case v.Flag == nil && v.Passthrough:
		return completionKinds["command"], true
	case v.Flag == nil && v.Name == "name":
		return completionKinds["tunnels"], true
	case v.Flag != nil && v.Name == "user":
		return completionKinds["users"], true
	}
	return doc.Completion{}, false
}

// commandPathOf is a command's path without the program: "unit install".
func commandPathOf(n *kong.Node) string {
	var names []string
	for p := n; p != nil && p.Type == kong.CommandNode; p = p.Parent {
		names = append([]string{p.Name}, names...)
	}
	return strings.Join(names, " ")
}
