package nftables

import (
	"errors"
	"fmt"
	"os"
	"sync"

	gnft "github.com/google/nftables"
)

// netlinkMaxElements bounds the element operations of one netlink batch.
// The batch goes to the kernel in one sendmsg, which must fit the socket's
// send buffer (net.core.wmem_default, 208 KiB by default; an element takes
// up to ~100 bytes); larger syncs go through nft, whose process start is
// small beside them anyway.
const netlinkMaxElements = 1000

// Netlink writes element changes of the proxy's table through one netlink
// socket that stays open for the agent's life.
//
// Why not nft for them: nft opens a socket per transaction and the kernel
// makes the closing of that socket wait for the deferred destruction of
// whatever the transaction removed (nf_tables flushes its destroy work on
// NETLINK_URELEASE, an RCU grace period), about 11 ms on this kind of
// machine, plus ~4 ms to start nft and parse. A transaction that replaces
// one endpoint took 16 ms (p99 32 ms) through nft and 0.03 ms (p99 0.1 ms)
// through a lasting socket, at 10k Services. Structure (tables, chains,
// maps, rules) stays with nft via knftables, which the exact-rule tests
// check; only elements, whose encoding encode.go owns, go this way.
type Netlink struct {
	ns  *os.File // the namespace given to NewNetlink (nil: own), for reopen
	tbl *gnft.Table

	mu   sync.Mutex
	conn *gnft.Conn
}

// NewNetlink opens the socket in the network namespace at nsPath, or, when
// nsPath is "", in the calling thread's namespace (the agent's own).
func NewNetlink(nsPath string) (*Netlink, error) {
	n := &Netlink{tbl: &gnft.Table{Name: TableName, Family: gnft.TableFamilyINet}}
	if nsPath != "" {
		// Kept open: a reopen must land in the same namespace. Entering
		// another namespace needs CAP_SYS_ADMIN, which the agent (in its
		// own namespace) does not have and does not need.
		ns, err := os.Open(nsPath)
		if err != nil {
			return nil, fmt.Errorf("nftables netlink socket: open network namespace: %w", err)
		}
		n.ns = ns
	}
	conn, err := dial(n.ns)
	if err != nil {
		n.Close()
		return nil, err
	}
	n.conn = conn
	return n, nil
}

// dial opens a lasting nf_tables socket in the namespace ns (nil: the
// calling thread's).
func dial(ns *os.File) (*gnft.Conn, error) {
	opts := []gnft.ConnOption{gnft.AsLasting()}
	if ns != nil {
		opts = append(opts, gnft.WithNetNSFd(int(ns.Fd())))
	}
	conn, err := gnft.New(opts...)
	if err != nil {
		return nil, fmt.Errorf("nftables netlink socket: %w", err)
	}
	return conn, nil
}

// Close closes the socket.
func (n *Netlink) Close() error {
	if n == nil {
		return nil
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	var errs []error
	if n.conn != nil {
		errs = append(errs, n.conn.CloseLasting())
	}
	if n.ns != nil {
		errs = append(errs, n.ns.Close())
	}
	return errors.Join(errs...)
}

// elementBatch is one atomic change of elements: flushes first, then
// deletes, then adds.
type elementBatch struct {
	flushes       []string
	deletes, adds []element
}

func (b elementBatch) size() int { return len(b.deletes) + len(b.adds) }

// write applies b in one nf_tables transaction: all of it or, on any
// error, none of it.
func (n *Netlink) write(b elementBatch) error {
	dels, err := encodeMessages(b.deletes, false)
	if err != nil {
		return err
	}
	adds, err := encodeMessages(b.adds, true)
	if err != nil {
		return err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, name := range b.flushes {
		n.conn.FlushSet(n.set(name))
	}
	for _, m := range append(dels, adds...) {
		queue := n.conn.SetDeleteElements
		if m.add {
			queue = n.conn.SetAddElements
		}
		if err := queue(n.set(m.set), m.elems); err != nil {
			// Messages queued so far must not reach the kernel with the
			// next batch: start over on a new socket.
			return errors.Join(fmt.Errorf("netlink %s: %w", m.set, err), n.reopen())
		}
	}
	if err := n.conn.Flush(); err != nil {
		return fmt.Errorf("netlink transaction (%d element deletes, %d adds): %w", len(b.deletes), len(b.adds), err)
	}
	return nil
}

// elementMessage is one NEWSETELEM or DELSETELEM message.
type elementMessage struct {
	set   string
	add   bool
	elems []gnft.SetElement
}

// elementsPerMessage keeps a message's element list attribute, whose
// length is 16 bits, well below 64 KiB.
const elementsPerMessage = 256

// encodeMessages encodes elems into messages of one set each, in the
// order the sets first appear.
func encodeMessages(elems []element, add bool) ([]elementMessage, error) {
	var out []elementMessage
	last := map[string]int{} // set → index in out of its open message
	for _, e := range elems {
		se, err := encodeElement(e, add)
		if err != nil {
			return nil, err
		}
		i, ok := last[e.set]
		if !ok || len(out[i].elems) == elementsPerMessage {
			out = append(out, elementMessage{set: e.set, add: add})
			i = len(out) - 1
			last[e.set] = i
		}
		out[i].elems = append(out[i].elems, se)
	}
	return out, nil
}

// reopen replaces the socket (dropping whatever was queued on the old one).
func (n *Netlink) reopen() error {
	_ = n.conn.CloseLasting()
	conn, err := dial(n.ns)
	if err != nil {
		return err
	}
	n.conn = conn
	return nil
}

// set names a set or map of the table for element messages (the kernel
// finds it by table and name; nothing else is sent).
func (n *Netlink) set(name string) *gnft.Set {
	return &gnft.Set{Table: n.tbl, Name: name}
}
