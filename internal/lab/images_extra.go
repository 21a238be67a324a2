package lab

import "fmt"

// ExtraImage is an image a lab builds and imports into every node beside its own (Config.ExtraImages):
// make conformance's e2e test images, under the names the upstream suite pulls.
type ExtraImage struct {
	// Ref is the image's name as pods use it.
	Ref string
	// File is the tarball's name in CacheDir/images; it must not be one of the lab's own.
	File string
	// Files are the image's files, each copied from the machine.
	Files []ImageFile
	// Links are symbolic links; a link never replaces a file of the same path.
	Links []ImageLink
	// Entrypoint and Cmd are the image's ENTRYPOINT and CMD.
	Entrypoint, Cmd []string
}

// ImageFile is one file of an image: Src on the machine, Dst in the image, with mode Mode.
type ImageFile = imageFile

// ImageLink is a symbolic link Dst -> Target in an image.
type ImageLink = imageLink

// ProgramFiles returns a dynamically linked program of the machine plus every library ldd lists for
// it and the dynamic loader, each at the path the loader looks for it.
func ProgramFiles(program string) ([]ImageFile, error) {
	files, err := withSharedLibraries(program)
	if err != nil {
		return nil, fmt.Errorf("image files of %s: %w", program, err)
	}
	return files, nil
}

// extraImageSpecs are the lab's specs of Config.ExtraImages.
func (c Config) extraImageSpecs() []imageSpec {
	specs := make([]imageSpec, 0, len(c.ExtraImages))
	for _, e := range c.ExtraImages {
		specs = append(specs, imageSpec{Ref: e.Ref, File: e.File, Files: e.Files, Links: e.Links, Entrypoint: e.Entrypoint, Cmd: e.Cmd})
	}
	return specs
}
