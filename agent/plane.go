package agent

import (
	"context"

	"github.com/plexus-net/plexus/agent/status"
)

// Names of the agent's planes (logs, SyncResult).
const (
	// PlaneRoutes is the routing plane; it logs its number of changes as "routeChanges".
	PlaneRoutes = "routes"
	// PlaneMasquerade is the masquerade table.
	PlaneMasquerade = "masquerade"
	// PlaneCNI is the CNI node state file.
	PlaneCNI = "nodeState"
	// PlaneServices is the service proxy.
	PlaneServices = "services"
)

// Plane is one of the node's data planes. Every sync runs every plane with the same desired
// state, whatever another plane did: a failing plane never stops another, and each reports in a
// NodeNetwork condition of its own. A new plane implements Plane and joins the one list the
// wiring gives Agent.Planes (see docs/agent.md).
type Plane interface {
	// Name names the plane in logs and in SyncResult.
	Name() string
	// Condition is the NodeNetwork condition type that reports the plane.
	Condition() string
	// Sync makes the plane's part of the node match d, writing nothing when it already does;
	// full makes it compare with the kernel (or files) instead of trusting its memory. The
	// result carries any failure; d is shared by all planes and must not be changed.
	Sync(ctx context.Context, d *Desired, full bool) PlaneResult
}

// PlaneResult is what one plane's sync did.
type PlaneResult struct {
	// Wrote says the plane wrote to the kernel or to files.
	Wrote bool
	// Changes is the number of changes written, for planes that count them (routes); 0 otherwise.
	Changes int
	// Report is the plane's part of the NodeNetwork status: its condition (and reason), its
	// counters and its error.
	Report status.Plane
}

// Err is the plane's failure; nil when it succeeded.
func (r PlaneResult) Err() error { return r.Report.Err }

// PlaneOutcome is what one plane wrote in a sync.
type PlaneOutcome struct {
	// Name is the plane's name.
	Name string
	// Wrote and Changes are the plane's PlaneResult fields.
	Wrote   bool
	Changes int
}

// SyncResult says what one sync wrote; a no-op sync wrote nothing anywhere.
type SyncResult struct {
	// Planes are the planes' outcomes, in the order they ran; empty when none ran.
	Planes []PlaneOutcome
	// StatusPatched says the NodeNetwork status was patched.
	StatusPatched bool
}

// Plane returns the outcome of the plane named name (zero if it did not run).
func (r SyncResult) Plane(name string) PlaneOutcome {
	for _, p := range r.Planes {
		if p.Name == name {
			return p
		}
	}
	return PlaneOutcome{}
}

// Wrote reports whether the sync wrote anything anywhere.
func (r SyncResult) Wrote() bool {
	for _, p := range r.Planes {
		if p.Wrote {
			return true
		}
	}
	return r.StatusPatched
}

// logValues are the key/value pairs of the sync's log line: every plane's outcome in the order
// the planes ran (the routes plane's number of changes as "routeChanges", the others' wrote?),
// then the status patch. The keys are stable: tools (and test/podnetwork) read the line.
func (r SyncResult) logValues() []any {
	var kv []any
	for _, p := range r.Planes {
		if p.Name == PlaneRoutes {
			kv = append(kv, "routeChanges", p.Changes)
			continue
		}
		kv = append(kv, p.Name, p.Wrote)
	}
	return append(kv, "status", r.StatusPatched)
}
