// Package calendar holds the billing month: a UTC calendar month written
// "YYYY-MM" on the wire, in events and in queries (docs/architecture.md,
// "Events and their streams", "Queries").
//
// Every charge belongs to the UTC month of its charge_period_start, every
// cycle event names a month, and every query takes months and ranges of
// months. Keeping the month a small comparable integer lets the projections
// use it in map keys and ranges without allocating, and keeps the one strict
// parser in one place, so the ingestion layer and the query service reject
// the same malformed input with the same error.
package calendar
