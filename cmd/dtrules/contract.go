package main

import (
	"errors"
	"fmt"
	"io"
	"sort"

	"github.com/decisiontrace/decisiontrace/internal/contract"
	"github.com/decisiontrace/decisiontrace/internal/rules"
)

// answers prints, for each contract in files (patterns), its answers to the
// nine questions and the rules that watch each; a question it leaves
// unanswered is a warning, and makes the exit code 1.
func answers(patterns []string, out, errOut io.Writer) int {
	files, errs := contract.Expand("", "contract", patterns)
	contracts, err := contract.Load(files)
	if err := errors.Join(append(errs, err)...); err != nil {
		fmt.Fprintln(errOut, err)
		return 1
	}
	workflows := make([]string, 0, len(contracts))
	for wf := range contracts {
		workflows = append(workflows, wf)
	}
	sort.Strings(workflows)
	code := 0
	for i, wf := range workflows {
		if i > 0 {
			fmt.Fprintln(out)
		}
		n, err := rules.WriteAnswers(out, contracts[wf])
		if err != nil {
			fmt.Fprintln(errOut, err)
			return 1
		}
		if n > 0 {
			fmt.Fprintf(errOut, "warning: workflow %s leaves %d of the nine questions unanswered\n", wf, n)
			code = 1
		}
	}
	return code
}
