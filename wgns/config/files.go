package config

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// maxKeyFile is the most a key file may hold: a key, whitespace and a
// generous margin.
const maxKeyFile = 4096

// maxLinks is how many symbolic links a path may pass through, as Linux's
// limit (ELOOP after 40).
const maxLinks = 40

// fileInfo is what the trust checks need to know of a file.
type fileInfo struct {
	// Mode is the file's type and permission bits, of the file itself, not
	// of what a symbolic link points to.
	Mode fs.FileMode
	// UID owns the file.
	UID uint32
	// Size is the file's size in bytes.
	Size int64
}

// fileSystem is what the loader reads through. It exists so that tests can
// fake ownership and modes.
type fileSystem interface {
	// Lstat describes path without following a final symbolic link.
	Lstat(path string) (fileInfo, error)
	// Readlink returns the target of the symbolic link at path.
	Readlink(path string) (string, error)
	// ReadFile describes the file at path without following a final
	// symbolic link and, when it is a regular file, reads up to limit+1
	// bytes of it. The description is of the file read.
	ReadFile(path string, limit int64) (fileInfo, []byte, error)
}

// errChanged reports a file replaced between its lstat and its open.
var errChanged = errors.New("changed while being read; try again")

// osFS is the real file system.
type osFS struct{}

var _ fileSystem = osFS{}

// Lstat implements fileSystem.
func (osFS) Lstat(path string) (fileInfo, error) {
	fi, err := os.Lstat(path)
	if err != nil {
		return fileInfo{}, err
	}
	return describe(fi)
}

// Readlink implements fileSystem.
func (osFS) Readlink(path string) (string, error) { return os.Readlink(path) }

// ReadFile implements fileSystem. It never follows a final symbolic link and
// never blocks on a FIFO or device: it opens only what lstat says is a
// regular file, with O_NOFOLLOW|O_NONBLOCK, and reports the fstat of what it
// opened.
func (osFS) ReadFile(path string, limit int64) (fileInfo, []byte, error) {
	fi, err := os.Lstat(path)
	if err != nil {
		return fileInfo{}, nil, err
	}
	info, err := describe(fi)
	if err != nil || !fi.Mode().IsRegular() {
		return info, nil, err
	}
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, syscall.ELOOP) {
			return fileInfo{}, nil, errChanged
		}
		return fileInfo{}, nil, err
	}
	defer f.Close()
	ofi, err := f.Stat()
	if err != nil {
		return fileInfo{}, nil, err
	}
	if !os.SameFile(fi, ofi) {
		return fileInfo{}, nil, errChanged
	}
	if info, err = describe(ofi); err != nil || !ofi.Mode().IsRegular() {
		return info, nil, err
	}
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		clear(data)
		return fileInfo{}, nil, err
	}
	return info, data, nil
}

func describe(fi fs.FileInfo) (fileInfo, error) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fileInfo{}, fmt.Errorf("no owner information (%T)", fi.Sys())
	}
	return fileInfo{Mode: fi.Mode(), UID: st.Uid, Size: fi.Size()}, nil
}

// trust says whose files may configure wgns: root's, and those of the user
// wgns runs as (uid), as ssh trusts root's files and the user's own. Run as
// root, that is root's files only.
//
// A file is trusted when its owner is trusted and no one else may write it.
// A path is trusted when no one but a trusted user can make it name another
// file: every directory on the way, from / down, is owned by a trusted user
// and is not writable by group or others unless it is sticky (like /tmp: in
// a sticky directory only an entry's owner, the directory's owner and root
// may rename or remove the entry, and the walk takes from it only entries a
// trusted user owns, which it checks next); and every symbolic link on the
// way is owned by a trusted user (a link cannot be changed, only replaced,
// which its directory already guards).
type trust struct {
	uid uint32
}

// owner reports whether files owned by uid are trusted.
func (t trust) owner(uid uint32) bool { return uid == 0 || uid == t.uid }

// notOwner says that a file is owned by uid, who is not trusted.
func (t trust) notOwner(uid uint32) string {
	if t.uid == 0 {
		return fmt.Sprintf("owned by uid %d, not root", uid)
	}
	return fmt.Sprintf("owned by uid %d, neither root nor you (uid %d)", uid, t.uid)
}

// unixMode returns m's permission bits with setuid, setgid and sticky, as
// chmod takes them.
func unixMode(m fs.FileMode) uint32 {
	u := uint32(m.Perm())
	if m&fs.ModeSetuid != 0 {
		u |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		u |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		u |= 0o1000
	}
	return u
}

// dirProblem says why directory dir may not hold a file wgns trusts; "" if
// it may.
func (t trust) dirProblem(dir string, fi fileInfo) string {
	switch {
	case !t.owner(fi.UID):
		return fmt.Sprintf("in directory %s, %s: that user could replace the file; move it to a directory only root can change, such as /etc/wgns",
			dir, t.notOwner(fi.UID))
	case fi.Mode.Perm()&0o022 != 0 && fi.Mode&fs.ModeSticky == 0:
		return fmt.Sprintf("in directory %s, writable by group or others (mode %04o): they could replace the file; chmod go-w %s, or move the file to a directory only root can change",
			dir, unixMode(fi.Mode), dir)
	}
	return ""
}

// linkProblem says why symbolic link link may not be followed; "" if it may.
func (t trust) linkProblem(link string, fi fileInfo) string {
	if !t.owner(fi.UID) {
		return fmt.Sprintf("through symbolic link %s, %s: that user could point it elsewhere", link, t.notOwner(fi.UID))
	}
	return ""
}

// walk resolves path the way the kernel does, following symbolic links (the
// last one only when follow is set), and checks every directory it looks a
// name up in, and every link it follows, against t. It returns the resolved
// path of the final component, whatever that is (it may not exist: the
// error is then the lstat's), or a non-empty problem when a directory or link
// on the way is not trusted. Each directory is checked before any name is
// looked up in it, so a path found trusted names the same file until a
// trusted user changes it.
func walk(fsys fileSystem, path string, follow bool, t trust) (resolved, problem string, err error) {
	if !filepath.IsAbs(path) {
		wd, err := os.Getwd()
		if err != nil {
			return "", "", err
		}
		path = wd + "/" + path // not filepath.Abs, which takes ".." lexically
	}
	fi, err := fsys.Lstat("/")
	if err != nil {
		return "", "", err
	}
	if p := t.dirProblem("/", fi); p != "" {
		return "", p, nil
	}
	cur, rest, links := "/", components(path), 0
	for len(rest) > 0 {
		name := rest[0]
		rest = rest[1:]
		if name == ".." {
			cur = filepath.Dir(cur) // a directory the walk came through, so checked
			continue
		}
		next := filepath.Join(cur, name)
		fi, err := fsys.Lstat(next)
		if err != nil {
			return "", "", err
		}
		last := len(rest) == 0
		if fi.Mode&fs.ModeSymlink != 0 && (follow || !last) {
			if p := t.linkProblem(next, fi); p != "" {
				return "", p, nil
			}
			if links++; links > maxLinks {
				return "", "", syscall.ELOOP
			}
			target, err := fsys.Readlink(next)
			if err != nil {
				return "", "", err
			}
			if filepath.IsAbs(target) {
				cur = "/"
			}
			rest = append(components(target), rest...)
			continue
		}
		if last {
			return next, "", nil
		}
		if !fi.Mode.IsDir() {
			return "", "", syscall.ENOTDIR
		}
		if p := t.dirProblem(next, fi); p != "" {
			return "", p, nil
		}
		cur = next
	}
	return cur, "", nil
}

// components splits a path into its names, without empty ones and ".".
func components(path string) []string {
	var out []string
	for _, c := range strings.Split(path, "/") {
		if c != "" && c != "." {
			out = append(out, c)
		}
	}
	return out
}
