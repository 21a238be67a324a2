package ipvsvm

import (
	"fmt"
	"io"
	"io/fs"
	"path"
)

const (
	// cpioMagic starts every header of the "newc" format, the only one the
	// kernel's initramfs unpacker reads.
	cpioMagic = "070701"
	// cpioTrailer names the entry that ends an archive.
	cpioTrailer = "TRAILER!!!"
	// Mode bits of the newc header (the st_mode file type values).
	cpioTypeMask    = 0o170000
	cpioModeDir     = 0o040000
	cpioModeFile    = 0o100000
	cpioModeSymlink = 0o120000
)

// cpioWriter writes a newc archive. Written by hand (60 lines) so the host
// needs no cpio binary and the archive is built in memory in one pass.
type cpioWriter struct {
	w    io.Writer
	off  int64
	ino  uint32
	err  error
	dirs map[string]bool
}

// header writes one entry's header and name, padded to 4 bytes.
func (c *cpioWriter) header(name string, mode uint32, size int) {
	if c.err != nil {
		return
	}
	c.ino++
	nlink := 1
	if mode&cpioTypeMask == cpioModeDir {
		nlink = 2
	}
	h := fmt.Sprintf("%s%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
		cpioMagic, c.ino, mode, 0, 0, nlink, 0, size, 0, 0, 0, 0, len(name)+1, 0)
	c.write([]byte(h + name + "\x00"))
	c.pad()
}

func (c *cpioWriter) write(b []byte) {
	if c.err != nil {
		return
	}
	n, err := c.w.Write(b)
	c.off += int64(n)
	c.err = err
}

// pad aligns the stream to 4 bytes, as newc requires after names and data.
func (c *cpioWriter) pad() {
	if r := c.off % 4; r != 0 {
		c.write(make([]byte, 4-r))
	}
}

// Dir adds a directory (once: a second Dir of the same name does nothing).
func (c *cpioWriter) Dir(name string, perm fs.FileMode) {
	if c.dirs[name] {
		return
	}
	if c.dirs == nil {
		c.dirs = map[string]bool{}
	}
	c.dirs[name] = true
	c.header(name, cpioModeDir|uint32(perm.Perm()), 0)
}

// MkdirAll adds dir and every missing parent, as the kernel's unpacker
// needs a directory before anything in it.
func (c *cpioWriter) MkdirAll(dir string) {
	dir = path.Clean(dir)
	if dir == "." || dir == "/" || c.dirs[dir] {
		return
	}
	c.MkdirAll(path.Dir(dir))
	c.Dir(dir, 0o755)
}

// File adds a regular file with its content.
func (c *cpioWriter) File(name string, perm fs.FileMode, data []byte) {
	c.header(name, cpioModeFile|uint32(perm.Perm()), len(data))
	c.write(data)
	c.pad()
}

// Symlink adds a symbolic link name -> target.
func (c *cpioWriter) Symlink(name, target string) {
	c.header(name, cpioModeSymlink|0o777, len(target))
	c.write([]byte(target))
	c.pad()
}

// Close writes the trailer and returns the first error met.
func (c *cpioWriter) Close() error {
	c.header(cpioTrailer, 0, 0)
	return c.err
}
