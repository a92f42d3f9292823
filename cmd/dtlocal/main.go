// Command dtlocal manages the local decisiontrace stack: the embedded
// ClickHouse engine and Alertmanager, both running in the background with
// their data, logs and pid files under $DECISIONTRACE_HOME (~/.decisiontrace).
//
//	dtlocal fetch [--install]   download the ClickHouse engine, check Alertmanager
//	dtlocal fetch --engine V    download another version of the engine (e.g. 26.5.0)
//	dtlocal up                  start both (idempotent)
//	dtlocal down                stop both; data stays
//	dtlocal status              exit 0 only if both are healthy
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/decisiontrace/decisiontrace/internal/amlocal"
	"github.com/decisiontrace/decisiontrace/internal/chlocal"
)

var log zerolog.Logger

func main() {
	// The detached ClickHouse server is this binary, re-executed.
	chlocal.ServeIfChild()
	fi, _ := os.Stderr.Stat()
	tty := fi != nil && fi.Mode()&os.ModeCharDevice != 0
	log = zerolog.New(zerolog.ConsoleWriter{Out: os.Stderr, TimeFormat: "15:04:05", NoColor: !tty}).With().Timestamp().Logger()

	if len(os.Args) < 2 {
		usage()
		os.Exit(2)
	}
	var err error
	switch cmd, args := os.Args[1], os.Args[2:]; cmd {
	case "fetch":
		err = cmdFetch(args)
	case "up":
		err = cmdUp(args)
	case "down":
		err = cmdDown(args)
	case "status":
		err = cmdStatus(args)
	case "outage":
		err = cmdOutage(args)
	case "-h", "--help", "help":
		usage()
		return
	default:
		usage()
		os.Exit(2)
	}
	if err != nil {
		var ec exitCode
		if errors.As(err, &ec) {
			os.Exit(int(ec))
		}
		log.Error().Err(err).Msg("dtlocal " + os.Args[1])
		os.Exit(1)
	}
}

// exitCode ends the program with a status and no further message.
type exitCode int

func (e exitCode) Error() string { return "exit " + strconv.Itoa(int(e)) }

func usage() {
	fmt.Fprintf(os.Stderr, `usage: dtlocal <command> [flags]

  fetch [--install]  download the embedded ClickHouse engine (npm) into %s/lib
                     and check Alertmanager (--install: apt-get it when root);
                     prints the library's path
  fetch --engine V   download version V of the engine (e.g. 26.5.0) beside it,
                     for running tests on it with %s=<printed path>
  up                 start ClickHouse and Alertmanager in the background
  down               stop them (data is kept)
  status             show them; exit 0 only if both are healthy
  outage [--for 5m]  drill: stop ClickHouse under the running demo, start it
                     again, and check what Alertmanager showed (one
                     DecisionStoreUnavailable page, nothing resolved or
                     re-sent, no rule-failing or no-data alerts)

Everything lives under $%s (now %s). Run "dtlocal <command> -h" for flags.
`, chlocal.Home(), chlocal.LibEnv, chlocal.HomeEnv, chlocal.Home())
}

// stack holds the settings and paths shared by the commands.
type stack struct {
	home       string
	listenHost string
	tcpPort    int
	httpPort   int
	amAddr     string
	amConfig   string
}

func (s *stack) flags(fs *flag.FlagSet) {
	fs.StringVar(&s.listenHost, "listen-host", "127.0.0.1", "ClickHouse listen address")
	fs.IntVar(&s.tcpPort, "tcp-port", 19000, "ClickHouse native protocol port")
	fs.IntVar(&s.httpPort, "http-port", 18123, "ClickHouse HTTP port")
	fs.StringVar(&s.amAddr, "alertmanager-addr", "127.0.0.1:19093", "Alertmanager listen address")
	fs.StringVar(&s.amConfig, "alertmanager-config", "", "Alertmanager config (default: deploy/local/alertmanager.yml of the repository around the working directory, else a built-in copy)")
}

func (s *stack) parse(name string, args []string, extra func(*flag.FlagSet)) error {
	fs := flag.NewFlagSet("dtlocal "+name, flag.ContinueOnError)
	s.flags(fs)
	if extra != nil {
		extra(fs)
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitCode(0)
		}
		return exitCode(2)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	s.home = chlocal.Home()
	return nil
}

func (s *stack) runDir() string    { return filepath.Join(s.home, "run") }
func (s *stack) logDir() string    { return filepath.Join(s.home, "logs") }
func (s *stack) chDataDir() string { return filepath.Join(s.home, "clickhouse") }
func (s *stack) chPIDFile() string { return filepath.Join(s.runDir(), "clickhouse.pid") }
func (s *stack) chStateFile() string {
	return filepath.Join(s.runDir(), "clickhouse.json")
}
func (s *stack) chLog() string     { return filepath.Join(s.logDir(), "clickhouse.log") }
func (s *stack) amPIDFile() string { return filepath.Join(s.runDir(), "alertmanager.pid") }
func (s *stack) amStateFile() string {
	return filepath.Join(s.runDir(), "alertmanager.json")
}
func (s *stack) amLog() string     { return filepath.Join(s.logDir(), "alertmanager.log") }
func (s *stack) amDataDir() string { return filepath.Join(s.home, "alertmanager", "data") }
func (s *stack) amURL() string     { return "http://" + s.amAddr }

func (s *stack) chOptions(lib string) chlocal.Options {
	return chlocal.Options{
		LibPath: lib, DataDir: s.chDataDir(), ListenHost: s.listenHost,
		TCPPort: s.tcpPort, HTTPPort: s.httpPort, LogPath: s.chLog(),
	}
}

// fromState makes status and down use what up actually started, whatever
// flags they are given.
func (s *stack) fromState() {
	var o chlocal.Options
	if b, err := os.ReadFile(s.chStateFile()); err == nil && json.Unmarshal(b, &o) == nil {
		s.listenHost, s.tcpPort, s.httpPort = o.ListenHost, o.TCPPort, o.HTTPPort
	}
	var am struct{ Addr string }
	if b, err := os.ReadFile(s.amStateFile()); err == nil && json.Unmarshal(b, &am) == nil && am.Addr != "" {
		s.amAddr = am.Addr
	}
}

func cmdFetch(args []string) error { return fetch(args, os.Stdout) }

// fetch installs the ClickHouse engine and prints the library's path on
// out (a line a script can take). With --engine it installs that version
// of the engine beside the default one and checks nothing else.
func fetch(args []string, out io.Writer) error {
	var s stack
	var install bool
	var engine string
	if err := s.parse("fetch", args, func(fs *flag.FlagSet) {
		fs.BoolVar(&install, "install", false, "install Alertmanager with apt-get when missing (root only)")
		fs.StringVar(&engine, "engine", "", "install this version of the engine (npm "+chlocal.PackageName+", e.g. 26.5.0) into "+
			"$"+chlocal.HomeEnv+"/lib/<version>/ instead of the default "+chlocal.DefaultEngine+"; run tests on it with "+chlocal.LibEnv+"=<printed path>")
	}); err != nil {
		return err
	}
	p, err := chlocal.FetchEngine(context.Background(), s.home, engine, log)
	if err != nil {
		return err
	}
	version := engine
	if version == "" {
		version = chlocal.DefaultEngine
	}
	log.Info().Str("path", p).Str("engine", version).Msg("ClickHouse engine ready")
	fmt.Fprintln(out, p)
	if engine != "" {
		return nil
	}
	if _, err := os.Stat(amlocal.Binary); err == nil {
		log.Info().Str("path", amlocal.Binary).Msg("Alertmanager present")
		return nil
	}
	if !install || os.Geteuid() != 0 {
		log.Warn().Msgf("%s is missing: run `apt-get install -y prometheus-alertmanager` (as root, or dtlocal fetch --install)", amlocal.Binary)
		return nil
	}
	log.Info().Msg("installing prometheus-alertmanager with apt-get")
	for _, argv := range [][]string{{"apt-get", "update", "-qq"}, {"apt-get", "install", "-y", "-qq", "prometheus-alertmanager"}} {
		cmd := exec.Command(argv[0], argv[1:]...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("%s: %w", strings.Join(argv, " "), err)
		}
	}
	return nil
}

func cmdUp(args []string) error {
	var s stack
	if err := s.parse("up", args, nil); err != nil {
		return err
	}
	for _, d := range []string{s.runDir(), s.logDir(), s.chDataDir(), s.amDataDir()} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := s.upClickHouse(ctx); err != nil {
		return err
	}
	if err := s.upAlertmanager(ctx); err != nil {
		return err
	}
	fmt.Printf(`
decisiontrace local stack is up.

  ClickHouse     clickhouse://%s  (HTTP %s)
                 data %s
                 log  %s
                 pid  %s
  Alertmanager   %s
                 data %s
                 log  %s
                 pid  %s

Try: curl -s %s --data-binary 'SELECT version()'
Stop with: dtlocal down (data is kept)
`, net.JoinHostPort(s.listenHost, strconv.Itoa(s.tcpPort)), s.chHTTP(), s.chDataDir(), s.chLog(), s.chPIDFile(),
		s.amURL(), s.amDataDir(), s.amLog(), s.amPIDFile(), s.chHTTP()+"/")
	return nil
}

func (s *stack) chHTTP() string {
	return "http://" + net.JoinHostPort(s.listenHost, strconv.Itoa(s.httpPort))
}

func (s *stack) upClickHouse(ctx context.Context) error {
	if pid, ok := runningPID(s.chPIDFile(), isChlocal); ok {
		s.fromState()
		if err := waitHealthy(ctx, 10*time.Second, func(ctx context.Context) error {
			return chlocal.Healthy(ctx, s.chOptions(""))
		}); err != nil {
			return fmt.Errorf("ClickHouse (pid %d) is running but not healthy: %v; see %s, or `dtlocal down` and up again", pid, err, s.chLog())
		}
		log.Info().Int("pid", pid).Str("tcp", net.JoinHostPort(s.listenHost, strconv.Itoa(s.tcpPort))).Msg("ClickHouse already running")
		return nil
	}
	lib, err := chlocal.LibPath()
	if err != nil {
		log.Info().Msg("the ClickHouse engine is missing; fetching it")
		if lib, err = chlocal.Fetch(ctx, s.home, log); err != nil {
			return err
		}
	}
	began := time.Now()
	srv, err := chlocal.StartDetached(ctx, s.chOptions(lib))
	if err != nil {
		return err
	}
	if err := writeFile(s.chPIDFile(), strconv.Itoa(srv.PID())+"\n"); err != nil {
		return err
	}
	b, _ := json.Marshal(srv.Options())
	if err := writeFile(s.chStateFile(), string(b)+"\n"); err != nil {
		return err
	}
	log.Info().Int("pid", srv.PID()).Dur("took", time.Since(began)).Str("tcp", srv.TCPAddr()).Str("http", srv.HTTPURL()).Msg("ClickHouse started")
	return nil
}

func (s *stack) upAlertmanager(ctx context.Context) error {
	if pid, ok := runningPID(s.amPIDFile(), isAlertmanager); ok {
		s.fromState()
		if err := waitHealthy(ctx, 10*time.Second, func(ctx context.Context) error { return amlocal.Ready(ctx, s.amURL()) }); err != nil {
			return fmt.Errorf("Alertmanager (pid %d) is running but not ready: %v; see %s", pid, err, s.amLog())
		}
		log.Info().Int("pid", pid).Str("url", s.amURL()).Msg("Alertmanager already running")
		return nil
	}
	if _, err := os.Stat(amlocal.Binary); err != nil {
		return fmt.Errorf("%s is missing: run `apt-get install -y prometheus-alertmanager` (or `dtlocal fetch --install` as root)", amlocal.Binary)
	}
	cfg, err := s.alertmanagerConfig()
	if err != nil {
		return err
	}
	logf, err := os.OpenFile(s.amLog(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := amlocal.Command(cfg, s.amDataDir(), s.amAddr)
	cmd.Dir = s.home
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	began := time.Now()
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	if err := writeFile(s.amPIDFile(), strconv.Itoa(cmd.Process.Pid)+"\n"); err != nil {
		return err
	}
	b, _ := json.Marshal(map[string]string{"addr": s.amAddr, "config": cfg})
	if err := writeFile(s.amStateFile(), string(b)+"\n"); err != nil {
		return err
	}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		err := amlocal.Ready(ctx, s.amURL())
		if err == nil {
			break
		}
		select {
		case werr := <-exited:
			_ = os.Remove(s.amPIDFile())
			return fmt.Errorf("Alertmanager exited during start-up (%v); %s:%s", werr, s.amLog(), logTail(s.amLog()))
		case <-ctx.Done():
			return fmt.Errorf("Alertmanager not ready: %v; see %s", err, s.amLog())
		case <-tick.C:
		}
	}
	log.Info().Int("pid", cmd.Process.Pid).Dur("took", time.Since(began)).Str("url", s.amURL()).Str("config", cfg).Msg("Alertmanager started")
	return nil
}

// alertmanagerConfig picks the config file: the flag, the repository's, or
// the built-in copy written under home (refreshed each time, so an old
// dtlocal's copy does not linger).
func (s *stack) alertmanagerConfig() (string, error) {
	if s.amConfig != "" {
		return filepath.Abs(s.amConfig)
	}
	if wd, err := os.Getwd(); err == nil {
		if root := repoRoot(wd); root != "" {
			p := filepath.Join(root, "deploy", "local", "alertmanager.yml")
			if _, err := os.Stat(p); err == nil {
				return p, nil
			}
		}
	}
	p := filepath.Join(s.home, "alertmanager", "alertmanager.yml")
	return p, writeFile(p, builtinAlertmanagerConfig)
}

// repoRoot is the nearest directory at or above dir whose go.mod declares
// this module, or "".
func repoRoot(dir string) string {
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil {
			for _, l := range strings.Split(string(b), "\n") {
				if f := strings.Fields(l); len(f) == 2 && f[0] == "module" && f[1] == "github.com/decisiontrace/decisiontrace" {
					return dir
				}
			}
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
}

func cmdDown(args []string) error {
	var s stack
	if err := s.parse("down", args, nil); err != nil {
		return err
	}
	var errs []error
	for _, p := range []struct {
		name, pidFile, stateFile string
		match                    func(int) bool
	}{
		{"Alertmanager", s.amPIDFile(), s.amStateFile(), isAlertmanager},
		{"ClickHouse", s.chPIDFile(), s.chStateFile(), isChlocal},
	} {
		pid, ok := runningPID(p.pidFile, p.match)
		if !ok {
			log.Info().Msg(p.name + " not running")
		} else {
			began := time.Now()
			killed, err := stopPID(pid, 15*time.Second)
			if err != nil {
				errs = append(errs, fmt.Errorf("stop %s (pid %d): %w", p.name, pid, err))
				continue
			}
			ev := log.Info()
			if killed {
				ev = log.Warn().Bool("sigkill", true)
			}
			ev.Int("pid", pid).Dur("took", time.Since(began)).Msg(p.name + " stopped")
		}
		_ = os.Remove(p.pidFile)
		_ = os.Remove(p.stateFile)
	}
	return errors.Join(errs...)
}

func cmdStatus(args []string) error {
	var s stack
	if err := s.parse("status", args, nil); err != nil {
		return err
	}
	s.fromState()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	healthy := true
	report := func(name, pidFile string, match func(int) bool, check func(context.Context) error, where string) {
		pid, ok := runningPID(pidFile, match)
		if !ok {
			fmt.Printf("%-13s not running\n", name+":")
			healthy = false
			return
		}
		if err := check(ctx); err != nil {
			fmt.Printf("%-13s running (pid %d), NOT healthy: %v\n", name+":", pid, err)
			healthy = false
			return
		}
		fmt.Printf("%-13s running (pid %d), healthy, %s\n", name+":", pid, where)
	}
	report("ClickHouse", s.chPIDFile(), isChlocal,
		func(ctx context.Context) error { return chlocal.Healthy(ctx, s.chOptions("")) },
		fmt.Sprintf("clickhouse://%s  %s", net.JoinHostPort(s.listenHost, strconv.Itoa(s.tcpPort)), s.chHTTP()))
	if r := chlocal.Restarts(s.chOptions("")); len(r) > 0 {
		fmt.Printf("%-13s restarted %d time(s) after the engine crashed, last: %s (see %s)\n", "", len(r), r[len(r)-1], s.chLog())
	}
	report("Alertmanager", s.amPIDFile(), isAlertmanager,
		func(ctx context.Context) error { return amlocal.Ready(ctx, s.amURL()) }, s.amURL())
	fmt.Printf("home: %s\n", s.home)
	if !healthy {
		return exitCode(1)
	}
	return nil
}

func waitHealthy(ctx context.Context, d time.Duration, check func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	for {
		err := check(ctx)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// runningPID reads a pid file and checks that the process is alive and is
// what the file claims, so a pid reused after a reboot is not mistaken for
// (or, worse, killed as) our server.
func runningPID(pidFile string, match func(int) bool) (int, bool) {
	b, err := os.ReadFile(pidFile)
	if err != nil {
		return 0, false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0, false
	}
	if syscall.Kill(pid, 0) != nil || isZombie(pid) || !match(pid) {
		return 0, false
	}
	return pid, true
}

// isChlocal recognises the server child by the variable Start passes it
// (a process's initial environment stays readable in /proc).
func isChlocal(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
	if err != nil {
		return false
	}
	for _, kv := range strings.Split(string(b), "\x00") {
		if strings.HasPrefix(kv, chlocal.ServeEnv+"=") {
			return true
		}
	}
	return false
}

func isAlertmanager(pid int) bool {
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
	return err == nil && strings.Contains(filepath.Base(exe), "alertmanager")
}

func isZombie(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	// The state follows the parenthesised command name, which may itself
	// contain spaces or parentheses.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] == 'Z'
}

// stopPID sends SIGTERM, waits up to d, then SIGKILLs; killed reports the
// latter. The process is not our child, so waiting means polling.
func stopPID(pid int, d time.Duration) (killed bool, err error) {
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		if errors.Is(err, syscall.ESRCH) {
			return false, nil
		}
		return false, err
	}
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if syscall.Kill(pid, 0) != nil || isZombie(pid) {
			return false, nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
	for i := 0; i < 50; i++ {
		if syscall.Kill(pid, 0) != nil || isZombie(pid) {
			return true, nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return true, errors.New("still alive after SIGKILL")
}

func writeFile(path, content string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func logTail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > 15 {
		lines = lines[len(lines)-15:]
	}
	return "\n\t" + strings.Join(lines, "\n\t")
}
