package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// The built-in copy is what users outside the repository run; it must not
// drift from the reviewed file.
func TestBuiltinAlertmanagerConfigMatchesRepository(t *testing.T) {
	b, err := os.ReadFile("../../deploy/local/alertmanager.yml")
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != builtinAlertmanagerConfig {
		t.Fatal("cmd/dtlocal/alertmanager_config.go differs from deploy/local/alertmanager.yml; copy the file into the constant")
	}
}

func TestAlertmanagerConfigIsValid(t *testing.T) {
	amtool, err := exec.LookPath("amtool")
	if err != nil {
		t.Skip("amtool not installed (Debian package prometheus-alertmanager)")
	}
	out, err := exec.Command(amtool, "check-config", "../../deploy/local/alertmanager.yml").CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
}

func TestRepoRoot(t *testing.T) {
	wd, _ := os.Getwd()
	root := repoRoot(wd)
	if root == "" || root != filepath.Clean(filepath.Join(wd, "../..")) {
		t.Fatalf("repoRoot(%s) = %q", wd, root)
	}
	if got := repoRoot(t.TempDir()); got != "" {
		t.Fatalf("outside the repository: %q", got)
	}
}

func TestRunningPIDRejectsStrangers(t *testing.T) {
	f := filepath.Join(t.TempDir(), "x.pid")
	if err := os.WriteFile(f, []byte("1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, ok := runningPID(f, isChlocal); ok {
		t.Fatal("pid 1 taken for a ClickHouse server")
	}
	if _, ok := runningPID(filepath.Join(t.TempDir(), "none.pid"), isAlertmanager); ok {
		t.Fatal("missing pid file taken as running")
	}
}
