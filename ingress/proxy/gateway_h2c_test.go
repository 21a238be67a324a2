package proxy

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/plexus-net/plexus/ingress/translate"
)

// h2cOnlyBackend answers only HTTP/2 in clear text (prior knowledge), like the conformance
// suite's h2c port: HTTP/1.1 gets a 400.
func h2cOnlyBackend(t *testing.T) int32 {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ProtoMajor != 2 {
			http.Error(w, "Expected h2c request", http.StatusBadRequest)
			return
		}
		fmt.Fprintf(w, "h2c %s", r.Proto)
	})}
	srv.Protocols = new(http.Protocols)
	srv.Protocols.SetUnencryptedHTTP2(true)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return int32(ln.Addr().(*net.TCPAddr).Port)
}

// TestRealProxyGatewayH2C is HTTPRouteBackendProtocolH2C on loopback: a client speaking HTTP/2
// with prior knowledge to a Gateway reaches a backend whose Service port has appProtocol
// kubernetes.io/h2c over HTTP/2 cleartext; an HTTP/1.1 client reaches it too.
func TestRealProxyGatewayH2C(t *testing.T) {
	p, opts := gatewayProxy(t)
	in := translate.Input{}
	svc, es := serviceFor("grpcish", &backend{name: "grpcish", port: h2cOnlyBackend(t)})
	svc.Spec.Ports[0].AppProtocol = ptrTo(translate.AppProtocolH2C)
	in.Services, in.EndpointSlices = []corev1.Service{svc}, append(in.EndpointSlices, es)
	in.GatewayClasses = plexusClass()
	in.Gateways = []gwv1.Gateway{{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "edge"}, Spec: gwv1.GatewaySpec{
		GatewayClassName: "plexus", Listeners: []gwv1.Listener{gwListener("http", 80, "")}}}}
	in.HTTPRoutes = []gwv1.HTTPRoute{gwRoute("h2c", []gwv1.ParentReference{gwParent("edge", "")}, "/", "grpcish", "")}
	port := gatewayServices(t, &in, opts)["shop/edge/80"]
	if _, err := p.Load(translate.Translate(in, opts).Config); err != nil {
		t.Fatalf("load: %v", err)
	}
	h2c := &http.Transport{Protocols: new(http.Protocols)}
	h2c.Protocols.SetUnencryptedHTTP2(true)
	for name, c := range map[string]*http.Client{"h2c prior knowledge": {Transport: h2c, Timeout: 10 * time.Second}, "HTTP/1.1": {Timeout: 10 * time.Second}} {
		resp, err := c.Get(fmt.Sprintf("http://127.0.0.1:%d/", port))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.HasPrefix(string(b), "h2c HTTP/2") {
			t.Errorf("%s: %d %q, want the backend reached over HTTP/2", name, resp.StatusCode, b)
		}
	}
}
