// Package chlocal runs a real ClickHouse server (the 26.7 engine shipped as
// libchdb.so) for development, tests and single-machine deployments.
// Other versions of the engine install beside it (FetchEngine) and run by
// DECISIONTRACE_LIBCHDB; one older than chDB 26.7, which cannot open
// ClickHouse's listeners itself, is served through a bridge (bridge.go).
//
// The library is large (~566 MB mapped, 200-350 MB resident), so callers never
// load it themselves: Start re-executes the current binary with ServeEnv set,
// and that child calls Serve from ServeIfChild. Every binary or test binary
// that calls Start must therefore call ServeIfChild first thing in main or
// TestMain.
package chlocal

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// ServeEnv carries the JSON-encoded Options from Start to the child process.
const ServeEnv = "DECISIONTRACE_CHLOCAL_SERVE"

// LibEnv names an explicit libchdb.so; it wins over the one under Home().
const LibEnv = "DECISIONTRACE_LIBCHDB"

// HomeEnv overrides the directory holding the library, data, logs and pid
// files of the local stack.
const HomeEnv = "DECISIONTRACE_HOME"

// PackageName is the npm package that carries the engine (chDB's build of
// ClickHouse), DefaultEngine the version of it decisiontrace runs on,
// Package the two together, and PackageFile the library inside its tarball.
const (
	PackageName   = "@chdb/lib-linux-x64-gnu"
	DefaultEngine = "26.7.3-stable.1" // ClickHouse 26.7.2.1
	Package       = PackageName + "@" + DefaultEngine
	PackageFile   = "package/libchdb.so"
)

// Options describes one embedded server.
type Options struct {
	// LibPath is libchdb.so; Start fills it from LibPath() when empty.
	LibPath string `json:"lib_path"`
	// DataDir is ClickHouse's --path; tables in databases created there
	// survive restarts.
	DataDir string `json:"data_dir"`
	// ListenHost defaults to 127.0.0.1: a development server has no users
	// or passwords and must not be reachable from the network by default.
	ListenHost string `json:"listen_host"`
	// TCPPort (native protocol) and HTTPPort; Start picks free ones when 0.
	TCPPort  int `json:"tcp_port"`
	HTTPPort int `json:"http_port"`
	// LogPath receives the server log and the child's stdout/stderr; Start
	// defaults it to clickhouse.log inside DataDir.
	LogPath string `json:"log_path"`
	// Config are further server settings as dotted paths, e.g.
	// "remote_servers.dt.shard.replica.host=127.0.0.1".
	Config []string `json:"config,omitempty"`
	// Bridge serves the engine through chlocal's own implementation of
	// the native and HTTP protocols (see bridge.go) even when it could open
	// ClickHouse's listeners; engines before chDB 26.7 always are. For
	// testing the bridge.
	Bridge bool `json:"bridge,omitempty"`
}

// Home is $DECISIONTRACE_HOME, else ~/.decisiontrace.
func Home() string {
	if h := os.Getenv(HomeEnv); h != "" {
		return h
	}
	if h, err := os.UserHomeDir(); err == nil && h != "" {
		return filepath.Join(h, ".decisiontrace")
	}
	return filepath.Join(os.TempDir(), ".decisiontrace")
}

// HomeLibPath is where Fetch puts the library for a given home directory.
func HomeLibPath(home string) string { return filepath.Join(home, "lib", "libchdb.so") }

// EngineLibPath is where FetchEngine puts the library of an engine version
// other than the default: home/lib/<version>/libchdb.so.
func EngineLibPath(home, version string) string {
	if version == "" || version == DefaultEngine {
		return HomeLibPath(home)
	}
	return filepath.Join(home, "lib", version, "libchdb.so")
}

// ErrNoLibrary is wrapped by LibPath's error when the library is missing.
var ErrNoLibrary = errors.New("libchdb.so (the embedded ClickHouse engine) not found")

// LibPath finds libchdb.so: $DECISIONTRACE_LIBCHDB, else Home()/lib/libchdb.so.
func LibPath() (string, error) {
	if p := os.Getenv(LibEnv); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("%w: %s=%s: %v; unset it or run `go run ./cmd/dtlocal fetch`", ErrNoLibrary, LibEnv, p, err)
		}
		return p, nil
	}
	p := HomeLibPath(Home())
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("%w at %s: run `go run ./cmd/dtlocal fetch` (or `dtlocal fetch`; needs npm) to download it, or set %s to an existing libchdb.so", ErrNoLibrary, p, LibEnv)
	}
	return p, nil
}
