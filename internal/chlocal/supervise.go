package chlocal

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"
)

// SuperviseEnv makes the child StartDetached spawns a supervisor: it runs
// the server in a process of its own and starts it again when the engine
// crashes. The embedded engine aborts on some client errors a server
// answers (a wrong password over the native protocol: "Terminate called
// for uncaught exception ... Authentication failed"); a local stack that
// dies of a mistyped CLICKHOUSE_PASSWORD is worse than one that restarts.
const SuperviseEnv = "DECISIONTRACE_CHLOCAL_SUPERVISE"

// Crash-loop bounds: more than maxRestarts within restartWindow and the
// supervisor gives up (the log says why).
const (
	maxRestarts   = 5
	restartWindow = 10 * time.Minute
	restartDelay  = time.Second
)

// RestartsPath is where a supervisor records each restart, one line each:
// when, and how the engine ended.
func RestartsPath(opts Options) string { return filepath.Join(opts.DataDir, "chlocal-restarts.log") }

// Restarts are the recorded restarts of the server in opts.DataDir, oldest
// first; none when it never crashed.
func Restarts(opts Options) []string {
	f, err := os.Open(RestartsPath(opts))
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		out = append(out, sc.Text())
	}
	return out
}

// supervise runs the server (this executable with ServeEnv=raw) until
// SIGTERM or SIGINT, which it passes on, and runs it again when it ends by
// a signal nobody sent it. It returns the exit code.
func supervise(raw string, opts Options) int {
	exe, err := os.Executable()
	if err != nil {
		fmt.Fprintf(os.Stderr, "chlocal supervisor: %v\n", err)
		return 1
	}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	var recent []time.Time
	for {
		cmd := exec.Command(exe)
		cmd.Env = append(envWithout(os.Environ(), SuperviseEnv), ServeEnv+"="+raw)
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		// Same process group (Stop signals the group); gone with us.
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
		if err := cmd.Start(); err != nil {
			fmt.Fprintf(os.Stderr, "chlocal supervisor: start server: %v\n", err)
			return 1
		}
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case sig := <-stop:
			_ = cmd.Process.Signal(sig)
			<-done
			return 0
		case <-done:
		}
		ws, _ := cmd.ProcessState.Sys().(syscall.WaitStatus)
		if !ws.Signaled() || ws.Signal() == syscall.SIGTERM || ws.Signal() == syscall.SIGINT || ws.Signal() == syscall.SIGKILL {
			// Ended as asked, or failed to start (a port taken): not a crash.
			return cmd.ProcessState.ExitCode()
		}
		now := time.Now()
		recent = append(recent, now)
		for len(recent) > 0 && now.Sub(recent[0]) > restartWindow {
			recent = recent[1:]
		}
		if len(recent) > maxRestarts {
			fmt.Fprintf(os.Stderr, "chlocal supervisor: the engine crashed %d times within %s; giving up\n", len(recent), restartWindow)
			return 1
		}
		line := fmt.Sprintf("%s engine ended by %s; restarted", now.UTC().Format(time.RFC3339), ws.Signal())
		fmt.Fprintf(os.Stderr, "chlocal supervisor: %s\n", line)
		if f, err := os.OpenFile(RestartsPath(opts), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644); err == nil {
			_, _ = fmt.Fprintln(f, line)
			_ = f.Close()
		}
		select {
		case <-stop:
			return 0
		case <-time.After(restartDelay):
		}
	}
}
