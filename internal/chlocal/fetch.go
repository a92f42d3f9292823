package chlocal

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/rs/zerolog"
)

// tarballName is the file `npm pack` writes for a version of PackageName.
func tarballName(version string) string { return "chdb-lib-linux-x64-gnu-" + version + ".tgz" }

// engineVersion is what an npm version of the engine looks like; anything
// else would reach npm's command line and the file system unchecked.
var engineVersion = regexp.MustCompile(`^[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z]+(\.[0-9A-Za-z]+)*)?$`)

// Fetch makes sure home/lib/libchdb.so (the DefaultEngine) exists and
// returns its path. The npm client downloads the package (from whatever
// registry the user's npm is configured for) into home/cache, where the
// tarball is kept so a second extraction needs no network. An empty home
// means Home().
func Fetch(ctx context.Context, home string, log zerolog.Logger) (string, error) {
	return FetchEngine(ctx, home, DefaultEngine, log)
}

// FetchEngine is Fetch for any version of PackageName (e.g. "26.5.0"; ""
// is DefaultEngine), installed at EngineLibPath(home, version): other
// engines sit beside the default one, for running the schema's tests on
// them (point DECISIONTRACE_LIBCHDB at the returned path).
func FetchEngine(ctx context.Context, home, version string, log zerolog.Logger) (string, error) {
	if version == "" {
		version = DefaultEngine
	}
	if !engineVersion.MatchString(version) {
		return "", fmt.Errorf("chlocal: %q is not a version of %s (like %s or 26.5.0; `npm view %s versions` lists them)", version, PackageName, DefaultEngine, PackageName)
	}
	if home == "" {
		home = Home()
	}
	dst := EngineLibPath(home, version)
	if fi, err := os.Stat(dst); err == nil && fi.Size() > 0 {
		log.Debug().Str("path", dst).Msg("libchdb.so already present")
		return dst, nil
	}
	cache := filepath.Join(home, "cache")
	if err := os.MkdirAll(cache, 0o755); err != nil {
		return "", err
	}
	tgz := filepath.Join(cache, tarballName(version))
	if _, err := os.Stat(tgz); err != nil {
		if err := npmPack(ctx, cache, version, tgz, log); err != nil {
			return "", err
		}
	} else {
		log.Info().Str("tarball", tgz).Msg("using cached package")
	}
	log.Info().Str("to", dst).Msg("extracting libchdb.so")
	if err := extract(tgz, PackageFile, dst); err != nil {
		// A truncated or corrupt tarball would fail the same way forever.
		_ = os.Remove(tgz)
		return "", fmt.Errorf("chlocal: extract %s from %s (removed it; run fetch again): %w", PackageFile, tgz, err)
	}
	return dst, nil
}

func npmPack(ctx context.Context, cache, version, tgz string, log zerolog.Logger) error {
	npm, err := exec.LookPath("npm")
	if err != nil {
		return errors.New("chlocal: npm is needed to download the ClickHouse engine: apt-get install -y npm")
	}
	// npm pack writes into its working directory; a private one means an
	// interrupted download never looks like a complete cached tarball.
	tmp, err := os.MkdirTemp(cache, "pack-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	pkg := PackageName + "@" + version
	log.Info().Str("package", pkg).Msg("downloading the ClickHouse engine with npm pack (~160-180 MB, about a minute)")
	began := time.Now()
	var out bytes.Buffer
	// --loglevel=error: no progress, but npm's reason when it fails.
	cmd := exec.CommandContext(ctx, npm, "pack", "--loglevel=error", pkg)
	cmd.Dir = tmp
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("chlocal: npm pack %s: %w: %s (`npm view %s versions` lists the versions)", pkg, err, strings.TrimSpace(out.String()), PackageName)
	}
	got := filepath.Join(tmp, tarballName(version))
	if _, err := os.Stat(got); err != nil {
		return fmt.Errorf("chlocal: npm pack %s did not write %s: %s", pkg, tarballName(version), strings.TrimSpace(out.String()))
	}
	if err := os.Rename(got, tgz); err != nil {
		return err
	}
	log.Info().Dur("took", time.Since(began)).Str("tarball", tgz).Msg("downloaded")
	return nil
}

// extract copies one member of a .tgz to dst through a temporary file in the
// same directory, so dst is either absent or complete.
func extract(tgz, member, dst string) error {
	f, err := os.Open(tgz)
	if err != nil {
		return err
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return err
	}
	defer zr.Close()
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return fmt.Errorf("%s not in the tarball", member)
		}
		if err != nil {
			return err
		}
		if h.Name != member || h.Typeflag != tar.TypeReg {
			continue
		}
		return writeAtomic(dst, tr, h.Size)
	}
}

func writeAtomic(dst string, r io.Reader, size int64) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(dst), filepath.Base(dst)+".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	n, err := io.Copy(tmp, r)
	if err == nil && n != size {
		err = fmt.Errorf("short read: %d of %d bytes", n, size)
	}
	if err == nil {
		err = tmp.Chmod(0o755)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return os.Rename(tmp.Name(), dst)
}
