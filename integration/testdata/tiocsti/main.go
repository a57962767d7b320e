// Command tiocsti pushes its argument into its terminal's input with TIOCSTI, as a hostile
// program started on root's terminal would, to have root's shell run it: tiocsti TEXT pushes
// TEXT (with \n for a newline) through its controlling terminal /dev/tty, or through fd 0 when
// it has none, and prints how many bytes went in.
package main

import (
	"fmt"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: tiocsti TEXT")
		os.Exit(2)
	}
	text := strings.ReplaceAll(os.Args[1], `\n`, "\n")
	fd, err := unix.Open("/dev/tty", unix.O_RDWR, 0)
	if err != nil {
		fd = 0
	}
	n := 0
	var last error
	for i := 0; i < len(text); i++ {
		if err := unix.IoctlSetPointerInt(fd, unix.TIOCSTI, int(text[i])); err != nil {
			last = err
			continue
		}
		n++
	}
	fmt.Printf("tiocsti: pushed %d of %d bytes (last error: %v)\n", n, len(text), last)
}
