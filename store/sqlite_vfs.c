/*
 * sqlite_vfs.c - the write-ahead log's writes gathered into one, and no
 * write larger than the system's VFS takes in one call.
 *
 * SQLite appends a commit's frames to the WAL one at a time, each as two
 * writes (a 24-byte header, then the page), and then syncs the file
 * (synchronous=FULL).  A batch of a few messages is some dozens of small
 * pwrites, each paying the kernel's per-call and per-page costs, ahead
 * of the one fdatasync that makes them durable.
 *
 * This VFS is the system's own ("unix") with one difference: writes to a
 * WAL file are kept in memory while they run on from each other, and go
 * to the file as one write before anything that needs them there: the
 * sync, a read, a truncation, the size, a file control, the close, or a
 * write somewhere else.  Nothing is lost by waiting: a WAL frame counts
 * only once the sync that follows it has returned, and with
 * synchronous=FULL (the only setting the store uses) every commit syncs
 * the WAL before it is published to other connections.  A write the
 * kernel refuses is reported by the call that flushed it, a sync at the
 * latest, and fails that commit.
 *
 * Statement and temporary journals stay in memory until they pass
 * SQLITE_CONFIG_STMTJRNL_SPILL (sqlite.c sets 4 MiB); when one spills,
 * SQLite writes what it kept to the new file in chunks of that size, one
 * call each, which the unix VFS cannot take (write_pieces).  Those files
 * are wrapped too, only to split such writes.
 *
 * Every other file (the database, its shared memory, other temporary
 * files) is the unix VFS's own, untouched.
 */
#include "store/sqlite_int.h"

#include <stdlib.h>
#include <string.h>

#define WAL_GATHER_MAX	(1 << 20)	/* written out when it would grow past this */

struct wal_file {
	sqlite3_file base;
	sqlite3_file *real;	/* the unix VFS's file, in the same allocation */
	int gather;		/* a WAL: writes are kept to go as one */
	unsigned char *buf;	/* what was written from off on, not yet in the file */
	size_t len, cap;
	sqlite3_int64 off;
};

static sqlite3_vfs gather_vfs;

static sqlite3_file *
real_of(sqlite3_file *f)
{
	return ((struct wal_file *)f)->real;
}

/*
 * The unix VFS writes at most 128 KiB - 1 bytes in one call: it masks the
 * length with 0x1ffff, as a page is at most 64 KiB, so a write of 4 MiB
 * writes nothing and is reported as a full disk (SQLITE_FULL).  Larger
 * runs go in pieces.
 */
#define WRITE_MAX	(120 * 1024)

static int
write_pieces(sqlite3_file *real, const unsigned char *p, size_t len, sqlite3_int64 ofst)
{
	int rc = SQLITE_OK;

	for (size_t done = 0, n; done < len && rc == SQLITE_OK; done += n) {
		n = len - done < WRITE_MAX ? len - done : WRITE_MAX;
		rc = real->pMethods->xWrite(real, p + done, (int)n, ofst + (sqlite3_int64)done);
	}
	return rc;
}

static int
wal_flush(struct wal_file *w)
{
	int rc = write_pieces(w->real, w->buf, w->len, w->off);

	w->len = 0;
	return rc;
}

/*
 * WAL: a write that follows on from what is kept joins it, up to
 * WAL_GATHER_MAX; any other writes out what is kept first (a frame
 * written again in place, in a transaction that spilled, is one).
 * Any other file wrapped here is written at once, in pieces.
 */
static int
wal_write(sqlite3_file *f, const void *p, int amt, sqlite3_int64 ofst)
{
	struct wal_file *w = (struct wal_file *)f;
	size_t end;
	int rc;

	if (!w->gather)
		return write_pieces(w->real, p, (size_t)amt, ofst);
	if (w->len == 0 || ofst != w->off + (sqlite3_int64)w->len ||
	    w->len + (size_t)amt > WAL_GATHER_MAX) {
		if ((rc = wal_flush(w)) != SQLITE_OK)
			return rc;
		w->off = ofst;
	}
	end = w->len + (size_t)amt;
	if (end > w->cap) {
		size_t cap = w->cap ? w->cap : 64 * 1024;
		unsigned char *nb;

		while (cap < end)
			cap *= 2;
		if (cap > WAL_GATHER_MAX || (nb = realloc(w->buf, cap)) == NULL) {
			if ((rc = wal_flush(w)) != SQLITE_OK)
				return rc;
			return w->real->pMethods->xWrite(w->real, p, amt, ofst);
		}
		w->buf = nb;
		w->cap = cap;
	}
	memcpy(w->buf + w->len, p, (size_t)amt);
	w->len = end;
	return SQLITE_OK;
}

static int
wal_close(sqlite3_file *f)
{
	struct wal_file *w = (struct wal_file *)f;
	int rc = wal_flush(w), rc2;

	free(w->buf);
	w->buf = NULL;
	w->cap = 0;
	rc2 = w->real->pMethods->xClose(w->real);
	return rc != SQLITE_OK ? rc : rc2;
}

static int
wal_read(sqlite3_file *f, void *p, int amt, sqlite3_int64 ofst)
{
	int rc = wal_flush((struct wal_file *)f);

	return rc != SQLITE_OK ? rc : real_of(f)->pMethods->xRead(real_of(f), p, amt, ofst);
}

static int
wal_truncate(sqlite3_file *f, sqlite3_int64 size)
{
	int rc = wal_flush((struct wal_file *)f);

	return rc != SQLITE_OK ? rc : real_of(f)->pMethods->xTruncate(real_of(f), size);
}

static int
wal_sync(sqlite3_file *f, int flags)
{
	int rc = wal_flush((struct wal_file *)f);

	return rc != SQLITE_OK ? rc : real_of(f)->pMethods->xSync(real_of(f), flags);
}

static int
wal_file_size(sqlite3_file *f, sqlite3_int64 *size)
{
	int rc = wal_flush((struct wal_file *)f);

	return rc != SQLITE_OK ? rc : real_of(f)->pMethods->xFileSize(real_of(f), size);
}

static int
wal_lock(sqlite3_file *f, int level)
{
	return real_of(f)->pMethods->xLock(real_of(f), level);
}

static int
wal_unlock(sqlite3_file *f, int level)
{
	return real_of(f)->pMethods->xUnlock(real_of(f), level);
}

static int
wal_check_reserved(sqlite3_file *f, int *out)
{
	return real_of(f)->pMethods->xCheckReservedLock(real_of(f), out);
}

static int
wal_file_control(sqlite3_file *f, int op, void *arg)
{
	int rc = wal_flush((struct wal_file *)f);

	return rc != SQLITE_OK ? rc : real_of(f)->pMethods->xFileControl(real_of(f), op, arg);
}

static int
wal_sector_size(sqlite3_file *f)
{
	return real_of(f)->pMethods->xSectorSize(real_of(f));
}

static int
wal_device_characteristics(sqlite3_file *f)
{
	return real_of(f)->pMethods->xDeviceCharacteristics(real_of(f));
}

static const sqlite3_io_methods wal_methods = {
	.iVersion = 1,
	.xClose = wal_close,
	.xRead = wal_read,
	.xWrite = wal_write,
	.xTruncate = wal_truncate,
	.xSync = wal_sync,
	.xFileSize = wal_file_size,
	.xLock = wal_lock,
	.xUnlock = wal_unlock,
	.xCheckReservedLock = wal_check_reserved,
	.xFileControl = wal_file_control,
	.xSectorSize = wal_sector_size,
	.xDeviceCharacteristics = wal_device_characteristics,
};

static int
gather_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *f, int flags, int *out_flags)
{
	sqlite3_vfs *real = vfs->pAppData;
	struct wal_file *w = (struct wal_file *)f;
	int rc, wal = (flags & SQLITE_OPEN_WAL) && !(flags & SQLITE_OPEN_READONLY);

	if (!wal && !(flags & (SQLITE_OPEN_SUBJOURNAL | SQLITE_OPEN_TEMP_JOURNAL)))
		return real->xOpen(real, name, f, flags, out_flags);
	memset(w, 0, sizeof(*w));
	w->gather = wal;
	w->real = (sqlite3_file *)(w + 1);
	rc = real->xOpen(real, name, w->real, flags, out_flags);
	w->base.pMethods = rc == SQLITE_OK ? &wal_methods : NULL;
	return rc;
}

/*
 * Registered once, before the first connection (not as the default);
 * returns its name, or NULL if the system's VFS was not found.
 */
const char *
sq_vfs_register(void)
{
	sqlite3_vfs *real = sqlite3_vfs_find(NULL);

	if (real == NULL)
		return NULL;
	gather_vfs = *real;
	gather_vfs.pNext = NULL;
	gather_vfs.zName = "umbox";
	gather_vfs.pAppData = real;
	gather_vfs.xOpen = gather_open;
	gather_vfs.szOsFile = (int)sizeof(struct wal_file) + real->szOsFile;
	if (sqlite3_vfs_register(&gather_vfs, 0) != SQLITE_OK)
		return NULL;
	return gather_vfs.zName;
}
