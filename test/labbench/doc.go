// Package labbench measures Plexus end to end on a real multi-node lab (internal/lab): how long a
// new Service takes to be reachable from every node, and how long a joining node takes from
// registering to Ready with routes to it on every other node. The benchmarks need root and start
// (and remove) a lab of their own; they skip, saying why, when that is not possible.
package labbench
