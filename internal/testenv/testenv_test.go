package testenv_test

import (
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/decisiontrace/decisiontrace/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func TestSharedClickHouseIsShared(t *testing.T) {
	a := testenv.ClickHouse(t)
	if b := testenv.ClickHouse(t); a != b {
		t.Fatalf("two servers: %s %s", a, b)
	}
	c, err := net.Dial("tcp", a)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	if u, _ := testenv.ClickHouseAuth(); u != "default" {
		t.Fatalf("user %q", u)
	}
}

func TestExternalAddrWins(t *testing.T) {
	t.Setenv(testenv.AddrEnv, "ch.example:9000")
	t.Setenv(testenv.UserEnv, "u")
	t.Setenv(testenv.PasswordEnv, "p")
	if got := testenv.ClickHouse(t); got != "ch.example:9000" {
		t.Fatal(got)
	}
	if u, p := testenv.ClickHouseAuth(); u != "u" || p != "p" {
		t.Fatal(u, p)
	}
}

func TestPrivateClickHouse(t *testing.T) {
	s := testenv.NewClickHouse(t, "")
	resp, err := http.Post(s.HTTPURL(), "text/plain", strings.NewReader("SELECT 1"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if strings.TrimSpace(string(b)) != "1" {
		t.Fatalf("%s", b)
	}
	if p := testenv.FreePort(t); p <= 0 {
		t.Fatal(p)
	}
}
