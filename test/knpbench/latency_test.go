package knpbench

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/xt"
	"golang.org/x/sys/unix"

	pt "github.com/plexus-net/plexus/agent/policy/policytest"
	"github.com/plexus-net/plexus/internal/testnet"
)

// The flow of the first-packet figure: fixture pod 10 (ns10, app0; ns10 is env=prod) connects
// to pod 1 (ns1, app0) on TCP 80, which scale policy 1 allows (it selects app0 in ns1 and allows
// env=prod namespaces on the named port and TCP 80); no policy isolates pod 10's egress.
const (
	flowSrc     = 10
	flowDst     = 1
	flowPort    = 80
	connectReps = 2000
	// mirrorTable holds the benchmark's copy of KNP's queue rule (see mirrorQueueRule).
	mirrorTable = "knpbench-queue"
)

// flow is two fake pods attached to the node namespace with the addresses of two API pods.
type flow struct {
	src, dst *testnet.Netns
	dstAddr  netip.AddrPort
	ln       net.Listener
}

func podIPv4(i int) netip.Addr {
	p := pt.ScalePod(i, "")
	return netip.MustParseAddr(p.Status.PodIPs[0].IP)
}

// newFlow creates the two pods and a TCP listener in the destination.
func (cp *controlPlane) newFlow(b *testing.B) *flow {
	cp.ns.EnableForwarding(b)
	f := &flow{
		src:     testnet.AddFakePod(b, cp.ns, "knps", "knps0", podIPv4(flowSrc)),
		dst:     testnet.AddFakePod(b, cp.ns, "knpd", "knpd0", podIPv4(flowDst)),
		dstAddr: netip.AddrPortFrom(podIPv4(flowDst), flowPort),
	}
	err := f.dst.Do(func() error {
		ln, err := net.Listen("tcp4", fmt.Sprintf(":%d", flowPort))
		f.ln = ln
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = f.ln.Close() })
	go func() {
		for {
			c, err := f.ln.Accept()
			if err != nil {
				return
			}
			_ = c.Close()
		}
	}()
	return f
}

// connectTime is the mean time of n TCP connects from the source pod to the destination (each
// a new connection, so its SYN is the first packet of a flow).
func (f *flow) connectTime(n int) (time.Duration, error) {
	var took time.Duration
	err := f.src.Do(func() error {
		start := time.Now()
		for i := 0; i < n; i++ {
			c, err := net.DialTimeout("tcp4", f.dstAddr.String(), 2*time.Second)
			if err != nil {
				return fmt.Errorf("connect %d to %s: %w", i, f.dstAddr, err)
			}
			_ = c.Close()
		}
		took = time.Since(start) / time.Duration(n)
		return nil
	})
	return took, err
}

// kernelHasNftQueue says whether nftables' queue statement works in the node namespace; if not,
// the kernel's answer.
func (cp *controlPlane) kernelHasNftQueue() (bool, string) {
	const probe = "knpbench-probe"
	defer func() { _, _ = cp.nft("delete", "table", "inet", probe) }()
	if _, err := cp.nft("add", "table", "inet", probe); err != nil {
		return false, err.Error()
	}
	if _, err := cp.nft("add", "chain", "inet", probe, "c", "{ type filter hook postrouting priority 95; }"); err != nil {
		return false, err.Error()
	}
	if _, err := cp.nft("add", "rule", "inet", probe, "c", "queue", "num", fmt.Sprint(knpQueue)); err != nil {
		msg := err.Error()
		if i := strings.Index(msg, "Error:"); i >= 0 {
			msg = strings.SplitN(msg[i:], "\n", 2)[0]
		}
		return false, msg
	}
	return true, ""
}

// mirrorQueueRule writes, in a table of the benchmark's own, what KNP's postrouting chain does
// for the flow when its destination is in KNP's set of pods selected by a policy: accept
// established and related packets, queue the first packet to KNP's queue (no bypass, as KNP
// without --fail-open). It uses the xtables NFQUEUE target through nft_compat, because this
// kernel has no nftables queue expression; the packet reaches KNP's nfqueue socket the same way.
func (cp *controlPlane) mirrorQueueRule(dst netip.Addr) error {
	c, err := nftables.New(nftables.WithNetNSFd(int(cp.ns.NsHandle())))
	if err != nil {
		return fmt.Errorf("nftables in %s: %w", cp.ns, err)
	}
	t := c.AddTable(&nftables.Table{Name: mirrorTable, Family: nftables.TableFamilyINet})
	ch := c.AddChain(&nftables.Chain{
		Name: "postrouting", Table: t, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookPostrouting, Priority: nftables.ChainPriorityRef(*nftables.ChainPriorityNATSource - 5),
	})
	est := make([]byte, 4)
	binary.NativeEndian.PutUint32(est, expr.CtStateBitESTABLISHED|expr.CtStateBitRELATED)
	c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: []expr.Any{
		&expr.Ct{Register: 1, Key: expr.CtKeySTATE},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: est, Xor: make([]byte, 4)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: make([]byte, 4)},
		&expr.Verdict{Kind: expr.VerdictAccept},
	}})
	// struct xt_NFQ_info_v3 {__u16 queuenum, queues_total, flags}, host order, padded to 8.
	info := xt.Unknown(make([]byte, 8))
	binary.NativeEndian.PutUint16(info[0:], knpQueue)
	binary.NativeEndian.PutUint16(info[2:], 1)
	d4 := dst.As4()
	c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: []expr.Any{
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.NFPROTO_IPV4}},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 16, Len: 4},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: d4[:]},
		&expr.Target{Name: "NFQUEUE", Rev: 3, Info: &info},
	}})
	if err := c.Flush(); err != nil {
		return fmt.Errorf("write %s (xtables NFQUEUE through nft_compat): %w", mirrorTable, err)
	}
	return nil
}

// dropMirror removes the benchmark's queue table.
func (cp *controlPlane) dropMirror() {
	_, _ = cp.nft("delete", "table", "inet", mirrorTable)
}
