package wgns

import (
	"errors"
	"net"
	"testing"

	"golang.org/x/sys/unix"
	"golang.zx2c4.com/wireguard/conn"
	"golang.zx2c4.com/wireguard/device"
	"golang.zx2c4.com/wireguard/tun/tuntest"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"
)

// TestUserspaceStartKeepsTheListenPort: when the device came up once before start (the TUN's
// link event does that on its own) while the config's ListenPort was taken, wireguard-go forgets
// the port and start's Up binds a random one: start says the port is taken instead of bringing
// the tunnel up elsewhere.
func TestUserspaceStartKeepsTheListenPort(t *testing.T) {
	taken, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4zero})
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	port := taken.LocalAddr().(*net.UDPAddr).Port

	for _, tc := range []struct {
		name      string
		raceFirst bool // an Up of the TUN event's before start's
	}{{"start alone", false}, {"after the link event's Up", true}} {
		t.Run(tc.name, func(t *testing.T) {
			dev := device.NewDevice(tuntest.NewChannelTUN().TUN(), conn.NewDefaultBind(), device.NewLogger(device.LogLevelSilent, ""))
			defer dev.Close()
			u := &userspaceBackend{dev: dev}
			c := wgtypes.Config{ListenPort: &port}
			if err := u.configure(c); err != nil {
				t.Fatal(err)
			}
			if tc.raceFirst {
				if err := dev.Up(); err == nil {
					t.Fatal("Up bound a taken port")
				}
			}
			err := u.start(c)
			if !errors.Is(err, unix.EADDRINUSE) {
				t.Fatalf("start with ListenPort %d taken: %v (listening on %d), want EADDRINUSE", port, err, u.listenPort())
			}
		})
	}
}
