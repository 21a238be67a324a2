package agent

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/plexus-net/plexus/agent/proxy/manager"
	"github.com/plexus-net/plexus/agent/routing"
	"github.com/plexus-net/plexus/agent/status"
)

// statusPatchTimeout bounds the status patch, so an unresponsive API server delays the next sync
// (and the data plane's repair) by at most this much.
const statusPatchTimeout = 15 * time.Second

// SyncResult says what one sync wrote; a no-op sync has every field zero.
type SyncResult struct {
	// RouteChanges is the number of kernel routing changes (routes, VXLAN device and entries).
	RouteChanges int
	// MasqueradeWritten says the masquerade table was written.
	MasqueradeWritten bool
	// NodeStateWritten says the CNI node state file was written.
	NodeStateWritten bool
	// ServicesWritten says the service proxy's data plane was written.
	ServicesWritten bool
	// StatusPatched says the NodeNetwork status was patched.
	StatusPatched bool
}

// Wrote reports whether the sync wrote anything anywhere.
func (r SyncResult) Wrote() bool {
	return r.RouteChanges > 0 || r.MasqueradeWritten || r.NodeStateWritten || r.ServicesWritten || r.StatusPatched
}

// Sync runs one sync: snapshot, translate, program, report. full makes the routing data plane
// read the kernel instead of trusting what it programmed last. The error is a *WaitingError when
// the control plane has not given the node what it needs (nothing is programmed then).
func (a *Agent) Sync(ctx context.Context, full bool) (SyncResult, error) {
	logger := log.FromContext(ctx) // carries the node name (see Run)
	start := a.now()
	kind := "partial"
	if full {
		kind = "full"
		a.Routes.ForceFullSync()
	}
	if a.Metrics != nil {
		a.Metrics.Syncs.WithLabelValues(kind).Inc()
	}
	in, err := a.Source.Inputs(ctx)
	if err != nil {
		a.countError()
		return SyncResult{}, fmt.Errorf("read API objects: %w", err)
	}
	in.NodeName, in.NodeIPOverride = a.NodeName, a.NodeIPOverride

	var res SyncResult
	// Programming runs to its end even if ctx ends meanwhile (SIGTERM): killing an nft run half
	// way would only leave the next agent to repair what this one started. The status patch
	// below does honour ctx, so a hung API server cannot hold up a stop.
	obs, progErr := a.program(context.WithoutCancel(ctx), in, &res, full)
	obs.Finished = a.now()
	obs.Duration = obs.Finished.Sub(start)

	var waiting *WaitingError
	switch {
	case progErr == nil:
		a.ready.Store(true)
		if a.Metrics != nil {
			a.Metrics.SyncDuration.Observe(obs.Duration.Seconds())
			a.Metrics.Routes.Set(float64(obs.Routes))
		}
	case errors.As(progErr, &waiting):
	default:
		a.countError()
	}

	patched, err := a.report(ctx, in, obs)
	res.StatusPatched = patched
	if err != nil {
		if progErr == nil {
			a.countError()
			progErr = err
		} else {
			logger.Error(err, "Could not report the failed sync in the NodeNetwork status")
		}
	}
	if res.Wrote() {
		logger.Info("Synced", "kind", kind, "routeChanges", res.RouteChanges, "masquerade", res.MasqueradeWritten,
			"nodeState", res.NodeStateWritten, "services", res.ServicesWritten, "status", res.StatusPatched, "duration", obs.Duration)
	} else {
		logger.V(2).Info("Synced, nothing to change", "kind", kind, "duration", obs.Duration)
	}
	if res.ServicesWritten && !a.startupMemoryReleased {
		a.startupMemoryReleased = true
		releaseTransientMemory()
	}
	return res, progErr
}

// releaseTransientMemory collects garbage and returns free memory to the kernel at once, after
// the first sync that programmed Services. That sync loads (or rebuilds) the whole table and
// allocates and drops tens of MiB at 10k Services (the model's first build, the elements, nft's
// text); left to the runtime, the next collection's target is twice that peak, and the process
// keeps it resident long after. One forced collection (tens of ms at 10k, after the data plane
// is written) makes the footprint and the next target follow what the agent really holds. Later
// syncs write only changes, the periodic full ones included, so they need none.
func releaseTransientMemory() { debug.FreeOSMemory() }

func (a *Agent) countError() {
	if a.Metrics != nil {
		a.Metrics.SyncErrors.Inc()
	}
}

// program translates in and programs the node, filling res; obs says what it found and did.
func (a *Agent) program(ctx context.Context, in Inputs, res *SyncResult, full bool) (status.Observation, error) {
	var obs status.Observation
	if nn := findNodeNetwork(in.NodeNetworks, a.NodeName); nn != nil {
		obs.NodeNetworkGeneration = nn.Generation
	}
	fail := func(reason string, err error) (status.Observation, error) {
		var waiting *WaitingError
		if errors.As(err, &waiting) {
			obs.Waiting, obs.WaitingMessage = waiting.Reason, waiting.Message
		} else {
			obs.Err, obs.ErrReason = err, reason
		}
		return obs, err
	}

	nodeIPs, err := LocalNodeIPs(in)
	if err != nil {
		return fail(status.ReasonSyncFailed, err)
	}
	obs.NodeIPs = nodeIPs
	uplink, err := a.Uplinks.Uplink(nodeIPs)
	if err != nil {
		return fail(status.ReasonSyncFailed, fmt.Errorf("find the uplink of node IPs %v: %w", nodeIPs, err))
	}
	obs.Uplink = uplink.Name
	d, err := Translate(in, uplink)
	if err != nil {
		return fail(status.ReasonSyncFailed, err)
	}

	plan, err := a.Routes.Sync(d.Routing)
	res.RouteChanges = plan.Changes()
	if err != nil {
		return fail(status.ReasonRoutingFailed, err)
	}
	obs.Routes = len(routing.Desired(d.Routing).Routes)
	obs.MTU = d.NodeState.MTU
	for _, u := range plan.Unroutable {
		obs.Unroutable = append(obs.Unroutable, u.String())
	}

	if d.Masquerade != nil {
		if res.MasqueradeWritten, err = a.Masquerade.Sync(ctx, *d.Masquerade); err != nil {
			return fail(status.ReasonMasqueradeFailed, err)
		}
	} else if err := a.Masquerade.Remove(ctx); err != nil {
		return fail(status.ReasonMasqueradeFailed, err)
	}

	if res.NodeStateWritten, err = writeNodeState(a.NodeStatePath, d.NodeState); err != nil {
		return fail(status.ReasonCNIFailed, err)
	}
	if a.Pods != nil {
		if n, err := a.Pods(); err == nil {
			obs.Pods = n
		} else {
			log.FromContext(ctx).Error(err, "Could not count pods; reporting 0")
		}
	}
	obs.ProgrammedGeneration = d.ProgrammedGeneration
	if a.Services != nil {
		r := a.Services.Sync(ctx, d.Services, full)
		res.ServicesWritten = r.Wrote
		obs.Services = servicesObservation(r)
		if r.Err != nil {
			return obs, r.Err
		}
	}
	return obs, nil
}

// servicesObservation is the status package's view of a service proxy sync.
func servicesObservation(r manager.Result) *status.Services {
	s := &status.Services{Mode: r.Mode, Services: r.Counts.Services, ServicePorts: r.Counts.ServicePorts,
		Endpoints: r.Counts.Endpoints, Err: r.Err, Unavailable: r.Unavailable}
	for _, f := range r.Supported {
		s.Supported = append(s.Supported, string(f))
	}
	for _, f := range r.Unsupported {
		s.Unsupported = append(s.Unsupported, string(f))
	}
	return s
}

// report patches the NodeNetwork status when it changed. Without a NodeNetwork there is nothing
// to report to (the operator creates it with the pod CIDRs).
func (a *Agent) report(ctx context.Context, in Inputs, obs status.Observation) (bool, error) {
	nn := findNodeNetwork(in.NodeNetworks, a.NodeName)
	if nn == nil || a.Status == nil {
		return false, nil
	}
	prev := nn.Status
	// The cache may lag behind the agent's own last patch; that patch is what the API holds (the
	// agent is the only writer of the status). A stale base would make the merge patch miss
	// fields that the last patch changed.
	if a.written != nil && a.writtenUID == nn.UID {
		prev = *a.written
	}
	next := status.Build(prev, obs)
	if !status.Changed(prev, next) {
		a.countsPending = false
		return false, nil
	}
	if status.OnlyCountsChanged(prev, next) && a.now().Sub(a.lastPatch) < CountsInterval {
		a.countsPending = true
		return false, nil
	}
	base := nn.DeepCopy()
	base.Status = prev
	pctx, cancel := context.WithTimeout(ctx, statusPatchTimeout)
	defer cancel()
	if err := a.Status.PatchStatus(pctx, base, next); err != nil {
		a.written = nil
		return false, fmt.Errorf("patch status of NodeNetwork %s: %w", nn.Name, err)
	}
	a.written, a.writtenUID = &next, nn.UID
	a.lastPatch, a.countsPending = a.now(), false
	return true, nil
}
