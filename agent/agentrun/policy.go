package agentrun

import (
	"fmt"

	"github.com/plexus-net/plexus/agent"
	"github.com/plexus-net/plexus/agent/nsthread"
	"github.com/plexus-net/plexus/agent/policy"
	"github.com/plexus-net/plexus/agent/policy/conntrack"
	policynft "github.com/plexus-net/plexus/agent/policy/nftables"
)

// newPolicyPlane builds the NetworkPolicy plane in the data plane's namespace: nft runs on
// thread, element changes go through a lasting nf_tables socket opened there, and conntrack
// entries are cut there. The returned function closes the socket.
func newPolicyPlane(thread *nsthread.Thread) (*agent.PolicyPlane, func(), error) {
	nft, err := nsthread.NFTables(thread, policynft.NewNFTables)
	if err != nil {
		return nil, nil, err
	}
	var nl *policynft.Netlink
	// A netlink socket stays in the namespace it was opened in, whichever thread uses it.
	if err := thread.Run(func() (err error) { nl, err = policynft.NewNetlink(); return err }); err != nil {
		return nil, nil, fmt.Errorf("open the NetworkPolicy netlink socket: %w", err)
	}
	p := agent.NewPolicyPlane(policynft.New(nft, policynft.WithNetlink(nl)), nsConntrack{t: thread, inner: conntrack.Netlink{}})
	return p, func() { _ = nl.Close() }, nil
}

// nsConntrack is a conntrack table whose calls run on a Thread: the conntrack netlink socket is
// opened per call, in the namespace of the calling thread.
type nsConntrack struct {
	t     *nsthread.Thread
	inner conntrack.Table
}

var _ conntrack.Table = nsConntrack{}

// DeleteMatching implements conntrack.Table.
func (c nsConntrack) DeleteMatching(family uint8, match func(policy.Flow) bool) (n uint, err error) {
	err = c.t.Run(func() (err error) { n, err = c.inner.DeleteMatching(family, match); return err })
	return n, err
}
