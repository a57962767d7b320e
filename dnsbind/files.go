package dnsbind

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/wgns/wgns/internal/atomicfile"
	"github.com/wgns/wgns/internal/linediff"
)

// EtcDir is the directory that holds the DNS view of every namespace, one subdirectory per name,
// shared with iproute2 (`ip netns exec` binds the files of EtcDir/NAME over /etc).
const EtcDir = "/etc/netns"

// HostNsswitch is the host's nsswitch.conf, from which Write derives the namespace's.
const HostNsswitch = "/etc/nsswitch.conf"

// The files of a namespace's DNS view, relative to EtcDir/NAME.
const (
	resolvConf   = "resolv.conf"
	nsswitchConf = "nsswitch.conf"
)

// tempPrefix starts the name of the temporary files Write renames into place; a crash can leave
// one behind, which the next Write or Remove deletes and Check reports.
const tempPrefix = ".wgns-tmp-"

// ErrInvalidView is wrapped by the errors of Write and Check for a View that cannot be written:
// an invalid address or a search domain that is not a single word.
var ErrInvalidView = errors.New("invalid DNS view")

// View is the DNS view of a namespace: the name servers its programs ask (through the tunnel)
// and the search domains of its resolv.conf. A View with no Servers resolves nothing: see Write.
type View struct {
	Servers []netip.Addr
	Search  []string
}

// files writes, checks and removes the DNS views under dir. Production code uses sys, unit tests
// a temporary directory.
type files struct {
	dir          string // EtcDir
	hostNsswitch string // HostNsswitch
	links        linker // the link farms
	uid, gid     int    // the owner the files must have: root
}

var sys = files{dir: EtcDir, hostNsswitch: HostNsswitch, links: sysLinks{}, uid: 0, gid: 0}

// linker keeps the link farms that wgns exec and confined services use (see links_linux.go).
type linker interface {
	// update brings the link farms up to date with the host's /etc and /run, rebuilding them
	// whatever their stamps say, and makes LinkDir the read-only bind of the /etc farm.
	update() error
	// faults returns what keeps confined services from starting with a namespace's view.
	faults() []string
}

// sysLinks is the linker of the host.
type sysLinks struct{}

func (sysLinks) update() error {
	etc, run, err := openLinks(true)
	closeFds(etc, run)
	if err != nil {
		return err
	}
	return mountLinkDir()
}

func (sysLinks) faults() []string { return linkFaults() }

// Write writes the DNS view v of the namespace name to EtcDir/NAME: resolv.conf listing v's
// servers and search domains, and nsswitch.conf, the host's /etc/nsswitch.conf with its hosts
// line reduced to "files dns" (or a minimal one if the host has none). The directory is made
// mode 0755 and the files 0644, owned by root; each file is written to a temporary file in the
// same directory, synced and renamed into place, so a reader sees the old or the new file, never
// part of one. Write then rebuilds the link farms (they may have been damaged) and makes LinkDir
// the read-only bind mount confined services need, in the calling thread's mount namespace,
// which must be the host's.
//
// glibc, musl and Go use the first three servers only (MAXNS); all are written. With no
// servers, resolv.conf lists no nameserver and says so in a comment. Resolvers then fall
// back to the loopback address (glibc and musl ask 127.0.0.1, Go also ::1), which is the
// namespace's own lo where nothing answers: lookups fail instead of using the host's resolver.
//
// Write needs root. name must be a single path element; the caller validates it as a namespace
// name.
func Write(name string, v View) error { return sys.write(name, v) }

// Remove deletes the files Write made for name and its directory if that is then empty (a file
// an administrator added, such as hosts, is left with its directory). Files that do not exist are
// not an error. Remove then drops the views that wgns exec keeps for name (see the package
// documentation).
func Remove(name string) error {
	if err := sys.remove(name); err != nil {
		return err
	}
	return drop(name)
}

// Check compares the DNS view of name on disk with what Write(name, v) would write and returns
// one line per difference (a missing or altered file, a wrong mode or owner, a leftover temporary
// file, LinkDir not mounted as Write mounts it), or none when they match. The error is for
// failures to look, not for differences.
func Check(name string, v View) ([]string, error) { return sys.check(name, v) }

// checkName refuses a name that is not a single path element below EtcDir.
func checkName(name string) error {
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/\x00") {
		return fmt.Errorf("DNS view name %q: not a single path element", name)
	}
	return nil
}

// render returns the contents of resolv.conf and nsswitch.conf for v.
func (f files) render(name string, v View) (resolv, nsswitch []byte, err error) {
	resolv, err = renderResolvConf(name, v)
	if err != nil {
		return nil, nil, err
	}
	host, err := os.ReadFile(f.hostNsswitch)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		host = nil
	case err != nil:
		return nil, nil, fmt.Errorf("reading the host's nsswitch.conf: %w", err)
	}
	return resolv, deriveNsswitch(name, host), nil
}

// renderResolvConf returns the resolv.conf of the namespace name. It refuses addresses and
// search domains that would not be read back as written.
func renderResolvConf(name string, v View) ([]byte, error) {
	var b bytes.Buffer
	fmt.Fprintf(&b, "# DNS of network namespace %q, written by wgns. Do not edit: wgns rewrites it.\n", name)
	for _, a := range v.Servers {
		if !a.IsValid() || a.IsUnspecified() {
			return nil, fmt.Errorf("%w: name server %q is not a usable address", ErrInvalidView, a.String())
		}
	}
	for _, d := range v.Search {
		if d == "" || len(d) > 253 || strings.ContainsFunc(d, func(r rune) bool {
			return r <= ' ' || r == '#' || r == ';' || r > '~'
		}) {
			return nil, fmt.Errorf("%w: search domain %q is not a domain name", ErrInvalidView, d)
		}
	}
	if len(v.Servers) == 0 {
		b.WriteString("# No DNS is configured for this tunnel, so no nameserver is listed. Resolvers then ask\n" +
			"# 127.0.0.1, the namespace's own loopback, where nothing answers: name lookups fail\n" +
			"# rather than reach the host's resolver.\n")
	}
	for _, a := range v.Servers {
		fmt.Fprintf(&b, "nameserver %s\n", a.Unmap())
	}
	if len(v.Search) > 0 {
		fmt.Fprintf(&b, "search %s\n", strings.Join(v.Search, " "))
	}
	return b.Bytes(), nil
}

// hostsSources are the sources of the hosts line of every namespace's nsswitch.conf:
// /etc/hosts, then the name servers of resolv.conf, and nothing that asks a host service (nscd, systemd-resolved, avahi,
// machined) or the host's own network (mdns, wins).
const hostsSources = "files dns"

// minimalNsswitch is the namespace's nsswitch.conf when the host has none: what glibc would
// use, with hosts as above.
const minimalNsswitch = `passwd:         files
group:          files
shadow:         files
gshadow:        files

hosts:          files dns
networks:       files

protocols:      files
services:       files
ethers:         files
rpc:            files
`

// deriveNsswitch returns the namespace's nsswitch.conf: host (the host's nsswitch.conf, nil if
// it has none) with every hosts line reduced to "files dns", keeping its indentation and
// dropping its trailing comment; a hosts line is added when host has none. glibc reads '#' to
// the end of a line as a comment and database names without regard to case, and so does this.
func deriveNsswitch(name string, host []byte) []byte {
	var b bytes.Buffer
	if host == nil {
		fmt.Fprintf(&b, "# Name services of network namespace %q, written by wgns (the host has no\n"+
			"# /etc/nsswitch.conf). Do not edit: wgns rewrites it.\n\n", name)
		b.WriteString(minimalNsswitch)
		return b.Bytes()
	}
	fmt.Fprintf(&b, "# Name services of network namespace %q, written by wgns from the host's\n"+
		"# /etc/nsswitch.conf with hosts reduced to %q. Do not edit: wgns rewrites it.\n\n", name, hostsSources)
	text := string(host)
	if text != "" && !strings.HasSuffix(text, "\n") {
		text += "\n"
	}
	found := false
	for line := range strings.Lines(text) {
		if prefix, ok := hostsPrefix(line); ok {
			found = true
			b.WriteString(prefix + hostsSources + "\n")
			continue
		}
		b.WriteString(line)
	}
	if !found {
		b.WriteString("hosts:          " + hostsSources + "\n")
	}
	return b.Bytes()
}

// hostsPrefix reports whether line configures the hosts database and, if so, returns the part
// of it before the first source: "hosts:" and the blanks around it (at least one after).
func hostsPrefix(line string) (string, bool) {
	s := strings.TrimLeft(line, " \t")
	if len(s) < len("hosts") || !strings.EqualFold(s[:len("hosts")], "hosts") {
		return "", false
	}
	rest := strings.TrimLeft(s[len("hosts"):], " \t")
	if !strings.HasPrefix(rest, ":") {
		return "", false
	}
	colon := len(line) - len(rest) + 1
	after := line[colon:]
	blanks := after[:len(after)-len(strings.TrimLeft(after, " \t"))]
	if blanks == "" {
		blanks = " "
	}
	return line[:colon] + blanks, true
}

func (f files) write(name string, v View) error {
	if err := checkName(name); err != nil {
		return err
	}
	resolv, nsswitch, err := f.render(name, v)
	if err != nil {
		return fmt.Errorf("writing the DNS view of %q: %w", name, err)
	}
	dir := filepath.Join(f.dir, name)
	if err := f.makeDir(dir); err != nil {
		return fmt.Errorf("writing the DNS view of %q: %w", name, err)
	}
	if err := removeTemps(dir); err != nil {
		return fmt.Errorf("writing the DNS view of %q: %w", name, err)
	}
	for _, file := range []struct {
		name string
		data []byte
	}{{resolvConf, resolv}, {nsswitchConf, nsswitch}} {
		o := atomicfile.Options{Sync: true, TempPrefix: tempPrefix + file.name + "-", Owner: &atomicfile.Owner{UID: f.uid, GID: f.gid}}
		if err := atomicfile.Write(filepath.Join(dir, file.name), file.data, 0o644, o); err != nil {
			return fmt.Errorf("writing the DNS view of %q: %w", name, err)
		}
	}
	if err := f.links.update(); err != nil {
		return fmt.Errorf("writing the DNS view of %q: %w", name, err)
	}
	return nil
}

// makeDir makes EtcDir and dir (mode 0755, root's) or, if dir exists, makes sure it is a
// directory (not a symlink) with that owner and mode.
func (f files) makeDir(dir string) error {
	if err := os.MkdirAll(f.dir, 0o755); err != nil {
		return err
	}
	if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s is not a directory (%s)", dir, fi.Mode().Type())
	}
	st := fi.Sys().(*syscall.Stat_t)
	if int(st.Uid) != f.uid || int(st.Gid) != f.gid {
		if err := os.Lchown(dir, f.uid, f.gid); err != nil {
			return err
		}
	}
	if fi.Mode().Perm() != 0o755 || fi.Mode()&(fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky) != 0 {
		if err := os.Chmod(dir, 0o755); err != nil {
			return err
		}
	}
	return nil
}

// removeTemps deletes the temporary files a crashed Write left in dir.
func removeTemps(dir string) error {
	names, err := tempNames(dir)
	for _, n := range names {
		if err := os.Remove(filepath.Join(dir, n)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return err
}

// tempNames lists the temporary files of Write in dir (none if dir does not exist).
func tempNames(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	var names []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), tempPrefix) {
			names = append(names, e.Name())
		}
	}
	return names, err
}

func (f files) remove(name string) error {
	if err := checkName(name); err != nil {
		return err
	}
	dir := filepath.Join(f.dir, name)
	if err := removeTemps(dir); err != nil {
		return fmt.Errorf("removing the DNS view of %q: %w", name, err)
	}
	for _, n := range []string{resolvConf, nsswitchConf} {
		if err := os.Remove(filepath.Join(dir, n)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("removing the DNS view of %q: %w", name, err)
		}
	}
	err := os.Remove(dir)
	if err == nil || errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTEMPTY) || errors.Is(err, syscall.EEXIST) {
		return nil
	}
	return fmt.Errorf("removing the DNS view of %q: %w", name, err)
}

func (f files) check(name string, v View) ([]string, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	resolv, nsswitch, err := f.render(name, v)
	if err != nil {
		return nil, fmt.Errorf("checking the DNS view of %q: %w", name, err)
	}
	dir := filepath.Join(f.dir, name)
	fi, err := os.Lstat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return []string{dir + ": missing"}, nil
	case err != nil:
		return nil, fmt.Errorf("checking the DNS view of %q: %w", name, err)
	}
	var diffs []string
	if !fi.IsDir() {
		return []string{fmt.Sprintf("%s: is %s, want a directory", dir, typeName(fi.Mode()))}, nil
	}
	diffs = append(diffs, f.checkMeta(dir, fi, fs.ModeDir|0o755)...)
	for _, file := range []struct {
		name string
		want []byte
	}{{resolvConf, resolv}, {nsswitchConf, nsswitch}} {
		d, err := f.checkFile(filepath.Join(dir, file.name), file.want)
		if err != nil {
			return nil, fmt.Errorf("checking the DNS view of %q: %w", name, err)
		}
		diffs = append(diffs, d...)
	}
	temps, err := tempNames(dir)
	if err != nil {
		return nil, fmt.Errorf("checking the DNS view of %q: %w", name, err)
	}
	for _, t := range temps {
		diffs = append(diffs, filepath.Join(dir, t)+": leftover temporary file")
	}
	diffs = append(diffs, f.links.faults()...)
	return diffs, nil
}

// checkFile compares the file at path with want, and its mode and owner with what Write makes.
func (f files) checkFile(path string, want []byte) ([]string, error) {
	fi, err := os.Lstat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return []string{path + ": missing"}, nil
	case err != nil:
		return nil, err
	case !fi.Mode().IsRegular():
		return []string{fmt.Sprintf("%s: is %s, want a regular file", path, typeName(fi.Mode()))}, nil
	}
	diffs := f.checkMeta(path, fi, 0o644)
	got, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(got, want) {
		diffs = append(diffs, path+": content differs (- on disk, + wanted):\n"+linediff.Diff(string(got), string(want), "\t"))
	}
	return diffs, nil
}

// checkMeta compares the mode and owner of fi (at path) with what Write makes.
func (f files) checkMeta(path string, fi fs.FileInfo, mode fs.FileMode) []string {
	var diffs []string
	if got := fi.Mode() & (fs.ModeType | fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky); got != mode {
		diffs = append(diffs, fmt.Sprintf("%s: mode %v, want %v", path, got, mode))
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && (int(st.Uid) != f.uid || int(st.Gid) != f.gid) {
		diffs = append(diffs, fmt.Sprintf("%s: owner %d:%d, want %d:%d", path, st.Uid, st.Gid, f.uid, f.gid))
	}
	return diffs
}

// typeName names the type of a file mode for a message.
func typeName(m fs.FileMode) string {
	switch {
	case m&fs.ModeSymlink != 0:
		return "a symlink"
	case m.IsDir():
		return "a directory"
	case m.IsRegular():
		return "a regular file"
	default:
		return "a special file"
	}
}
