//go:build !linux || !cgo

package main

import "time"

// tuneCMalloc: only glibc's allocator needs it.
func tuneCMalloc() {}

// trimCMallocEvery: only glibc's allocator needs it.
func trimCMallocEvery(time.Duration) {}
