package mariadbtest

import (
	"context"
	"database/sql"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/stretchr/testify/require"
)

func open(t *testing.T, dsn string) *sql.DB {
	t.Helper()
	cfg, err := mysql.ParseDSN(dsn)
	require.NoError(t, err)
	cfg.Timeout = 2 * time.Second
	conn, err := mysql.NewConnector(cfg)
	require.NoError(t, err)
	db := sql.OpenDB(conn)
	t.Cleanup(func() { _ = db.Close() })
	return db
}

func TestStartStopRestartKeepsData(t *testing.T) {
	s := Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	db := open(t, s.DSN)
	_, err := db.ExecContext(ctx, "CREATE DATABASE kept")
	require.NoError(t, err)
	_, err = db.ExecContext(ctx, "CREATE TABLE kept.t (v int)")
	require.NoError(t, err)
	_, err = db.ExecContext(ctx, "INSERT INTO kept.t VALUES (42)")
	require.NoError(t, err)
	require.NoError(t, db.Close())

	s.Stop(t)
	require.Error(t, open(t, s.DSN).PingContext(ctx), "a stopped server must refuse connections")

	s.Restart(t)
	var v int
	require.NoError(t, open(t, s.DSN).QueryRowContext(ctx, "SELECT v FROM kept.t").Scan(&v))
	require.Equal(t, 42, v)
}
