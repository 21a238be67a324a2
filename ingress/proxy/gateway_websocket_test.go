package proxy

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/plexus-net/plexus/ingress/translate"
)

// TestRealProxyGatewayUpgrade is HTTPRouteBackendProtocolWebSocket's mechanism on loopback: a
// request asking to upgrade (Connection: Upgrade, Upgrade: websocket) through a Gateway's front
// reaches the backend, the 101 comes back and both directions of the tunnel carry bytes.
func TestRealProxyGatewayUpgrade(t *testing.T) {
	p, opts := gatewayProxy(t)
	upgrader := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
			http.Error(w, "want an upgrade", http.StatusBadRequest)
			return
		}
		conn, rw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		fmt.Fprint(rw, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
		_ = rw.Flush()
		// Echo every line back, prefixed.
		for {
			line, err := rw.ReadString('\n')
			if err != nil {
				return
			}
			fmt.Fprint(rw, "echo "+line)
			_ = rw.Flush()
		}
	}))
	t.Cleanup(upgrader.Close)
	in := translate.Input{}
	svc, es := serviceFor("ws", &backend{name: "ws", srv: upgrader, port: int32(upgrader.Listener.Addr().(*net.TCPAddr).Port)})
	in.Services, in.EndpointSlices = append(in.Services, svc), append(in.EndpointSlices, es)
	in.GatewayClasses = plexusClass()
	in.Gateways = []gwv1.Gateway{{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "edge"}, Spec: gwv1.GatewaySpec{
		GatewayClassName: "plexus", Listeners: []gwv1.Listener{gwListener("http", 80, "")}}}}
	in.HTTPRoutes = []gwv1.HTTPRoute{gwRoute("ws", []gwv1.ParentReference{gwParent("edge", "")}, "/", "ws", "")}
	port := gatewayServices(t, &in, opts)["shop/edge/80"]
	if _, err := p.Load(translate.Translate(in, opts).Config); err != nil {
		t.Fatalf("load: %v", err)
	}
	conn, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprint(conn, "GET /ws HTTP/1.1\r\nHost: example.com\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("read the upgrade answer: %v", err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("upgrade answered %d %q", resp.StatusCode, b)
	}
	for _, msg := range []string{"one\n", "two\n"} {
		fmt.Fprint(conn, msg)
		got, err := br.ReadString('\n')
		if err != nil || got != "echo "+msg {
			t.Fatalf("through the tunnel: %q, %v; want %q", got, err, "echo "+msg)
		}
	}
}
