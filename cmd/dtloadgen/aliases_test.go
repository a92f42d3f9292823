package main

import (
	"encoding/csv"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestWriteAliasFileCoversTheGeneratedEntities(t *testing.T) {
	path := filepath.Join(t.TempDir(), "aliases.csv")
	n, err := writeAliasFile(path, 100, 0.9)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(recs[0], ","); got != "system,local_id,canonical_id" {
		t.Fatalf("header %q", got)
	}
	if len(recs)-1 != n {
		t.Fatalf("wrote %d rows, reported %d", len(recs)-1, n)
	}
	pairs := 0
	for _, wf := range workflows {
		pairs += len(wf.sources) * 100
	}
	if share := float64(n) / float64(pairs); share < 0.85 || share > 0.95 {
		t.Fatalf("coverage %.3f, want about 0.9", share)
	}
	known := map[string]string{}
	for _, r := range recs[1:] {
		known[r[0]+"/"+r[1]] = r[2]
	}

	// Every entity ID the generator sends is in the pool the map was
	// written for, and maps to the canonical ID of its number.
	seen, resolved := 0, 0
	sh := newShared(genConfig{runID: "a", seed: 5, entities: 100, signalInterval: time.Hour})
	gen := newGenerator(sh, 0)
	for i := 0; i < 200; i++ {
		var p plan
		gen.plan(&p)
		for _, src := range p.wf.sources {
			seen++
			id := src.idPrefix + p.entityNum
			if c, ok := known[src.system+"/"+id]; ok {
				resolved++
				if c != "entity-"+p.entityNum {
					t.Fatalf("%s/%s maps to %s", src.system, id, c)
				}
			}
		}
	}
	if resolved == 0 || resolved == seen {
		t.Fatalf("resolved %d of %d: want most but not all", resolved, seen)
	}
}
