package agentrun

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/vishvananda/netns"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/plexus-net/plexus/agent/connectivity"
	"github.com/plexus-net/plexus/agent/nsthread"
	v1 "github.com/plexus-net/plexus/api/v1alpha1"
)

// newConnectivityProber builds the continuous connectivity check of the node (nil when
// --connectivity-probe-interval is 0): its probe addresses on lo, its UDP sockets and its DNS
// lookups all in the data plane's namespace, its targets from the informer cache. The caller
// sets Changed and runs it; the returned func closes it.
func newConnectivityProber(o Options, thread *nsthread.Thread, ns netns.NsHandle, c cache.Cache,
	reg prometheus.Registerer) (*connectivity.Prober, func(), error) {
	if o.ConnectivityProbeInterval == 0 {
		return nil, func() {}, nil
	}
	addrs, err := connectivity.NewLoopbackAddresses(ns)
	if err != nil {
		return nil, nil, err
	}
	udp := &connectivity.UDP{Port: uint16(o.ConnectivityProbePort), ListenUDP: func(network string, laddr *net.UDPAddr) (conn *net.UDPConn, err error) {
		// A socket stays in the namespace it was made in.
		err = thread.Run(func() (err error) { conn, err = net.ListenUDP(network, laddr); return err })
		return conn, err
	}}
	dns := connectivity.DNSProbe{Dial: func(network, addr string) (conn net.Conn, err error) {
		err = thread.Run(func() (err error) { conn, err = net.Dial(network, addr); return err })
		return conn, err
	}}
	p := &connectivity.Prober{
		Targets: func(ctx context.Context) (connectivity.Targets, error) {
			return connectivityTargets(ctx, c, o.NodeName)
		},
		Addresses:        addrs,
		Transport:        udp,
		DNS:              dns,
		Interval:         o.ConnectivityProbeInterval,
		FailureThreshold: o.ConnectivityFailureThreshold,
		Metrics:          connectivity.NewMetrics(reg),
	}
	return p, func() { _ = udp.Close(); addrs.Close() }, nil
}

// connectivityTargets reads what the prober probes from the informer cache.
func connectivityTargets(ctx context.Context, c cache.Cache, node string) (connectivity.Targets, error) {
	nns := &v1.NodeNetworkList{}
	if err := c.List(ctx, nns); err != nil {
		return connectivity.Targets{}, fmt.Errorf("list NodeNetworks: %w", err)
	}
	cn := &v1.ClusterNetwork{}
	if err := c.Get(ctx, client.ObjectKey{Name: v1.DefaultClusterNetworkName}, cn); err != nil {
		cn = nil // no DNS target without it; peers are still probed
	}
	return connectivity.TargetsFrom(node, cn, nns.Items), nil
}

// Defaults of the connectivity flags.
const (
	// DefaultConnectivityProbeInterval is --connectivity-probe-interval.
	DefaultConnectivityProbeInterval = connectivity.DefaultInterval
	// connectivityMinInterval keeps the probes cheap.
	connectivityMinInterval = time.Second
)
