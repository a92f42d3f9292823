package decisionprocessor

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync/atomic"
	"time"
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

// aliases holds the merged alias maps and reloads files whose modification
// time or size changed. Lookups never block on a reload.
type aliases struct {
	files  []string
	stamps []fileStamp
	merged atomic.Pointer[aliasMap]
}

func newAliases(files []string) *aliases {
	a := &aliases{files: files, stamps: make([]fileStamp, len(files))}
	a.merged.Store(&aliasMap{})
	return a
}

// lookup returns the canonical ID of (system, localID).
func (a *aliases) lookup(system, localID string) (string, bool) {
	m := *a.merged.Load()
	id, ok := m[aliasKey{system, localID}]
	return id, ok
}

// reload re-reads the files when any changed and reports whether it did. On
// an error the previous maps stay in force.
func (a *aliases) reload() (bool, error) {
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
		for k, v := range m {
			merged[k] = v
		}
	}
	a.merged.Store(&merged)
	a.stamps = stamps
	return true, nil
}

func (a *aliases) size() int { return len(*a.merged.Load()) }
