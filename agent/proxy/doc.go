// Package proxy is the service proxy's model: a pure function (Build) turns
// Services, EndpointSlices and the node's identity into a Model that says,
// per service port and per IP family, which virtual addresses (VIPs) exist
// and where each kind of traffic to them goes. Every Kubernetes rule about
// endpoint choice (traffic policies, terminating fallback, topology hints)
// is resolved here, so a backend (nftables, IPVS) only programs what the
// model says.
//
// The package also holds the per-backend feature table (Feature,
// FeatureTable.Supports) and Unsupported, which lists what a Service uses that a
// backend cannot honour (for an Event).
//
// Change tracking: a Model is keyed per service port and family (Key); each
// ServicePort carries a Hash over everything a backend programs, so Diff
// finds what changed between two models without deep comparisons.
//
// Layout, the shape every agent plane with pluggable backends follows:
//
//	agent/proxy           the model (this package): pure, no kernel
//	agent/proxy/nftables  a backend: programs the model into nftables
//	agent/proxy/ipvs      a backend: programs the model into IPVS + a small nftables table
//	agent/proxy/manager   the manager the agent's sync loop calls: picks the backend of the
//	                      effective mode (manager.Backend), removes the others' state, records Events
package proxy
