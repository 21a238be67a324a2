package hostport

import (
	"net/netip"
	"strings"
	"testing"
)

func TestExpand(t *testing.T) {
	dual := []netip.Addr{netip.MustParseAddr("10.244.0.5"), netip.MustParseAddr("fd10:244::5")}
	v4only := dual[:1]
	for _, c := range []struct {
		name    string
		pms     []RuntimePortMapping
		ips     []netip.Addr
		want    string // mappings joined by "; "
		wantErr string
	}{
		{"wildcard on a dual-stack pod is one per family", []RuntimePortMapping{{HostPort: 80, ContainerPort: 8080}}, dual,
			"tcp *:80 (IPv4) -> 10.244.0.5:8080; tcp *:80 (IPv6) -> [fd10:244::5]:8080", ""},
		{"0.0.0.0 is the IPv4 wildcard", []RuntimePortMapping{{HostPort: 80, ContainerPort: 8080, HostIP: "0.0.0.0"}}, dual,
			"tcp *:80 (IPv4) -> 10.244.0.5:8080", ""},
		{":: is the IPv6 wildcard", []RuntimePortMapping{{HostPort: 80, ContainerPort: 8080, HostIP: "::"}}, dual,
			"tcp *:80 (IPv6) -> [fd10:244::5]:8080", ""},
		{"specific address, protocol in any case", []RuntimePortMapping{{HostPort: 53, ContainerPort: 5353, Protocol: "UDP", HostIP: "fd10:99::11"}}, dual,
			"udp [fd10:99::11]:53 -> [fd10:244::5]:5353", ""},
		{"duplicates collapse", []RuntimePortMapping{{HostPort: 80, ContainerPort: 8080}, {HostPort: 80, ContainerPort: 8080, Protocol: "tcp"}}, v4only,
			"tcp *:80 (IPv4) -> 10.244.0.5:8080", ""},
		{"bad protocol", []RuntimePortMapping{{HostPort: 80, ContainerPort: 80, Protocol: "icmp"}}, dual, "", `protocol "icmp"`},
		{"bad port", []RuntimePortMapping{{HostPort: 0, ContainerPort: 80}}, dual, "", "hostPort 0"},
		{"bad host IP", []RuntimePortMapping{{HostPort: 80, ContainerPort: 80, HostIP: "node"}}, dual, "", "not an IP address"},
		{"family the pod lacks", []RuntimePortMapping{{HostPort: 80, ContainerPort: 80, HostIP: "fd10:99::11"}}, v4only, "", "no IPv6 address"},
	} {
		got, err := Expand(c.pms, c.ips)
		if c.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Errorf("%s: error %v, want one containing %q", c.name, err, c.wantErr)
			}
			continue
		}
		var s []string
		for _, m := range got {
			s = append(s, m.String())
		}
		if err != nil || strings.Join(s, "; ") != c.want {
			t.Errorf("%s: %q (%v), want %q", c.name, strings.Join(s, "; "), err, c.want)
		}
	}
}

// TestConflict: equal ports on other host IPs or protocols coexist; the same frontend twice
// does not.
func TestConflict(t *testing.T) {
	pod := func(ip, hostIP, proto string) []Mapping {
		ms, err := Expand([]RuntimePortMapping{{HostPort: 54321, ContainerPort: 8080, HostIP: hostIP, Protocol: proto}}, []netip.Addr{netip.MustParseAddr(ip)})
		if err != nil {
			t.Fatal(err)
		}
		return ms
	}
	held := append(pod("10.244.0.5", "127.0.0.1", "tcp"), pod("10.244.0.6", "10.99.0.11", "tcp")...)
	if err := Conflict(held, pod("10.244.0.7", "10.99.0.11", "udp")); err != nil {
		t.Errorf("udp beside tcp: %v", err)
	}
	if err := Conflict(held, pod("10.244.0.7", "", "tcp")); err != nil {
		t.Errorf("wildcard beside specific addresses: %v", err)
	}
	err := Conflict(held, pod("10.244.0.7", "10.99.0.11", "tcp"))
	if err == nil || !strings.Contains(err.Error(), "tcp 10.99.0.11:54321 is already mapped to 10.244.0.6:8080") {
		t.Errorf("same frontend twice: %v", err)
	}
}
