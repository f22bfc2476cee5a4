// Package fuzz holds the project's fuzz targets, one subpackage per decoder
// family (core, postgres, mysql, mongodb, redis), the transport's framing
// (stream) and the SQL scope check across the front ends (sqlscope), each
// with a committed seed
// corpus under testdata/fuzz. `make test` runs the seed corpora as ordinary
// tests; `make fuzz` fuzzes every target for a bounded time. Nothing here is
// imported by the daemon.
package fuzz
