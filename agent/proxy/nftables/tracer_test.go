package nftables

import (
	"strconv"

	"sigs.k8s.io/knftables"

	"github.com/plexus-net/plexus/agent/nfttrace"
)

// packet is what the behaviour tests send through the table.
type packet = nfttrace.Packet

// newTracer returns a packet tracer over the fake's table, told this
// table's base chains, IPv6 affinity ct mark tag and endpoint maps.
func newTracer(fake *knftables.Fake) *nfttrace.Tracer {
	return nfttrace.New(fake, nfttrace.Layout{
		FilterPrerouting: chainFilterPrerouting, FilterOutput: chainFilterOutput,
		NATPrerouting: chainNatPrerouting, NATOutput: chainNatOutput, NATPostrouting: chainNatPostrouting,
		ChoiceTag: mustUint32(affinityMarkTag), ChoiceMask: mustUint32(affinityMarkMask),
		EndpointMaps: mapEndpoints + "-",
	})
}

func mustUint32(s string) uint32 {
	v, err := strconv.ParseUint(s, 0, 32)
	if err != nil {
		panic(err)
	}
	return uint32(v)
}
