package proxy

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/plexus-net/plexus/ingress/translate"
)

// TestRealProxyGatewayTimeoutSparesBackend is HTTPRouteTimeoutRequest against a backend that, like
// the conformance suite's echo server, sleeps through a cancelled request: a rule's timeout
// answers 504, and the endpoints it cut short stay in service for the rule without a timeout
// (and for the timed rule's next requests) instead of being marked down for everyone.
func TestRealProxyGatewayTimeoutSparesBackend(t *testing.T) {
	p, opts := gatewayProxy(t)
	in := translate.Input{}
	sleepy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if d, err := time.ParseDuration(r.URL.Query().Get("delay")); err == nil {
			time.Sleep(d) // deaf to the proxy's cancellation, as echo-basic is
		}
		fmt.Fprint(w, "sleepy ")
	}))
	t.Cleanup(sleepy.Close)
	svc, es := serviceFor("sleepy", &backend{name: "sleepy", srv: sleepy, port: int32(sleepy.Listener.Addr().(*net.TCPAddr).Port)})
	in.Services, in.EndpointSlices = append(in.Services, svc), append(in.EndpointSlices, es)
	in.GatewayClasses = plexusClass()
	in.Gateways = []gwv1.Gateway{{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "edge"}, Spec: gwv1.GatewaySpec{
		GatewayClassName: "plexus", Listeners: []gwv1.Listener{gwListener("http", 80, "")}}}}
	in.HTTPRoutes = []gwv1.HTTPRoute{
		gwRoute("timed", []gwv1.ParentReference{gwParent("edge", "")}, "/request-timeout", "sleepy", "300ms"),
		gwRoute("disabled", []gwv1.ParentReference{gwParent("edge", "")}, "/disable-request-timeout", "sleepy", "0s"),
	}
	port := gatewayServices(t, &in, opts)["shop/edge/80"]
	if _, err := p.Load(translate.Translate(in, opts).Config); err != nil {
		t.Fatalf("load: %v", err)
	}
	for i := range 3 {
		for _, tc := range []struct {
			path   string
			status int
		}{
			{"/request-timeout", 200},
			{"/request-timeout?delay=600ms", 504},
			{"/disable-request-timeout?delay=600ms", 200},
			{"/request-timeout", 200},
		} {
			if status, body := gwGet(t, port, "example.com", tc.path); status != tc.status {
				t.Errorf("round %d: GET %s: %d %q, want %d", i, tc.path, status, body, tc.status)
			}
		}
	}
}
