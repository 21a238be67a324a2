package cni

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/containernetworking/cni/pkg/types"

	"github.com/plexus-net/plexus/agent/hostport"
)

func TestParseConfig(t *testing.T) {
	tests := []struct {
		name     string
		json     string
		wantCode uint
		wantMsg  string
		check    func(t *testing.T, c *Config)
	}{
		{
			name: "defaults",
			json: `{"cniVersion":"1.1.0","name":"plexus","type":"plexus-cni"}`,
			check: func(t *testing.T, c *Config) {
				if c.NodeStatePath != DefaultNodeStatePath || c.DataDir != DefaultDataDir || c.MTU != 0 {
					t.Errorf("defaults not applied: %+v", c)
				}
			},
		},
		{
			name: "port mappings from the runtime",
			json: `{"cniVersion":"1.1.0","name":"plexus","type":"plexus-cni",
				"runtimeConfig":{"portMappings":[{"hostPort":54321,"containerPort":8080,"protocol":"udp","hostIP":"10.99.0.11"},{"hostPort":80,"containerPort":8080}]}}`,
			check: func(t *testing.T, c *Config) {
				want := []hostport.RuntimePortMapping{{HostPort: 54321, ContainerPort: 8080, Protocol: "udp", HostIP: "10.99.0.11"}, {HostPort: 80, ContainerPort: 8080}}
				if !slices.Equal(c.PortMappings, want) {
					t.Errorf("port mappings %+v, want %+v", c.PortMappings, want)
				}
			},
		},
		{
			name: "explicit fields and runtime-injected extras are accepted",
			json: `{"cniVersion":"1.1.0","name":"plexus","type":"plexus-cni","nodeStatePath":"/tmp/s.json","dataDir":"/tmp/d","mtu":1450,
				"runtimeConfig":{"portMappings":[]},"args":{"cni":{}},"cni.dev/valid-attachments":[{"containerID":"c1","ifname":"eth0"}]}`,
			check: func(t *testing.T, c *Config) {
				if c.NodeStatePath != "/tmp/s.json" || c.DataDir != "/tmp/d" || c.MTU != 1450 {
					t.Errorf("fields not read: %+v", c)
				}
				if len(c.Net.ValidAttachments) != 1 || c.Net.ValidAttachments[0].ContainerID != "c1" {
					t.Errorf("valid attachments not read: %+v", c.Net.ValidAttachments)
				}
			},
		},
		{
			name: "prevResult is parsed",
			json: `{"cniVersion":"1.1.0","name":"plexus","type":"plexus-cni","prevResult":{"cniVersion":"1.1.0","ips":[{"address":"10.244.1.5/32","interface":1}]}}`,
			check: func(t *testing.T, c *Config) {
				if c.Net.PrevResult == nil {
					t.Error("prevResult not parsed")
				}
			},
		},
		{name: "not JSON", json: `{"name":`, wantCode: types.ErrDecodingFailure, wantMsg: "plexus-cni config is not valid JSON"},
		{name: "mtu of the wrong type", json: `{"name":"plexus","mtu":"1450"}`, wantCode: types.ErrInvalidNetworkConfig, wantMsg: `field "mtu": want a number, got a JSON string`},
		{name: "dataDir of the wrong type", json: `{"name":"plexus","dataDir":5}`, wantCode: types.ErrInvalidNetworkConfig, wantMsg: `field "dataDir": want a string, got a JSON number`},
		{name: "mtu too small", json: `{"name":"plexus","mtu":100}`, wantCode: types.ErrInvalidNetworkConfig, wantMsg: `field "mtu": 100 is out of range (576-65535, or 0 for the default)`},
		{name: "mtu too large", json: `{"name":"plexus","mtu":70000}`, wantCode: types.ErrInvalidNetworkConfig, wantMsg: `field "mtu": 70000 is out of range`},
		{name: "relative dataDir", json: `{"name":"plexus","dataDir":"var/lib/x"}`, wantCode: types.ErrInvalidNetworkConfig, wantMsg: `field "dataDir": "var/lib/x" is not an absolute path`},
		{name: "unclean nodeStatePath", json: `{"name":"plexus","nodeStatePath":"/run/plexus/../x.json"}`, wantCode: types.ErrInvalidNetworkConfig, wantMsg: `field "nodeStatePath": "/run/plexus/../x.json" is not a clean path (did you mean "/run/x.json"?)`},
		{name: "missing name", json: `{"type":"plexus-cni"}`, wantCode: types.ErrInvalidNetworkConfig, wantMsg: `field "name": missing`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := ParseConfig([]byte(tt.json))
			if tt.wantMsg == "" {
				if err != nil {
					t.Fatalf("ParseConfig: %v", err)
				}
				tt.check(t, c)
				return
			}
			var ce *types.Error
			if !errors.As(err, &ce) {
				t.Fatalf("ParseConfig error = %v (%T), want *types.Error", err, err)
			}
			if ce.Code != tt.wantCode || !strings.Contains(ce.Msg, tt.wantMsg) {
				t.Errorf("ParseConfig error = code %d %q, want code %d containing %q", ce.Code, ce.Msg, tt.wantCode, tt.wantMsg)
			}
		})
	}
}

func TestEffectiveMTU(t *testing.T) {
	v6 := NodeState{Version: 1, PodCIDRs: PodCIDRs{IPv6: mustPrefix("fd10:244:0:1::/64")}}
	v4 := NodeState{Version: 1, PodCIDRs: PodCIDRs{IPv4: mustPrefix("10.244.1.0/24")}}
	tests := []struct {
		name    string
		conf    int
		state   NodeState
		stMTU   int
		want    int
		wantErr string
	}{
		{name: "default", state: v4, want: DefaultMTU},
		{name: "from node state", state: v4, stMTU: 1450, want: 1450},
		{name: "config overrides node state", state: v4, conf: 9000, stMTU: 1450, want: 9000},
		{name: "small MTU fine for IPv4 only", state: v4, conf: 1000, want: 1000},
		{name: "small MTU refused with IPv6", state: v6, stMTU: 1000, wantErr: `MTU 1000 (from the node state's "mtu") is below 1280, the minimum for IPv6, and the node has IPv6 pod CIDR fd10:244:0:1::/64`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := tt.state
			st.MTU = tt.stMTU
			got, err := effectiveMTU(&Config{MTU: tt.conf}, &st)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("effectiveMTU error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("effectiveMTU = %d, %v; want %d", got, err, tt.want)
			}
		})
	}
}
