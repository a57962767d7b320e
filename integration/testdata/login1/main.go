// Command login1 stands in for systemd-logind on a test system bus: it owns
// org.freedesktop.login1 (unless -forge) and, for every line read on stdin, emits the signal
// org.freedesktop.login1.Manager.PrepareForSleep with the line's value ("true": going to sleep,
// "false": resumed) from /org/freedesktop/login1. With -forge it emits the same signal without
// owning the name, as any other client of the bus could.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"os"

	"github.com/godbus/dbus/v5"
)

func main() {
	forge := flag.Bool("forge", false, "emit without owning org.freedesktop.login1")
	flag.Parse()
	conn, err := dbus.ConnectSystemBus()
	if err != nil {
		fmt.Fprintln(os.Stderr, "login1:", err)
		os.Exit(1)
	}
	defer conn.Close()
	if !*forge {
		reply, err := conn.RequestName("org.freedesktop.login1", dbus.NameFlagDoNotQueue)
		if err != nil || reply != dbus.RequestNameReplyPrimaryOwner {
			fmt.Fprintln(os.Stderr, "login1: could not own org.freedesktop.login1:", reply, err)
			os.Exit(1)
		}
	}
	fmt.Println("ready")
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		sleeping := sc.Text() == "true"
		if err := conn.Emit("/org/freedesktop/login1", "org.freedesktop.login1.Manager.PrepareForSleep", sleeping); err != nil {
			fmt.Fprintln(os.Stderr, "login1:", err)
			os.Exit(1)
		}
		fmt.Println("sent", sleeping)
	}
}
