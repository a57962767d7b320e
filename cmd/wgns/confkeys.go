package main

// confKey documents one configuration key in wgns.conf(5).
type confKey struct {
	Section string // Interface, Peer or Namespace
	Key     string // as the parser spells it
	Value   string // the shape of its value, e.g. "PORT/tcp|udp, ..."
	Doc     string // what it does, and what the parser refuses
}

// confKeys are the keys of a wgns configuration, one row per key the parser (wgns/config)
// accepts, in the order wgns.conf(5) lists them. A key added to the parser needs a row here:
// TestConfKeysMatchParser fails until it has one, and the manual page picks it up from here.
var confKeys = []confKey{
	{"Interface", "PrivateKey", "KEY", "The interface's private key, base64 (as wg genkey prints it). A config file that holds it should be readable by root only: wgns warns when group or others can read it."},
	{"Interface", "PrivateKeyFile", "PATH", "A file holding the private key instead; relative paths are taken from the config file's directory. The file must be a regular file owned by root that group and others cannot access (like ssh's key check). Only one of PrivateKey and PrivateKeyFile may be given."},
	{"Interface", "Address", "ADDRESS[/BITS], ...", "The tunnel's own IPv4 and IPv6 addresses (at least one). Repeatable; entries separated by commas and/or spaces, as wg-quick takes them. A bare address gets a host prefix."},
	{"Interface", "DNS", "SERVER|DOMAIN, ...", "IP addresses are the namespace's DNS servers; anything else is a search domain. Entries are separated by commas and/or spaces. They go into /etc/netns/NAME/resolv.conf, which every process in the namespace sees as /etc/resolv.conf. A server outside every peer's AllowedIPs draws a warning: queries to it cannot go anywhere."},
	{"Interface", "MTU", "BYTES", "The tunnel's MTU, up to 65535 (at least 1280 with IPv6, else 576). Default: the uplink's MTU minus 80, as wg-quick does, else 1420."},
	{"Interface", "ListenPort", "PORT", "The UDP port WireGuard listens on in the host's namespace, 0-65535. Default: a random port."},
	{"Interface", "Table", "VALUE", "Means nothing inside a namespace (its main table is the tunnel's): accepted and ignored, with a warning."},
	{"Interface", "FwMark", "VALUE", "Means nothing inside a namespace: accepted and ignored, with a warning."},
	{"Interface", "SaveConfig", "VALUE", "Means nothing to wgns, which never writes the config: accepted and ignored, with a warning."},
	{"Interface", "PreUp", "COMMAND", "Never run: hooks would run as root on the host, and the namespace already fails closed (a provider's kill-switch lines mean nothing inside it). Ignored with one warning per line naming FILE:LINE; wgns up --strict refuses the config instead. Run commands inside the tunnel with wgns exec."},
	{"Interface", "PostUp", "COMMAND", "Never run, like PreUp."},
	{"Interface", "PreDown", "COMMAND", "Never run, like PreUp."},
	{"Interface", "PostDown", "COMMAND", "Never run, like PreUp."},
	{"Peer", "PublicKey", "KEY", "The peer's public key (required). No two peers may share one, and it may be neither the interface's own nor a secret of the file (its private key or a preshared key: a key pasted into the wrong line is refused, never printed)."},
	{"Peer", "PresharedKey", "KEY", "An optional preshared key, base64, mixed into the handshake for post-quantum resistance."},
	{"Peer", "PresharedKeyFile", "PATH", "A file holding the preshared key instead, checked like PrivateKeyFile. Only one of PresharedKey and PresharedKeyFile may be given."},
	{"Peer", "Endpoint", "HOST:PORT", "Where the peer is: an IPv4 address, [IPv6] in brackets, or a host name, and a port. Host names are resolved in the host's namespace, with the host's resolver."},
	{"Peer", "AllowedIPs", "PREFIX, ...", "The addresses the peer may send from and that are routed to it; 0.0.0.0/0, ::/0 sends everything through the tunnel. A prefix may belong to one peer only, unless [Namespace] Failover = on makes peers with identical AllowedIPs a failover group. Repeatable, and comma lists."},
	{"Peer", "PersistentKeepalive", "SECONDS|off", "Send a keepalive this often (0-65535 seconds; 0 or off: never), to keep NAT and firewall state open."},
	{"Namespace", "AllowInbound", "PORT/tcp|udp, ...", "Ports on which connections coming in through the tunnel are accepted (for a service behind a provider's port forward). Everything else that comes in is dropped, except replies. Repeatable, and comma lists."},
	{"Namespace", "Firewall", "on|off", "The namespace's own nftables table: output only through lo and the tunnel, input only replies and AllowInbound's ports. Default: on. With off, AllowInbound means nothing (a warning says so)."},
	{"Namespace", "Failover", "on|off", "Peers whose AllowedIPs are identical (as sets) form a failover group, in file order. One peer of a group, at first the first one, holds the AllowedIPs; when it stops answering, wgns moves them to the next peer of the group, and stays with that one when the first comes back (no flapping). Default: off; then a prefix may belong to one peer only, as in wg-quick, and a prefix shared by peers whose AllowedIPs differ is refused either way."},
	{"Namespace", "FailoverTimeout", "DURATION", "How long the active peer of a failover group may go without answering before its AllowedIPs move on, from 1s to 5m (2s, 1500ms; a bare number is seconds); each peer tried next gets as long. Default: 2s. A group with nothing to probe is judged from WireGuard's own counters instead: sent and nothing received for 15 s (or FailoverTimeout, if longer)."},
	{"Namespace", "FailoverCheck", "ADDRESS, ...|none", "The address pinged, every FailoverTimeout/4, through the active peer of the failover group that routes it: one address per group, each inside a group's AllowedIPs. Default: for each group, the first DNS server it routes (a VPN provider's resolver is usually a gateway that every one of its servers answers for). none: no group is probed."},
	{"Namespace", "Publish", "[HOSTIP:]HOSTPORT:PORT[/tcp|/udp], ...", "Make a service inside reachable from the host, docker's -p shape: the tunnel's supervisor listens on HOSTIP:HOSTPORT in the host's namespace (HOSTIP defaults to 127.0.0.1, so only this machine's users reach it; an IPv6 HOSTIP goes in brackets; 0.0.0.0 or [::] is every address, with a warning) and carries each TCP connection, or UDP flow, to PORT on the namespace's own loopback, spliced. No interface, route, NAT rule or sysctl is made: nothing inside gains a way out. At most 256 connections (or UDP flows) per port at once; more are reset (or dropped). A port that cannot be bound fails up with its line. Repeatable, and comma lists."},
	{"Namespace", "PortForward", "natpmp[:GATEWAY]", "Provider port forwarding over NAT-PMP (RFC 6886): the supervisor asks GATEWAY (an IPv4 address the tunnel routes; default: the first IPv4 DNS server, the gateway for ProtonVPN) through the tunnel for a TCP and a UDP mapping of one port, renews them at half their lifetime, and on every grant or change opens exactly that port inbound in the namespace's firewall (the old one closes in the same transaction), writes it to /run/wgns/NAME.port and shows it in status. Failures are retried with back-off and reported; the tunnel never depends on them."},
	{"Namespace", "PortForwardCommand", "/PATH [ARG...]", "Run each time the forwarded port is granted or changes, inside the namespace (through wgns exec --no-new-privs) as PortForwardUser, with the port in WGNS_FORWARDED_PORT and the tunnel's name in WGNS_TUNNEL (a torrent client can be told its port). An absolute path; arguments separated by white space, no shell. Needs PortForward and PortForwardUser."},
	{"Namespace", "PortForwardUser", "USER|UID", "The user PortForwardCommand runs as: never root (refused, by name or uid 0), and it must exist when the tunnel comes up."},
	{"Namespace", "Users", "USER|@GROUP, ...", "Who may run programs in the tunnel without sudo: wgns exec NAME -- CMD run by such a user (or by a member of such a group, as /etc/group says) asks the root service wgns serve, which runs CMD as that user, in this tunnel only. The list is read when the tunnel comes up (and by wgns repair): after a change, run wgns repair NAME; programs started under a grant that is gone are ended then. Names as useradd takes them (no numbers); root is refused (it needs no grant). Repeatable, and comma lists."},
}
