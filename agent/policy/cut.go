package policy

// Cuts reports whether an established flow must be cut when the data plane
// moves from prev to next: prev allowed it and next denies it. A nil prev
// means nothing was enforced before (every flow was allowed). Flows that
// next still allows, or that prev already denied (they exist only because
// they predate prev), are left alone.
func Cuts(prev, next *Model, f Flow) bool {
	if next.Evaluate(f).Verdict != Deny {
		return false
	}
	return prev == nil || prev.Evaluate(f).Verdict == Allow
}

// FlowsToCut returns the flows Cuts selects, in order.
func FlowsToCut(prev, next *Model, flows []Flow) []Flow {
	var out []Flow
	for _, f := range flows {
		if Cuts(prev, next, f) {
			out = append(out, f)
		}
	}
	return out
}
