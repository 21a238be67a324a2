package status

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/plexus-net/plexus/api/v1alpha1"
)

func TestPoliciesPlane(t *testing.T) {
	counted := v1.NodeNetworkStatus{Policies: 9, IsolatedPods: 9, PolicyRules: 9, PolicyObjects: 9}
	tests := []struct {
		name       string
		in         Policies
		status     metav1.ConditionStatus
		reason     string
		msg        string // a part of the message
		wantCounts string // the counts after the plane's Counts ("kept": unchanged)
	}{
		{name: "enforced", in: Policies{Enabled: true, Policies: 2, IsolatedPods: 3, Rules: 7, Objects: 20},
			status: metav1.ConditionTrue, reason: v1.ReasonProgrammed, msg: "every NetworkPolicy that selects pods of this node is enforced",
			wantCounts: "2 3 7 20"},
		{name: "disabled", in: Policies{},
			status: metav1.ConditionTrue, reason: v1.ReasonPolicyDisabled, msg: "networkPolicy.enabled is false", wantCounts: "0 0 0 0"},
		{name: "a policy fails closed", in: Policies{Enabled: true, Policies: 1, Unreadable: []error{errors.New("policy a/bad: podSelector: nope")}},
			status: metav1.ConditionTrue, reason: v1.ReasonPolicyUnreadable, msg: "1 could not be read fully and fail closed (allow less than they say): policy a/bad", wantCounts: "1 0 0 0"},
		{name: "failed", in: Policies{Enabled: true, Err: errors.New("nft: boom")},
			status: metav1.ConditionFalse, reason: v1.ReasonPolicyFailed, msg: "nft: boom (retrying with backoff)", wantCounts: "kept"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := PoliciesPlane(tc.in)
			c := p.Condition
			if c.Type != v1.ConditionPoliciesProgrammed || c.Status != tc.status || c.Reason != tc.reason || !strings.Contains(c.Message, tc.msg) {
				t.Errorf("condition %+v, want %s %s containing %q", c, tc.status, tc.reason, tc.msg)
			}
			if (p.Err != nil) != (tc.in.Err != nil) || p.Generation {
				t.Errorf("err %v, generation %v", p.Err, p.Generation)
			}
			s := counted
			if p.Counts != nil {
				p.Counts(&s)
			}
			got := fmt.Sprintf("%d %d %d %d", s.Policies, s.IsolatedPods, s.PolicyRules, s.PolicyObjects)
			if tc.wantCounts == "kept" {
				tc.wantCounts = "9 9 9 9"
			}
			if got != tc.wantCounts {
				t.Errorf("counts %s, want %s", got, tc.wantCounts)
			}
		})
	}
}
