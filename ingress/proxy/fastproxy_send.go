package proxy

import (
	"errors"
	"net"
	"syscall"
)

// sender writes to a connection whose next step is a read: a request's bytes to its upstream,
// a response's to its client (rawfront.go). The last write (armed) also waits for the
// connection to become readable, so that the read that follows finds the answer: net's Read would first try a read that cannot succeed yet (the peer has not
// answered), fail with EAGAIN and only then wait, one wasted system call per request.
//
// The wait must be armed before the request leaves: Go's poller forgets readiness when a wait
// is prepared, so a response arriving between the write and the wait would be missed. Hence
// the write is made from inside RawConn.Read's callback, after the preparation, and the
// callback's "not done" answer is the wait.
type sender struct {
	nc    net.Conn
	raw   syscall.RawConn // nil when nc has no file descriptor
	armed bool            // the next Write is the request's last
	// written, when set, is called once an armed write is out: false skips the wait.
	written func() bool
	// State of the callback, per Write.
	p       []byte
	n       int
	err     error
	waitFor func(fd uintptr) bool // c's bound callback, made once
}

func newSender(nc net.Conn, raw syscall.RawConn) *sender {
	s := &sender{nc: nc, raw: raw}
	s.waitFor = s.writeThenWait
	return s
}

// Write implements io.Writer.
func (s *sender) Write(p []byte) (int, error) {
	if !s.armed || s.raw == nil {
		return s.nc.Write(p)
	}
	s.armed = false
	s.p, s.n, s.err = p, 0, nil
	werr := s.raw.Read(s.waitFor)
	n, err := s.n, s.err
	s.p, s.err = nil, nil
	if err != nil {
		return n, err
	}
	if n < len(p) {
		// The socket's buffer was full: the rest goes the ordinary way, and the read after it
		// waits the ordinary way.
		m, err := s.nc.Write(p[n:])
		return n + m, err
	}
	// A failed wait (a deadline, a closed connection) is the next read's to report: the
	// bytes are out.
	_ = werr
	return n, nil
}

// writeThenWait is the RawConn.Read callback: the first call writes, and returns false (wait
// for readability) when all was written; the call after the wait returns true without reading.
func (s *sender) writeThenWait(fd uintptr) bool {
	if s.p == nil {
		return true // woken: the response (or an end of file) is there to read
	}
	for s.n < len(s.p) {
		m, err := syscall.Write(int(fd), s.p[s.n:])
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil {
			if !errors.Is(err, syscall.EAGAIN) {
				s.err = err
			}
			s.p = nil
			return true
		}
		s.n += m
	}
	s.p = nil
	if s.written != nil && !s.written() {
		return true
	}
	return false
}
