package nftables

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"sync"

	gnft "github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// Netlink writes incremental changes of the policy table through one
// nf_tables socket that stays open for the agent's life.
//
// Why not nft for them: nft 1.0.6 loads the table's cache (every chain and
// set definition, interval sets' elements) before it applies a
// transaction, and it opens and closes a socket per run; at 1k policies
// (≈5k objects) one pod added took ≈90 ms of CPU through nft, one policy
// changed ≈230 ms of wall time at 10k pods. Pods coming, going and being
// relabelled change only elements of sets without intervals, which send
// writes (encodeMessages); a policy added, changed or deleted changes
// counters, sets, chains and rules, which apply writes in one transaction
// (structureDiff, ruleExprs). nft via knftables writes the cold build's
// structure, full syncs and whatever these cannot encode; the exact-rule
// tests check its text, and the kernel tests prove that both write the
// same table.
type Netlink struct {
	mu   sync.Mutex
	conn *gnft.Conn
	tbl  *gnft.Table
}

// netlinkElementsPerMessage keeps a message's element list attribute
// (16-bit length) well below 64 KiB.
const netlinkElementsPerMessage = 256

// netlinkBufferBytes sizes the socket's send and receive buffers: a
// structural transaction (see structureDiff) goes out in one sendmsg and
// the kernel acknowledges each of its messages, which the default 208 KiB
// do not hold for a few hundred rules (ENOBUFS, or EMSGSIZE on send).
const netlinkBufferBytes = 8 << 20

// NewNetlink opens the socket in the calling thread's network namespace.
func NewNetlink() (*Netlink, error) {
	conn, err := dialNetlink()
	if err != nil {
		return nil, fmt.Errorf("open nf_tables netlink socket: %w", err)
	}
	return &Netlink{conn: conn, tbl: &gnft.Table{Name: TableName, Family: gnft.TableFamilyINet}}, nil
}

// Close closes the socket.
func (n *Netlink) Close() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.conn.CloseLasting()
}

// elementChange is one element to delete or add.
type elementChange struct {
	set      string
	isMap    bool
	interval bool   // a concatenation with ranges: key and key end
	typ      string // the set's type (its key's field types)
	key      string // fields joined by " . "
	value    string // map value ("goto chain")
}

// changeOf returns the change of key in x (named name).
func changeOf(name string, x *set, key string) elementChange {
	return elementChange{set: name, isMap: x.isMap, interval: x.interval, typ: x.typ, key: key, value: x.elements[key]}
}

// netlinkMessage is one NEWSETELEM or DELSETELEM message.
type netlinkMessage struct {
	set   string
	add   bool
	elems []gnft.SetElement
}

// maxNetlinkMessages bounds the messages of one transaction: the kernel
// acknowledges each with a copy of its header, and hundreds of them
// overflow the socket's receive buffer (ENOBUFS), seen at 1k policies.
const maxNetlinkMessages = 32

// encode turns deletes, then adds, into messages of one set each.
func encodeMessages(dels, adds []elementChange) ([]netlinkMessage, error) {
	var msgs []netlinkMessage
	for _, batch := range []struct {
		add     bool
		changes []elementChange
	}{{false, dels}, {true, adds}} {
		open := map[string]int{}
		for _, c := range batch.changes {
			el, err := encodeElement(c, batch.add)
			if err != nil {
				return nil, err
			}
			i, ok := open[c.set]
			if !ok || len(msgs[i].elems) == netlinkElementsPerMessage {
				msgs = append(msgs, netlinkMessage{set: c.set, add: batch.add})
				i = len(msgs) - 1
				open[c.set] = i
			}
			msgs[i].elems = append(msgs[i].elems, el)
		}
	}
	return msgs, nil
}

// send applies msgs in one nf_tables transaction: all of them or none.
func (n *Netlink) send(msgs []netlinkMessage) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, m := range msgs {
		queue := n.conn.SetDeleteElements
		if m.add {
			queue = n.conn.SetAddElements
		}
		if err := queue(&gnft.Set{Table: n.tbl, Name: m.set}, m.elems); err != nil {
			// What was queued must not reach the kernel with a later
			// batch: start over on a new socket.
			return errors.Join(fmt.Errorf("queue elements of %s: %w", m.set, err), n.reopen())
		}
	}
	if err := n.conn.Flush(); err != nil {
		// Unread acknowledgements would be read as the next batch's.
		return errors.Join(fmt.Errorf("netlink transaction (%d messages): %w", len(msgs), err), n.reopen())
	}
	return nil
}

func (n *Netlink) reopen() error {
	_ = n.conn.CloseLasting()
	conn, err := dialNetlink()
	if err != nil {
		return fmt.Errorf("reopen nf_tables netlink socket: %w", err)
	}
	n.conn = conn
	return nil
}

// dialNetlink opens a lasting nf_tables socket with netlinkBufferBytes
// buffers.
func dialNetlink() (*gnft.Conn, error) {
	return gnft.New(gnft.AsLasting(), gnft.WithSockOptions(func(c *netlink.Conn) error {
		raw, err := c.SyscallConn()
		if err != nil {
			return err
		}
		var opErr error
		err = raw.Control(func(fd uintptr) {
			// The FORCE variants pass net.core.[rw]mem_max (the agent
			// has CAP_NET_ADMIN, which they need).
			for _, opt := range []int{unix.SO_SNDBUFFORCE, unix.SO_RCVBUFFORCE} {
				if e := unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, opt, netlinkBufferBytes); e != nil {
					opErr = fmt.Errorf("size netlink socket buffers: %w", e)
				}
			}
		})
		return errors.Join(err, opErr)
	}))
}

// apply sends ops (see structureDiff) in one nf_tables transaction: all of
// them or none.
func (n *Netlink) apply(ops []netlinkOp) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, op := range ops {
		if err := n.queue(op); err != nil {
			return errors.Join(fmt.Errorf("queue %s: %w", op.name, err), n.reopen())
		}
	}
	if err := n.conn.Flush(); err != nil {
		return errors.Join(fmt.Errorf("netlink transaction (%d requests): %w", len(ops), err), n.reopen())
	}
	return nil
}

// queue adds one request to the connection's batch.
func (n *Netlink) queue(op netlinkOp) error {
	chain := &gnft.Chain{Table: n.tbl, Name: op.name}
	switch op.kind {
	case opAddCounter:
		n.conn.AddObj(&gnft.CounterObj{Table: n.tbl, Name: op.name})
	case opDelCounter:
		n.conn.DeleteObject(&gnft.CounterObj{Table: n.tbl, Name: op.name})
	case opAddSet:
		s := *op.set
		s.Table = n.tbl
		return n.conn.AddSet(&s, nil)
	case opDelSet:
		n.conn.DelSet(&gnft.Set{Table: n.tbl, Name: op.name})
	case opAddElements:
		return n.conn.SetAddElements(&gnft.Set{Table: n.tbl, Name: op.name}, op.elems)
	case opDelElements:
		return n.conn.SetDeleteElements(&gnft.Set{Table: n.tbl, Name: op.name}, op.elems)
	case opAddChain:
		n.conn.AddChain(chain)
	case opFlushChain:
		n.conn.FlushChain(chain)
	case opDelChain:
		n.conn.DelChain(chain)
	case opAddRule:
		n.conn.AddRule(&gnft.Rule{Table: n.tbl, Chain: chain, Exprs: op.exprs})
	default:
		return fmt.Errorf("unknown netlink request %d", op.kind)
	}
	return nil
}

// The kernel keeps set keys as the bytes a rule's lookup builds in its
// registers: addresses and ports in network byte order, meta l4proto one
// byte, and in a concatenation every field padded to the 4-byte register
// boundary. encodeElement lays out the text form the Enforcer keeps (nft
// syntax) that way.
const registerSize = 4

var protocolNumbers = map[string]byte{"tcp": 6, "udp": 17, "sctp": 132}

func encodeElement(c elementChange, withValue bool) (gnft.SetElement, error) {
	first, last := c.key, ""
	if c.interval {
		first, last = fieldBounds(c.key)
	}
	key, err := encodeKey(first, c.typ)
	if err != nil {
		return gnft.SetElement{}, fmt.Errorf("element %q of %s: %w", c.key, c.set, err)
	}
	el := gnft.SetElement{Key: key}
	if c.interval {
		if el.KeyEnd, err = encodeKey(last, c.typ); err != nil {
			return gnft.SetElement{}, fmt.Errorf("element %q of %s: %w", c.key, c.set, err)
		}
	}
	if !withValue || !c.isMap {
		return el, nil
	}
	verb, chain, _ := strings.Cut(c.value, " ")
	if verb != "goto" || chain == "" {
		return gnft.SetElement{}, fmt.Errorf("value %q of %s: only `goto chain` is written through netlink", c.value, c.set)
	}
	el.VerdictData = &expr.Verdict{Kind: expr.VerdictGoto, Chain: chain}
	return el, nil
}

// encodeKey encodes key by the field types of typ (a set's type; a
// map's key part before " : ").
func encodeKey(key, typ string) ([]byte, error) {
	keyType, _, _ := strings.Cut(typ, " : ")
	types := strings.Split(keyType, " . ")
	fields := strings.Split(key, " . ")
	if len(fields) != len(types) {
		return nil, fmt.Errorf("%d fields for type %q", len(fields), typ)
	}
	var out []byte
	for i, f := range fields {
		switch types[i] {
		case "inet_proto":
			if n, ok := protocolNumbers[f]; ok {
				out = append(out, n)
				break
			}
			n, err := strconv.ParseUint(f, 10, 8)
			if err != nil {
				return nil, fmt.Errorf("field %q is no protocol", f)
			}
			out = append(out, byte(n))
		case "inet_service":
			port, err := strconv.ParseUint(f, 10, 16)
			if err != nil {
				return nil, fmt.Errorf("field %q is no port", f)
			}
			out = binary.BigEndian.AppendUint16(out, uint16(port))
		case famV4.addr, famV6.addr:
			a, err := netip.ParseAddr(f)
			if err != nil || a.Is6() != (types[i] == famV6.addr) {
				return nil, fmt.Errorf("field %q is no %s", f, types[i])
			}
			out = append(out, a.AsSlice()...)
		default:
			return nil, fmt.Errorf("field type %q is not encoded here", types[i])
		}
		if len(fields) > 1 {
			for len(out)%registerSize != 0 {
				out = append(out, 0)
			}
		}
	}
	return out, nil
}
