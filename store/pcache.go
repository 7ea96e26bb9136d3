package store

// SQLite's page cache, wrapped to spare commits a scan of the whole cache.
//
// When SQLite rebalances a b-tree (balance_nonroot) it reorders the new
// pages by parking one of them under a temporary page number, that of the
// page holding the "pending byte" at 1 GiB (page 262,145 at 4 KiB pages).
// The default cache (pcache1) remembers the largest page number it has
// seen, and every commit then truncates the cache to the database's size:
// with that number far beyond the end of the database, the truncation
// walks every page of the cache (pcache1TruncateUnsafe), for nothing,
// since the parked page got its real number back straight away. Random
// inserts into an index (a machine fingerprint, a key hash) rebalance all
// the time, so on the server's writer, with its 64 MiB cache, those scans
// were 6–8 % of the server's CPU during allocations.
//
// The wrapper forwards everything to the default cache and keeps its own
// bound on the page numbers present, leaving out the parking number while
// no page is parked there. A truncation that provably drops nothing (no
// page is parked, and the bound is below the limit) is not forwarded; any
// other is. Pages may leave the cache without the wrapper seeing it, which
// only makes the bound too high (a truncation forwarded that need not be).
//
// It is installed before SQLite initialises; if SQLite was initialised
// already (by another package in the same program), SQLite's own cache is
// used unchanged.

/*
#include <stdlib.h>

typedef struct sqlite3_pcache sqlite3_pcache;
typedef struct sqlite3_pcache_page sqlite3_pcache_page;
typedef struct ks_pcache_methods2 {
	int iVersion;
	void *pArg;
	int (*xInit)(void*);
	void (*xShutdown)(void*);
	sqlite3_pcache *(*xCreate)(int szPage, int szExtra, int bPurgeable);
	void (*xCachesize)(sqlite3_pcache*, int nCachesize);
	int (*xPagecount)(sqlite3_pcache*);
	sqlite3_pcache_page *(*xFetch)(sqlite3_pcache*, unsigned key, int createFlag);
	void (*xUnpin)(sqlite3_pcache*, sqlite3_pcache_page*, int discard);
	void (*xRekey)(sqlite3_pcache*, sqlite3_pcache_page*, unsigned oldKey, unsigned newKey);
	void (*xTruncate)(sqlite3_pcache*, unsigned iLimit);
	void (*xDestroy)(sqlite3_pcache*);
	void (*xShrink)(sqlite3_pcache*);
} ks_pcache_methods2;

extern int sqlite3_config(int, ...);
extern long long sqlite3_memory_used(void);

// From sqlite3.h: SQLITE_CONFIG_PCACHE2, SQLITE_CONFIG_GETPCACHE2, and the
// default PENDING_BYTE.
#define KS_CONFIG_PCACHE2 18
#define KS_CONFIG_GETPCACHE2 19
#define KS_PENDING_BYTE 0x40000000u

static ks_pcache_methods2 ks_inner;
static long long ks_truncates_skipped, ks_truncates_forwarded;

typedef struct {
	sqlite3_pcache *inner;
	unsigned maxKey;  // no page in the cache has a larger number, parked pages aside
	unsigned parkKey; // the number balance_nonroot parks a page under
	int parked;       // pages rekeyed to parkKey and not rekeyed away since
} ks_pcache;

static sqlite3_pcache *ks_create(int szPage, int szExtra, int bPurgeable) {
	ks_pcache *c = malloc(sizeof *c);
	if (!c) return 0;
	c->inner = ks_inner.xCreate(szPage, szExtra, bPurgeable);
	if (!c->inner) {
		free(c);
		return 0;
	}
	c->maxKey = 0;
	c->parkKey = szPage > 0 ? KS_PENDING_BYTE / (unsigned)szPage + 1 : 0;
	c->parked = 0;
	return (sqlite3_pcache *)c;
}

static void ks_cachesize(sqlite3_pcache *p, int n) { ks_inner.xCachesize(((ks_pcache *)p)->inner, n); }
static int ks_pagecount(sqlite3_pcache *p) { return ks_inner.xPagecount(((ks_pcache *)p)->inner); }

static sqlite3_pcache_page *ks_fetch(sqlite3_pcache *p, unsigned key, int create) {
	ks_pcache *c = (ks_pcache *)p;
	sqlite3_pcache_page *pg = ks_inner.xFetch(c->inner, key, create);
	if (pg && key > c->maxKey) c->maxKey = key;
	return pg;
}

static void ks_unpin(sqlite3_pcache *p, sqlite3_pcache_page *pg, int discard) {
	ks_inner.xUnpin(((ks_pcache *)p)->inner, pg, discard);
}

static void ks_rekey(sqlite3_pcache *p, sqlite3_pcache_page *pg, unsigned oldKey, unsigned newKey) {
	ks_pcache *c = (ks_pcache *)p;
	ks_inner.xRekey(c->inner, pg, oldKey, newKey);
	if (oldKey == c->parkKey && c->parked > 0) c->parked--;
	if (newKey == c->parkKey) c->parked++;
	else if (newKey > c->maxKey) c->maxKey = newKey;
}

static void ks_truncate(sqlite3_pcache *p, unsigned limit) {
	ks_pcache *c = (ks_pcache *)p;
	if (c->parked == 0 && limit > c->maxKey) {
		// Every page has a number below limit: nothing to drop.
		__atomic_add_fetch(&ks_truncates_skipped, 1, __ATOMIC_RELAXED);
		return;
	}
	__atomic_add_fetch(&ks_truncates_forwarded, 1, __ATOMIC_RELAXED);
	ks_inner.xTruncate(c->inner, limit);
	// pcache1 drops every page numbered limit or more, pinned or not.
	if (limit == 0) c->maxKey = 0;
	else if (c->maxKey >= limit) c->maxKey = limit - 1;
	if (c->parkKey >= limit) c->parked = 0;
}

static void ks_destroy(sqlite3_pcache *p) {
	ks_pcache *c = (ks_pcache *)p;
	ks_inner.xDestroy(c->inner);
	free(c);
}

static void ks_shrink(sqlite3_pcache *p) { ks_inner.xShrink(((ks_pcache *)p)->inner); }

// ks_install wraps SQLite's page cache; it returns SQLite's result code
// (SQLITE_MISUSE, 21, when SQLite is initialised already).
static int ks_install(void) {
	static ks_pcache_methods2 m;
	int rc = sqlite3_config(KS_CONFIG_GETPCACHE2, &ks_inner);
	if (rc) return rc;
	if (!ks_inner.xCreate || !ks_inner.xTruncate || !ks_inner.xRekey) return -1;
	m = ks_inner;
	m.xCreate = ks_create;
	m.xCachesize = ks_cachesize;
	m.xPagecount = ks_pagecount;
	m.xFetch = ks_fetch;
	m.xUnpin = ks_unpin;
	m.xRekey = ks_rekey;
	m.xTruncate = ks_truncate;
	m.xDestroy = ks_destroy;
	m.xShrink = ks_shrink;
	return sqlite3_config(KS_CONFIG_PCACHE2, &m);
}

// ks_no_memstatus turns SQLite's memory statistics off (SQLITE_CONFIG_MEMSTATUS,
// 9), so that its allocations no longer take a process-wide mutex; it
// returns SQLite's result code (SQLITE_MISUSE, 21, once SQLite is in use).
static int ks_no_memstatus(void) { return sqlite3_config(9, 0); }

static long long ks_skipped(void) { return __atomic_load_n(&ks_truncates_skipped, __ATOMIC_RELAXED); }
static long long ks_forwarded(void) { return __atomic_load_n(&ks_truncates_forwarded, __ATOMIC_RELAXED); }
*/
import "C"

import "fmt"

// pcacheInstalled is the result of installing the page cache wrapper
// (0: installed).
var pcacheInstalled = int(C.ks_install())

// pcacheTruncates returns how many cache truncations the wrapper skipped
// and forwarded so far, in every database of the process.
func pcacheTruncates() (skipped, forwarded int64) {
	return int64(C.ks_skipped()), int64(C.ks_forwarded())
}

// DisableMemoryStatistics turns off SQLite's accounting of the memory it
// allocates, process-wide, which takes a mutex in every allocation: the
// server calls it first thing. It fails once SQLite is in use, and a
// process that sets sqlite3_soft_heap_limit64 (the station's GUI) must not
// call it, since the limit rests on those statistics.
func DisableMemoryStatistics() error {
	if rc := C.ks_no_memstatus(); rc != 0 {
		return fmt.Errorf("sqlite3_config(SQLITE_CONFIG_MEMSTATUS): result code %d (SQLite is in use already)", int(rc))
	}
	return nil
}

// sqliteMemoryUsed is SQLite's count of the bytes it has allocated (0 with
// the statistics off).
func sqliteMemoryUsed() int64 { return int64(C.sqlite3_memory_used()) }
