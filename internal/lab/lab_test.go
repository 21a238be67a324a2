package lab

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"sigs.k8s.io/yaml"
)

func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

func TestNodeAddressesStayInTheUnderlay(t *testing.T) {
	c := DefaultConfig(repoRoot(t))
	seen := map[netip.Addr]string{c.gatewayV4(): "gateway", c.gatewayV6(): "gateway"}
	for i := 1; i <= 200; i++ {
		n := c.NodeAt(i)
		for _, a := range []netip.Addr{n.IPv4, n.IPv6} {
			if !c.UnderlayV4.Contains(a) && !c.UnderlayV6.Contains(a) {
				t.Fatalf("%s address %s is outside the underlay", n.Name, a)
			}
			if other, dup := seen[a]; dup {
				t.Fatalf("%s and %s share %s", n.Name, other, a)
			}
			seen[a] = n.Name
		}
	}
	if n := c.NodeAt(1); n.Name != "lab-node-1" || n.IPv4.String() != "10.99.0.11" || n.IPv6.String() != "fd10:99::11" {
		t.Fatalf("node 1 = %+v", n)
	}
}

func TestLabRangesComeFromTheSample(t *testing.T) {
	c := DefaultConfig(repoRoot(t))
	ranges, err := c.labRanges()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, r := range ranges {
		got[r.String()] = true
	}
	for _, want := range []string{"10.99.0.0/24", "fd10:99::/64", "10.244.0.0/16", "10.96.0.0/16"} {
		if !got[want] {
			t.Errorf("lab ranges %v lack %s", ranges, want)
		}
	}
	// The machine's uplink ranges must never be lab ranges.
	for _, uplink := range []string{"192.0.2.0/24", "fd00::/64"} {
		u := netip.MustParsePrefix(uplink)
		for _, r := range ranges {
			if r.Overlaps(u) {
				t.Errorf("lab range %s overlaps the machine's uplink %s", r, u)
			}
		}
	}
}

func TestImageTarballCarriesTheManifestNameAndEntrypoint(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "prog")
	if err := os.WriteFile(bin, []byte("#!/bin/true\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "img.tar")
	spec := imageSpec{Ref: AgentImage, Files: []imageFile{{Src: bin, Dst: "/usr/sbin/prog", Mode: 0o755}}, Entrypoint: []string{"/usr/sbin/prog"}}
	built, err := buildImage(out, spec)
	if err != nil || !built {
		t.Fatalf("build: built=%v err=%v", built, err)
	}
	if built, err := buildImage(out, spec); err != nil || built {
		t.Fatalf("second build of the same inputs: built=%v err=%v, want cached", built, err)
	}
	tag, _ := name.NewTag(AgentImage)
	img, err := tarball.ImageFromPath(out, &tag)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.OS != "linux" || cfg.Architecture != "amd64" || strings.Join(cfg.Config.Entrypoint, " ") != "/usr/sbin/prog" {
		t.Fatalf("config = %s/%s %v", cfg.OS, cfg.Architecture, cfg.Config.Entrypoint)
	}
}

func TestLayerIsReproducible(t *testing.T) {
	files := []imageFile{{Dst: "/a/b/c", Mode: 0o755}, {Dst: "/d", Mode: 0o644}}
	contents := map[string][]byte{"/a/b/c": []byte("x"), "/d": []byte("y")}
	one, err := layerTarball(files, nil, contents)
	if err != nil {
		t.Fatal(err)
	}
	two, _ := layerTarball(files, nil, contents)
	if string(one) != string(two) {
		t.Fatal("the same files gave different layers")
	}
}

func TestNodeConfigs(t *testing.T) {
	cd := containerdConfig()
	for _, want := range []string{"restrict_oom_score_adj = true", `sandbox = "` + SandboxImage + `"`, "use_internal_loopback = true", "io.containerd.nri.v1.nri"} {
		if !strings.Contains(cd, want) {
			t.Errorf("containerd config lacks %q:\n%s", want, cd)
		}
	}
	p := &pki{dir: "/pki"}
	var kc map[string]any
	if err := yaml.Unmarshal([]byte(kubeletConfig(p, DefaultConfig("/repo").NodeAt(2), "/plexus-lab/lab-node-2")), &kc); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]any{"cgroupDriver": "cgroupfs", "failCgroupV1": false, "cgroupRoot": "/plexus-lab/lab-node-2",
		"failSwapOn": false, "clusterDomain": "cluster.local"} {
		if kc[k] != want {
			t.Errorf("kubelet config %s = %v, want %v", k, kc[k], want)
		}
	}
}

func TestDownWithoutALabDoesNothing(t *testing.T) {
	requireLab(t)
	c := DefaultConfig(repoRoot(t))
	c.Dir = filepath.Join(t.TempDir(), "lab")
	var out strings.Builder
	c.Out = &out
	if err := Down(c); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "nothing to remove") {
		t.Fatalf("output: %s", out.String())
	}
}

func TestDefaultLabKeepsTheDocumentedNames(t *testing.T) {
	c := DefaultConfig("/repo")
	got := []string{c.Name, c.UnderlayNetns(), c.NodeAt(1).Netns, c.CgroupRoot(), c.UnderlayV4.String(), c.UnderlayV6.String(),
		c.HostAPIAddress, c.APIServerURL(), filepath.Base(c.Dir)}
	want := []string{"lab", "plexus-lab-underlay", "plexus-lab-node-1", "plexus-lab", "10.99.0.0/24", "fd10:99::/64",
		"127.0.0.1:36443", "https://10.99.0.1:6443", "lab"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("default lab:\n got %v\nwant %v", got, want)
	}
}

// Two labs run side by side only if nothing the machine sees is shared: namespaces, cgroup,
// folder, forwarder port, underlay ranges.
func TestNamedLabsShareNothingWithTheDefaultLab(t *testing.T) {
	user := DefaultConfig("/repo")
	for slot, name := range map[int]string{1: "e2e", 2: "bench", 3: "cleanup"} {
		c := NamedConfig("/repo", name, slot)
		if err := c.validate(); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for _, pair := range [][2]string{
			{user.UnderlayNetns(), c.UnderlayNetns()}, {user.NodeAt(1).Netns, c.NodeAt(1).Netns},
			{user.CgroupRoot(), c.CgroupRoot()}, {user.Dir, c.Dir}, {user.HostAPIAddress, c.HostAPIAddress},
		} {
			if pair[0] == pair[1] {
				t.Errorf("lab %s shares %s with the default lab", name, pair[0])
			}
		}
		if c.UnderlayV4.Overlaps(user.UnderlayV4) || c.UnderlayV6.Overlaps(user.UnderlayV6) {
			t.Errorf("lab %s underlay %s %s overlaps the default lab's", name, c.UnderlayV4, c.UnderlayV6)
		}
		if n := c.NodeAt(2); !c.UnderlayV4.Contains(n.IPv4) || !c.UnderlayV6.Contains(n.IPv6) {
			t.Errorf("lab %s node 2 %s %s outside its underlay", name, n.IPv4, n.IPv6)
		}
		if strings.HasPrefix(c.NodeAt(1).Netns, user.NetnsPrefix()+"-") {
			t.Errorf("lab %s namespace %s looks like the default lab's", name, c.NodeAt(1).Netns)
		}
	}
	if c := NamedConfig("/repo", "e2e", 1); c.UnderlayV4.String() != "10.99.1.0/24" || c.UnderlayV6.String() != "fd10:99:1::/64" ||
		c.HostAPIAddress != "127.0.0.1:36444" || c.UnderlayNetns() != "plexus-e2e-underlay" || filepath.Base(c.Dir) != "lab-e2e" {
		t.Fatalf("e2e lab = %s %s %s %s %s", c.UnderlayV4, c.UnderlayV6, c.HostAPIAddress, c.UnderlayNetns(), c.Dir)
	}
	// No lab's folder is one of the cache's build folders: Down removes the lab's folder.
	for _, name := range []string{"bin", "controlplane", "containerd", "images"} {
		if c := NamedConfig("/repo", name, 4); filepath.Base(c.Dir) == name {
			t.Errorf("lab %s lives in the cache's %s folder", name, name)
		}
	}
}

func TestLabNamesAreChecked(t *testing.T) {
	for _, name := range []string{"", "Lab", "a-b", "lab/x", "1lab", "averyveryverylongname"} {
		if err := NamedConfig("/repo", name, 1).validate(); err == nil {
			t.Errorf("name %q accepted", name)
		}
	}
}
