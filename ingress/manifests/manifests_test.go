package manifests

import (
	"os"
	"path/filepath"
	"testing"
)

func TestReadKeepsTheTranslationsKindsOnly(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"a.yaml": `# comment only document
---
apiVersion: networking.k8s.io/v1
kind: IngressClass
metadata: {name: plexus}
spec: {controller: plexus.dev/ingress}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: skipped, namespace: shop}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: site, namespace: shop}
spec:
  ingressClassName: plexus
  rules:
  - host: shop.example.com
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}
`,
		"b.json": `{"apiVersion":"v1","kind":"Service","metadata":{"name":"web","namespace":"shop"},"spec":{"ports":[{"port":80}]}}`,
		"c.yml": `apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: web-1, namespace: shop, labels: {kubernetes.io/service-name: web}}
addressType: IPv4
ports: [{port: 8080}]
endpoints: [{addresses: [10.0.0.1]}]
---
apiVersion: v1
kind: Secret
metadata: {name: tls, namespace: shop}
type: kubernetes.io/tls
data: {tls.crt: Y3J0, tls.key: a2V5}
`,
		"ignored.txt": "not yaml at all: [",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	in, err := Read(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(in.IngressClasses) != 1 || len(in.Ingresses) != 1 || len(in.Services) != 1 || len(in.EndpointSlices) != 1 || len(in.Secrets) != 1 {
		t.Fatalf("read %d classes, %d ingresses, %d services, %d slices, %d secrets; want one of each",
			len(in.IngressClasses), len(in.Ingresses), len(in.Services), len(in.EndpointSlices), len(in.Secrets))
	}
	if got := in.Ingresses[0].Spec.Rules[0].HTTP.Paths[0].Backend.Service.Name; got != "web" {
		t.Errorf("ingress backend = %q, want web", got)
	}
	if got := string(in.Secrets[0].Data["tls.crt"]); got != "crt" {
		t.Errorf("secret tls.crt = %q, want crt", got)
	}
	if _, err := Read(filepath.Join(dir, "missing")); err == nil {
		t.Errorf("a missing path: want an error")
	}
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("apiVersion: v1\nkind: Service\nspec: {ports: 7}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Read(bad); err == nil {
		t.Errorf("a malformed Service: want an error")
	}
}
