package lab

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// Image names: the ones the manifests use (config/operator, the operator's --agent-image default),
// containerd's sandbox image, and the test workloads.
const (
	OperatorImage = "plexus/plexus-operator:dev"
	AgentImage    = "plexus/plexus-agent:dev"
	EchoImage     = "plexus/echo:dev"
	// IngressImage is plexus-ingress under the name the operator's --ingress-image defaults to.
	IngressImage = "plexus/plexus-ingress:dev"
)

// nftBinary is Debian's nft, copied into the agent image with the libraries it links;
// conntrackBinary likewise (the service proxy flushes stale UDP entries with it).
const (
	nftBinary       = "/usr/sbin/nft"
	conntrackBinary = "/usr/sbin/conntrack"
)

// imageFile is one file of an image: its content comes from Src on the machine.
type imageFile struct {
	Src, Dst string
	Mode     int64
}

// imageLink is a symbolic link in an image (busybox's applets, for instance).
type imageLink struct {
	Dst, Target string
}

// imageSpec describes one lab image. Links never replace a file of the same path.
type imageSpec struct {
	Ref        string
	File       string
	Files      []imageFile
	Links      []imageLink
	Entrypoint []string
	Cmd        []string
}

func (c Config) imageDir() string { return filepath.Join(c.CacheDir, "images") }

// imageSpecs lists the images the lab builds from the binaries in CacheDir/bin.
func (c Config) imageSpecs() ([]imageSpec, error) {
	bin := filepath.Join(c.CacheDir, "bin")
	exe := func(n string) imageFile { return imageFile{Src: filepath.Join(bin, n), Dst: "/" + n, Mode: 0o755} }
	nft, err := withSharedLibraries(nftBinary)
	if err != nil {
		return nil, err
	}
	ct, err := withSharedLibraries(conntrackBinary)
	if err != nil {
		return nil, err
	}
	nft = append(nft, ct...)
	return append([]imageSpec{
		{Ref: OperatorImage, File: "plexus-operator.tar", Files: []imageFile{exe("plexus-operator")}, Entrypoint: []string{"/plexus-operator"}},
		{Ref: AgentImage, File: "plexus-agent.tar", Files: append([]imageFile{exe("plexus-agent"), exe("plexus-cni")}, nft...), Entrypoint: []string{"/plexus-agent"}},
		{Ref: IngressImage, File: "plexus-ingress.tar", Files: []imageFile{exe("plexus-ingress")}, Entrypoint: []string{"/plexus-ingress"}},
		{Ref: SandboxImage, File: "pause.tar", Files: []imageFile{exe("pause")}, Entrypoint: []string{"/pause"}},
		{Ref: EchoImage, File: "echo.tar", Files: []imageFile{exe("echo")}, Entrypoint: []string{"/echo"}},
		c.dnsImageSpec(),
	}, c.extraImageSpecs()...), nil
}

var lddPath = regexp.MustCompile(`(?:=>\s*)?(/\S+)\s+\(0x`)

// withSharedLibraries returns a dynamically linked program plus every library ldd lists for it
// (and the dynamic loader), each at the path the loader looks for it.
func withSharedLibraries(program string) ([]imageFile, error) {
	out, err := exec.Command("ldd", program).Output()
	if err != nil {
		return nil, fmt.Errorf("ldd %s (is Debian's nftables package installed?): %w", program, err)
	}
	files := []imageFile{{Src: program, Dst: program, Mode: 0o755}}
	for _, line := range strings.Split(string(out), "\n") {
		if m := lddPath.FindStringSubmatch(line); m != nil {
			files = append(files, imageFile{Src: m[1], Dst: m[1], Mode: 0o755})
		}
	}
	return files, nil
}

// BuildImages writes one image tarball per lab image into CacheDir/images, rebuilding only those
// whose inputs changed.
func BuildImages(c Config) error {
	specs, err := c.imageSpecs()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(c.imageDir(), 0o755); err != nil {
		return err
	}
	for i, s := range specs {
		t := time.Now()
		built, err := buildImage(filepath.Join(c.imageDir(), s.File), s)
		if err != nil {
			return fmt.Errorf("build image %s: %w", s.Ref, err)
		}
		if built {
			c.step("(%d/%d) image %s built in %s", i+1, len(specs), s.Ref, time.Since(t).Round(100*time.Millisecond))
		} else {
			c.step("(%d/%d) image %s: cached", i+1, len(specs), s.Ref)
		}
	}
	return nil
}

// buildImage writes the image tarball unless one from the same inputs exists; it reports whether it
// built.
func buildImage(out string, s imageSpec) (bool, error) {
	contents := map[string][]byte{}
	h := sha256.New()
	fmt.Fprintf(h, "%s %v\n", s.Ref, s.Entrypoint)
	if len(s.Cmd) > 0 { // only then, so the stamps of images without one stay as they were
		fmt.Fprintf(h, "cmd %v\n", s.Cmd)
	}
	for _, f := range s.Files {
		b, err := os.ReadFile(f.Src)
		if err != nil {
			return false, err
		}
		contents[f.Dst] = b
		sum := sha256.Sum256(b)
		fmt.Fprintf(h, "%s %o %x\n", f.Dst, f.Mode, sum)
	}
	for _, l := range s.Links {
		fmt.Fprintf(h, "%s -> %s\n", l.Dst, l.Target)
	}
	inputs := hex.EncodeToString(h.Sum(nil))
	stamp := out + ".inputs"
	if old, err := os.ReadFile(stamp); err == nil && string(old) == inputs {
		if _, err := os.Stat(out); err == nil {
			return false, nil
		}
	}
	layerTar, err := layerTarball(s.Files, s.Links, contents)
	if err != nil {
		return false, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	})
	if err != nil {
		return false, err
	}
	img, err := mutate.ConfigFile(empty.Image, &v1.ConfigFile{
		Architecture: "amd64",
		OS:           "linux",
		Config: v1.Config{
			Entrypoint: s.Entrypoint,
			Cmd:        s.Cmd,
			Env:        []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
		},
		RootFS: v1.RootFS{Type: "layers"},
	})
	if err != nil {
		return false, err
	}
	if img, err = mutate.AppendLayers(img, layer); err != nil {
		return false, err
	}
	tag, err := name.NewTag(s.Ref)
	if err != nil {
		return false, err
	}
	if err := tarball.WriteToFile(out+".tmp", tag, img); err != nil {
		return false, err
	}
	if err := os.Rename(out+".tmp", out); err != nil {
		return false, err
	}
	return true, os.WriteFile(stamp, []byte(inputs), 0o644)
}

// layerTarball makes one layer holding the files and links (and their parent folders), with fixed
// owners and times so the same inputs give the same digest.
func layerTarball(files []imageFile, links []imageLink, contents map[string][]byte) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	dirs := map[string]bool{}
	parents := func(p string) {
		for d := path.Dir(p); d != "/" && d != "."; d = path.Dir(d) {
			dirs[d] = true
		}
	}
	for _, f := range files {
		parents(f.Dst)
	}
	for _, l := range links {
		parents(l.Dst)
	}
	sorted := make([]string, 0, len(dirs))
	for d := range dirs {
		sorted = append(sorted, d)
	}
	sort.Strings(sorted)
	for _, d := range sorted {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: strings.TrimPrefix(d, "/") + "/", Mode: 0o755}); err != nil {
			return nil, err
		}
	}
	seen := map[string]bool{}
	for _, f := range files {
		if seen[f.Dst] {
			continue
		}
		seen[f.Dst] = true
		b := contents[f.Dst]
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: strings.TrimPrefix(f.Dst, "/"), Mode: f.Mode, Size: int64(len(b))}); err != nil {
			return nil, err
		}
		if _, err := tw.Write(b); err != nil {
			return nil, err
		}
	}
	for _, l := range links {
		if seen[l.Dst] || dirs[l.Dst] {
			continue
		}
		seen[l.Dst] = true
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: strings.TrimPrefix(l.Dst, "/"), Linkname: l.Target, Mode: 0o777}); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
