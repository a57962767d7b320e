// Package dnsbind owns the DNS view of a tunnel's network namespace: the files
// /etc/netns/NAME/resolv.conf and nsswitch.conf (Write, Check, Remove), and the mounts that put
// them in place for a program started in the namespace (Enter).
//
// # Why /etc is covered, not single files
//
// `ip netns exec` bind-mounts /etc/netns/NAME/resolv.conf over /etc/resolv.conf. When the host
// replaces /etc/resolv.conf by rename (resolvconf, NetworkManager and DHCP clients do), the
// kernel detaches every mount on the replaced file in every mount namespace, and a program that
// is still running sees the host's new file: its lookups leave the tunnel. The same happens when
// /etc/resolv.conf is a symlink into /run (systemd-resolved's stub-resolv.conf) and the host
// renames the target, or the symlink itself. A read-only overlayfs over /etc keeps the
// namespace's file but serves stale copies of the host's other files after they are renamed
// (overlayfs caches the lower layer's dentries), which breaks /etc/passwd and friends.
//
// So Enter covers the whole of /etc, in the program's private mount namespace only, with a
// directory in which no host rename can reach the namespace's files:
//
//	/etc                  read-only bind of LinkDir (/run/wgns/etc), shared by all namespaces
//	/etc/passwd           -> .wgns-host/passwd   (one symlink per entry of the host's /etc)
//	/etc/localtime        -> ../usr/share/...    (a host symlink is copied, target unchanged)
//	/etc/resolv.conf      -> .wgns-view/resolv.conf
//	/etc/nsswitch.conf    -> .wgns-view/nsswitch.conf
//	/etc/.wgns-host/      recursive bind of the host's /etc (live)
//	/etc/.wgns-view/resolv.conf, nsswitch.conf
//	                      read-only binds of the checked /etc/netns/NAME files, mounted on
//	                      files of LinkDir, which only Enter ever touches
//
// The host's other files stay live: a file the host renames into place later is what the
// program reads. A host symlink in /etc is copied rather than pointed to, because a relative
// target such as /etc/localtime's would resolve one level too deep from .wgns-host.
//
// Building a directory of about 150 symlinks costs about 600µs here (4µs per tmpfs inode), so it
// is not built per program: LinkDir is built once and kept up to date by Enter itself, which
// compares the device, inode, mtime and ctime of the host's /etc with a stamp stored in LinkDir
// and, when they differ, brings LinkDir up to date under a lock (renaming changed symlinks into
// place, so programs already using it see each entry old or new, and see entries the host added
// meanwhile). Write invalidates the stamp, so a damaged LinkDir is rebuilt after `wgns repair`.
// Enter then costs two opens and fstats per view file, two of /etc and LinkDir, a readlink,
// three to four mounts for /etc and its parts, and two per hidden directory: about 70-100µs here
// (see the integration test TestIntegrationDNSEnterCost and BenchmarkIntegrationDNSEnter).
//
// What a program in the namespace may notice: lstat shows /etc's entries as symlinks and
// realpath("/etc/passwd") is /etc/.wgns-host/passwd; /etc is read-only (writes through the
// symlinks reach the host's files as they would without wgns, but a program cannot create or
// rename entries of /etc itself, which keeps it from writing files the host would never see);
// an entry the host adds to /etc appears once some program has been started after the change;
// a relative symlink in a subdirectory of /etc whose target climbs out of /etc (none on
// Debian 12) resolves one level too deep; the namespace's resolv.conf and nsswitch.conf are the
// files as they were when the program started (a later Write reaches programs started after it).
// /etc/netns/NAME/hosts, which `ip netns exec` would bind, is not used: /etc/hosts is the
// host's.
//
// The host's resolver sockets are hidden separately (HiddenPaths), and the namespace's
// nsswitch.conf asks only "files dns" for hosts, so that neither nscd, systemd-resolved, avahi
// nor machined answers from the host's network.
package dnsbind
