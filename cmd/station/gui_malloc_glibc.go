//go:build linux && cgo

package main

/*
#include <malloc.h>
*/
import "C"

import "time"

// tuneCMalloc sets glibc's allocator up for the GUI, whose C memory is
// mostly the GL driver's (under Mesa's software renderer, every texture is
// a malloc'd buffer, allocated when Fyne uploads a piece of text or an
// icon and freed when Fyne drops it):
//   - at most two malloc arenas: a Go program calls C from whichever OS
//     thread it is on, and glibc gives every such thread an arena of its
//     own (up to eight per core), each keeping the memory freed in it;
//   - blocks of 128 KiB and more (long texts' textures, frame buffers)
//     always mapped on their own, so freeing one gives it back to the
//     system. glibc would otherwise raise that threshold to the size of
//     the largest block freed so far and serve such buffers from heaps
//     that only shrink from the top.
//
// The re-executed GUI gets the same settings through $GLIBC_TUNABLES
// (glibcMallocTunables), which apply from the program's first allocation;
// this call covers a GUI started without the re-exec. $GLIBC_TUNABLES
// still wins.
func tuneCMalloc() {
	if glibcTunablesSet() {
		return
	}
	C.mallopt(C.M_ARENA_MAX, 2)
	C.mallopt(C.M_MMAP_THRESHOLD, 128<<10)
}

// trimCMallocEvery gives the C heap's free pages back to the system every
// period, for as long as the program runs. What the GL driver frees in the
// middle of glibc's main heap stays resident otherwise (only a free top is
// given back): 3–4 MiB more or less from one run of the same 1,000 PCs to
// the next, depending on where the last textures happened to sit.
// malloc_trim walks the heap's free chunks (about a millisecond here) and
// releases the whole pages inside them.
func trimCMallocEvery(period time.Duration) {
	go func() {
		for range time.Tick(period) {
			C.malloc_trim(0)
		}
	}()
}
