package gatewayapi

import "testing"

// TestEmbeddedCRDs: the CRDs of the served kinds are embedded, from the module's release.
func TestEmbeddedCRDs(t *testing.T) {
	crds, err := CRDs()
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]string{}
	for _, c := range crds {
		have[c.Name] = c.Annotations["gateway.networking.k8s.io/bundle-version"]
	}
	for _, want := range []string{"gatewayclasses", "gateways", "httproutes", "referencegrants", "grpcroutes"} {
		v, ok := have[want+".gateway.networking.k8s.io"]
		if !ok {
			t.Fatalf("CRD %s not embedded; have %v", want, have)
		}
		if v != BundleVersion() || v == "" {
			t.Fatalf("CRD %s is of bundle %q, want %q", want, v, BundleVersion())
		}
	}
}
