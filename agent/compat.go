package agent

import "github.com/plexus-net/plexus/agent/cachetrim"

// Transforms kept under their old names for test/proxybench, whose proxy process must hold
// what the agent holds.
//
// Deprecated: use cachetrim.Service and cachetrim.EndpointSlice.
var (
	TrimService       = cachetrim.Service
	TrimEndpointSlice = cachetrim.EndpointSlice
)
