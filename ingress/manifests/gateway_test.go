package manifests

import (
	"os"
	"path/filepath"
	"testing"
)

// TestReadGatewayAPIKinds: standalone mode reads the Gateway API kinds and Namespaces too.
func TestReadGatewayAPIKinds(t *testing.T) {
	f := filepath.Join(t.TempDir(), "gw.yaml")
	doc := `apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: plexus}
spec: {controllerName: plexus.dev/gateway}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: edge, namespace: shop}
spec:
  gatewayClassName: plexus
  listeners: [{name: http, port: 80, protocol: HTTP}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: site, namespace: shop}
spec:
  parentRefs: [{name: edge}]
  rules: [{backendRefs: [{name: web, port: 80}]}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: ReferenceGrant
metadata: {name: g, namespace: other}
spec:
  from: [{group: gateway.networking.k8s.io, kind: HTTPRoute, namespace: shop}]
  to: [{group: "", kind: Service}]
---
apiVersion: v1
kind: Namespace
metadata: {name: shop, labels: {team: shop}}
`
	if err := os.WriteFile(f, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	in, err := Read(f)
	if err != nil {
		t.Fatal(err)
	}
	if len(in.GatewayClasses) != 1 || len(in.Gateways) != 1 || len(in.HTTPRoutes) != 1 || len(in.ReferenceGrants) != 1 || len(in.Namespaces) != 1 {
		t.Fatalf("read %d classes, %d gateways, %d routes, %d grants, %d namespaces; want one of each",
			len(in.GatewayClasses), len(in.Gateways), len(in.HTTPRoutes), len(in.ReferenceGrants), len(in.Namespaces))
	}
	if got := in.HTTPRoutes[0].Spec.Rules[0].BackendRefs[0].Name; got != "web" {
		t.Errorf("route backend %q, want web", got)
	}
}
