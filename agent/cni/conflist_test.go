package cni

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/containernetworking/cni/libcni"
)

func TestRenderConflistGolden(t *testing.T) {
	tests := []struct {
		golden string
		opts   ConfigOptions
	}{
		{golden: "conflist-defaults.golden", opts: ConfigOptions{}},
		{golden: "conflist-custom.golden", opts: ConfigOptions{
			NetworkName: "plexus-lab", NodeStatePath: "/run/plexus-lab/node-state.json", DataDir: "/var/lib/plexus-lab/ipam", MTU: 1450,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.golden, func(t *testing.T) {
			got, err := RenderConflist(tt.opts)
			if err != nil {
				t.Fatalf("RenderConflist: %v", err)
			}
			assertGolden(t, tt.golden, got)
			again, _ := RenderConflist(tt.opts)
			if string(again) != string(got) {
				t.Error("RenderConflist is not deterministic")
			}
			// The rendered file must load the way a runtime loads it, and each plugin entry
			// must parse with our own parser.
			list, err := libcni.NetworkConfFromBytes(got)
			if err != nil {
				t.Fatalf("libcni cannot load the conflist: %v", err)
			}
			if list.CNIVersion != ConflistCNIVersion || len(list.Plugins) != 1 || list.Plugins[0].Network.Type != PluginType {
				t.Fatalf("unexpected conflist: version %s, %d plugins", list.CNIVersion, len(list.Plugins))
			}
			var withName map[string]any
			_ = json.Unmarshal(list.Plugins[0].Bytes, &withName)
			withName["name"], withName["cniVersion"] = list.Name, list.CNIVersion // what libcni injects
			b, _ := json.Marshal(withName)
			if _, err := ParseConfig(b); err != nil {
				t.Fatalf("plugin cannot parse its own conflist entry: %v", err)
			}
		})
	}
}

func TestRenderConflistRejectsBadOptions(t *testing.T) {
	tests := []struct {
		opts ConfigOptions
		want string
	}{
		{ConfigOptions{NetworkName: "bad name"}, `network name "bad name"`},
		{ConfigOptions{NodeStatePath: "run/x.json"}, `field "nodeStatePath": "run/x.json" is not an absolute path`},
		{ConfigOptions{DataDir: "/var//lib"}, `field "dataDir": "/var//lib" is not a clean path`},
		{ConfigOptions{MTU: 10}, `field "mtu": 10 is out of range`},
	}
	for _, tt := range tests {
		_, err := RenderConflist(tt.opts)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("RenderConflist(%+v) error = %v, want %q", tt.opts, err, tt.want)
		}
	}
}
