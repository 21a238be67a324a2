package render

import "testing"

// TestAgentStatusPolicyGolden pins the policy that confines each agent to its own NodeNetwork's
// status (its behaviour against a real API server is tested in test/envtest).
func TestAgentStatusPolicyGolden(t *testing.T) {
	expectGolden(t, "agent-status-policy", AgentStatusPolicy("plexus-system"))
}
