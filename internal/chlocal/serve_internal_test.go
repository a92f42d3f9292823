package chlocal

import (
	"reflect"
	"testing"
)

func TestServerArgs(t *testing.T) {
	got := serverArgs(Options{DataDir: "/d", ListenHost: "127.0.0.1", TCPPort: 1, HTTPPort: 2, LogPath: "/l"})
	want := []string{
		"clickhouse", "--path=/d", "--log-level=information",
		"--query=SYSTEM START LISTEN TCP; SYSTEM START LISTEN HTTP; " + blockingQuery,
		"--", "--tcp_port=1", "--http_port=2", "--listen_host=127.0.0.1",
		"--background_schedule_pool_size=16", "--background_pool_size=4", "--background_common_pool_size=2",
		"--logger.log=/l",
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got  %q\nwant %q", got, want)
	}
}

func TestEnvWithout(t *testing.T) {
	got := envWithout([]string{"A=1", ServeEnv + "=x", "B=2", ServeEnv + "X=3"}, ServeEnv)
	if !reflect.DeepEqual(got, []string{"A=1", "B=2", ServeEnv + "X=3"}) {
		t.Fatalf("%q", got)
	}
}
