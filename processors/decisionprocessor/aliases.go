package decisionprocessor

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

type aliasKey struct{ system, localID string }

// aliasMap maps (source system, local ID) to a canonical entity ID.
type aliasMap map[aliasKey]string

// loadAliasFile reads a CSV alias map with the header
// system,local_id,canonical_id. A malformed line fails the whole file, so a
// half-written file never replaces a good map.
func loadAliasFile(path string) (aliasMap, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r := csv.NewReader(f)
	r.FieldsPerRecord = 3
	r.TrimLeadingSpace = true
	r.ReuseRecord = true
	header, err := r.Read()
	if err != nil {
		return nil, fmt.Errorf("%s: header: %w", path, err)
	}
	if strings.Join(header, ",") != "system,local_id,canonical_id" {
		return nil, fmt.Errorf("%s: line 1: header must be system,local_id,canonical_id, got %s", path, strings.Join(header, ","))
	}
	m := aliasMap{}
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			return m, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		line, _ := r.FieldPos(0)
		if rec[0] == "" || rec[1] == "" || rec[2] == "" {
			return nil, fmt.Errorf("%s: line %d: system, local_id and canonical_id must all be set", path, line)
		}
		k := aliasKey{rec[0], rec[1]}
		if prev, ok := m[k]; ok && prev != rec[2] {
			return nil, fmt.Errorf("%s: line %d: %s/%s maps to both %s and %s", path, line, rec[0], rec[1], prev, rec[2])
		}
		m[k] = rec[2]
	}
}

type fileStamp struct {
	mod  time.Time
	size int64
}

// aliases holds the merged alias maps: the files, reloaded when their
// modification time or size changes, and an optional ClickHouse table,
// re-read at every reload. Lookups never block on a reload; reloads (the
// loop's, and a test's) take turns.
type aliases struct {
	reloadMu  sync.Mutex
	files     []string
	stamps    []fileStamp
	fromFiles aliasMap
	table     *AliasTableConfig
	conn      driver.Conn
	merged    atomic.Pointer[aliasMap]
}

func newAliases(cfg AliasesConfig) *aliases {
	a := &aliases{files: cfg.Files, stamps: make([]fileStamp, len(cfg.Files)), fromFiles: aliasMap{}, table: cfg.ClickHouse.Get()}
	a.merged.Store(&aliasMap{})
	return a
}

// lookup returns the canonical ID of (system, localID).
func (a *aliases) lookup(system, localID string) (string, bool) {
	m := *a.merged.Load()
	id, ok := m[aliasKey{system, localID}]
	return id, ok
}

// reload re-reads changed files and the table, and reports whether the
// merged map changed. On an error the previous maps stay in force.
func (a *aliases) reload(ctx context.Context) (bool, error) {
	a.reloadMu.Lock()
	defer a.reloadMu.Unlock()
	filesChanged, err := a.reloadFiles()
	if err != nil {
		return false, err
	}
	if a.table == nil {
		if filesChanged {
			merged := maps.Clone(a.fromFiles)
			a.merged.Store(&merged)
		}
		return filesChanged, nil
	}
	fromTable, err := a.readTable(ctx)
	if err != nil {
		return false, err
	}
	merged := maps.Clone(a.fromFiles)
	maps.Copy(merged, fromTable)
	if !filesChanged && maps.Equal(merged, *a.merged.Load()) {
		return false, nil
	}
	a.merged.Store(&merged)
	return true, nil
}

func (a *aliases) reloadFiles() (bool, error) {
	changed := false
	stamps := make([]fileStamp, len(a.files))
	for i, f := range a.files {
		st, err := os.Stat(f)
		if err != nil {
			return false, fmt.Errorf("alias map %s: %w", f, err)
		}
		stamps[i] = fileStamp{st.ModTime(), st.Size()}
		if stamps[i] != a.stamps[i] {
			changed = true
		}
	}
	if !changed {
		return false, nil
	}
	merged := aliasMap{}
	for _, f := range a.files {
		m, err := loadAliasFile(f)
		if err != nil {
			return false, fmt.Errorf("alias map %s not reloaded, previous one kept: %w", f, err)
		}
		maps.Copy(merged, m)
	}
	a.fromFiles = merged
	a.stamps = stamps
	return true, nil
}

func (a *aliases) readTable(ctx context.Context) (aliasMap, error) {
	if a.conn == nil {
		opts, err := a.table.ClientConfig.Options()
		if err != nil {
			return nil, err
		}
		conn, err := clickhouse.Open(opts)
		if err != nil {
			return nil, fmt.Errorf("alias table %s: %w", a.table.Table, err)
		}
		a.conn = conn
	}
	db, table, _ := a.table.databaseTable()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	// Identifiers cannot be bound; both were checked by Validate.
	rows, err := a.conn.Query(ctx, "SELECT toString(system), toString(local_id), toString(canonical_id) FROM "+db+"."+table)
	if err != nil {
		return nil, fmt.Errorf("alias table %s not read, previous map kept: %w", a.table.Table, err)
	}
	defer rows.Close()
	m := aliasMap{}
	for rows.Next() {
		var k aliasKey
		var canonical string
		if err := rows.Scan(&k.system, &k.localID, &canonical); err != nil {
			return nil, fmt.Errorf("alias table %s: %w", a.table.Table, err)
		}
		m[k] = canonical
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("alias table %s: %w", a.table.Table, err)
	}
	return m, nil
}

func (a *aliases) close() error {
	a.reloadMu.Lock()
	defer a.reloadMu.Unlock()
	if a.conn == nil {
		return nil
	}
	return a.conn.Close()
}

func (a *aliases) size() int { return len(*a.merged.Load()) }
