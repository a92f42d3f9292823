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
	"strings"
	"time"

	"github.com/rs/zerolog"
)

// tarballName is the file `npm pack` writes for Package.
const tarballName = "chdb-lib-linux-x64-gnu-26.7.3-stable.1.tgz"

// Fetch makes sure home/lib/libchdb.so exists and returns its path. The npm
// client downloads the package (from whatever registry the user's npm is
// configured for) into home/cache, where the tarball is kept so a second
// extraction needs no network. An empty home means Home().
func Fetch(ctx context.Context, home string, log zerolog.Logger) (string, error) {
	if home == "" {
		home = Home()
	}
	dst := HomeLibPath(home)
	if fi, err := os.Stat(dst); err == nil && fi.Size() > 0 {
		log.Debug().Str("path", dst).Msg("libchdb.so already present")
		return dst, nil
	}
	cache := filepath.Join(home, "cache")
	if err := os.MkdirAll(cache, 0o755); err != nil {
		return "", err
	}
	tgz := filepath.Join(cache, tarballName)
	if _, err := os.Stat(tgz); err != nil {
		if err := npmPack(ctx, cache, tgz, log); err != nil {
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

func npmPack(ctx context.Context, cache, tgz string, log zerolog.Logger) error {
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
	log.Info().Str("package", Package).Msg("downloading the ClickHouse engine with npm pack (~178 MB, about a minute)")
	began := time.Now()
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, npm, "pack", "--silent", Package)
	cmd.Dir = tmp
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("chlocal: npm pack %s: %w: %s", Package, err, strings.TrimSpace(out.String()))
	}
	got := filepath.Join(tmp, tarballName)
	if _, err := os.Stat(got); err != nil {
		return fmt.Errorf("chlocal: npm pack %s did not write %s: %s", Package, tarballName, strings.TrimSpace(out.String()))
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
