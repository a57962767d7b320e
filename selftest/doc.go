// Package selftest is `wgns selftest`: the main job of wgns, end to end, against a throwaway
// private world that it builds itself and that nothing of the host's network can see.
//
// The world is this binary re-executed as PID 1 of new network, mount and PID namespaces
// (Run, then RunWorld), with a tmpfs on /run, an overlay on /etc and a tmpfs on /etc/netns.
// In it the steps (RunSteps) make a peer namespace joined to the world by a veth pair (TEST-NET
// and ULA addresses only) and start the peer (RunPeer): wgns's own embedded WireGuard
// (wireguard-go) with a small DNS server and a TCP echo server behind it. They plant decoys in
// the world that nothing inside the tunnel may reach: a DNS server that the world's
// /etc/resolv.conf names, and unix sockets where nscd's and systemd-resolved's would be. Then
// they drive the real command line (`wgns up --userspace`, `wgns exec st -- wgns selftest-probe`,
// `wgns status --json`, `wgns down`) and print one line per step, "  ok    ..." or
// "  FAIL  ...: why". Run adds a last step (the host's interfaces, addresses, routes and
// /run/netns are as before) and the closing line "selftest: N passed, M failed".
//
// Nothing outlives the world: when its PID 1 exits, the kernel ends every process in it, and
// its namespaces and mounts go with them. Only this binary and the Go standard library are
// used: no ip, ping, wg or DNS server needs to be installed. Keys travel on stdin and in a 0600
// file on the world's tmpfs, never in argv or the environment.
package selftest
