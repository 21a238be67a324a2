package proxy

import "testing"

// TestBestListener: the listener a name selects, as the Gateway API picks it.
func TestBestListener(t *testing.T) {
	hostnames := []string{"", "*.wildcard.org", "fourth-example.wildcard.org", "second-example.org", "*.a.wildcard.org"}
	for name, want := range map[string]int{
		"second-example.org":          3,
		"SECOND-example.org.":         3,
		"fourth-example.wildcard.org": 2,
		"third.wildcard.org":          1,
		"x.a.wildcard.org":            4, // the longer wildcard suffix wins
		"wildcard.org":                0, // a wildcard needs one more label
		"unknown.example":             0,
	} {
		if got := bestListener(hostnames, name); got != want {
			t.Errorf("bestListener(%q) = %d, want %d", name, got, want)
		}
	}
	if got := bestListener([]string{"a.example"}, "b.example"); got != -1 {
		t.Errorf("no listener for b.example: got %d, want -1", got)
	}
}
