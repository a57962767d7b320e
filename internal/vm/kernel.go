package vm

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// Kernel is a Debian kernel unpacked for a guest: its image and its modules tree, with the
// module index (depmod) built, so that modprobe in the guest finds every module.
type Kernel struct {
	Release string // uname -r in the guest, e.g. 6.1.0-56-amd64
	Image   string // the bootable image (boot/vmlinuz-RELEASE)
	Modules string // lib/modules/RELEASE
}

// MetaPackage is the Debian package whose dependency names the current kernel package.
const MetaPackage = "linux-image-amd64"

// completeMark marks a cache entry whose unpacking finished.
const completeMark = ".complete"

// kernelAt returns the kernel unpacked at dir (a cache entry), or an error if it is not whole.
func kernelAt(dir, release string) (*Kernel, error) {
	k := &Kernel{
		Release: release,
		Image:   filepath.Join(dir, "boot", "vmlinuz-"+release),
		Modules: filepath.Join(dir, "lib", "modules", release),
	}
	for _, p := range []string{filepath.Join(dir, completeMark), k.Image, filepath.Join(k.Modules, "modules.dep")} {
		if _, err := os.Stat(p); err != nil {
			return nil, err
		}
	}
	return k, nil
}

// Fetch returns the kernel of Debian's current kernel package (the one MetaPackage depends
// on), unpacked in cache. The first call for a release downloads the package with
// `apt-get download` and unpacks it with `dpkg-deb -x`: no package is installed on this machine,
// so none of a kernel package's maintainer scripts run (initramfs generation, boot loader
// updates, depmod of the host), nothing outside cache changes, and the dpkg lock is not taken.
// When the package index does not know the package, Fetch runs `apt-get update` once; when no
// package can be resolved at all (offline), the newest kernel already in cache is used.
// Progress goes to log.
func Fetch(cache string, log io.Writer) (*Kernel, error) {
	pkg, err := resolvePackage()
	if err != nil {
		fmt.Fprintf(log, "vm: %v; running apt-get update\n", err)
		if out, uerr := exec.Command("apt-get", "update", "-qq").CombinedOutput(); uerr != nil {
			fmt.Fprintf(log, "vm: apt-get update: %v\n%s", uerr, out)
		}
		pkg, err = resolvePackage()
	}
	if err != nil {
		if k, cerr := newestCached(cache); cerr == nil {
			fmt.Fprintf(log, "vm: %v; using the cached kernel %s\n", err, k.Release)
			return k, nil
		}
		return nil, err
	}
	release := strings.TrimPrefix(pkg, "linux-image-")
	dir := filepath.Join(cache, release)
	if k, err := kernelAt(dir, release); err == nil {
		return k, nil
	}
	if err := os.MkdirAll(cache, 0o755); err != nil {
		return nil, fmt.Errorf("creating the kernel cache %s: %w", cache, err)
	}
	tmp, err := os.MkdirTemp(cache, ".fetch-")
	if err != nil {
		return nil, fmt.Errorf("creating a download directory in %s: %w", cache, err)
	}
	defer os.RemoveAll(tmp)
	fmt.Fprintf(log, "vm: downloading %s into %s\n", pkg, cache)
	// Downloading as root into a directory _apt cannot write is fine here: say so, so that apt
	// does not warn about it.
	dl := exec.Command("apt-get", "-q", "-o", "APT::Sandbox::User=root", "download", pkg)
	dl.Dir = tmp
	if out, err := dl.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("apt-get download %s: %w\n%s", pkg, err, out)
	}
	debs, _ := filepath.Glob(filepath.Join(tmp, "*.deb"))
	if len(debs) != 1 {
		return nil, fmt.Errorf("apt-get download %s left %d .deb files in %s, want 1", pkg, len(debs), tmp)
	}
	root := filepath.Join(tmp, "root")
	if out, err := exec.Command("dpkg-deb", "-x", debs[0], root).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("unpacking %s: %w\n%s", debs[0], err, out)
	}
	os.Remove(debs[0])
	if err := keepImageAndModules(root, release); err != nil {
		return nil, err
	}
	if out, err := exec.Command("depmod", "-b", root, release).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("depmod -b %s %s: %w\n%s", root, release, err, out)
	}
	if err := os.WriteFile(filepath.Join(root, completeMark), []byte(pkg+"\n"), 0o644); err != nil {
		return nil, err
	}
	if err := os.Rename(root, dir); err != nil && !errors.Is(err, fs.ErrExist) {
		// Another fetch of the same release may have won the race: use its copy.
		if k, kerr := kernelAt(dir, release); kerr == nil {
			return k, nil
		}
		return nil, fmt.Errorf("moving the unpacked kernel to %s: %w", dir, err)
	}
	return kernelAt(dir, release)
}

// keepImageAndModules checks that the unpacked package at root has the image and the modules
// tree of release, moves a modules tree found under usr/lib (a merged-/usr package) to lib, and
// removes the rest (docs, hooks), which the guest does not use.
func keepImageAndModules(root, release string) error {
	rel := filepath.Join("lib", "modules", release)
	if _, err := os.Stat(filepath.Join(root, rel)); errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(filepath.Join(root, "lib", "modules"), 0o755); err != nil {
			return err
		}
		if err := os.Rename(filepath.Join(root, "usr", rel), filepath.Join(root, rel)); err != nil {
			return fmt.Errorf("the kernel package has no %s: %w", rel, err)
		}
	}
	if _, err := os.Stat(filepath.Join(root, "boot", "vmlinuz-"+release)); err != nil {
		return fmt.Errorf("the kernel package has no boot/vmlinuz-%s: %w", release, err)
	}
	return os.RemoveAll(filepath.Join(root, "usr"))
}

var dependsRe = regexp.MustCompile(`(?m)^\s*Depends:\s*(linux-image-[0-9][^\s<>]*)\s*$`)

// resolvePackage returns the kernel package MetaPackage depends on, from apt's index.
func resolvePackage() (string, error) {
	out, err := exec.Command("apt-cache", "depends", MetaPackage).Output()
	if err != nil {
		return "", fmt.Errorf("apt-cache depends %s: %w", MetaPackage, err)
	}
	return parseDepends(out)
}

// parseDepends picks the versioned kernel package out of `apt-cache depends` output.
func parseDepends(out []byte) (string, error) {
	m := dependsRe.FindSubmatch(out)
	if m == nil {
		return "", fmt.Errorf("apt-cache depends %s names no kernel package:\n%s", MetaPackage, bytes.TrimSpace(out))
	}
	return string(m[1]), nil
}

// newestCached returns the kernel most recently unpacked in cache.
func newestCached(cache string) (*Kernel, error) {
	entries, err := os.ReadDir(cache)
	if err != nil {
		return nil, err
	}
	var newest *Kernel
	var newestTime time.Time
	for _, e := range entries {
		if !e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		dir := filepath.Join(cache, e.Name())
		k, err := kernelAt(dir, e.Name())
		if err != nil {
			continue
		}
		if fi, err := os.Stat(filepath.Join(dir, completeMark)); err == nil && (newest == nil || fi.ModTime().After(newestTime)) {
			newest, newestTime = k, fi.ModTime()
		}
	}
	if newest == nil {
		return nil, fmt.Errorf("no kernel in %s", cache)
	}
	return newest, nil
}
