package proxy

import (
	"errors"
	"syscall"
)

// sender writes a request's bytes to its upstream connection. The last write of a request
// (armed) also waits for the response to become readable, so that the read that follows finds
// it: net's Read would first try a read that cannot succeed yet (the upstream has not
// answered), fail with EAGAIN and only then wait, one wasted system call per request.
//
// The wait must be armed before the request leaves: Go's poller forgets readiness when a wait
// is prepared, so a response arriving between the write and the wait would be missed. Hence
// the write is made from inside RawConn.Read's callback, after the preparation, and the
// callback's "not done" answer is the wait.
type sender struct {
	c     *upConn
	armed bool // the next Write is the request's last
	// State of the callback, per Write.
	p       []byte
	n       int
	err     error
	waitFor func(fd uintptr) bool // c's bound callback, made once
}

func newSender(c *upConn) *sender {
	s := &sender{c: c}
	s.waitFor = s.writeThenWait
	return s
}

// Write implements io.Writer.
func (s *sender) Write(p []byte) (int, error) {
	if !s.armed || s.c.raw == nil {
		return s.c.nc.Write(p)
	}
	s.armed = false
	s.p, s.n, s.err = p, 0, nil
	werr := s.c.raw.Read(s.waitFor)
	n, err := s.n, s.err
	s.p, s.err = nil, nil
	if err != nil {
		return n, err
	}
	if n < len(p) {
		// The socket's buffer was full: the rest goes the ordinary way, and the read after it
		// waits the ordinary way.
		m, err := s.c.nc.Write(p[n:])
		return n + m, err
	}
	// A failed wait (a deadline, a closed connection) is the response read's to report: the
	// request is out.
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
	return false
}
