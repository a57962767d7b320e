// Package supervisor is the long-lived process behind every tunnel, the "holder": it brings the
// tunnel up, says when it is ready, keeps it working, and tears it down on SIGTERM.
//
// It is `wgns up --foreground NAME`, started either by systemd (wgns@NAME.service, Type=notify:
// readiness is READY=1 on NOTIFY_SOCKET, and STATUS= keeps `systemctl status` current) or by a
// plain `wgns up`, which starts it detached (Start) and waits on a pipe of its own for the
// outcome. The pipe is the only channel between the two: no other process can send on it or
// hold its name, so readiness cannot be forged or blocked. The supervisor inherits descriptors
// 0-2 (stdin is /dev/null; stdout and stderr go to /run/wgns/NAME.log) and the pipe, nothing else
// of the process that started it.
//
// While the tunnel is up, the supervisor
//   - holds the embedded WireGuard device, when there is one: it lives in this process;
//   - recreates the device when it stops by itself (its interface deleted, say), inside the
//     same, still firewalled namespace, from the config as it was read at up — never from the
//     file as it may have been changed since;
//   - resolves endpoint host names again when handshakes stop (wg-quick's reresolve-dns rule);
//   - with [Namespace] Failover = on, watches the active peer of each failover group (ICMP
//     probes through it, else WireGuard's own counters) and moves the group's AllowedIPs to the
//     next peer when it stops answering (failover.go), recording what it did for status and
//     check;
//   - serves the published ports ([Namespace] Publish: listeners in the host namespace, bound
//     before the tunnel is made, carried to the namespace's loopback) and keeps the provider's
//     port forwarding (PortForward: NAT-PMP leases renewed, the firewall's forwarded port, the
//     port file, the command), in ports.go, beside the loop; after a failover it asks the new
//     peer's gateway at once (loop.peerChanged).
//
// Its decisions are made by a loop over events (signals, the device stopping, timers) that is
// unit-tested with a fake tunnel and a fake clock (loop_test.go).
package supervisor
