// Package dnsbind owns the DNS view of a tunnel's network namespace: the files
// /etc/netns/NAME/resolv.conf and nsswitch.conf (Write, Check, Remove), and the mounts that put
// them in place for a program started in the namespace (Enter).
//
// # Why /etc is covered, not single files
//
// `ip netns exec` bind-mounts /etc/netns/NAME/resolv.conf over /etc/resolv.conf. When the host
// replaces /etc/resolv.conf by rename (resolvconf, NetworkManager, DHCP clients all do), the
// kernel detaches every mount on the replaced file in every mount namespace, and a program
// that is still running sees the host's new file: its lookups leave the tunnel. The same happens
// when /etc/resolv.conf is a symlink into /run (systemd-resolved's stub-resolv.conf) and the
// host renames the target, or the symlink itself. A read-only overlayfs over /etc keeps the
// namespace's file but serves stale copies of the host's other files after they are renamed
// (overlayfs caches the lower layer's dentries), which breaks /etc/passwd and friends.
//
// Enter therefore mounts a small tmpfs over the whole of /etc, in the program's private mount
// namespace only. In it, resolv.conf and nsswitch.conf (and hosts if /etc/netns/NAME has one)
// are regular files holding the namespace's contents, which the host cannot rename over: /etc
// itself is never renamed. Every other entry of the host's /etc is a relative symlink,
// /etc/passwd -> .wgns-host/passwd, into /etc/.wgns-host, a recursive bind mount of the host's
// /etc (taken through a descriptor opened before the tmpfs covered it). Those files stay live:
// a file the host renames into place later is what the program reads. The tmpfs is read-only,
// so a program cannot add files to the namespace's /etc, while writes through the symlinks reach
// the host's files as they would without wgns. A host entry that is itself a symlink is copied
// (its target unchanged), since a relative target such as /etc/localtime's
// ../usr/share/zoneinfo/UTC would resolve one level too deep from .wgns-host.
//
// What a program in the namespace may notice: lstat shows /etc's entries as symlinks and
// realpath("/etc/passwd") is /etc/.wgns-host/passwd; entries the host adds to /etc after the
// program started are absent, and ones it removes dangle; symlinks directly in /etc are copies
// taken at start; a relative symlink in a subdirectory of /etc whose target climbs out of /etc
// (none on Debian 12) resolves one level too deep; later Writes reach programs started after
// them, not running ones. Covering /etc costs one directory listing and one symlinkat per entry
// of the host's /etc (about 150 on Debian): see the integration benchmark
// BenchmarkIntegrationDNSEnter for the measured cost.
//
// The host's resolver sockets are hidden separately (HiddenPaths), and the namespace's
// nsswitch.conf asks only "files dns" for hosts, so that neither nscd, systemd-resolved, avahi
// nor machined answers from the host's network.
package dnsbind
