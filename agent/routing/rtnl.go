package routing

import (
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"syscall"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

const (
	// rtnlBatch is how many requests go into one sendmsg. The kernel answers
	// each with its own ack datagram, which costs about 1 KiB of receive
	// buffer, so a batch must fit rtnlRcvBuf with room to spare.
	rtnlBatch = 512
	// rtnlRcvBuf is the receive buffer asked for (SO_RCVBUFFORCE).
	rtnlRcvBuf = 4 << 20
	// rtnlTimeout bounds every wait for the kernel's answer.
	rtnlTimeout = 10 * 1000 * 1000 // µs
	// rtnlReadBuf is the size of one read; dumps fill it with many messages.
	rtnlReadBuf = 1 << 16
	// nlaTypeMask strips the NLA_F_NESTED and NLA_F_NET_BYTEORDER bits.
	nlaTypeMask = 0x3fff
)

// rtnl is a small rtnetlink client for routes and nexthop objects. Unlike
// the netlink library it sends many requests per system call, which is
// what makes programming thousands of routes fast. Not safe for concurrent
// use.
type rtnl struct {
	fd  int
	seq uint32
	buf []byte
}

// nlRequest is one request: message type, flags (NLM_F_REQUEST and
// NLM_F_ACK are added) and body.
type nlRequest struct {
	typ   uint16
	flags uint16
	body  []byte
}

// newRTNL opens a NETLINK_ROUTE socket in ns (the current namespace if ns
// is not open).
func newRTNL(ns netns.NsHandle) (*rtnl, error) {
	fd, err := socketIn(ns)
	if err != nil {
		return nil, fmt.Errorf("open rtnetlink socket: %w", err)
	}
	r := &rtnl{fd: fd, buf: make([]byte, rtnlReadBuf)}
	opts := []struct{ level, opt, val int }{
		{unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, rtnlRcvBuf},
		// Errors carry the kernel's explanation ("Nexthop has invalid
		// gateway"), and acks echo only the header of the request.
		{unix.SOL_NETLINK, unix.NETLINK_EXT_ACK, 1},
		{unix.SOL_NETLINK, unix.NETLINK_CAP_ACK, 1},
		// Dump requests are checked strictly and filtered by the kernel.
		{unix.SOL_NETLINK, unix.NETLINK_GET_STRICT_CHK, 1},
	}
	for _, o := range opts {
		if err := unix.SetsockoptInt(fd, o.level, o.opt, o.val); err != nil {
			r.close()
			return nil, fmt.Errorf("rtnetlink socket option %d: %w", o.opt, err)
		}
	}
	tv := unix.NsecToTimeval(rtnlTimeout * 1000)
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		r.close()
		return nil, fmt.Errorf("rtnetlink socket timeout: %w", err)
	}
	return r, nil
}

// socketIn creates the socket on a thread that has entered ns: a socket
// belongs to the namespace it was created in for its whole life.
func socketIn(ns netns.NsHandle) (int, error) {
	open := func() (int, error) {
		fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
		if err != nil {
			return -1, err
		}
		if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
			unix.Close(fd)
			return -1, err
		}
		return fd, nil
	}
	if !ns.IsOpen() {
		return open()
	}
	type result struct {
		fd  int
		err error
	}
	ch := make(chan result, 1)
	go func() {
		// The thread is left locked and so dies with the goroutine: it never
		// runs other code in the foreign namespace.
		runtime.LockOSThread()
		if err := netns.Set(ns); err != nil {
			ch <- result{-1, fmt.Errorf("enter network namespace: %w", err)}
			return
		}
		fd, err := open()
		ch <- result{fd, err}
	}()
	res := <-ch
	return res.fd, res.err
}

func (r *rtnl) close() {
	if r.fd >= 0 {
		unix.Close(r.fd)
		r.fd = -1
	}
}

// exec sends reqs in batches and returns one error per request (nil on
// success); err is set when the exchange itself failed.
func (r *rtnl) exec(reqs []nlRequest) (errs []error, err error) {
	errs = make([]error, len(reqs))
	for start := 0; start < len(reqs); start += rtnlBatch {
		end := min(start+rtnlBatch, len(reqs))
		if err := r.execBatch(reqs[start:end], errs[start:end]); err != nil {
			return errs, err
		}
	}
	return errs, nil
}

func (r *rtnl) execBatch(reqs []nlRequest, errs []error) error {
	var out []byte
	first := r.seq + 1
	for _, q := range reqs {
		r.seq++
		out = appendMsg(out, q.typ, q.flags|unix.NLM_F_REQUEST|unix.NLM_F_ACK, r.seq, q.body)
	}
	if err := unix.Sendto(r.fd, out, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return fmt.Errorf("send %d rtnetlink requests: %w", len(reqs), err)
	}
	pending := len(reqs)
	for pending > 0 {
		msgs, err := r.read()
		if err != nil {
			return fmt.Errorf("read rtnetlink acks (%d missing): %w", pending, err)
		}
		for _, m := range msgs {
			i := int(m.Header.Seq - first)
			if m.Header.Type != unix.NLMSG_ERROR || m.Header.Seq < first || i >= len(reqs) {
				continue // a stray message (an earlier, abandoned exchange)
			}
			errs[i] = ackError(m)
			pending--
		}
	}
	return nil
}

// dump sends one dump request and calls fn for every answer message.
func (r *rtnl) dump(typ uint16, body []byte, fn func(typ uint16, data []byte)) error {
	r.seq++
	seq := r.seq
	out := appendMsg(nil, typ, unix.NLM_F_REQUEST|unix.NLM_F_DUMP, seq, body)
	if err := unix.Sendto(r.fd, out, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return fmt.Errorf("send rtnetlink dump: %w", err)
	}
	for {
		msgs, err := r.read()
		if err != nil {
			return fmt.Errorf("read rtnetlink dump: %w", err)
		}
		for _, m := range msgs {
			if m.Header.Seq != seq {
				continue
			}
			switch m.Header.Type {
			case unix.NLMSG_DONE:
				return nil
			case unix.NLMSG_ERROR:
				return ackError(m)
			default:
				fn(m.Header.Type, m.Data)
			}
		}
	}
}

// read returns the messages of one datagram.
func (r *rtnl) read() ([]syscall.NetlinkMessage, error) {
	for {
		n, _, err := unix.Recvfrom(r.fd, r.buf, 0)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return nil, err
		}
		// ParseNetlinkMessage keeps slices of the buffer: copy it, the next
		// read reuses r.buf.
		return syscall.ParseNetlinkMessage(append([]byte(nil), r.buf[:n]...))
	}
}

// ackError decodes an NLMSG_ERROR message: nil for an ack, else the errno
// with the kernel's extended message if it sent one.
func ackError(m syscall.NetlinkMessage) error {
	if len(m.Data) < 4 {
		return fmt.Errorf("short rtnetlink ack")
	}
	code := int32(binary.NativeEndian.Uint32(m.Data[:4]))
	if code == 0 {
		return nil
	}
	err := error(unix.Errno(-code))
	// With NETLINK_CAP_ACK the ack echoes only the request header; extended
	// ack attributes follow it when NLM_F_ACK_TLVS is set.
	if m.Header.Flags&unix.NLM_F_ACK_TLVS != 0 && len(m.Data) > 4+unix.NLMSG_HDRLEN {
		for typ, val := range attrs(m.Data[4+unix.NLMSG_HDRLEN:]) {
			if typ == unix.NLMSGERR_ATTR_MSG && len(val) > 1 {
				err = fmt.Errorf("%w (%s)", err, string(val[:len(val)-1]))
			}
		}
	}
	return err
}

// appendMsg appends one netlink message.
func appendMsg(b []byte, typ, flags uint16, seq uint32, body []byte) []byte {
	var h [unix.NLMSG_HDRLEN]byte
	binary.NativeEndian.PutUint32(h[0:], uint32(unix.NLMSG_HDRLEN+len(body)))
	binary.NativeEndian.PutUint16(h[4:], typ)
	binary.NativeEndian.PutUint16(h[6:], flags)
	binary.NativeEndian.PutUint32(h[8:], seq)
	b = append(b, h[:]...)
	b = append(b, body...)
	return append(b, make([]byte, align4(len(body))-len(body))...)
}

// appendAttr appends one rtattr (type-length-value, padded to 4 bytes).
func appendAttr(b []byte, typ uint16, val []byte) []byte {
	var h [unix.SizeofRtAttr]byte
	binary.NativeEndian.PutUint16(h[0:], uint16(unix.SizeofRtAttr+len(val)))
	binary.NativeEndian.PutUint16(h[2:], typ)
	b = append(b, h[:]...)
	b = append(b, val...)
	return append(b, make([]byte, align4(len(val))-len(val))...)
}

func appendU32Attr(b []byte, typ uint16, v uint32) []byte {
	var val [4]byte
	binary.NativeEndian.PutUint32(val[:], v)
	return appendAttr(b, typ, val[:])
}

// attrs iterates the rtattrs in b (nested-flag bits masked off).
func attrs(b []byte) func(yield func(uint16, []byte) bool) {
	return func(yield func(uint16, []byte) bool) {
		for len(b) >= unix.SizeofRtAttr {
			l := int(binary.NativeEndian.Uint16(b[0:]))
			typ := binary.NativeEndian.Uint16(b[2:]) & nlaTypeMask
			if l < unix.SizeofRtAttr || l > len(b) {
				return
			}
			if !yield(typ, b[unix.SizeofRtAttr:l]) {
				return
			}
			b = b[min(align4(l), len(b)):]
		}
	}
}

func align4(n int) int { return (n + 3) &^ 3 }
