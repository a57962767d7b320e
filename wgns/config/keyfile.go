package config

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"syscall"
)

// maxKeyFile is the most a key file may hold: a key, whitespace and a
// generous margin.
const maxKeyFile = 4096

// keyFile is what a keyFS tells about a PrivateKeyFile or PresharedKeyFile.
type keyFile struct {
	// Mode is the file's type and permission bits, of the file itself, not
	// of what a symbolic link points to.
	Mode fs.FileMode
	// UID owns the file.
	UID uint32
	// Data holds up to maxKeyFile+1 bytes of a regular file; nil otherwise.
	Data []byte
}

// keyFS reads key files. It exists so that tests can fake ownership and mode.
type keyFS interface {
	// ReadKeyFile describes the file at path without following a final
	// symbolic link and, when it is a regular file, reads it.
	ReadKeyFile(path string) (keyFile, error)
}

// errChanged reports a key file replaced between its lstat and its open.
var errChanged = errors.New("changed while being read; try again")

// osKeyFS is the real file system.
type osKeyFS struct{}

var _ keyFS = osKeyFS{}

// ReadKeyFile implements keyFS. It never follows a final symbolic link and
// never blocks on a FIFO or device: it opens only what lstat says is a
// regular file, with O_NOFOLLOW|O_NONBLOCK, and reports the fstat of what it
// opened.
func (osKeyFS) ReadKeyFile(path string) (keyFile, error) {
	fi, err := os.Lstat(path)
	if err != nil {
		return keyFile{}, err
	}
	kf, err := describe(fi)
	if err != nil || !fi.Mode().IsRegular() {
		return kf, err
	}
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, syscall.ELOOP) {
			return keyFile{}, errChanged
		}
		return keyFile{}, err
	}
	defer f.Close()
	ofi, err := f.Stat()
	if err != nil {
		return keyFile{}, err
	}
	if !os.SameFile(fi, ofi) {
		return keyFile{}, errChanged
	}
	if kf, err = describe(ofi); err != nil || !ofi.Mode().IsRegular() {
		return kf, err
	}
	kf.Data, err = io.ReadAll(io.LimitReader(f, maxKeyFile+1))
	if err != nil {
		clear(kf.Data)
		return keyFile{}, err
	}
	return kf, nil
}

func describe(fi fs.FileInfo) (keyFile, error) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return keyFile{}, fmt.Errorf("no owner information (%T)", fi.Sys())
	}
	return keyFile{Mode: fi.Mode(), UID: st.Uid}, nil
}
