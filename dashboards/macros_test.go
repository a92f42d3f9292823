package dashboards

import (
	"fmt"
	"regexp"
	"strings"
	"time"
)

// expansion is what Grafana and the ClickHouse plugin substitute before a
// panel's SQL reaches ClickHouse: the dashboard's range and interval, and
// its template variables (nil = All).
type expansion struct {
	from, to time.Time
	interval time.Duration
	vars     map[string][]string
}

// expand does what the plugin does, in its order: $__conditionalAll and the
// template variables in the browser (src/data/CHDatasource.ts), then the
// $__ macros in the backend (pkg/macros/macros.go through sqlutil).
func (e expansion) expand(sql string) (string, error) {
	var err error
	sql, err = e.conditionalAll(sql)
	if err != nil {
		return "", err
	}
	sql = e.variables(sql)
	return e.macros(sql)
}

// call finds name(args) at i and returns its arguments, split at top-level
// commas, and the index after the closing parenthesis.
func call(sql string, i int, name string) ([]string, int, error) {
	open := i + len(name)
	if open >= len(sql) || sql[open] != '(' {
		return nil, 0, fmt.Errorf("%s without arguments", name)
	}
	depth, start := 0, open+1
	var args []string
	for j := open; j < len(sql); j++ {
		switch sql[j] {
		case '(':
			depth++
		case ')':
			depth--
			if depth == 0 {
				args = append(args, strings.TrimSpace(sql[start:j]))
				return args, j + 1, nil
			}
		case ',':
			if depth == 1 {
				args = append(args, strings.TrimSpace(sql[start:j]))
				start = j + 1
			}
		}
	}
	return nil, 0, fmt.Errorf("%s: unbalanced parentheses", name)
}

// conditionalAll: the condition, or 1=1 when the variable is All.
func (e expansion) conditionalAll(sql string) (string, error) {
	const name = "$__conditionalAll"
	for {
		i := strings.Index(sql, name)
		if i < 0 {
			return sql, nil
		}
		args, end, err := call(sql, i, name)
		if err != nil {
			return "", err
		}
		if len(args) != 2 {
			return "", fmt.Errorf("%s takes 2 arguments, got %d", name, len(args))
		}
		v := strings.Trim(strings.TrimPrefix(args[1], "$"), "{}")
		repl := args[0]
		if e.vars[v] == nil {
			repl = "1=1"
		}
		sql = sql[:i] + repl + sql[end:]
	}
}

var varRef = regexp.MustCompile(`\$\{(\w+)(?::(\w+))?\}|\$(\w+)`)

// variables substitutes ${var}, ${var:singlequote}, ${var:sqlstring} and
// $var; $__ macros are left to the backend.
func (e expansion) variables(sql string) string {
	return varRef.ReplaceAllStringFunc(sql, func(m string) string {
		g := varRef.FindStringSubmatch(m)
		name, format := g[1], g[2]
		if name == "" {
			name = g[3]
		}
		if strings.HasPrefix(name, "__") {
			return m
		}
		vals, ok := e.vars[name]
		if !ok {
			return m
		}
		quote := func(escape func(string) string) string {
			out := make([]string, len(vals))
			for i, v := range vals {
				out[i] = "'" + escape(v) + "'"
			}
			return strings.Join(out, ",")
		}
		switch {
		case format == "singlequote":
			return quote(func(s string) string { return strings.ReplaceAll(s, "'", `\'`) })
		case format == "sqlstring":
			return quote(func(s string) string { return strings.ReplaceAll(s, "'", "''") })
		case len(vals) == 1:
			return vals[0]
		}
		return quote(func(s string) string { return s })
	})
}

var macroRef = regexp.MustCompile(`\$__(\w+)`)

func (e expansion) macros(sql string) (string, error) {
	from, to := e.from.Unix(), e.to.Unix()
	fromMS, toMS := e.from.UnixMilli(), e.to.UnixMilli()
	interval := max(int64(e.interval/time.Second), 1)
	var out strings.Builder
	for {
		loc := macroRef.FindStringSubmatchIndex(sql)
		if loc == nil {
			out.WriteString(sql)
			return out.String(), nil
		}
		out.WriteString(sql[:loc[0]])
		name := sql[loc[2]:loc[3]]
		rest := sql[loc[1]:]
		withArg := func() (string, error) {
			args, end, err := call(sql, loc[0], "$__"+name)
			if err != nil {
				return "", err
			}
			if len(args) != 1 {
				return "", fmt.Errorf("$__%s takes 1 argument, got %d", name, len(args))
			}
			rest = sql[end:]
			return args[0], nil
		}
		var repl string
		switch name {
		case "timeFilter":
			col, err := withArg()
			if err != nil {
				return "", err
			}
			repl = fmt.Sprintf("%s >= toDateTime(%d) AND %s <= toDateTime(%d)", col, from, col, to)
		case "timeFilter_ms":
			col, err := withArg()
			if err != nil {
				return "", err
			}
			repl = fmt.Sprintf("%s >= fromUnixTimestamp64Milli(%d) AND %s <= fromUnixTimestamp64Milli(%d)", col, fromMS, col, toMS)
		case "timeInterval":
			col, err := withArg()
			if err != nil {
				return "", err
			}
			repl = fmt.Sprintf("toStartOfInterval(toDateTime(%s), INTERVAL %d second)", col, interval)
		case "timeInterval_ms":
			col, err := withArg()
			if err != nil {
				return "", err
			}
			repl = fmt.Sprintf("toStartOfInterval(toDateTime64(%s, 3), INTERVAL %d millisecond)", col, interval*1000)
		case "fromTime":
			repl = fmt.Sprintf("toDateTime(%d)", from)
		case "toTime":
			repl = fmt.Sprintf("toDateTime(%d)", to)
		case "fromTime_ms":
			repl = fmt.Sprintf("fromUnixTimestamp64Milli(%d)", fromMS)
		case "toTime_ms":
			repl = fmt.Sprintf("fromUnixTimestamp64Milli(%d)", toMS)
		case "interval_s":
			repl = fmt.Sprint(interval)
		default:
			return "", fmt.Errorf("macro $__%s is not one the plugin expands", name)
		}
		out.WriteString(repl)
		sql = rest
	}
}
