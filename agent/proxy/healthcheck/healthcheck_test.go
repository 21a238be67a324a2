package healthcheck

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"testing"
)

// TestServers: 200 with local endpoints, 503 without, stopped when the
// port is no longer wanted.
func TestServers(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := uint16(ln.Addr().(*net.TCPAddr).Port)
	s := New(func(p uint16) (net.Listener, error) {
		if p != port {
			return nil, fmt.Errorf("unexpected port %d", p)
		}
		return ln, nil
	})
	t.Cleanup(func() { _ = s.Close() })
	get := func() (int, int) {
		t.Helper()
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/", port))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var r Response
		if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, r.LocalEndpoints
	}
	if err := s.Sync(map[uint16]int{port: 2}); err != nil {
		t.Fatal(err)
	}
	if code, n := get(); code != 200 || n != 2 {
		t.Errorf("with 2 local endpoints: %d %d, want 200 2", code, n)
	}
	if err := s.Sync(map[uint16]int{port: 0}); err != nil {
		t.Fatal(err)
	}
	if code, n := get(); code != 503 || n != 0 {
		t.Errorf("without local endpoints: %d %d, want 503 0", code, n)
	}
	if err := s.Sync(nil); err != nil {
		t.Fatal(err)
	}
	if _, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/", port)); err == nil {
		t.Errorf("server still answers after its port was removed")
	}
}
