//go:build !cgo

package main

// limitSQLiteMemory: without cgo there is no SQLite (the station needs it).
func limitSQLiteMemory(int64) {}
