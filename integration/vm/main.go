// Command vm runs a command in a QEMU guest that boots Debian's own kernel (the one
// linux-image-amd64 depends on) on this machine's root file system: `make test-kernel` runs the
// root tests there, against kernel WireGuard, which this machine's kernel does not have.
//
//	go run ./integration/vm [flags] -- CMD [ARG...]   run CMD in the guest; exit with its status
//	go run ./integration/vm -fetch                    only download and unpack the kernel
//
// The command's output comes out as it is made; the guest's console log is kept in the work
// directory and printed when the guest gives no result. Exit status: the command's own, or 125
// when the guest could not run it.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/wgns/wgns/internal/vm"
)

type envFlag []string

func (e *envFlag) String() string { return strings.Join(*e, " ") }
func (e *envFlag) Set(v string) error {
	if !strings.Contains(v, "=") {
		return fmt.Errorf("%q is not NAME=VALUE", v)
	}
	*e = append(*e, v)
	return nil
}

func main() {
	os.Exit(run())
}

func run() int {
	cacheDefault := "/var/cache/wgns-test/kernel"
	var (
		cache   = flag.String("cache", cacheDefault, "where the kernel package is downloaded and unpacked")
		fetch   = flag.Bool("fetch", false, "only make sure the kernel is in the cache, then exit")
		dir     = flag.String("dir", "", "work directory: initramfs, share, console.log (default: a new one under $TMPDIR, kept)")
		cpus    = flag.Int("cpus", 2, "guest CPUs")
		memory  = flag.Int("memory", 2048, "guest memory in MiB")
		timeout = flag.Duration("timeout", 25*time.Minute, "limit for the boot and the command together")
		chdir   = flag.String("C", "", "the command's working directory in the guest (default: this one)")
		busybox = flag.String("busybox", "/bin/busybox", "a static busybox for the initramfs")
		env     envFlag
	)
	flag.Var(&env, "env", "NAME=VALUE for the command's environment (repeatable; the guest's environment is only PATH, HOME and these)")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: vm [flags] -- CMD [ARG...]\n       vm -fetch\n")
		flag.PrintDefaults()
	}
	flag.Parse()

	k, err := vm.Fetch(*cache, os.Stderr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "vm: getting the guest's kernel:", err)
		return 125
	}
	if *fetch {
		fmt.Printf("vm: kernel %s in %s\n", k.Release, filepath.Dir(filepath.Dir(k.Image)))
		return 0
	}
	if flag.NArg() == 0 {
		flag.Usage()
		return 125
	}
	if *dir == "" {
		if *dir, err = os.MkdirTemp("", "wgns-vm-"); err != nil {
			fmt.Fprintln(os.Stderr, "vm:", err)
			return 125
		}
	} else if err := os.MkdirAll(*dir, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, "vm:", err)
		return 125
	}
	cwd := *chdir
	if cwd == "" {
		if cwd, err = os.Getwd(); err != nil {
			fmt.Fprintln(os.Stderr, "vm:", err)
			return 125
		}
	}
	g := &vm.Guest{Kernel: k, Busybox: *busybox, CPUs: *cpus, Memory: *memory, Timeout: *timeout,
		Dir: *dir, Output: os.Stdout, Log: os.Stderr}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := g.Run(ctx, vm.Command{Argv: flag.Args(), Dir: cwd, Env: env})
	if err != nil {
		fmt.Fprintln(os.Stderr, "vm:", err)
		return 125
	}
	fmt.Fprintf(os.Stderr, "vm: the command exited %d; guest boot %.1fs, total %.1fs (console log: %s)\n",
		res.ExitCode, res.Boot.Seconds(), res.Total.Seconds(), vm.ConsolePath(*dir))
	return res.ExitCode
}
