package main

import (
	"bufio"
	"fmt"
	"os"
	"strconv"

	"github.com/cespare/xxhash/v2"
)

// writeAliasFile writes the alias map the decision processor reads: for
// every source system of every workflow, the local ID of each entity
// (prefix + number) maps to one canonical ID per entity, as a customer has
// a policy number, a claim number and a CRM ID. A deterministic share of
// (system, entity) pairs is left out, so the demo shows identifiers that
// cannot be reconciled, the same ones on every run.
func writeAliasFile(path string, entities uint64, coverage float64) (int, error) {
	f, err := os.Create(path)
	if err != nil {
		return 0, err
	}
	w := bufio.NewWriter(f)
	_, _ = w.WriteString("system,local_id,canonical_id\n")
	n := 0
	for _, wf := range workflows {
		for _, src := range wf.sources {
			for e := uint64(0); e < entities; e++ {
				num := strconv.FormatUint(entityBase+e, 10)
				if !aliased(src.system, num, coverage) {
					continue
				}
				fmt.Fprintf(w, "%s,%s%s,entity-%s\n", src.system, src.idPrefix, num, num)
				n++
			}
		}
	}
	if err := w.Flush(); err != nil {
		_ = f.Close()
		return n, err
	}
	return n, f.Close()
}

func aliased(system, num string, coverage float64) bool {
	h := xxhash.Sum64String(system + "/" + num)
	return float64(h%10000) < coverage*10000
}
