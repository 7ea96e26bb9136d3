//go:build cgo

package main

// SQLite is compiled into the program (github.com/mattn/go-sqlite3); its
// process-wide soft heap limit is a C function the Go wrapper does not
// expose.

/*
long long sqlite3_soft_heap_limit64(long long);
*/
import "C"

// limitSQLiteMemory caps what SQLite keeps in memory, in all connections
// together, at about n bytes: past that it recycles the page caches'
// pages instead of growing them. Each connection's page cache would
// otherwise fill up to its own limit as the tables grow (the GUI's status
// bar reads the whole outbox every few seconds); the station's database is
// small and sits in the system's file cache, so reading a page again is
// cheap.
func limitSQLiteMemory(n int64) {
	C.sqlite3_soft_heap_limit64(C.longlong(n))
}
