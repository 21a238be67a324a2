package manager

import (
	"context"
	"errors"
	"fmt"
	"os"

	"sigs.k8s.io/knftables"

	"github.com/plexus-net/plexus/agent/proxy"
	"github.com/plexus-net/plexus/agent/proxy/healthcheck"
	"github.com/plexus-net/plexus/agent/proxy/ipvs"
)

// ProcIPVS exists exactly when the kernel has IPVS.
const ProcIPVS = "/proc/net/ip_vs"

// IPVSKernel opens the kernel side of the IPVS backend; it returns an *UnavailableError when the
// kernel has no IPVS.
type IPVSKernel func() (ipvs.Interface, ipvs.Binder, error)

// HealthChecker serves the eTP Local health check node ports (healthcheck.Servers).
type HealthChecker interface {
	// Sync serves exactly the ports of localEndpoints, answering with their counts; an empty
	// map stops every server.
	Sync(localEndpoints map[uint16]int) error
	// Close stops every server.
	Close() error
}

// IPVS is the IPVS backend: virtual servers (through the kernel opened lazily by open), its
// nftables table (through nft, bound to ipvs.NFTFamily and NFTTable), the kernel settings of
// the mode and, when set, the eTP Local health check servers.
type IPVS struct {
	open    IPVSKernel
	nft     *ipvs.NFTSyncer
	syncer  *ipvs.Syncer
	hc      HealthChecker
	sysctls func() error
	// sysctlsSet says sysctls ran since the mode was last turned on.
	sysctlsSet bool
	// Errors receives failures that did not fail a sync (health check servers); nil drops them.
	Errors func(error)
}

var _ Backend = &IPVS{}

// IPVSOption configures the IPVS backend.
type IPVSOption func(*IPVS)

// WithHealthChecker makes the IPVS backend serve the health check node ports of the model after
// each successful sync; Remove stops them. Give it servers of its own: the nftables backend's
// Remove, which runs on every full sync in IPVS mode, closes the ones it was given.
func WithHealthChecker(hc HealthChecker) IPVSOption { return func(b *IPVS) { b.hc = hc } }

// WithSysctls sets what writes ipvs.Sysctls in the data plane's network namespace (e.g.
// ipvs.SetSysctls on a thread in it). It runs before the first sync after the mode is turned
// on, never for Remove: a node in another mode keeps its settings.
func WithSysctls(set func() error) IPVSOption { return func(b *IPVS) { b.sysctls = set } }

// NewIPVS returns the IPVS backend.
func NewIPVS(open IPVSKernel, nft knftables.Interface, opts ...IPVSOption) *IPVS {
	b := &IPVS{open: open, nft: ipvs.NewNFTSyncer(nft)}
	for _, o := range opts {
		o(b)
	}
	return b
}

// Features implements Backend.
func (b *IPVS) Features() proxy.FeatureTable { return ipvs.Features }

// RequestFullSync implements Backend.
func (b *IPVS) RequestFullSync() {
	if b.syncer != nil {
		b.syncer.RequestFullSync()
	}
}

func (b *IPVS) kernel() (*ipvs.Syncer, error) {
	if b.syncer != nil {
		return b.syncer, nil
	}
	i, bind, err := b.open()
	if err != nil {
		return nil, err
	}
	b.syncer = ipvs.NewSyncer(i, bind)
	return b.syncer, nil
}

// Sync implements Backend: kernel settings first (once), then the nftables table, IPVS, and the
// health check servers.
func (b *IPVS) Sync(ctx context.Context, m proxy.Model, cfg Config) (bool, error) {
	s, err := b.kernel()
	if err != nil {
		return false, err
	}
	if !b.sysctlsSet && b.sysctls != nil {
		if err := b.sysctls(); err != nil {
			return false, fmt.Errorf("kernel settings of the IPVS mode: %w", err)
		}
	}
	b.sysctlsSet = true
	wroteNFT, err := b.nft.Sync(ctx, m, ipvs.NFTConfig{PodCIDRs: cfg.PodCIDRs})
	if err != nil {
		return wroteNFT, err
	}
	plan, err := s.Sync(ipvs.DesiredState(m, ipvs.Config{Scheduler: cfg.IPVSScheduler}))
	if err != nil {
		return wroteNFT || plan.Changes() > 0, err
	}
	if b.hc != nil {
		if err := b.hc.Sync(healthcheck.Ports(m)); err != nil {
			b.report(fmt.Errorf("health check servers: %w", err))
		}
	}
	return wroteNFT || plan.Changes() > 0, nil
}

// Remove implements Backend: it stops the health check servers, deletes the table always, and
// when the kernel has IPVS (without it there is nothing) every virtual server of Plexus's
// (NodePorts on node's addresses included), the bound VIPs and the dummy device.
func (b *IPVS) Remove(ctx context.Context, node proxy.NodeInfo) (bool, error) {
	var hcErr error
	if b.hc != nil {
		hcErr = b.hc.Close()
	}
	b.sysctlsSet = false
	wrote := false
	if s, err := b.kernel(); err == nil {
		plan, err := s.Remove(node.Addresses)
		if err != nil {
			return false, errors.Join(err, hcErr)
		}
		// The Syncer now remembers the empty state, so later removals cost no kernel write.
		wrote = plan.Changes() > 0
	} else if _, ok := errors.AsType[*UnavailableError](err); !ok {
		return false, errors.Join(err, hcErr)
	}
	removed, err := b.nft.Remove(ctx)
	return wrote || removed, errors.Join(err, hcErr)
}

func (b *IPVS) report(err error) {
	if b.Errors != nil {
		b.Errors(err)
	}
}

// KernelIPVS opens the real IPVS in the network namespace at nsPath ("" for the agent's own),
// after checking /proc/net/ip_vs.
func KernelIPVS(nsPath string, binder func() (ipvs.Binder, error)) IPVSKernel {
	return func() (ipvs.Interface, ipvs.Binder, error) {
		if _, err := os.Stat(ProcIPVS); err != nil {
			return nil, nil, &UnavailableError{Mode: ipvs.Mode, Missing: "IPVS (CONFIG_IP_VS; no " + ProcIPVS + ")"}
		}
		k, err := ipvs.NewKernel(nsPath)
		if errors.Is(err, ipvs.ErrNoIPVS) {
			return nil, nil, &UnavailableError{Mode: ipvs.Mode, Missing: "IPVS (CONFIG_IP_VS; no " + ProcIPVS + ")"}
		}
		if err != nil {
			return nil, nil, err
		}
		bd, err := binder()
		if err != nil {
			k.Close()
			return nil, nil, err
		}
		return k, bd, nil
	}
}
