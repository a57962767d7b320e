// Package ports is a tunnel's ports: the host's ports published to services inside the tunnel
// namespace ([Namespace] Publish), and the port a VPN provider forwards to it over NAT-PMP
// ([Namespace] PortForward). Both run in the tunnel's supervisor, beside its loop.
//
// Publish gives the namespace no way out. The listening socket is the host's (this process
// runs in the host namespace); each connection, or UDP flow, is carried to PORT on the
// namespace's own loopback through a socket this process opens inside the namespace (made on an
// nsmgr.Do thread: a socket belongs to the namespace it was made in, whichever thread uses it
// later). No veth, route, NAT rule or sysctl is made, so a process inside can reach nothing it
// could not reach before; it sees connections from its own lo. TCP is relayed with splice(2)
// (Go's io.Copy between two *net.TCPConn), through a pipe, without copying the data into this
// process. Each published port takes at most MaxConns connections (or UDP flows) at once; more
// are closed at once (or their datagrams dropped), so a flood costs the supervisor bounded
// memory and descriptors, and the rest of the supervisor never waits on a connection.
//
// PortForward asks the provider's gateway, through the tunnel (a UDP socket made inside the
// namespace), for a TCP and a UDP mapping (RFC 6886), renews them at half their lifetime, and
// on each grant or change opens exactly that port in the namespace's firewall (the old one
// closes in the same transaction), writes it to RunDir/NAME.port, and runs the configured
// command as its user inside the namespace. Failures are retried with back-off and reported;
// the tunnel never depends on them.
package ports
