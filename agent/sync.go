package agent

import (
	"context"
	"errors"
	"fmt"

	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/plexus-net/plexus/agent/status"
)

// Sync runs one sync: snapshot, translate, run every plane, report. full makes the planes
// compare with the kernel instead of trusting what they programmed last. The error joins the
// planes' failures; it is a *WaitingError when the control plane has not given the node what it
// needs (no plane runs then).
func (a *Agent) Sync(ctx context.Context, full bool) (SyncResult, error) {
	logger := log.FromContext(ctx) // carries the node name (see Run)
	start := a.now()
	kind := "partial"
	if full {
		kind = "full"
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

	// Programming runs to its end even if ctx ends meanwhile (SIGTERM): killing an nft run half
	// way would only leave the next agent to repair what this one started. The status patch
	// below does honour ctx, so a hung API server cannot hold up a stop.
	obs, res, progErr := a.program(context.WithoutCancel(ctx), in, full)
	obs.Finished = a.now()
	obs.Duration = obs.Finished.Sub(start)

	var waiting *WaitingError
	switch {
	case progErr == nil:
		a.ready.Store(true)
		if a.Metrics != nil {
			a.Metrics.SyncDuration.Observe(obs.Duration.Seconds())
		}
	case errors.As(progErr, &waiting):
	default:
		a.countError()
	}

	patched, err := a.Reporter.Report(ctx, findNodeNetwork(in.NodeNetworks, a.NodeName), obs)
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
		logger.Info("Synced", append([]any{"kind", kind}, append(res.logValues(), "duration", obs.Duration)...)...)
	} else {
		logger.V(2).Info("Synced, nothing to change", "kind", kind, "duration", obs.Duration)
	}
	return res, progErr
}

func (a *Agent) countError() {
	if a.Metrics != nil {
		a.Metrics.SyncErrors.Inc()
	}
}

// program translates in and runs every plane on the result, each whatever the others did; obs
// says what it found and did, and the error joins the planes' failures.
func (a *Agent) program(ctx context.Context, in Inputs, full bool) (status.Observation, SyncResult, error) {
	var obs status.Observation
	var res SyncResult
	if nn := findNodeNetwork(in.NodeNetworks, a.NodeName); nn != nil {
		obs.NodeNetworkGeneration = nn.Generation
	}
	d, err := a.desired(in, &obs)
	if err != nil {
		var waiting *WaitingError
		if errors.As(err, &waiting) {
			obs.Waiting, obs.WaitingMessage = waiting.Reason, waiting.Message
		} else {
			obs.Err = err
		}
		for _, p := range a.Planes {
			obs.Planes = append(obs.Planes, status.NotRun(p.Condition()))
		}
		return obs, res, err
	}
	obs.MTU = d.NodeState.MTU
	obs.ProgrammedGeneration = d.ProgrammedGeneration
	if a.Pods != nil {
		if n, err := a.Pods(); err == nil {
			obs.Pods = n
		} else {
			log.FromContext(ctx).Error(err, "Could not count pods; reporting 0")
		}
	}
	var errs []error
	for _, p := range a.Planes {
		r := p.Sync(ctx, &d, full)
		res.Planes = append(res.Planes, PlaneOutcome{Name: p.Name(), Wrote: r.Wrote, Changes: r.Changes})
		obs.Planes = append(obs.Planes, r.Report)
		if err := r.Err(); err != nil {
			errs = append(errs, fmt.Errorf("%s plane: %w", p.Name(), err))
		}
	}
	return obs, res, errors.Join(errs...)
}

// desired is the first step of a sync: the node IPs, the uplink they are on, and the
// translation of the API objects into what the planes program. It fills what it found into obs.
func (a *Agent) desired(in Inputs, obs *status.Observation) (Desired, error) {
	nodeIPs, err := LocalNodeIPs(in)
	if err != nil {
		return Desired{}, err
	}
	obs.NodeIPs = nodeIPs
	uplink, err := a.Uplinks.Uplink(nodeIPs)
	if err != nil {
		return Desired{}, fmt.Errorf("find the uplink of node IPs %v: %w", nodeIPs, err)
	}
	obs.Uplink = uplink.Name
	return Translate(in, uplink)
}
