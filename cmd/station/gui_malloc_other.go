//go:build !linux || !cgo

package main

// tuneCMalloc: only glibc's allocator needs it.
func tuneCMalloc() {}
