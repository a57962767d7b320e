package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"
)

// The world's addresses: TEST-NET and ULA only.
const (
	peerNS        = "bpeer"        // the namespace of every peer device
	hostUnderlay4 = "198.51.100.1" // the world's end of the veth
	peerUnderlay4 = "198.51.100.2" // the peer namespace's end
	hostUnderlay6 = "fd00:198:51:100::1"
	peerUnderlay6 = "fd00:198:51:100::2"
)

// newKey returns a fresh private key.
func newKey() wgtypes.Key {
	k, err := wgtypes.GeneratePrivateKey()
	if err != nil {
		fatalf("generating a key: %v", err)
	}
	return k
}

// buildPeerNS makes the peer namespace and joins it to the world with a veth pair.
func buildPeerNS() {
	mustRun("ip", "netns", "add", peerNS)
	mustRun("ip", "link", "add", "vh-peer", "type", "veth", "peer", "name", "vp-peer", "netns", peerNS)
	mustRun("ip", "addr", "add", hostUnderlay4+"/24", "dev", "vh-peer")
	mustRun("ip", "-6", "addr", "add", hostUnderlay6+"/64", "dev", "vh-peer", "nodad")
	mustRun("ip", "link", "set", "vh-peer", "up")
	mustRun("ip", "-n", peerNS, "addr", "add", peerUnderlay4+"/24", "dev", "vp-peer")
	mustRun("ip", "-n", peerNS, "-6", "addr", "add", peerUnderlay6+"/64", "dev", "vp-peer", "nodad")
	mustRun("ip", "-n", peerNS, "link", "set", "vp-peer", "up")
	mustRun("ip", "-n", peerNS, "link", "set", "lo", "up")
}

// peerEntry is one client a peer device accepts.
type peerEntry struct {
	Key        wgtypes.Key // the client's public key
	AllowedIPs []string
}

// peerDev is a WireGuard device in the peer namespace, run by a wireguard-go binary no one here
// wrote (Debian's, or upstream's built from the module cache), configured with wg(8).
type peerDev struct {
	Name string
	Port int
	Key  wgtypes.Key
	proc *exec.Cmd
}

// startPeerDev starts wireguard-go binary bin in the foreground in the peer namespace as device
// name, gives it addrs, and configures it with wg setconf to listen on port and accept peers.
func startPeerDev(bin, name string, port int, addrs []string, peers []peerEntry) *peerDev {
	d := &peerDev{Name: name, Port: port, Key: newKey()}
	d.proc = exec.Command("ip", "netns", "exec", peerNS, bin, "-f", name)
	d.proc.Env = append(os.Environ(), "WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD=1", "LOG_LEVEL=error")
	var out bytes.Buffer
	d.proc.Stdout, d.proc.Stderr = &out, &out
	if err := d.proc.Start(); err != nil {
		fatalf("starting %s for peer device %s: %v", bin, name, err)
	}
	sock := "/var/run/wireguard/" + name + ".sock"
	mustWaitFor(5*time.Second, sock, func() bool { return exists(sock) })

	var conf strings.Builder
	fmt.Fprintf(&conf, "[Interface]\nPrivateKey = %s\nListenPort = %d\n", d.Key, port)
	for _, p := range peers {
		fmt.Fprintf(&conf, "\n[Peer]\nPublicKey = %s\nAllowedIPs = %s\n", p.Key, strings.Join(p.AllowedIPs, ", "))
	}
	f := filepath.Join(runDir, name+".peer.conf")
	if err := os.WriteFile(f, []byte(conf.String()), 0o600); err != nil {
		fatalf("writing %s: %v", f, err)
	}
	mustRun("ip", "netns", "exec", peerNS, "wg", "setconf", name, f)
	for _, a := range addrs {
		args := []string{"-n", peerNS, "addr", "add", a, "dev", name}
		if strings.Contains(a, ":") {
			args = append(args, "nodad")
		}
		mustRun("ip", args...)
	}
	mustRun("ip", "-n", peerNS, "link", "set", name, "up")
	return d
}

// stop ends the device's process.
func (d *peerDev) stop() {
	d.proc.Process.Kill()
	d.proc.Wait()
}

// clientConf is a provider-style wg-quick config for one client of a peer device.
type clientConf struct {
	Key        wgtypes.Key
	Addresses  []string
	DNS        string // omitted when empty
	Peer       wgtypes.Key
	AllowedIPs string
	Endpoint   string
	Keepalive  int // omitted when 0
}

func (c clientConf) text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "[Interface]\nPrivateKey = %s\nAddress = %s\n", c.Key, strings.Join(c.Addresses, ", "))
	if c.DNS != "" {
		fmt.Fprintf(&b, "DNS = %s\n", c.DNS)
	}
	fmt.Fprintf(&b, "\n[Peer]\nPublicKey = %s\nAllowedIPs = %s\nEndpoint = %s\n", c.Peer, c.AllowedIPs, c.Endpoint)
	if c.Keepalive > 0 {
		fmt.Fprintf(&b, "PersistentKeepalive = %d\n", c.Keepalive)
	}
	return b.String()
}

// write writes the config to path, readable by root only.
func (c clientConf) write(path string) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		fatalf("creating %s: %v", filepath.Dir(path), err)
	}
	if err := os.WriteFile(path, []byte(c.text()), 0o600); err != nil {
		fatalf("writing %s: %v", path, err)
	}
}
