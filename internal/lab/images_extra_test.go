package lab

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

func TestExtraImagesAreBuiltWithTheLabsOwn(t *testing.T) {
	c := NamedConfig("/repo", "conformance", 5)
	c.ExtraImages = []ExtraImage{{Ref: "example.test/e2e/busybox:1", File: "extra-busybox.tar", Cmd: []string{"sh"}}}
	specs := c.extraImageSpecs()
	if len(specs) != 1 || specs[0].Ref != "example.test/e2e/busybox:1" || specs[0].File != "extra-busybox.tar" || strings.Join(specs[0].Cmd, " ") != "sh" {
		t.Fatalf("extra specs = %+v", specs)
	}
}

func TestLinksNeverReplaceFilesAndKeepTheirTarget(t *testing.T) {
	files := []imageFile{{Dst: "/usr/bin/nc", Mode: 0o755}, {Dst: "/bin/busybox", Mode: 0o755}}
	links := []imageLink{{Dst: "/usr/bin/nc", Target: "/bin/busybox"}, {Dst: "/bin/sh", Target: "/bin/busybox"}, {Dst: "/sbin/ip", Target: "/bin/busybox"}}
	contents := map[string][]byte{"/usr/bin/nc": []byte("netcat"), "/bin/busybox": []byte("bb")}
	layer, err := layerTarball(files, links, contents)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	tr := tar.NewReader(bytes.NewReader(layer))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if _, dup := got[h.Name]; dup {
			t.Fatalf("%s appears twice in the layer", h.Name)
		}
		switch h.Typeflag {
		case tar.TypeSymlink:
			got[h.Name] = "-> " + h.Linkname
		case tar.TypeReg:
			b, _ := io.ReadAll(tr)
			got[h.Name] = string(b)
		case tar.TypeDir:
			got[h.Name] = "dir"
		}
	}
	want := map[string]string{"usr/": "dir", "usr/bin/": "dir", "bin/": "dir", "sbin/": "dir",
		"usr/bin/nc": "netcat", "bin/busybox": "bb", "bin/sh": "-> /bin/busybox", "sbin/ip": "-> /bin/busybox"}
	if len(got) != len(want) {
		t.Fatalf("layer = %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q (layer %v)", k, got[k], v, got)
		}
	}
}

func TestImageCmdIsInTheConfigAndTheStamp(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "prog")
	if err := os.WriteFile(bin, []byte("#!/bin/true\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "img.tar")
	spec := imageSpec{Ref: "example.test/e2e/agnhost:1", Files: []imageFile{{Src: bin, Dst: "/agnhost", Mode: 0o755}},
		Entrypoint: []string{"/agnhost"}, Cmd: []string{"pause"}}
	if built, err := buildImage(out, spec); err != nil || !built {
		t.Fatalf("build: built=%v err=%v", built, err)
	}
	spec.Cmd = []string{"netexec"}
	if built, err := buildImage(out, spec); err != nil || !built {
		t.Fatalf("a changed Cmd: built=%v err=%v, want rebuilt", built, err)
	}
	tag, _ := name.NewTag(spec.Ref)
	img, err := tarball.ImageFromPath(out, &tag)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(cfg.Config.Entrypoint, " ") != "/agnhost" || strings.Join(cfg.Config.Cmd, " ") != "netexec" {
		t.Fatalf("entrypoint %v cmd %v", cfg.Config.Entrypoint, cfg.Config.Cmd)
	}
}
