// Command splitwg is wireguard-go's own device with wgns's namespace split and nothing else:
// splitwg NETNS NAME makes the TUN NAME inside /run/netns/NETNS (from a thread that entered it),
// while its UDP sockets and its UAPI socket (/var/run/wireguard/NAME.sock) stay in the namespace
// splitwg was started in. The bench configures it with wg(8) and measures it next to the plain
// pair and the wgns tunnel, to tell what the split costs from what wgns's process costs.
package main

import (
	"net"
	"os"
	"os/signal"
	"runtime"
	"syscall"

	"golang.org/x/sys/unix"
	"golang.zx2c4.com/wireguard/conn"
	"golang.zx2c4.com/wireguard/device"
	"golang.zx2c4.com/wireguard/ipc"
	"golang.zx2c4.com/wireguard/tun"
)

func fail(what string, err error) {
	os.Stderr.WriteString("splitwg: " + what + ": " + err.Error() + "\n")
	os.Exit(1)
}

func main() {
	if len(os.Args) != 3 {
		os.Stderr.WriteString("usage: splitwg NETNS NAME\n")
		os.Exit(2)
	}
	ns, name := os.Args[1], os.Args[2]
	fd, err := unix.Open("/run/netns/"+ns, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		fail("opening the namespace", err)
	}
	// As wgns makes it (wgns/backend.go): the TUN and the device from a thread inside the
	// namespace, where the device reads the interface's MTU by name; the UDP sockets are opened
	// later, when the device goes up, in the namespace splitwg was started in.
	type made struct {
		dev *device.Device
		err error
	}
	ch := make(chan made)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with this goroutine
		if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
			ch <- made{err: err}
			return
		}
		t, err := tun.CreateTUN(name, 1420)
		if err != nil {
			ch <- made{err: err}
			return
		}
		ch <- made{dev: device.NewDevice(t, conn.NewDefaultBind(), device.NewLogger(device.LogLevelError, "splitwg: "))}
	}()
	m := <-ch
	if m.err != nil {
		fail("making the TUN and its device in namespace "+ns, m.err)
	}
	dev := m.dev
	f, err := ipc.UAPIOpen(name)
	if err != nil {
		fail("opening the UAPI socket", err)
	}
	l, err := net.FileListener(f)
	if err != nil {
		fail("listening on the UAPI socket", err)
	}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go dev.IpcHandle(c)
		}
	}()
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	select {
	case <-sig:
	case <-dev.Wait():
	}
	l.Close()
	dev.Close()
	os.Remove("/var/run/wireguard/" + name + ".sock")
}
