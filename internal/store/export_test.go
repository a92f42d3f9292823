package store

// EventsColumns gives the benchmarks the column slices an insert sends.
var EventsColumns = (*Events).columns
