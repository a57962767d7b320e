package vm

import (
	"fmt"
	"io"
	"path"
	"strings"
)

// cpioWriter writes a cpio archive in the "newc" format, the one the kernel unpacks as an
// initramfs (Documentation/driver-api/early-userspace/buffer-format.rst). It writes only what an
// initramfs needs: directories, regular files, symbolic links and character devices, all owned
// by root. The standard library has no cpio writer, and the format is a fixed header of hex
// fields, so it is written here rather than by running cpio(1), which would have to be installed.
type cpioWriter struct {
	w   io.Writer
	ino uint32
	err error
}

const (
	cpioDir     = 0o040000
	cpioFile    = 0o100000
	cpioSymlink = 0o120000
	cpioChar    = 0o020000
)

// dir adds a directory.
func (c *cpioWriter) dir(name string, perm uint32) { c.entry(name, cpioDir|perm, 0, 0, nil) }

// file adds a regular file with the given content.
func (c *cpioWriter) file(name string, perm uint32, data []byte) {
	c.entry(name, cpioFile|perm, 0, 0, data)
}

// symlink adds a symbolic link name -> target.
func (c *cpioWriter) symlink(name, target string) {
	c.entry(name, cpioSymlink|0o777, 0, 0, []byte(target))
}

// char adds a character device node.
func (c *cpioWriter) char(name string, perm, major, minor uint32) {
	c.entry(name, cpioChar|perm, major, minor, nil)
}

// close writes the trailer and returns the first error met.
func (c *cpioWriter) close() error {
	c.entry("TRAILER!!!", 0, 0, 0, nil)
	return c.err
}

func (c *cpioWriter) entry(name string, mode, rmajor, rminor uint32, data []byte) {
	if c.err != nil {
		return
	}
	name = strings.TrimPrefix(path.Clean("/"+name), "/")
	if name == "" {
		name = "."
	}
	c.ino++
	nlink := uint32(1)
	if mode&0o170000 == cpioDir {
		nlink = 2
	}
	hdr := fmt.Sprintf("070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
		c.ino, mode, 0, 0, nlink, 0, len(data), 0, 0, rmajor, rminor, len(name)+1, 0)
	c.write([]byte(hdr))
	c.write(append([]byte(name), 0))
	c.pad(len(hdr) + len(name) + 1)
	c.write(data)
	c.pad(len(data))
}

func (c *cpioWriter) write(b []byte) {
	if c.err == nil && len(b) > 0 {
		_, c.err = c.w.Write(b)
	}
}

// pad aligns the archive to 4 bytes after n bytes were written.
func (c *cpioWriter) pad(n int) {
	if r := n % 4; r != 0 {
		c.write(make([]byte, 4-r))
	}
}
