package dnsbind

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/wgns/wgns/internal/flock"
)

// LinkDir is the directory that covers /etc in the namespace's view, shared by every namespace:
// for each entry of the host's /etc a symlink to it (see the package documentation). It is a
// read-only bind mount, in the host's mount namespace, of the directory wgns keeps up to date
// (linkRoot/etc): confined systemd services bind it over /etc, and systemd must not be able to
// create mount points in it (it would, for a bind mount onto a name /etc lacks). Write makes the
// mount; Check reports it missing. It holds no secret and nothing specific to a namespace, and is
// left in place when tunnels go down.
const LinkDir = "/run/wgns/etc"

// The link farms as wgns writes them, and their lock, in a directory only root may enter.
const (
	linkRoot = "/run/wgns/links"
	etcLinks = linkRoot + "/etc" // LinkDir's source
	runLinks = linkRoot + "/run" // covers /run for wgns exec
	lockFile = linkRoot + "/lock"
)

// lockWait bounds the wait for another wgns that brings the link farms up to date (a few
// milliseconds of work).
const lockWait = 10 * time.Second

// Reserved names in the link farms, and so in a namespace's /etc and /run. A host entry whose
// name starts with reservedPrefix is not linked.
const (
	reservedPrefix = ".wgns-"
	hostDir        = ".wgns-host"  // mount point of the host's /etc (or /run)
	viewDir        = ".wgns-view"  // holds the mount points of the namespace's files
	emptyDir       = ".wgns-empty" // empty: what services see in HiddenPaths; where Enter puts the /run farm a moment
	stampLink      = ".wgns-stamp" // its target identifies the state of the host's directories linked
	tempLink       = ".wgns-new-"  // prefix of symlinks being renamed into place
)

// stampVersion starts every stamp: a farm of an older layout never matches, and is rebuilt.
const stampVersion = "2:"

// node is what a directory of a link farm holds under one name.
type node struct {
	link string // a symlink with this target; or, when empty:
	dir  *plan  // a directory of dir.mode holding dir.entries; or, when nil:
	// an empty regular file of mode 0644, to mount a file on
}

// plan is the wanted content of a directory of a link farm.
type plan struct {
	mode    uint32
	entries map[string]node
}

// farm says how a link farm mirrors a host directory.
type farm struct {
	host     string            // the host's directory: /etc or /run
	links    string            // the farm, as wgns writes it
	redirect map[string]string // names pointed elsewhere than the host's entry (resolv.conf)
	hidden   []string          // paths relative to host replaced by empty directories, whatever the host has
	extra    map[string]node   // more entries of the farm's top directory
}

// etcFarm is the farm over /etc: resolv.conf and nsswitch.conf point into viewDir, where the
// namespace's files are mounted.
var etcFarm = farm{
	host:  "/etc",
	links: etcLinks,
	redirect: map[string]string{
		resolvConf:   viewDir + "/" + resolvConf,
		nsswitchConf: viewDir + "/" + nsswitchConf,
	},
	extra: map[string]node{
		hostDir:  {dir: &plan{mode: 0o555}},
		emptyDir: {dir: &plan{mode: 0o555}},
		viewDir: {dir: &plan{mode: 0o755, entries: map[string]node{
			resolvConf:   {},
			nsswitchConf: {},
		}}},
	},
}

// runFarm is the farm over /run that wgns exec mounts: the directories of HiddenPaths are empty
// directories of the farm, so no daemon that starts, or restarts, there later can be reached.
var runFarm = farm{
	host:   "/run",
	links:  runLinks,
	hidden: runHidden(),
	extra:  map[string]node{hostDir: {dir: &plan{mode: 0o555}}},
}

// runHidden returns HiddenPaths relative to /run.
func runHidden() []string {
	rel := make([]string, len(HiddenPaths))
	for i, p := range HiddenPaths {
		rel[i] = strings.TrimPrefix(p, "/run/")
	}
	return rel
}

// openLinks returns open descriptors of the /etc and /run link farms, first bringing them up
// to date with the host's /etc and /run (under the lock) when either's stamp differs from what
// the host's directories are now, or when force is set. The caller closes both.
func openLinks(force bool) (etcFd, runFd int, err error) {
	etcFd, runFd = -1, -1
	defer func() {
		if err != nil {
			closeFds(etcFd, runFd)
			etcFd, runFd = -1, -1
		}
	}()
	etcStamp, err := etcFarm.stamp()
	if err != nil {
		return -1, -1, err
	}
	runStamp, err := runFarm.stamp()
	if err != nil {
		return -1, -1, err
	}
	if !force {
		etcFd, _ = openFarm(etcLinks)
		runFd, _ = openFarm(runLinks)
		if etcFd >= 0 && runFd >= 0 && readStamp(etcFd) == etcStamp && readStamp(runFd) == runStamp {
			return etcFd, runFd, nil
		}
		closeFds(etcFd, runFd)
		etcFd, runFd = -1, -1
	}

	if err := makeLinkRoot(); err != nil {
		return -1, -1, err
	}
	lock, err := flock.OpenPrivate(lockFile)
	if err != nil {
		return -1, -1, err
	}
	defer unix.Close(lock) // releases the lock
	if err := flock.Lock(lock, lockFile, unix.LOCK_EX, lockWait); err != nil {
		return -1, -1, err
	}
	for _, f := range []struct {
		farm  *farm
		stamp string
		fd    *int
	}{{&etcFarm, etcStamp, &etcFd}, {&runFarm, runStamp, &runFd}} {
		if *f.fd, err = f.farm.open(); err != nil {
			return -1, -1, err
		}
		// Another wgns may have brought it up to date while this one waited.
		if force || readStamp(*f.fd) != f.stamp {
			if err := f.farm.sync(*f.fd, f.stamp); err != nil {
				return -1, -1, fmt.Errorf("linking %s to the host's %s: %w", f.farm.links, f.farm.host, err)
			}
		}
	}
	return etcFd, runFd, nil
}

func closeFds(fds ...int) {
	for _, fd := range fds {
		if fd >= 0 {
			unix.Close(fd)
		}
	}
}

// makeLinkRoot creates linkRoot (and its parent) for root alone, and checks that only root can
// write to it.
func makeLinkRoot() error {
	if err := os.MkdirAll(filepath.Dir(linkRoot), 0o700); err != nil {
		return err
	}
	if err := unix.Mkdir(linkRoot, 0o700); err != nil && err != unix.EEXIST {
		return &fs.PathError{Op: "mkdir", Path: linkRoot, Err: err}
	}
	fd, err := openFarm(linkRoot)
	if err != nil {
		return err
	}
	unix.Close(fd)
	return nil
}

// openFarm opens the directory path without following a symlink and checks that it belongs to
// root and that only root can write to it.
func openFarm(path string) (int, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, openError(path, err)
	}
	if err := checkSafe(path, fd, unix.S_IFDIR); err != nil {
		unix.Close(fd)
		return -1, err
	}
	return fd, nil
}

// open opens the farm's directory, creating it (mode 0755) if needed.
func (f *farm) open() (int, error) {
	if err := unix.Mkdir(f.links, 0o755); err != nil && err != unix.EEXIST {
		return -1, &fs.PathError{Op: "mkdir", Path: f.links, Err: err}
	}
	return openFarm(f.links)
}

// stamp identifies the state of the host's directories the farm mirrors: the device, inode,
// mtime and ctime of the host's directory and of each directory holding a hidden path (a
// missing one counts as a state too). Adding, removing or renaming an entry changes it.
func (f *farm) stamp() (string, error) {
	dirs := []string{f.host}
	for _, h := range f.hidden {
		for d := filepath.Dir(h); d != "."; d = filepath.Dir(d) {
			dirs = append(dirs, f.host+"/"+d)
		}
	}
	b := append(make([]byte, 0, 128), stampVersion...)
	for _, d := range dirs {
		var st unix.Stat_t
		err := unix.Stat(d, &st)
		switch {
		case err == unix.ENOENT || err == unix.ENOTDIR:
			b = append(b, "-;"...)
		case err != nil:
			return "", &fs.PathError{Op: "stat", Path: d, Err: err}
		default:
			// dev:ino:mtime:ctime, each time as seconds.nanoseconds (9 digits). Every wgns exec
			// computes it: strconv, not fmt.
			b = strconv.AppendUint(b, st.Dev, 10)
			b = append(b, ':')
			b = strconv.AppendUint(b, st.Ino, 10)
			for _, t := range []unix.Timespec{st.Mtim, st.Ctim} {
				b = append(b, ':')
				b = strconv.AppendInt(b, t.Sec, 10)
				b = append(b, '.')
				ns := strconv.AppendInt(nil, 1e9+t.Nsec, 10)
				b = append(b, ns[1:]...)
			}
			b = append(b, ';')
		}
	}
	return string(b), nil
}

// readStamp returns the stamp of the farm open as fd, or "" if it has none.
func readStamp(fd int) string { return readStampAt(fd, stampLink) }

// readStampAt returns the target of the stamp symlink at path (relative to the directory open as
// dirfd, or absolute with unix.AT_FDCWD), or "" if there is none.
func readStampAt(dirfd int, path string) string {
	buf := make([]byte, 512)
	n, err := unix.Readlinkat(dirfd, path, buf)
	if err != nil || n == len(buf) {
		return ""
	}
	return string(buf[:n])
}

// sync makes the farm open as fd match the host's directory now and records stamp, last.
func (f *farm) sync(fd int, stamp string) error {
	p, err := f.plan()
	if err != nil {
		return err
	}
	if err := apply(fd, f.links, p); err != nil {
		return err
	}
	return replaceLink(fd, f.links, stampLink, stamp)
}

// plan computes what the farm must hold: for each entry NAME of the host's directory a symlink
// to hostDir/NAME (a copy of it if it is itself a symlink: its relative target would resolve one
// level too deep from hostDir); f.redirect's names pointed where it says; f.hidden's paths as
// empty directories, with directories of symlinks on the way to them; f.extra.
func (f *farm) plan() (*plan, error) {
	top, err := f.mirror("", 0o755)
	if err != nil {
		return nil, err
	}
	for n, target := range f.redirect {
		top.entries[n] = node{link: target}
	}
	for n, e := range f.extra {
		top.entries[n] = e
	}
	for _, h := range f.hidden {
		p := top
		parts := strings.Split(h, "/")
		for i, part := range parts {
			if i == len(parts)-1 {
				p.entries[part] = node{dir: &plan{mode: 0o555}}
				break
			}
			e, ok := p.entries[part]
			if !ok || e.dir == nil {
				// A directory of links to the host's, so that the hidden one can be left out.
				sub, err := f.mirror(strings.Join(parts[:i+1], "/"), 0o755)
				if err != nil {
					return nil, err
				}
				e = node{dir: sub}
				p.entries[part] = e
			}
			p = e.dir
		}
	}
	return top, nil
}

// mirror returns a plan of links to the host's entries of rel (a path relative to f.host, ""
// for itself), from a farm directory rel deep. A host directory that does not exist gives an
// empty plan.
func (f *farm) mirror(rel string, mode uint32) (*plan, error) {
	dir := f.host
	up := ""
	if rel != "" {
		dir += "/" + rel
		up = strings.Repeat("../", strings.Count(rel, "/")+1)
	}
	p := &plan{mode: mode, entries: map[string]node{}}
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, unix.ENOTDIR) {
		return p, nil
	}
	if err != nil {
		return nil, err
	}
	buf := make([]byte, unix.PathMax)
	for _, e := range entries {
		n := e.Name()
		switch {
		case strings.HasPrefix(n, reservedPrefix):
		case e.Type() == fs.ModeSymlink:
			k, err := unix.Readlink(dir+"/"+n, buf)
			if err != nil {
				return nil, &fs.PathError{Op: "readlink", Path: dir + "/" + n, Err: err}
			}
			p.entries[n] = node{link: string(buf[:k])}
		default:
			target := hostDir + "/" + n
			if rel != "" {
				target = up + hostDir + "/" + rel + "/" + n
			}
			p.entries[n] = node{link: target}
		}
	}
	return p, nil
}

// apply makes the directory open as fd (at path) hold exactly what p says. Symlinks that change
// are replaced by rename, so that a program already using the farm sees the old one or the new
// one. A wanted directory or file that exists with the right type is kept, not re-created: it
// may be a mount point in some namespace, and removing it would detach that mount.
func apply(fd int, path string, p *plan) error {
	have, err := listDir(fd, path)
	if err != nil {
		return err
	}
	buf := make([]byte, unix.PathMax)
	done := make(map[string]bool, len(have))
	for _, e := range have {
		n := e.Name()
		if n == stampLink {
			continue
		}
		want, ok := p.entries[n]
		switch {
		case !ok:
		case want.link != "" && e.Type() == fs.ModeSymlink:
			got, err := linkTarget(fd, path, n, buf)
			if err != nil {
				return err
			}
			if got != want.link {
				if err := replaceLink(fd, path, n, want.link); err != nil {
					return err
				}
			}
			done[n] = true
			continue
		case want.link == "" && want.dir != nil && e.IsDir():
			done[n] = true
			continue
		case want.link == "" && want.dir == nil && e.Type().IsRegular():
			done[n] = true
			continue
		}
		// Not wanted, or not of the wanted type.
		if err := os.RemoveAll(path + "/" + n); err != nil {
			return err
		}
	}
	for n, want := range p.entries {
		if want.link != "" {
			if !done[n] {
				if err := unix.Symlinkat(want.link, fd, n); err != nil {
					return fmt.Errorf("linking %s/%s to %s: %w", path, n, want.link, err)
				}
			}
			continue
		}
		if want.dir == nil {
			if err := makeMountFile(path, n); err != nil {
				return err
			}
			continue
		}
		if err := makeDir(fd, path, n, want.dir.mode); err != nil {
			return err
		}
		sub, err := unix.Openat(fd, n, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return &fs.PathError{Op: "open", Path: path + "/" + n, Err: err}
		}
		err = apply(sub, path+"/"+n, want.dir)
		unix.Close(sub)
		if err != nil {
			return err
		}
	}
	return nil
}

// listDir returns the entries of the directory open as fd, without moving fd's offset.
func listDir(fd int, path string) ([]fs.DirEntry, error) {
	dfd, err := unix.Openat(fd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	f := os.NewFile(uintptr(dfd), path)
	defer f.Close()
	return f.ReadDir(-1)
}

// linkTarget returns the target of the symlink name in the directory fd (at path).
func linkTarget(fd int, path, name string, buf []byte) (string, error) {
	n, err := unix.Readlinkat(fd, name, buf)
	if err != nil {
		return "", &fs.PathError{Op: "readlink", Path: path + "/" + name, Err: err}
	}
	return string(buf[:n]), nil
}

// makeDir makes name in the directory fd (at path) a directory of the given mode.
func makeDir(fd int, path, name string, mode uint32) error {
	if err := unix.Mkdirat(fd, name, mode); err != nil && err != unix.EEXIST {
		return &fs.PathError{Op: "mkdir", Path: path + "/" + name, Err: err}
	}
	// Whatever the umask.
	if err := unix.Fchmodat(fd, name, mode, 0); err != nil {
		return &fs.PathError{Op: "chmod", Path: path + "/" + name, Err: err}
	}
	return nil
}

// makeMountFile makes dir/name an empty regular file of mode 0644, for a file to be mounted on.
func makeMountFile(dir, name string) error {
	path := dir + "/" + name
	fd, err := unix.Open(path, unix.O_WRONLY|unix.O_CREAT|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0o644)
	if err != nil {
		return &fs.PathError{Op: "create", Path: path, Err: err}
	}
	defer unix.Close(fd)
	if err := unix.Ftruncate(fd, 0); err != nil {
		return &fs.PathError{Op: "truncate", Path: path, Err: err}
	}
	if err := unix.Fchmod(fd, 0o644); err != nil {
		return &fs.PathError{Op: "chmod", Path: path, Err: err}
	}
	return nil
}

// replaceLink makes name in the directory fd (at path) a symlink to target, by rename.
func replaceLink(fd int, path, name, target string) error {
	tmp := tempLink + name
	unix.Unlinkat(fd, tmp, 0)
	if err := unix.Symlinkat(target, fd, tmp); err != nil {
		return fmt.Errorf("linking %s/%s to %s: %w", path, tmp, target, err)
	}
	if err := unix.Renameat(fd, tmp, fd, name); err != nil {
		return fmt.Errorf("renaming %s/%s to %s: %w", path, tmp, name, err)
	}
	return nil
}

// mountLinkDir makes LinkDir a read-only (nosuid, nodev, noexec) bind mount of etcLinks in the
// calling thread's mount namespace (the host's, for Write), replacing whatever is mounted there
// instead. etcLinks must exist.
func mountLinkDir() error {
	if err := unix.Mkdir(LinkDir, 0o755); err != nil && err != unix.EEXIST {
		return &fs.PathError{Op: "mkdir", Path: LinkDir, Err: err}
	}
	for range 8 {
		ok, mounted, err := linkDirMounted()
		if err != nil || ok {
			return err
		}
		if !mounted {
			break
		}
		// Something else is mounted there: a stale or writable bind.
		if err := unix.Unmount(LinkDir, unix.MNT_DETACH); err != nil {
			return fmt.Errorf("unmounting what covers %s: %w", LinkDir, err)
		}
	}
	src, err := unix.Open(etcLinks, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return &fs.PathError{Op: "open", Path: etcLinks, Err: err}
	}
	defer unix.Close(src)
	return bindFd(src, etcLinks, LinkDir, true)
}

// linkDirMounted reports whether LinkDir is what mountLinkDir makes (ok), and whether anything
// is mounted on it at all.
func linkDirMounted() (ok, mounted bool, err error) {
	var at, src unix.Statx_t
	if err := unix.Statx(unix.AT_FDCWD, LinkDir, unix.AT_SYMLINK_NOFOLLOW, unix.STATX_INO, &at); err != nil {
		return false, false, &fs.PathError{Op: "statx", Path: LinkDir, Err: err}
	}
	mounted = at.Attributes_mask&unix.STATX_ATTR_MOUNT_ROOT != 0 && at.Attributes&unix.STATX_ATTR_MOUNT_ROOT != 0
	if !mounted {
		return false, false, nil
	}
	if err := unix.Statx(unix.AT_FDCWD, etcLinks, unix.AT_SYMLINK_NOFOLLOW, unix.STATX_INO, &src); err != nil {
		return false, true, nil
	}
	var fsst unix.Statfs_t
	if err := unix.Statfs(LinkDir, &fsst); err != nil {
		return false, true, &fs.PathError{Op: "statfs", Path: LinkDir, Err: err}
	}
	same := at.Dev_major == src.Dev_major && at.Dev_minor == src.Dev_minor && at.Ino == src.Ino
	return same && fsst.Flags&unix.ST_RDONLY != 0, true, nil
}

// linkFaults returns what keeps confined services from starting with the namespace's view:
// LinkDir not the read-only bind of an /etc link farm wgns made, or that farm incomplete.
func linkFaults() []string {
	ok, mounted, err := linkDirMounted()
	switch {
	case err != nil && errors.Is(err, fs.ErrNotExist):
		return []string{LinkDir + ": missing (confined services bind it over /etc, and cannot start without it)"}
	case err != nil:
		return []string{LinkDir + ": " + err.Error()}
	case !mounted:
		return []string{LinkDir + ": not mounted (confined services bind it over /etc, and cannot start without it)"}
	case !ok:
		return []string{LinkDir + ": not the read-only bind of " + etcLinks + " that wgns makes"}
	}
	fd, err := openFarm(LinkDir)
	if err != nil {
		return []string{err.Error()}
	}
	defer unix.Close(fd)
	if !strings.HasPrefix(readStamp(fd), stampVersion) {
		return []string{LinkDir + ": not a complete link farm (no stamp " + strconv.Quote(stampLink) + ")"}
	}
	return nil
}
