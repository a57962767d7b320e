// Package dnsbind owns the DNS view of a tunnel's network namespace: the files
// /etc/netns/NAME/resolv.conf and nsswitch.conf (Write, Check, Remove), the mounts that put
// them in place for a program started in the namespace (Enter) or for a systemd service
// (ServiceBinds), and what a running process actually sees (Inspect).
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
// So /etc is covered, in the program's (or service's) private mount namespace only, with a
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
//	                      empty files of the link farm, which only wgns ever touches
//
// The host's other files stay live: a file the host renames into place later is what the
// program reads. A host symlink in /etc is copied rather than pointed to, because a relative
// target such as /etc/localtime's would resolve one level too deep from .wgns-host.
//
// # Why /run is covered too, for programs
//
// The host's resolver daemons listen on unix sockets with a path, and a path crosses network
// namespaces: nscd (/run/nscd/socket, which glibc asks before any NSS module, whatever
// nsswitch.conf says), systemd-resolved (/run/systemd/resolve/io.systemd.Resolve) and avahi
// (/run/avahi-daemon/socket) would answer from the host's network (HiddenPaths). Three ways to
// keep them out of reach were weighed:
//
//   - Cover each daemon's directory with an empty one, and create the directory on the host
//     first when it does not exist yet (so that a daemon installed or started later lands
//     under the cover). Not enough on its own: when the host removes the directory, the kernel
//     detaches every mount on it in every mount namespace (since Linux 3.18), and a directory
//     made again in its place is visible. systemd does exactly that for RuntimeDirectory=
//     without RuntimeDirectoryPreserve= on each stop and start. Debian 12's three daemons
//     happen not to: nscd's directory comes from tmpfiles.d (nscd.conf) and nscd never removes
//     it; systemd-resolved.service has RuntimeDirectory=systemd/resolve with
//     RuntimeDirectoryPreserve=yes; avahi-daemon.socket binds /run/avahi-daemon/socket and
//     avahi-daemon only mkdirs and chowns the directory (avahi-daemon/main.c). Other
//     distributions' units, an admin's `rm -rf`, or `systemctl clean` still would.
//   - An allow-list of /run: only the entries wgns knows to be safe. Every other program's
//     sockets (D-Bus, the user's runtime directory, the journal, X11's and Wayland's helpers)
//     would have to be listed, and anything unlisted would break.
//   - A link farm over /run, like /etc's: every entry of the host's /run a symlink into
//     /run/.wgns-host (where the host's /run is moved, not cloned), except the hidden
//     directories, which are empty directories of the farm, and their parents
//     (/run/systemd), which are directories of symlinks themselves. Nothing the host does to a
//     directory of its /run can reach a cover that lives on the farm, which is never removed.
//
// Enter uses the farm. What a program may notice: /run's entries are symlinks (realpath of
// /run/user/1000 is /run/.wgns-host/user/1000); /run and /run/systemd are read-only (a program
// run as root cannot create entries directly in them; their subdirectories are the host's, and
// writable as usual); and an entry the host adds directly to /run or /run/systemd after the
// program started is not seen by it (one started later sees it).
//
// A systemd service gets the /etc farm (through BindReadOnlyPaths=, see ServiceBinds) but not
// the /run farm: a service often writes its own files directly into /run (a PID file, a socket),
// and systemd itself mounts credentials and creates RuntimeDirectory= there just before it
// starts the service, which a farm built earlier would not show. A service gets its
// HiddenPaths covered one by one instead; systemd creates each that is missing before it mounts
// on it. The price, documented in package units and caught by `wgns check`: a directory that
// the host removes and re-creates while the service runs is visible to it until it restarts.
//
// # Keeping the farms up to date
//
// Building a directory of about 150 symlinks costs about 600µs here (4µs per tmpfs inode), so
// the farms are not built per program: they live in /run/wgns/links (root's alone), and Enter
// compares the device, inode, mtime and ctime of the host's /etc, /run and /run/systemd with
// the stamps stored in the farms and, when they differ, brings the farms up to date under a
// lock (renaming changed symlinks into place, so programs already using them see each entry old
// or new, and see entries the host added meanwhile; directories and files that stay are never
// re-created, since they are mount points in some namespace). Write rebuilds them, so a damaged
// farm is repaired by `wgns repair`, and makes LinkDir the read-only bind of the /etc farm that
// services need: systemd creates missing mount points in a bind mount's target before it makes
// it read-only, and would otherwise create them in the shared farm. Enter then costs two opens
// and fstats per view file, two of /etc, the farms' stamps, four mounts for /etc and its parts
// and four for /run: about 60-100µs here (see the integration test TestIntegrationDNSEnterCost
// and BenchmarkIntegrationDNSEnter).
//
// # Making the view once per namespace
//
// wgns exec does not call Enter for every program. Through Entry, nsmgr's Exec makes the view
// once, in a mount namespace of its own, and keeps that namespace bound on a file of
// /run/wgns/views (root's alone; a mount of its own with private propagation, as a bound mount
// namespace must not propagate into another). Each later program starts from a copy of it
// (setns, then unshare: about 40µs against Enter's mounts, a fresh /sys and the slave remount,
// about 130µs here), so nothing a program does to its own mounts reaches the next one. The
// file is named NAME@KEY, KEY being the network namespace's cookie (never reused, unlike an
// inode number) and the device and inode of each file and farm directory the view binds: a
// view that Write replaced, a farm that was rebuilt or a namespace made again gives a new key,
// and the next exec makes and keeps a new view, dropping the old one. Entry's Key checks the
// view files as Enter does and brings the farms up to date before every program, whether a
// view is kept or not. Remove drops the kept views of the namespace (under a lock of their own,
// after it removes the files, so that an exec that made a view meanwhile does not keep it).
//
// The lock is a file only root can open (/run/wgns/links/lock), never a directory a program in
// the namespace can reach (/etc is the farm: `flock /etc` there must not stall the next
// `wgns exec`), and a wait for it is bounded.
//
// # What else a program in the namespace may notice
//
// lstat shows /etc's entries as symlinks and realpath("/etc/passwd") is /etc/.wgns-host/passwd;
// /etc is read-only (writes through the symlinks reach the host's files as they would without
// wgns, but a program cannot create or rename entries of /etc itself, which keeps it from
// writing files the host would never see); an entry the host adds to /etc appears once some
// program has been started after the change; a relative symlink in a subdirectory of /etc whose
// target climbs out of /etc (none on Debian 12) resolves one level too deep; the namespace's
// resolv.conf and nsswitch.conf are the files as they were when the program started (a later
// Write reaches programs started after it). /etc/netns/NAME/hosts, which `ip netns exec` would
// bind, is not used: /etc/hosts is the host's.
//
// The namespace's nsswitch.conf asks only "files dns" for hosts, so that neither
// systemd-resolved, avahi nor machined is asked even where their sockets are reachable.
package dnsbind
