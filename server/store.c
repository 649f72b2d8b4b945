/* store: corpora, training jobs and per-epoch results in one SQLite file (see store.h).
 * Locking: one connection opened SQLITE_OPEN_NOMUTEX plus our own mutex held for a whole public
 * call. SQLite's FULLMUTEX would only serialize single API calls; a call here is several (BEGIN,
 * statements, reading sqlite3_errmsg, COMMIT), and two threads interleaving them on one
 * connection would share a transaction and read each other's error messages. Our mutex makes the
 * connection's own mutex redundant. Calls are short (one 5 MB blob copy at most), and writes are
 * serialized by SQLite anyway, so a connection pool would buy little.
 * Every sqlite3_stmt is prepared and finalized within one call; text is bound SQLITE_TRANSIENT
 * except where the comment says why SQLITE_STATIC is safe. */
#include "store.h"

#include "err.h"

#include <errno.h>
#include <libgen.h>
#include <math.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

struct store {
    sqlite3 *db;
    pthread_mutex_t mu; /* held for the whole of every public call */
};

// ---- schema

/* migrations[i] takes user_version i to i + 1, in one transaction with the version bump. Append
 * only: a released step never changes, because existing databases already carry its effects.
 * The status names in the CHECK must match job_status_names below.
 * AUTOINCREMENT so an id in a URL never comes back for a different corpus or job after a delete.
 * corpora.text is a BLOB so the upload round-trips byte for byte (an embedded NUL included). */
static const char *const migrations[] = {
    /* 1: the initial schema. */
    "CREATE TABLE corpora ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  name TEXT NOT NULL,"
    "  text BLOB NOT NULL,"
    "  bytes INTEGER NOT NULL CHECK (bytes >= 0),"
    "  chars INTEGER NOT NULL CHECK (chars >= 0 AND chars <= bytes),"
    "  distinct_chars INTEGER NOT NULL CHECK (distinct_chars >= 0 AND distinct_chars <= chars),"
    "  sha256 TEXT NOT NULL CHECK (length(sha256) = 64),"
    "  created_at TEXT NOT NULL"
    ");"
    "CREATE TABLE jobs ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  corpus_id INTEGER REFERENCES corpora(id) ON DELETE SET NULL,"
    "  model_name TEXT NOT NULL,"
    "  hyperparameters TEXT NOT NULL,"
    "  status TEXT NOT NULL DEFAULT 'queued'"
    "    CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),"
    "  error TEXT,"
    "  cancel_requested INTEGER NOT NULL DEFAULT 0 CHECK (cancel_requested IN (0, 1)),"
    "  epoch INTEGER NOT NULL DEFAULT 0,"
    "  epochs INTEGER NOT NULL DEFAULT 0,"
    "  step INTEGER NOT NULL DEFAULT 0,"
    "  steps INTEGER NOT NULL DEFAULT 0,"
    "  fraction REAL NOT NULL DEFAULT 0,"
    "  chars_per_sec REAL,"
    "  eta_seconds REAL,"
    "  train_loss REAL,"
    "  created_at TEXT NOT NULL,"
    "  started_at TEXT,"
    "  finished_at TEXT,"
    "  updated_at TEXT NOT NULL,"
    "  checkpoint_path TEXT,"
    "  attempts INTEGER NOT NULL DEFAULT 0"
    ");"
    /* The claim (oldest queued) and the status-filtered list; the corpus delete check. */
    "CREATE INDEX jobs_status_id ON jobs(status, id);"
    "CREATE INDEX jobs_corpus_id ON jobs(corpus_id);"
    "CREATE TABLE job_epochs ("
    "  job_id INTEGER NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,"
    "  epoch INTEGER NOT NULL CHECK (epoch >= 1),"
    "  train_loss REAL,"
    "  val_loss REAL,"
    "  seconds REAL NOT NULL,"
    "  samples TEXT NOT NULL DEFAULT '{}',"
    "  PRIMARY KEY (job_id, epoch)"
    ") WITHOUT ROWID;",
    /* 2: starts since the job last completed an epoch: the crash-loop guard counts these, so a
     * job that keeps making progress survives any number of restarts. */
    "ALTER TABLE jobs ADD COLUMN stalled_attempts INTEGER NOT NULL DEFAULT 0;"
    "UPDATE jobs SET stalled_attempts = attempts;",
    /* 3: fine-tuning: the model a job starts from, and what to do with the corpus's characters
     * that model lacks (NULL: none, and "error"). */
    "ALTER TABLE jobs ADD COLUMN base_model TEXT;"
    "ALTER TABLE jobs ADD COLUMN unknown_chars TEXT;",
    /* 4: the trainer lease: which process runs this database's jobs, and its last heartbeat
     * (Unix seconds). SQLite's file locks do not hold across machines on a network volume;
     * this row does, for as long as the heartbeats come. */
    "CREATE TABLE trainer_lease ("
    "  id INTEGER PRIMARY KEY CHECK (id = 1),"
    "  holder TEXT NOT NULL,"
    "  heartbeat REAL NOT NULL"
    ");",
    /* 5: what a time budget chose for the job (the plan's JSON, core/budget.h), or NULL. */
    "ALTER TABLE jobs ADD COLUMN plan TEXT;",
};
_Static_assert(sizeof migrations / sizeof *migrations == STORE_SCHEMA_VERSION,
               "STORE_SCHEMA_VERSION must count the migrations");

#define CORPUS_COLUMNS "id, name, bytes, chars, distinct_chars, sha256, created_at"
#define CORPUS_NCOLUMNS 7 /* the text, when asked for, is column 7 */

#define JOB_COLUMNS                                                                           \
    "id, corpus_id, model_name, hyperparameters, status, error, cancel_requested, epoch, "    \
    "epochs, step, steps, fraction, chars_per_sec, eta_seconds, train_loss, created_at, "     \
    "started_at, finished_at, updated_at, checkpoint_path, attempts, stalled_attempts, "        \
    "base_model, unknown_chars, plan"

#define EPOCH_COLUMNS "job_id, epoch, train_loss, val_loss, seconds, samples"

static const char *const job_status_names[STORE_JOB_NSTATUS] = {
    [STORE_JOB_QUEUED] = "queued",       [STORE_JOB_RUNNING] = "running",
    [STORE_JOB_SUCCEEDED] = "succeeded", [STORE_JOB_FAILED] = "failed",
    [STORE_JOB_CANCELLED] = "cancelled",
};

// ---- errors

const char *store_strerror(int code)
{
    switch (code) {
#define STORE__ERR_MSG(name, value, msg) case STORE_##name: return msg;
    STORE_ERR_MAP(STORE__ERR_MSG)
#undef STORE__ERR_MSG
    }
    return NULL;
}

const char *store_errname(int code)
{
    switch (code) {
#define STORE__ERR_NAME(name, value, msg) case STORE_##name: return #name;
    STORE_ERR_MAP(STORE__ERR_NAME)
#undef STORE__ERR_NAME
    }
    return NULL;
}

/* sys_errno is the connection's last OS error: SQLite reports only ENOSPC as SQLITE_FULL, and a
 * write refused by a file-size limit (EFBIG) or a quota (EDQUOT) as a plain I/O error. */
static int code_from_sqlite(int rc, int sys_errno)
{
    if ((rc & 0xff) == SQLITE_IOERR &&
        (sys_errno == ENOSPC || sys_errno == EFBIG || sys_errno == EDQUOT))
        return STORE_EFULL;
    switch (rc & 0xff) {
    case SQLITE_NOMEM: return CORE_ENOMEM;
    case SQLITE_BUSY:
    case SQLITE_LOCKED: return STORE_EBUSY;
    case SQLITE_CONSTRAINT:
    case SQLITE_MISMATCH:
    case SQLITE_RANGE: return CORE_EINVAL;
    case SQLITE_TOOBIG: return CORE_ERANGE;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB: return CORE_EFORMAT;
    case SQLITE_FULL: return STORE_EFULL;
    default: return CORE_EIO;
    }
}

/* The connection's message when it describes rc, else SQLite's generic text for rc. */
static const char *sqlite_msg(sqlite3 *db, int rc)
{
    if (db && (sqlite3_extended_errcode(db) == rc || sqlite3_errcode(db) == rc))
        return sqlite3_errmsg(db);
    return sqlite3_errstr(rc);
}

/* Must run before anything else touches the connection, so the message is still rc's. */
static int sql_err(store *s, int rc, const char *what, char *err, size_t errlen)
{
    int sys_errno = s->db && (rc & 0xff) == SQLITE_IOERR ? sqlite3_system_errno(s->db) : 0;
    int code = code_from_sqlite(rc, sys_errno);
    if (sys_errno)
        return core_errf(err, errlen, code, "database error while %s: %s (%s)", what,
                         sqlite_msg(s->db, rc), strerror(sys_errno));
    return core_errf(err, errlen, code, "database error while %s: %s", what,
                     sqlite_msg(s->db, rc));
}

static int oom(char *err, size_t errlen, const char *what)
{
    return core_errf(err, errlen, CORE_ENOMEM, "out of memory while %s", what);
}

// ---- small helpers (all called with the mutex held)

static void now_iso(char out[STORE_TIME_SIZE])
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(out, STORE_TIME_SIZE, "%Y-%m-%dT%H:%M:%S", &tm);
    unsigned ms = (unsigned)(ts.tv_nsec / 1000000) % 1000u;
    snprintf(out + n, STORE_TIME_SIZE - n, ".%03uZ", ms);
}

static int prepare(store *s, sqlite3_stmt **st, const char *sql, const char *what, char *err,
                   size_t errlen)
{
    int rc = sqlite3_prepare_v2(s->db, sql, -1, st, NULL);
    return rc == SQLITE_OK ? 0 : sql_err(s, rc, what, err, errlen);
}

static int exec(store *s, const char *sql, const char *what, char *err, size_t errlen)
{
    int rc = sqlite3_exec(s->db, sql, NULL, NULL, NULL);
    return rc == SQLITE_OK ? 0 : sql_err(s, rc, what, err, errlen);
}

/* Steps a statement that returns no rows. */
static int run(store *s, sqlite3_stmt *st, const char *what, char *err, size_t errlen)
{
    int rc = sqlite3_step(st);
    return rc == SQLITE_DONE ? 0 : sql_err(s, rc, what, err, errlen);
}

static int bind_real(sqlite3_stmt *st, int i, double v)
{
    /* NAN means unknown; SQLite would store NULL for it anyway, but say so. */
    return isnan(v) ? sqlite3_bind_null(st, i) : sqlite3_bind_double(st, i, v);
}

/* Prepares sql and binds ?1, ?2, ... from the arguments, one per letter of types:
 *   'i' int64_t;  'r' double (NaN binds NULL);
 *   't' const char * (NULL binds NULL), copied;
 *   's' const char * that outlives the statement (a literal), not copied;
 *   'b' const void *, size_t: a blob that outlives the statement, not copied (tens of MB).
 * On failure *st is NULL. Every statement in this file goes through here, so all SQL is prepared
 * with its values bound, never spliced into the text. */
static int vstatement(store *s, sqlite3_stmt **st, const char *what, char *err, size_t errlen,
                      const char *sql, const char *types, va_list ap)
{
    int rc = prepare(s, st, sql, what, err, errlen);
    if (rc)
        return rc;
    for (int i = 0; types[i] && rc == SQLITE_OK; i++) {
        int at = i + 1;
        switch (types[i]) {
        case 'i': rc = sqlite3_bind_int64(*st, at, va_arg(ap, int64_t)); break;
        case 'r': rc = bind_real(*st, at, va_arg(ap, double)); break;
        case 't': rc = sqlite3_bind_text(*st, at, va_arg(ap, const char *), -1, SQLITE_TRANSIENT);
            break;
        case 's': rc = sqlite3_bind_text(*st, at, va_arg(ap, const char *), -1, SQLITE_STATIC);
            break;
        case 'b': {
            const void *p = va_arg(ap, const void *);
            size_t n = va_arg(ap, size_t);
            /* "" because a NULL blob would bind SQL NULL */
            rc = sqlite3_bind_blob64(*st, at, n ? p : "", n, SQLITE_STATIC);
            break;
        }
        default: rc = SQLITE_MISUSE;
        }
    }
    if (rc != SQLITE_OK) {
        rc = sql_err(s, rc, what, err, errlen);
        sqlite3_finalize(*st);
        *st = NULL;
        return rc;
    }
    return 0;
}

static int statement(store *s, sqlite3_stmt **st, const char *what, char *err, size_t errlen,
                     const char *sql, const char *types, ...)
{
    va_list ap;
    va_start(ap, types);
    int rc = vstatement(s, st, what, err, errlen, sql, types, ap);
    va_end(ap);
    return rc;
}

/* A statement that returns no rows, prepared, bound (as statement()), run and finalized.
 * *changed (may be NULL) = the rows it changed. */
static int execute(store *s, int64_t *changed, const char *what, char *err, size_t errlen,
                   const char *sql, const char *types, ...)
{
    sqlite3_stmt *st = NULL;
    va_list ap;
    va_start(ap, types);
    int rc = vstatement(s, &st, what, err, errlen, sql, types, ap);
    va_end(ap);
    if (rc)
        return rc;
    rc = run(s, st, what, err, errlen);
    if (rc == 0 && changed)
        *changed = sqlite3_changes64(s->db);
    sqlite3_finalize(st);
    return rc;
}

/* IMMEDIATE takes the write lock up front (waiting up to the busy timeout), so a transaction
 * that reads and then writes never fails half-way with SQLITE_BUSY_SNAPSHOT. */
static int tx_begin(store *s, char *err, size_t errlen)
{
    return exec(s, "BEGIN IMMEDIATE", "starting a transaction", err, errlen);
}

/* Safe after any failure: SQLite may already have rolled back by itself (on SQLITE_FULL, IOERR,
 * NOMEM), and then there is nothing to do. */
static void tx_rollback(store *s)
{
    if (!sqlite3_get_autocommit(s->db))
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
}

static int tx_commit(store *s, char *err, size_t errlen)
{
    int rc = exec(s, "COMMIT", "committing", err, errlen);
    if (rc)
        tx_rollback(s);
    return rc;
}

/* Binds ?1 = key and reads column 0 of the first row as an integer; *found = 0 when no row. */
static int query_int(store *s, const char *sql, int64_t key, int64_t *val, int *found,
                     const char *what, char *err, size_t errlen)
{
    sqlite3_stmt *st = NULL;
    int rc = statement(s, &st, what, err, errlen, sql, "i", key);
    if (rc)
        return rc;
    rc = sqlite3_step(st);
    *found = rc == SQLITE_ROW;
    if (rc == SQLITE_ROW)
        *val = sqlite3_column_int64(st, 0);
    rc = rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : sql_err(s, rc, what, err, errlen);
    sqlite3_finalize(st);
    return rc;
}

static int job_status_from_text(const unsigned char *text, store_job_status *out)
{
    return store_job_status_parse((const char *)text, out);
}

/* *status = job id's status; STORE_ENOTFOUND when there is no such job. */
static int job_status_locked(store *s, int64_t id, store_job_status *status, char *err,
                             size_t errlen)
{
    const char *what = "reading a job's status";
    sqlite3_stmt *st = NULL;
    int rc = statement(s, &st, what, err, errlen, "SELECT status FROM jobs WHERE id = ?1", "i", id);
    if (rc)
        return rc;
    rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) {
        rc = core_errf(err, errlen, STORE_ENOTFOUND, "job %lld not found", (long long)id);
    } else if (rc != SQLITE_ROW) {
        rc = sql_err(s, rc, what, err, errlen);
    } else if (job_status_from_text(sqlite3_column_text(st, 0), status) != 0) {
        rc = core_errf(err, errlen, CORE_EFORMAT, "job %lld has an unknown status", (long long)id);
    } else {
        rc = 0;
    }
    sqlite3_finalize(st);
    return rc;
}

/* Why an UPDATE ... WHERE id = ? AND status = 'running' changed nothing. */
static int not_running_err(store *s, int64_t id, char *err, size_t errlen)
{
    store_job_status status;
    int rc = job_status_locked(s, id, &status, err, errlen);
    if (rc)
        return rc;
    if (status == STORE_JOB_RUNNING) /* only a racing writer in another process gets here */
        return core_errf(err, errlen, STORE_EBUSY, "job %lld changed concurrently", (long long)id);
    return core_errf(err, errlen, STORE_ECONFLICT, "job %lld is %s, not running", (long long)id,
                job_status_names[status]);
}

// ---- reading rows

/* Copies a text column into a new string; SQL NULL gives NULL. */
static int col_str(sqlite3_stmt *st, int i, char **out)
{
    *out = NULL;
    if (sqlite3_column_type(st, i) == SQLITE_NULL)
        return 0;
    const unsigned char *p = sqlite3_column_text(st, i);
    if (!p)
        return CORE_ENOMEM; /* a non-NULL value SQLite could not convert */
    size_t n = (size_t)sqlite3_column_bytes(st, i);
    char *c = malloc(n + 1);
    if (!c)
        return CORE_ENOMEM;
    memcpy(c, p, n);
    c[n] = '\0';
    *out = c;
    return 0;
}

/* Copies a short text column into a fixed buffer, truncating; SQL NULL gives "". */
static void col_buf(sqlite3_stmt *st, int i, char *buf, size_t size)
{
    const unsigned char *p = sqlite3_column_text(st, i);
    size_t n = p ? (size_t)sqlite3_column_bytes(st, i) : 0;
    if (n > size - 1)
        n = size - 1;
    if (n)
        memcpy(buf, p, n);
    buf[n] = '\0';
}

static double col_real(sqlite3_stmt *st, int i)
{
    return sqlite3_column_type(st, i) == SQLITE_NULL ? NAN : sqlite3_column_double(st, i);
}

typedef int (*row_reader)(sqlite3_stmt *st, void *dst, char *err, size_t errlen);
typedef void (*row_deinit)(void *row);

static int corpus_row(sqlite3_stmt *st, void *dst, char *err, size_t errlen)
{
    store_corpus c = {0};
    c.id = sqlite3_column_int64(st, 0);
    if (col_str(st, 1, &c.name) != 0)
        goto nomem;
    c.bytes = sqlite3_column_int64(st, 2);
    c.chars = sqlite3_column_int64(st, 3);
    c.distinct_chars = sqlite3_column_int64(st, 4);
    col_buf(st, 5, c.sha256, sizeof c.sha256);
    col_buf(st, 6, c.created_at, sizeof c.created_at);
    if (sqlite3_column_count(st) > CORPUS_NCOLUMNS) {
        /* column_blob before column_bytes, as SQLite asks; a zero-length blob comes back NULL. */
        const void *p = sqlite3_column_blob(st, CORPUS_NCOLUMNS);
        size_t n = (size_t)sqlite3_column_bytes(st, CORPUS_NCOLUMNS);
        if (!p && n)
            goto nomem;
        c.text = malloc(n + 1);
        if (!c.text)
            goto nomem;
        if (n)
            memcpy(c.text, p, n);
        c.text[n] = '\0';
        c.bytes = (int64_t)n;
    }
    *(store_corpus *)dst = c;
    return 0;
nomem:
    store_corpus_deinit(&c);
    return oom(err, errlen, "reading a corpus");
}

static int job_row(sqlite3_stmt *st, void *dst, char *err, size_t errlen)
{
    store_job j = {0};
    j.id = sqlite3_column_int64(st, 0);
    j.corpus_id = sqlite3_column_int64(st, 1); /* NULL reads as 0 */
    if (col_str(st, 2, &j.model_name) || col_str(st, 3, &j.hyperparameters) ||
        col_str(st, 5, &j.error) || col_str(st, 19, &j.checkpoint_path) ||
        col_str(st, 22, &j.base_model) || col_str(st, 23, &j.unknown_chars) ||
        col_str(st, 24, &j.plan)) {
        store_job_deinit(&j);
        return oom(err, errlen, "reading a job");
    }
    if (job_status_from_text(sqlite3_column_text(st, 4), &j.status) != 0) {
        store_job_deinit(&j);
        return core_errf(err, errlen, CORE_EFORMAT, "job %lld has an unknown status",
                         (long long)j.id);
    }
    j.cancel_requested = sqlite3_column_int(st, 6) != 0;
    j.progress.epoch = sqlite3_column_int64(st, 7);
    j.progress.epochs = sqlite3_column_int64(st, 8);
    j.progress.step = sqlite3_column_int64(st, 9);
    j.progress.steps = sqlite3_column_int64(st, 10);
    j.progress.fraction = sqlite3_column_double(st, 11);
    j.progress.chars_per_sec = col_real(st, 12);
    j.progress.eta_seconds = col_real(st, 13);
    j.progress.train_loss = col_real(st, 14);
    col_buf(st, 15, j.created_at, sizeof j.created_at);
    col_buf(st, 16, j.started_at, sizeof j.started_at);
    col_buf(st, 17, j.finished_at, sizeof j.finished_at);
    col_buf(st, 18, j.updated_at, sizeof j.updated_at);
    j.attempts = sqlite3_column_int64(st, 20);
    j.stalled_attempts = sqlite3_column_int64(st, 21);
    *(store_job *)dst = j;
    return 0;
}

/* Reads the one row sql (with ?1 = id) selects into out with row(); STORE_ENOTFOUND naming kind
 * when there is none. */
static int select_by_id(store *s, const char *sql, int64_t id, const char *kind,
                        int (*row)(sqlite3_stmt *, void *, char *, size_t), void *out, char *err,
                        size_t errlen)
{
    char what[48];
    snprintf(what, sizeof what, "reading a %s", kind);
    sqlite3_stmt *st = NULL;
    int rc = statement(s, &st, what, err, errlen, sql, "i", id);
    if (rc)
        return rc;
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        rc = row(st, out, err, errlen);
    else if (rc == SQLITE_DONE)
        rc = core_errf(err, errlen, STORE_ENOTFOUND, "%s %lld not found", kind, (long long)id);
    else
        rc = sql_err(s, rc, what, err, errlen);
    sqlite3_finalize(st);
    return rc;
}

static int epoch_row(sqlite3_stmt *st, void *dst, char *err, size_t errlen)
{
    store_epoch e = {0};
    e.job_id = sqlite3_column_int64(st, 0);
    e.epoch = sqlite3_column_int64(st, 1);
    e.train_loss = col_real(st, 2);
    e.val_loss = col_real(st, 3);
    e.seconds = sqlite3_column_double(st, 4);
    if (col_str(st, 5, &e.samples) != 0)
        return oom(err, errlen, "reading an epoch");
    *(store_epoch *)dst = e;
    return 0;
}

static void corpus_deinit_v(void *p) { store_corpus_deinit(p); }
static void job_deinit_v(void *p) { store_job_deinit(p); }
static void epoch_deinit_v(void *p) { store_epoch_deinit(p); }

/* Steps st to the end, reading every row into a growing array of size-byte elements. On
 * failure every row read so far is deinited and nothing is written to out and n. */
static int collect_rows(store *s, sqlite3_stmt *st, size_t size, row_reader read,
                        row_deinit deinit, void **out, size_t *n, const char *what, char *err,
                        size_t errlen)
{
    char *rows = NULL;
    size_t len = 0, cap = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (len == cap) {
            size_t ncap = cap ? 2 * cap : 16;
            char *grown = realloc(rows, ncap * size);
            if (!grown) {
                rc = oom(err, errlen, what);
                goto fail;
            }
            rows = grown;
            cap = ncap;
        }
        rc = read(st, rows + len * size, err, errlen);
        if (rc)
            goto fail;
        len++;
    }
    if (rc != SQLITE_DONE) {
        rc = sql_err(s, rc, what, err, errlen);
        goto fail;
    }
    if (len == 0) {
        free(rows);
        rows = NULL;
    }
    *out = rows;
    *n = len;
    return 0;
fail:
    for (size_t i = 0; i < len; i++)
        deinit(rows + i * size);
    free(rows);
    return rc;
}

// ---- open / close

/* SQLite's "unable to open database file" does not say why; a missing directory is the usual
 * reason, so check it first and name it. An existing path is left to SQLite. */
static int check_dir(const char *path, char *err, size_t errlen)
{
    struct stat sb;
    if (stat(path, &sb) == 0)
        return 0;
    char *copy = strdup(path);
    if (!copy)
        return oom(err, errlen, "opening the database");
    const char *dir = dirname(copy); /* may point into copy */
    int rc = 0;
    if (stat(dir, &sb) != 0)
        rc = core_errf(err, errlen, CORE_EIO, "cannot create database %s: directory %s: %s", path,
                       dir, strerror(errno));
    else if (!S_ISDIR(sb.st_mode))
        rc = core_errf(err, errlen, CORE_EIO, "cannot create database %s: %s is not a directory",
                  path, dir);
    free(copy);
    return rc;
}

static int open_err(store *s, int rc, const char *path, const char *what, char *err,
                    size_t errlen)
{
    int sys = s->db ? sqlite3_system_errno(s->db) : 0;
    return core_errf(err, errlen, code_from_sqlite(rc, sys), "cannot open database %s: %s: %s%s%s%s",
                     path, what, sqlite_msg(s->db, rc), sys ? " (" : "", sys ? strerror(sys) : "",
                     sys ? ")" : "");
}

/* Reads a one-row, one-column PRAGMA as text. */
static int pragma_text(store *s, const char *sql, char *buf, size_t size, const char *path,
                       char *err, size_t errlen)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        col_buf(st, 0, buf, size);
        rc = 0;
    } else if (rc == SQLITE_DONE) {
        rc = core_errf(err, errlen, CORE_EIO, "cannot open database %s: %s returned nothing", path,
                  sql);
    } else {
        rc = open_err(s, rc, path, sql, err, errlen);
    }
    sqlite3_finalize(st);
    return rc;
}

/* Per-connection settings (journal_mode is stored in the file, the rest are not). */
static int configure(store *s, const char *path, char *err, size_t errlen)
{
    const char *pragmas[] = {
        /* Off by default in SQLite; the ON DELETE SET NULL / CASCADE rules need it. */
        "PRAGMA foreign_keys = ON",
        /* Readers never block the writer and a crash mid-commit leaves the WAL's tail unused. */
        "PRAGMA journal_mode = WAL",
        /* FULL: a commit is fsynced to the WAL before we return, so what the HTTP layer
         * acknowledged (an upload, a queued job) survives power loss, not just a killed
         * process (NORMAL's guarantee). The cost, one fsync per commit, is small at our few
         * writes a second. */
        "PRAGMA synchronous = FULL",
    };
    const char *want[] = {"1", "wal", "2"};
    const char *check[] = {"PRAGMA foreign_keys", "PRAGMA journal_mode", "PRAGMA synchronous"};
    for (size_t i = 0; i < sizeof pragmas / sizeof *pragmas; i++) {
        char got[16];
        int rc = sqlite3_exec(s->db, pragmas[i], NULL, NULL, NULL);
        if (rc != SQLITE_OK)
            return open_err(s, rc, path, pragmas[i], err, errlen);
        /* A PRAGMA that SQLite cannot honour is silently ignored, so read each one back. */
        rc = pragma_text(s, check[i], got, sizeof got, path, err, errlen);
        if (rc)
            return rc;
        if (strcmp(got, want[i]) != 0)
            return core_errf(err, errlen, CORE_EIO, "cannot open database %s: %s did not take (%s)",
                        path, pragmas[i], got);
    }
    return 0;
}

/* *version = the file's PRAGMA user_version, which must be one this build knows. */
static int read_version(store *s, const char *path, long *version, char *err, size_t errlen)
{
    char buf[24];
    int rc = pragma_text(s, "PRAGMA user_version", buf, sizeof buf, path, err, errlen);
    if (rc)
        return rc;
    long v = strtol(buf, NULL, 10);
    if (v < 0 || v > STORE_SCHEMA_VERSION)
        return core_errf(err, errlen, CORE_EFORMAT,
                    "cannot open database %s: its schema version is %ld, but this build knows "
                    "versions up to %d (was it written by a newer lstmgen?)",
                    path, v, STORE_SCHEMA_VERSION);
    *version = v;
    return 0;
}

/* Applies pending migrations one transaction each. The version is read again inside the write
 * transaction, so two processes opening a fresh file at once cannot both apply a step. */
static int migrate(store *s, const char *path, char *err, size_t errlen)
{
    for (;;) {
        int rc = sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
        if (rc != SQLITE_OK)
            return open_err(s, rc, path, "starting a migration", err, errlen);
        long version = 0;
        rc = read_version(s, path, &version, err, errlen);
        if (rc || version == STORE_SCHEMA_VERSION) {
            tx_rollback(s); /* nothing written */
            return rc;
        }
        char bump[48];
        snprintf(bump, sizeof bump, "PRAGMA user_version = %ld", version + 1);
        rc = sqlite3_exec(s->db, migrations[version], NULL, NULL, NULL);
        if (rc == SQLITE_OK)
            rc = sqlite3_exec(s->db, bump, NULL, NULL, NULL);
        if (rc == SQLITE_OK)
            rc = sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL);
        if (rc != SQLITE_OK) {
            char what[64];
            snprintf(what, sizeof what, "migrating to schema version %ld", version + 1);
            rc = open_err(s, rc, path, what, err, errlen);
            tx_rollback(s);
            return rc;
        }
    }
}

int store_open(store **out, const char *path, char *err, size_t errlen)
{
    if (!out || !path || !*path)
        return core_errf(err, errlen, CORE_EINVAL, "store_open: no database path");
    /* NOMUTEX below relies on SQLite's global state being thread-safe. */
    if (!sqlite3_threadsafe())
        return core_errf(err, errlen, CORE_EINVAL, "libsqlite3 was built without thread support");
    int rc = check_dir(path, err, errlen);
    if (rc)
        return rc;
    /* SQLite takes an empty file for a new database: but an lstmgen database is never empty
     * once created (store_open writes its schema at once), so an empty one was truncated */
    struct stat st;
    int existed = stat(path, &st) == 0;
    if (existed && S_ISREG(st.st_mode) && st.st_size == 0)
        return core_errf(err, errlen, CORE_EFORMAT, "database %s is an empty file (truncated?): "
                         "restore it from a backup, or remove it to start an empty one", path);
    store *s = calloc(1, sizeof *s);
    if (!s)
        return oom(err, errlen, "opening the database");
    if (pthread_mutex_init(&s->mu, NULL) != 0) {
        rc = core_errf(err, errlen, CORE_ENOMEM, "cannot create a mutex for database %s", path);
        goto fail_mutex;
    }
    rc = sqlite3_open_v2(path, &s->db,
                         SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        rc = open_err(s, rc, path, "opening", err, errlen);
        goto fail_db;
    }
    sqlite3_extended_result_codes(s->db, 1);
    rc = sqlite3_busy_timeout(s->db, STORE_BUSY_TIMEOUT_MS);
    if (rc != SQLITE_OK) {
        rc = open_err(s, rc, path, "setting the busy timeout", err, errlen);
        goto fail_db;
    }
    /* Refuse a newer schema before configure() switches the file to WAL, so it stays as it
     * was. This first read is also what reports a file that is not a database. */
    long version = 0;
    rc = read_version(s, path, &version, err, errlen);
    if (rc)
        goto fail_db;
    /* A damaged file (a truncated copy, a bad sector) is refused here, with the reason, rather
     * than failing one request at a time later, or passing for an empty new database. */
    if (existed) {
        char verdict[256];
        rc = pragma_text(s, "PRAGMA quick_check", verdict, sizeof verdict, path, err, errlen);
        if (rc == 0 && strcmp(verdict, "ok") != 0)
            rc = core_errf(err, errlen, CORE_EFORMAT, "database %s is damaged (%s): restore it "
                           "from a backup, or move it away to start an empty one", path, verdict);
        if (rc)
            goto fail_db;
    }
    rc = configure(s, path, err, errlen);
    if (rc)
        goto fail_db;
    rc = migrate(s, path, err, errlen);
    if (rc)
        goto fail_db;
    *out = s;
    return 0;
fail_db:
    sqlite3_close(s->db); /* a handle comes back even when the open fails */
    pthread_mutex_destroy(&s->mu);
fail_mutex:
    free(s);
    return rc;
}

void store_close(store *s)
{
    if (!s)
        return;
    /* sqlite3_close, not _v2: with every statement finalized in its own call it cannot be
     * busy, and if it ever were, a leak report beats a silent zombie connection. */
    sqlite3_close(s->db);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

// ---- corpora

void store_corpus_deinit(store_corpus *c)
{
    if (!c)
        return;
    free(c->name);
    free(c->text);
    c->name = NULL;
    c->text = NULL;
}

void store_free_corpora(store_corpus *list, size_t n)
{
    for (size_t i = 0; list && i < n; i++)
        store_corpus_deinit(&list[i]);
    free(list);
}

static int is_sha256_hex(const char *h)
{
    if (!h)
        return 0;
    for (int i = 0; i < 64; i++)
        if (!((h[i] >= '0' && h[i] <= '9') || (h[i] >= 'a' && h[i] <= 'f')))
            return 0;
    return h[64] == '\0';
}

static int get_corpus_locked(store *s, store_corpus *out, int64_t id, int with_text, char *err,
                             size_t errlen)
{
    const char *sql = with_text ? "SELECT " CORPUS_COLUMNS ", text FROM corpora WHERE id = ?1"
                                : "SELECT " CORPUS_COLUMNS " FROM corpora WHERE id = ?1";
    return select_by_id(s, sql, id, "corpus", corpus_row, out, err, errlen);
}

int store_add_corpus(store *s, store_corpus *out, const char *name, const char *text, size_t len,
                     int64_t chars, int64_t distinct_chars, const char *sha256, char *err,
                     size_t errlen)
{
    if (!s || !out || !name || (!text && len))
        return core_errf(err, errlen, CORE_EINVAL, "store_add_corpus: NULL argument");
    if (len > (size_t)INT64_MAX || chars < 0 || (uint64_t)chars > len || distinct_chars < 0 ||
        distinct_chars > chars)
        return core_errf(err, errlen, CORE_EINVAL,
                    "corpus statistics are inconsistent: %zu bytes, %lld chars, %lld distinct",
                    len, (long long)chars, (long long)distinct_chars);
    if (!is_sha256_hex(sha256))
        return core_errf(err, errlen, CORE_EINVAL, "corpus sha256 is not 64 lowercase hex digits");

    const char *what = "storing a corpus";
    /* Our copy of the name is made first, so a failed allocation cannot follow a stored row. */
    store_corpus c = {.name = strdup(name), .bytes = (int64_t)len, .chars = chars,
                      .distinct_chars = distinct_chars};
    if (!c.name)
        return oom(err, errlen, what);
    memcpy(c.sha256, sha256, sizeof c.sha256);
    now_iso(c.created_at);
    pthread_mutex_lock(&s->mu);
    /* One INSERT is atomic by itself: a process killed mid-write leaves no row at all. The text
     * is bound without a copy: it is the caller's for the whole call. */
    int rc = execute(s, NULL, what, err, errlen,
                     "INSERT INTO corpora (name, text, bytes, chars, distinct_chars, sha256, "
                     "created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                     "tbiiitt", name, (const void *)text, len, (int64_t)len, chars,
                     distinct_chars, sha256, c.created_at);
    if (rc == 0) {
        c.id = sqlite3_last_insert_rowid(s->db);
        *out = c;
    }
    pthread_mutex_unlock(&s->mu);
    if (rc)
        store_corpus_deinit(&c);
    return rc;
}

int store_get_corpus(store *s, store_corpus *out, int64_t id, int with_text, char *err,
                     size_t errlen)
{
    if (!s || !out)
        return core_errf(err, errlen, CORE_EINVAL, "store_get_corpus: NULL argument");
    pthread_mutex_lock(&s->mu);
    int rc = get_corpus_locked(s, out, id, with_text, err, errlen);
    pthread_mutex_unlock(&s->mu);
    return rc;
}

int store_list_corpora(store *s, store_corpus **out, size_t *n, int64_t limit, int64_t offset,
                       char *err, size_t errlen)
{
    if (!s || !out || !n)
        return core_errf(err, errlen, CORE_EINVAL, "store_list_corpora: NULL argument");
    if (limit < 0 || offset < 0)
        return core_errf(err, errlen, CORE_EINVAL, "limit and offset must be >= 0");
    const char *what = "listing corpora";
    sqlite3_stmt *st = NULL;
    pthread_mutex_lock(&s->mu);
    int rc = statement(s, &st, what, err, errlen,
                       "SELECT " CORPUS_COLUMNS " FROM corpora ORDER BY id DESC LIMIT ?1 OFFSET ?2",
                       "ii", limit, offset);
    void *rows = NULL;
    if (rc == 0)
        rc = collect_rows(s, st, sizeof(store_corpus), corpus_row, corpus_deinit_v, &rows, n,
                          what, err, errlen);
    if (rc == 0)
        *out = rows;
    sqlite3_finalize(st);
    pthread_mutex_unlock(&s->mu);
    return rc;
}

static int delete_corpus_locked(store *s, int64_t id, char *err, size_t errlen)
{
    const char *what = "deleting a corpus";
    /* In one transaction, so no job can be queued on it between the check and the delete. */
    int rc = tx_begin(s, err, errlen);
    if (rc)
        return rc;
    int64_t val = 0;
    int found = 0;
    rc = query_int(s, "SELECT 1 FROM corpora WHERE id = ?1", id, &val, &found, what, err, errlen);
    if (rc)
        goto fail;
    if (!found) {
        rc = core_errf(err, errlen, STORE_ENOTFOUND, "corpus %lld not found", (long long)id);
        goto fail;
    }
    rc = query_int(s,
                   "SELECT id FROM jobs WHERE corpus_id = ?1 AND status IN ('queued', 'running') "
                   "ORDER BY id LIMIT 1",
                   id, &val, &found, what, err, errlen);
    if (rc)
        goto fail;
    if (found) {
        rc = core_errf(err, errlen, STORE_ECONFLICT,
                  "corpus %lld is used by job %lld, which has not finished", (long long)id,
                  (long long)val);
        goto fail;
    }
    /* Finished jobs keep their rows; ON DELETE SET NULL clears their corpus_id. */
    rc = execute(s, NULL, what, err, errlen, "DELETE FROM corpora WHERE id = ?1", "i", id);
    if (rc)
        goto fail;
    return tx_commit(s, err, errlen);
fail:
    tx_rollback(s);
    return rc;
}

int store_delete_corpus(store *s, int64_t id, char *err, size_t errlen)
{
    if (!s)
        return core_errf(err, errlen, CORE_EINVAL, "store_delete_corpus: NULL store");
    pthread_mutex_lock(&s->mu);
    int rc = delete_corpus_locked(s, id, err, errlen);
    pthread_mutex_unlock(&s->mu);
    return rc;
}

// ---- jobs

const char *store_job_status_name(store_job_status st)
{
    return st >= 0 && st < STORE_JOB_NSTATUS ? job_status_names[st] : NULL;
}

int store_job_status_parse(const char *name, store_job_status *out)
{
    for (int i = 0; name && i < STORE_JOB_NSTATUS; i++) {
        if (strcmp(name, job_status_names[i]) == 0) {
            *out = (store_job_status)i;
            return 0;
        }
    }
    return CORE_EINVAL;
}

void store_job_deinit(store_job *j)
{
    if (!j)
        return;
    free(j->model_name);
    free(j->hyperparameters);
    free(j->error);
    free(j->checkpoint_path);
    free(j->base_model);
    free(j->unknown_chars);
    free(j->plan);
    j->model_name = j->hyperparameters = j->error = j->checkpoint_path = NULL;
    j->base_model = j->unknown_chars = j->plan = NULL;
}

void store_free_jobs(store_job *list, size_t n)
{
    for (size_t i = 0; list && i < n; i++)
        store_job_deinit(&list[i]);
    free(list);
}

static int get_job_locked(store *s, store_job *out, int64_t id, char *err, size_t errlen)
{
    return select_by_id(s, "SELECT " JOB_COLUMNS " FROM jobs WHERE id = ?1", id, "job", job_row,
                        out, err, errlen);
}

/* Reads the job a write just made, then commits; out is written only after the commit. */
static int commit_and_get_job(store *s, store_job *out, int64_t id, char *err, size_t errlen)
{
    store_job j;
    int rc = get_job_locked(s, &j, id, err, errlen);
    if (rc) {
        tx_rollback(s);
        return rc;
    }
    rc = tx_commit(s, err, errlen);
    if (rc) {
        store_job_deinit(&j);
        return rc;
    }
    *out = j;
    return 0;
}

static int add_job_locked(store *s, store_job *out, int64_t corpus_id, const char *model_name,
                          const char *hyperparameters, const char *base_model,
                          const char *unknown_chars, char *err, size_t errlen)
{
    const char *what = "queueing a job";
    int rc = tx_begin(s, err, errlen);
    if (rc)
        return rc;
    /* Checked here rather than left to the foreign key, to say which corpus is missing. */
    int64_t val = 0;
    int found = 0;
    rc = query_int(s, "SELECT 1 FROM corpora WHERE id = ?1", corpus_id, &val, &found, what, err,
                   errlen);
    if (rc)
        goto fail;
    if (!found) {
        rc = core_errf(err, errlen, STORE_ENOTFOUND, "corpus %lld not found", (long long)corpus_id);
        goto fail;
    }
    char now[STORE_TIME_SIZE];
    now_iso(now);
    rc = execute(s, NULL, what, err, errlen,
                 "INSERT INTO jobs (corpus_id, model_name, hyperparameters, status, created_at, "
                 "updated_at, base_model, unknown_chars) "
                 "VALUES (?1, ?2, ?3, 'queued', ?4, ?4, ?5, ?6)",
                 "itttss", corpus_id, model_name, hyperparameters, now, base_model, unknown_chars);
    if (rc)
        goto fail;
    return commit_and_get_job(s, out, sqlite3_last_insert_rowid(s->db), err, errlen);
fail:
    tx_rollback(s);
    return rc;
}

int store_add_job(store *s, store_job *out, int64_t corpus_id, const char *model_name,
                  const char *hyperparameters, const char *base_model, const char *unknown_chars,
                  char *err, size_t errlen)
{
    if (!s || !out || !model_name || !hyperparameters)
        return core_errf(err, errlen, CORE_EINVAL, "store_add_job: NULL argument");
    pthread_mutex_lock(&s->mu);
    int rc = add_job_locked(s, out, corpus_id, model_name, hyperparameters, base_model,
                            unknown_chars, err, errlen);
    pthread_mutex_unlock(&s->mu);
    return rc;
}

int store_get_job(store *s, store_job *out, int64_t id, char *err, size_t errlen)
{
    if (!s || !out)
        return core_errf(err, errlen, CORE_EINVAL, "store_get_job: NULL argument");
    pthread_mutex_lock(&s->mu);
    int rc = get_job_locked(s, out, id, err, errlen);
    pthread_mutex_unlock(&s->mu);
    return rc;
}

int store_list_jobs(store *s, store_job **out, size_t *n, store_job_status status, int64_t limit,
                    int64_t offset, char *err, size_t errlen)
{
    if (!s || !out || !n)
        return core_errf(err, errlen, CORE_EINVAL, "store_list_jobs: NULL argument");
    if (status != STORE_JOB_ANY && !store_job_status_name(status))
        return core_errf(err, errlen, CORE_EINVAL, "unknown job status %d", (int)status);
    if (limit < 0 || offset < 0)
        return core_errf(err, errlen, CORE_EINVAL, "limit and offset must be >= 0");
    const char *what = "listing jobs";
    sqlite3_stmt *st = NULL;
    pthread_mutex_lock(&s->mu);
    /* A NULL status (any) binds NULL; the names are literals. */
    int rc = statement(s, &st, what, err, errlen,
                       "SELECT " JOB_COLUMNS " FROM jobs WHERE ?1 IS NULL OR status = ?1 "
                       "ORDER BY id DESC LIMIT ?2 OFFSET ?3",
                       "sii", status == STORE_JOB_ANY ? NULL : job_status_names[status], limit,
                       offset);
    void *rows = NULL;
    if (rc == 0)
        rc = collect_rows(s, st, sizeof(store_job), job_row, job_deinit_v, &rows, n, what, err,
                          errlen);
    if (rc == 0)
        *out = rows;
    sqlite3_finalize(st);
    pthread_mutex_unlock(&s->mu);
    return rc;
}

static int cancel_job_locked(store *s, store_job *out, int64_t id, char *err, size_t errlen)
{
    const char *what = "cancelling a job";
    int rc = tx_begin(s, err, errlen);
    if (rc)
        return rc;
    store_job_status status;
    rc = job_status_locked(s, id, &status, err, errlen);
    if (rc)
        goto fail;
    const char *sql;
    if (status == STORE_JOB_QUEUED) {
        sql = "UPDATE jobs SET status = 'cancelled', cancel_requested = 1, finished_at = ?2, "
              "updated_at = ?2 WHERE id = ?1";
    } else if (status == STORE_JOB_RUNNING) {
        /* The worker polls the flag and ends the job itself, with a checkpoint if it likes. */
        sql = "UPDATE jobs SET cancel_requested = 1, updated_at = ?2 WHERE id = ?1";
    } else {
        rc = core_errf(err, errlen, STORE_ECONFLICT, "job %lld has already finished (%s)",
                       (long long)id, job_status_names[status]);
        goto fail;
    }
    char now[STORE_TIME_SIZE];
    now_iso(now);
    rc = execute(s, NULL, what, err, errlen, sql, "it", id, now);
    if (rc)
        goto fail;
    if (out)
        return commit_and_get_job(s, out, id, err, errlen);
    return tx_commit(s, err, errlen);
fail:
    tx_rollback(s);
    return rc;
}

int store_cancel_job(store *s, store_job *out, int64_t id, char *err, size_t errlen)
{
    if (!s)
        return core_errf(err, errlen, CORE_EINVAL, "store_cancel_job: NULL store");
    pthread_mutex_lock(&s->mu);
    int rc = cancel_job_locked(s, out, id, err, errlen);
    pthread_mutex_unlock(&s->mu);
    return rc;
}

static int claim_job_locked(store *s, store_job *out, char *err, size_t errlen)
{
    const char *what = "claiming a job";
    sqlite3_stmt *st = NULL;
    int rc = tx_begin(s, err, errlen);
    if (rc)
        return rc;
    char now[STORE_TIME_SIZE];
    now_iso(now);
    /* One UPDATE picks and flips the job, under the write lock BEGIN IMMEDIATE took, so two
     * claimers (threads here, or another process) can never take the same one. */
    rc = statement(s, &st, what, err, errlen,
                   "UPDATE jobs SET status = 'running', started_at = ?1, updated_at = ?1, "
                   "finished_at = NULL, error = NULL, cancel_requested = 0, "
                   "attempts = attempts + 1, stalled_attempts = stalled_attempts + 1 "
                   "WHERE id = (SELECT id FROM jobs WHERE status = 'queued' ORDER BY id LIMIT 1) "
                   "RETURNING id",
                   "t", now);
    if (rc)
        goto fail;
    rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) {
        rc = core_errf(err, errlen, STORE_ENOTFOUND, "no queued job");
        goto fail;
    }
    if (rc != SQLITE_ROW) {
        rc = sql_err(s, rc, what, err, errlen);
        goto fail;
    }
    int64_t id = sqlite3_column_int64(st, 0);
    rc = run(s, st, what, err, errlen); /* RETURNING: step to the end before committing */
    if (rc)
        goto fail;
    sqlite3_finalize(st);
    return commit_and_get_job(s, out, id, err, errlen);
fail:
    sqlite3_finalize(st);
    tx_rollback(s);
    return rc;
}

int store_claim_job(store *s, store_job *out, char *err, size_t errlen)
{
    if (!s || !out)
        return core_errf(err, errlen, CORE_EINVAL, "store_claim_job: NULL argument");
    pthread_mutex_lock(&s->mu);
    int rc = claim_job_locked(s, out, err, errlen);
    pthread_mutex_unlock(&s->mu);
    return rc;
}

/* After an UPDATE of one running job (WHERE id = ?1 AND status = 'running') that changed
 * changed rows: a job that is missing or not running is reported as such. */
static int updated_running(store *s, int rc, int64_t changed, int64_t id, char *err,
                           size_t errlen)
{
    if (rc)
        return rc;
    return changed ? 0 : not_running_err(s, id, err, errlen);
}

int store_update_progress(store *s, int64_t id, const store_progress *p, char *err,
                          size_t errlen)
{
    if (!s || !p)
        return core_errf(err, errlen, CORE_EINVAL, "store_update_progress: NULL argument");
    if (p->epoch < 0 || p->epochs < 0 || p->step < 0 || p->steps < 0 ||
        !(p->fraction >= 0 && p->fraction <= 1))
        return core_errf(err, errlen, CORE_EINVAL,
                    "job %lld: progress counts must be >= 0 and fraction in [0, 1]",
                    (long long)id);
    const char *what = "updating a job's progress";
    char now[STORE_TIME_SIZE];
    now_iso(now);
    int64_t changed = 0;
    pthread_mutex_lock(&s->mu);
    /* A single UPDATE, so no explicit transaction: it is atomic and cheap. */
    int rc = execute(s, &changed, what, err, errlen,
                     "UPDATE jobs SET epoch = ?2, epochs = ?3, step = ?4, steps = ?5, "
                     "fraction = ?6, chars_per_sec = ?7, eta_seconds = ?8, train_loss = ?9, "
                     "updated_at = ?10 WHERE id = ?1 AND status = 'running'",
                     "iiiiirrrrt", id, p->epoch, p->epochs, p->step, p->steps, p->fraction,
                     p->chars_per_sec, p->eta_seconds, p->train_loss, now);
    rc = updated_running(s, rc, changed, id, err, errlen);
    pthread_mutex_unlock(&s->mu);
    return rc;
}

int store_set_plan(store *s, int64_t id, const char *plan, char *err, size_t errlen)
{
    if (!s || !plan)
        return core_errf(err, errlen, CORE_EINVAL, "store_set_plan: NULL argument");
    int64_t changed = 0;
    pthread_mutex_lock(&s->mu);
    int rc = execute(s, &changed, "recording a job's plan", err, errlen,
                     "UPDATE jobs SET plan = ?2 WHERE id = ?1 AND status = 'running'", "it", id,
                     plan);
    rc = updated_running(s, rc, changed, id, err, errlen);
    pthread_mutex_unlock(&s->mu);
    return rc;
}

int store_set_checkpoint(store *s, int64_t id, const char *path, char *err, size_t errlen)
{
    if (!s)
        return core_errf(err, errlen, CORE_EINVAL, "store_set_checkpoint: NULL store");
    const char *what = "setting a job's checkpoint";
    char now[STORE_TIME_SIZE];
    now_iso(now);
    int64_t changed = 0;
    pthread_mutex_lock(&s->mu);
    /* A NULL path binds SQL NULL, which clears it. */
    int rc = execute(s, &changed, what, err, errlen,
                     "UPDATE jobs SET checkpoint_path = ?2, updated_at = ?3 WHERE id = ?1", "itt",
                     id, path, now);
    if (rc == 0 && changed == 0)
        rc = core_errf(err, errlen, STORE_ENOTFOUND, "job %lld not found", (long long)id);
    pthread_mutex_unlock(&s->mu);
    return rc;
}

int store_finish_job(store *s, int64_t id, store_job_status status, const char *error,
                     char *err, size_t errlen)
{
    if (!s)
        return core_errf(err, errlen, CORE_EINVAL, "store_finish_job: NULL store");
    if (status != STORE_JOB_SUCCEEDED && status != STORE_JOB_FAILED &&
        status != STORE_JOB_CANCELLED)
        return core_errf(err, errlen, CORE_EINVAL, "a job cannot finish as %s",
                    store_job_status_name(status) ? store_job_status_name(status) : "(unknown)");
    const char *what = "finishing a job";
    char now[STORE_TIME_SIZE];
    now_iso(now);
    int64_t changed = 0;
    pthread_mutex_lock(&s->mu);
    int rc = execute(s, &changed, what, err, errlen,
                     "UPDATE jobs SET status = ?2, error = ?3, finished_at = ?4, updated_at = ?4 "
                     "WHERE id = ?1 AND status = 'running'",
                     "istt", id, job_status_names[status], error, now);
    rc = updated_running(s, rc, changed, id, err, errlen);
    pthread_mutex_unlock(&s->mu);
    return rc;
}

int store_poll_cancel(store *s, int64_t id, int *requested, char *err, size_t errlen)
{
    if (!s || !requested)
        return core_errf(err, errlen, CORE_EINVAL, "store_poll_cancel: NULL argument");
    int64_t val = 0;
    int found = 0;
    pthread_mutex_lock(&s->mu);
    int rc = query_int(s, "SELECT cancel_requested FROM jobs WHERE id = ?1", id, &val, &found,
                       "polling a job's cancel flag", err, errlen);
    pthread_mutex_unlock(&s->mu);
    if (rc)
        return rc;
    if (!found)
        return core_errf(err, errlen, STORE_ENOTFOUND, "job %lld not found", (long long)id);
    *requested = val != 0;
    return 0;
}

static int requeue_locked(store *s, int64_t *requeued, char *err, size_t errlen)
{
    const char *what = "requeueing running jobs";
    int rc = tx_begin(s, err, errlen);
    if (rc)
        return rc;
    char now[STORE_TIME_SIZE];
    now_iso(now);
    /* A cancel the user asked for before the crash is honoured, not resumed. */
    static const char *const sql[2] = {
        "UPDATE jobs SET status = 'cancelled', finished_at = ?1, updated_at = ?1, "
        "error = 'cancelled while the server was down' "
        "WHERE status = 'running' AND cancel_requested = 1",
        "UPDATE jobs SET status = 'queued', updated_at = ?1 WHERE status = 'running'",
    };
    int64_t n = 0; /* of the second UPDATE, the requeue */
    for (int i = 0; i < 2; i++) {
        if ((rc = execute(s, &n, what, err, errlen, sql[i], "t", now))) {
            tx_rollback(s);
            return rc;
        }
    }
    rc = tx_commit(s, err, errlen);
    if (rc == 0 && requeued)
        *requeued = n;
    return rc;
}

int store_requeue_running(store *s, int64_t *requeued, char *err, size_t errlen)
{
    if (!s)
        return core_errf(err, errlen, CORE_EINVAL, "store_requeue_running: NULL store");
    pthread_mutex_lock(&s->mu);
    int rc = requeue_locked(s, requeued, err, errlen);
    pthread_mutex_unlock(&s->mu);
    return rc;
}

int store_requeue_job(store *s, int64_t id, char *err, size_t errlen)
{
    if (!s)
        return core_errf(err, errlen, CORE_EINVAL, "store_requeue_job: NULL store");
    const char *what = "requeueing a job";
    char now[STORE_TIME_SIZE];
    now_iso(now);
    int64_t changed = 0;
    pthread_mutex_lock(&s->mu);
    /* The attempt is given back: a clean stop is not one of the crashes attempts counts. */
    int rc = execute(s, &changed, what, err, errlen,
                     "UPDATE jobs SET status = 'queued', updated_at = ?2, "
                     "attempts = max(attempts - 1, 0), "
                     "stalled_attempts = max(stalled_attempts - 1, 0) "
                     "WHERE id = ?1 AND status = 'running'",
                     "it", id, now);
    if (rc == 0 && changed == 0)
        rc = core_errf(err, errlen, STORE_ENOTFOUND, "job %lld is not running", (long long)id);
    pthread_mutex_unlock(&s->mu);
    return rc;
}

static int take_lease_locked(store *s, const char *holder, double now, double ttl,
                             int (*is_stale)(const char *holder), char *other, size_t n_other,
                             double *age, char *err, size_t errlen)
{
    const char *what = "taking the trainer lease";
    int rc = tx_begin(s, err, errlen);
    if (rc)
        return rc;
    sqlite3_stmt *st = NULL;
    rc = statement(s, &st, what, err, errlen,
                   "SELECT holder, heartbeat FROM trainer_lease WHERE id = 1", "");
    if (rc)
        goto fail;
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        const char *h = (const char *)sqlite3_column_text(st, 0);
        double beat = sqlite3_column_double(st, 1);
        int mine = h && strcmp(h, holder) == 0;
        if (!mine && now - beat < ttl && !(is_stale && h && is_stale(h))) {
            snprintf(other, n_other, "%s", h ? h : "?");
            *age = now - beat;
            sqlite3_finalize(st);
            rc = core_errf(err, errlen, STORE_ECONFLICT, "the trainer lease is held by %s",
                           other);
            goto fail;
        }
        rc = SQLITE_DONE;
    }
    rc = rc == SQLITE_DONE ? 0 : sql_err(s, rc, what, err, errlen);
    sqlite3_finalize(st);
    if (rc)
        goto fail;
    rc = execute(s, NULL, what, err, errlen,
                 "INSERT INTO trainer_lease (id, holder, heartbeat) VALUES (1, ?1, ?2) "
                 "ON CONFLICT (id) DO UPDATE SET holder = excluded.holder, "
                 "heartbeat = excluded.heartbeat",
                 "tr", holder, now);
    if (rc)
        goto fail;
    return tx_commit(s, err, errlen);
fail:
    tx_rollback(s);
    return rc;
}

int store_take_lease(store *s, const char *holder, double now, double ttl,
                     int (*is_stale)(const char *holder), char *other, size_t n_other,
                     double *age, char *err, size_t errlen)
{
    if (!s || !holder || !other || !age)
        return core_errf(err, errlen, CORE_EINVAL, "store_take_lease: NULL argument");
    pthread_mutex_lock(&s->mu);
    int rc = take_lease_locked(s, holder, now, ttl, is_stale, other, n_other, age, err, errlen);
    pthread_mutex_unlock(&s->mu);
    return rc;
}

int store_drop_lease(store *s, const char *holder, char *err, size_t errlen)
{
    if (!s || !holder)
        return core_errf(err, errlen, CORE_EINVAL, "store_drop_lease: NULL argument");
    pthread_mutex_lock(&s->mu);
    int rc = execute(s, NULL, "dropping the trainer lease", err, errlen,
                     "DELETE FROM trainer_lease WHERE id = 1 AND holder = ?1", "t", holder);
    pthread_mutex_unlock(&s->mu);
    return rc;
}

int store_count_jobs(store *s, int64_t counts[STORE_JOB_NSTATUS], char *err, size_t errlen)
{
    if (!s || !counts)
        return core_errf(err, errlen, CORE_EINVAL, "store_count_jobs: NULL argument");
    const char *what = "counting jobs";
    int64_t tmp[STORE_JOB_NSTATUS] = {0};
    sqlite3_stmt *st = NULL;
    pthread_mutex_lock(&s->mu);
    int rc = statement(s, &st, what, err, errlen,
                       "SELECT status, count(*) FROM jobs GROUP BY status", "");
    if (rc)
        goto done;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        store_job_status status;
        if (job_status_from_text(sqlite3_column_text(st, 0), &status) != 0) {
            rc = core_errf(err, errlen, CORE_EFORMAT, "a job has an unknown status");
            goto done;
        }
        tmp[status] = sqlite3_column_int64(st, 1);
    }
    if (rc != SQLITE_DONE) {
        rc = sql_err(s, rc, what, err, errlen);
        goto done;
    }
    rc = 0;
    memcpy(counts, tmp, sizeof tmp);
done:
    sqlite3_finalize(st);
    pthread_mutex_unlock(&s->mu);
    return rc;
}

// ---- per-epoch results

void store_epoch_deinit(store_epoch *e)
{
    if (!e)
        return;
    free(e->samples);
    e->samples = NULL;
}

void store_free_epochs(store_epoch *list, size_t n)
{
    for (size_t i = 0; list && i < n; i++)
        store_epoch_deinit(&list[i]);
    free(list);
}

/* The epoch's row, and, when the epoch is a new one (not one rerun after a crash), the job's
 * stalled attempts back to 1 (the current one, which made progress); in one transaction. */
static int add_epoch_locked(store *s, int64_t job_id, int64_t epoch, double train_loss,
                            double val_loss, double seconds, const char *samples, char *err,
                            size_t errlen)
{
    const char *what = "recording an epoch";
    int rc = tx_begin(s, err, errlen);
    if (rc)
        return rc;
    int64_t val = 0;
    int found = 0;
    rc = query_int(s, "SELECT 1 FROM jobs WHERE id = ?1", job_id, &val, &found, what, err, errlen);
    if (rc == 0 && !found)
        rc = core_errf(err, errlen, STORE_ENOTFOUND, "job %lld not found", (long long)job_id);
    if (rc == 0)
        rc = execute(s, NULL, what, err, errlen,
                     "UPDATE jobs SET stalled_attempts = 1 WHERE id = ?1 AND status = 'running' "
                     "AND ?2 > (SELECT coalesce(max(epoch), 0) FROM job_epochs WHERE job_id = ?1)",
                     "ii", job_id, epoch);
    /* The upsert makes a rerun epoch (after a resume) replace its row. */
    if (rc == 0)
        rc = execute(s, NULL, what, err, errlen,
                     "INSERT INTO job_epochs (" EPOCH_COLUMNS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6) "
                     "ON CONFLICT (job_id, epoch) DO UPDATE SET train_loss = excluded.train_loss, "
                     "val_loss = excluded.val_loss, seconds = excluded.seconds, "
                     "samples = excluded.samples",
                     "iirrrt", job_id, epoch, train_loss, val_loss, seconds,
                     samples ? samples : "{}");
    if (rc) {
        tx_rollback(s);
        return rc;
    }
    return tx_commit(s, err, errlen);
}

int store_add_epoch(store *s, int64_t job_id, int64_t epoch, double train_loss, double val_loss,
                    double seconds, const char *samples, char *err, size_t errlen)
{
    if (!s)
        return core_errf(err, errlen, CORE_EINVAL, "store_add_epoch: NULL store");
    if (epoch < 1 || !(seconds >= 0))
        return core_errf(err, errlen, CORE_EINVAL, "job %lld: epoch must be >= 1 and seconds >= 0",
                    (long long)job_id);
    pthread_mutex_lock(&s->mu);
    int rc = add_epoch_locked(s, job_id, epoch, train_loss, val_loss, seconds, samples, err,
                              errlen);
    pthread_mutex_unlock(&s->mu);
    return rc;
}

static int list_epochs_locked(store *s, store_epoch **out, size_t *n, int64_t job_id, char *err,
                              size_t errlen)
{
    const char *what = "listing epochs";
    sqlite3_stmt *st = NULL;
    int rc = statement(s, &st, what, err, errlen,
                       "SELECT " EPOCH_COLUMNS " FROM job_epochs WHERE job_id = ?1 ORDER BY epoch",
                       "i", job_id);
    if (rc)
        return rc;
    void *rows = NULL;
    size_t len = 0;
    rc = collect_rows(s, st, sizeof(store_epoch), epoch_row, epoch_deinit_v, &rows, &len, what,
                      err, errlen);
    if (rc)
        goto done;
    if (len == 0) {
        /* No rows: say whether the job itself is missing. Jobs are never deleted, so this
         * second look cannot race with anything that matters. */
        store_job_status status;
        rc = job_status_locked(s, job_id, &status, err, errlen);
        if (rc)
            goto done;
    }
    *out = rows;
    *n = len;
done:
    sqlite3_finalize(st);
    return rc;
}

int store_list_epochs(store *s, store_epoch **out, size_t *n, int64_t job_id, char *err,
                      size_t errlen)
{
    if (!s || !out || !n)
        return core_errf(err, errlen, CORE_EINVAL, "store_list_epochs: NULL argument");
    pthread_mutex_lock(&s->mu);
    int rc = list_epochs_locked(s, out, n, job_id, err, errlen);
    pthread_mutex_unlock(&s->mu);
    return rc;
}
