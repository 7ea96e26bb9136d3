package main

import (
	"os"
	"runtime"
	"runtime/debug"
	"strings"
	"time"
)

// fyneCacheLifetime is how long Fyne keeps what it caches for a drawn
// object after the object was last drawn: above all the texture of every
// piece of text (its default is a minute). Each PC puts new text on the
// screen (its serial number, its key, the banner, the counters), and at a
// fast pace a minute of those textures is tens of megabytes, held in the
// GL driver's memory (system RAM with Mesa's software renderer). 12 s
// keeps a screen's textures while the worker looks at it; text that comes
// back later is simply drawn again. (At 10 s or less Fyne would walk the
// whole widget tree on every idle frame to keep visible objects alive; at
// 12 s it does so every 2 s.)
const fyneCacheLifetime = "12s"

// guiEnvironment returns the environment variables the GUI needs set before
// Fyne's packages initialise (they read them once, before main runs), that
// the environment does not set already; none when it sets them all.
func guiEnvironment() []string {
	var env []string
	if _, ok := os.LookupEnv("FYNE_CACHE"); !ok {
		env = append(env, "FYNE_CACHE="+fyneCacheLifetime)
	}
	if runtime.GOOS == "linux" && !glibcTunablesSet() {
		// The same settings as tuneCMalloc, from the first allocation on.
		env = append(env, "GLIBC_TUNABLES="+glibcMallocTunables)
	}
	return env
}

// isGUI reports whether the command line runs the GUI.
func isGUI(args []string) bool {
	return len(args) > 0 && args[0] == "gui"
}

// tuneGUIMemory sets the Go runtime up for the GUI, a window open all day
// on a line PC whose live heap is small (some 10 MB, nearly all of it the
// parsed fonts) and which allocates little between PCs:
//   - the heap is collected at 10 % growth instead of 100 %: a collection
//     takes a few milliseconds, nothing at the pace of a line (a PC every
//     minute or more), and it keeps some 10 MB of garbage out of the
//     resident memory ($GOGC still wins);
//   - no allocation sampling for heap profiles, whose tables grow with
//     every distinct call stack to several megabytes over a day (unless
//     $KEYSTATION_HEAP_PROFILE asks for the profile);
//   - the C heap set up for the GL driver's churn (tuneCMalloc), its
//     free pages given back every 2 s (trimCMallocEvery), and SQLite's
//     page caches held to about 1 MiB in all.
//
// Call it first thing: profiling is best switched off before allocating.
func tuneGUIMemory() {
	if os.Getenv("KEYSTATION_HEAP_PROFILE") == "" {
		runtime.MemProfileRate = 0
	}
	if _, ok := os.LookupEnv("GOGC"); !ok {
		debug.SetGCPercent(10)
	}
	tuneCMalloc()
	trimCMallocEvery(2 * time.Second)
	limitSQLiteMemory(1 << 20)
}

// glibcTunablesSet reports whether $GLIBC_TUNABLES sets malloc tunables.
func glibcTunablesSet() bool {
	return strings.Contains(os.Getenv("GLIBC_TUNABLES"), "glibc.malloc.")
}

// glibcMallocTunables is tuneCMalloc's settings as glibc tunables.
const glibcMallocTunables = "glibc.malloc.arena_max=2:glibc.malloc.mmap_threshold=131072"
