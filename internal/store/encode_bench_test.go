package store_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/ClickHouse/ch-go/proto"
	"github.com/ClickHouse/clickhouse-go/v2/lib/column"
	"github.com/stretchr/testify/require"

	"github.com/decisiontrace/decisiontrace/internal/store"
)

// chType is the type ClickHouse announces for a column of the events
// table, for an insert with low_cardinality_allow_in_native_format = 0
// (LowCardinality columns go as String).
func chType(v any) string {
	switch v.(type) {
	case []string:
		return "String"
	case []time.Time:
		return "DateTime64(9)"
	case []uint64:
		return "UInt64"
	case []*float64:
		return "Nullable(Float64)"
	case []*bool:
		return "Nullable(Bool)"
	case []*int64:
		return "Nullable(Int64)"
	case []*time.Time:
		return "Nullable(DateTime64(6))"
	case [][]string:
		return "Array(String)"
	case []map[string]string:
		return "Map(String, String)"
	}
	panic(fmt.Sprintf("%T", v))
}

// BenchmarkEncodeColumnsClickhouseGo is the client's side of inserting a
// 20,000-event batch, as InsertEvents does it without the network: new
// clickhouse-go columns for the batch (PrepareBatch makes them from the
// server's header), the request's column slices appended to them, the
// block encoded.
func BenchmarkEncodeColumnsClickhouseGo(b *testing.B) {
	r := store.LogEvents(demoLogs(b, 20000), true)
	cols := store.EventsColumns(r)
	var buf proto.Buffer
	b.ReportAllocs()
	for b.Loop() {
		buf.Reset()
		encodeClickhouseGo(b, cols, &buf)
	}
	perEvent(b, r.Len())
}

func encodeClickhouseGo(b *testing.B, cols []any, buf *proto.Buffer) {
	for i, v := range cols {
		c, err := column.Type(chType(v)).Column(fmt.Sprint("c", i), &column.ServerContext{Timezone: time.UTC})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := c.Append(v); err != nil {
			b.Fatal(err)
		}
		c.Encode(buf)
	}
}

// BenchmarkEncodeColumnsChGo is the same batch through ch-go's columns,
// kept from one batch to the next (Reset keeps their buffers), filled from
// the same slices and encoded: what an insert path on ch-go would cost the
// client, measured against the one above before building it.
func BenchmarkEncodeColumnsChGo(b *testing.B) {
	r := store.LogEvents(demoLogs(b, 20000), true)
	cols := store.EventsColumns(r)
	encode := chGoEncoder(b, cols)
	// The comparison holds only if both send the same block (the
	// workload's attribute maps have one entry each, so the two clients'
	// map orders cannot differ).
	var want, got proto.Buffer
	encodeClickhouseGo(b, cols, &want)
	encode(&got)
	require.Equal(b, want.Buf, got.Buf, "ch-go's encoding differs from clickhouse-go's")
	var buf proto.Buffer
	b.ReportAllocs()
	for b.Loop() {
		buf.Reset()
		encode(&buf)
	}
	perEvent(b, r.Len())
}

// chGoEncoder returns a function that fills ch-go columns, kept between
// calls, from cols and encodes them into a buffer.
func chGoEncoder(b *testing.B, cols []any) func(*proto.Buffer) {
	in := make([]proto.ColInput, len(cols))
	fill := make([]func(), len(cols))
	for i, v := range cols {
		switch v := v.(type) {
		case []string:
			c := new(proto.ColStr)
			in[i], fill[i] = c, refill(c, v)
		case []time.Time:
			c := new(proto.ColDateTime64).WithPrecision(proto.PrecisionNano)
			in[i], fill[i] = c, refill(c, v)
		case []uint64:
			c := new(proto.ColUInt64)
			in[i], fill[i] = c, refill(c, v)
		case []*float64:
			c := proto.NewColNullable[float64](new(proto.ColFloat64))
			in[i], fill[i] = c, refillNullable(c, v)
		case []*bool:
			c := proto.NewColNullable[bool](new(proto.ColBool))
			in[i], fill[i] = c, refillNullable(c, v)
		case []*int64:
			c := proto.NewColNullable[int64](new(proto.ColInt64))
			in[i], fill[i] = c, refillNullable(c, v)
		case []*time.Time:
			c := proto.NewColNullable[time.Time](new(proto.ColDateTime64).WithPrecision(proto.PrecisionMicro))
			in[i], fill[i] = c, refillNullable(c, v)
		case [][]string:
			c := new(proto.ColStr).Array()
			in[i], fill[i] = c, refill(c, v)
		case []map[string]string:
			c := proto.NewMap[string, string](new(proto.ColStr), new(proto.ColStr))
			in[i], fill[i] = c, refill(c, v)
		default:
			b.Fatalf("%T", v)
		}
	}
	return func(buf *proto.Buffer) {
		for i := range in {
			fill[i]()
			in[i].EncodeColumn(buf)
		}
	}
}

// refill empties c, keeping its buffers, and appends v.
func refill[T any](c interface {
	Reset()
	Append(T)
}, v []T) func() {
	return func() {
		c.Reset()
		for _, x := range v {
			c.Append(x)
		}
	}
}

func refillNullable[T any](c *proto.ColNullable[T], v []*T) func() {
	return func() {
		c.Reset()
		for _, p := range v {
			if p == nil {
				c.Append(proto.Null[T]())
			} else {
				c.Append(proto.NewNullable(*p))
			}
		}
	}
}
