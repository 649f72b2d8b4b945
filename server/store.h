/* store: the service's SQLite persistence: corpora, training jobs and their per-epoch results.
 * It knows rows, not meaning: callers compute a corpus's statistics, validate JSON, and decide
 * what a job runs. One connection per store, guarded by one mutex, so every function below is
 * safe to call from any thread (except store_close, which must be the last call).
 *
 * Errors: 0 on success, else a negative code, either core/err.h's (CORE_EINVAL bad argument or a
 * constraint the row broke, CORE_ENOMEM, CORE_EIO an SQLite or file-system failure, CORE_EFORMAT
 * not a database / a schema newer than this build) or one of STORE_ERR_MAP's below. Every function
 * takes an optional caller-owned message buffer (err may be NULL) that gets the detail, including
 * SQLite's own message. Output parameters are written only on success.
 * Timestamps are ISO-8601 UTC with milliseconds ("2026-11-27T09:41:03.123Z"), "" when unset. */
#ifndef SERVER_STORE_H
#define SERVER_STORE_H

#include <stddef.h>
#include <stdint.h>

/* Kept apart from core's codes (-1..-99 are core's). */
#define STORE_ERR_MAP(X)                                                \
    X(ENOTFOUND, -100, "not found")                                     \
    X(ECONFLICT, -101, "conflicts with the current state")              \
    X(EBUSY, -102, "database busy")                                     \
    X(EFULL, -103, "no room left on the disk for the database")

enum store_err {
#define STORE__ERR_ENUM(name, value, msg) STORE_##name = value,
    STORE_ERR_MAP(STORE__ERR_ENUM)
#undef STORE__ERR_ENUM
};

/* "not found" etc. for a store code; NULL for any other code (then ask core_strerror). */
const char *store_strerror(int code);
/* "ENOTFOUND" etc. for a store code; NULL for any other code (then ask core_errname). */
const char *store_errname(int code);

/* Other processes (the sqlite3 shell, a backup, a second server by mistake) may hold the write
 * lock for a moment; a call waits this long before reporting STORE_EBUSY. */
#define STORE_BUSY_TIMEOUT_MS 5000
#define STORE_SCHEMA_VERSION 5 /* PRAGMA user_version after store_open's migrations */
#define STORE_TIME_SIZE 25     /* "2026-11-27T09:41:03.123Z" plus the terminator */
#define STORE_SHA256_SIZE 65   /* 64 lowercase hex digits plus the terminator */

typedef struct store store; /* opaque */

// ---- open / close

/* Opens (creating if needed) the database file at path, enables WAL and foreign keys, and applies
 * any pending schema migrations, each in its own transaction. CORE_EIO names the path when its
 * directory does not exist or the file cannot be opened; CORE_EFORMAT when the file is not a
 * database or its schema version is newer than STORE_SCHEMA_VERSION (written by a newer build;
 * the file is left untouched). On success *out is a new store (store_close it). */
int store_open(store **out, const char *path, char *err, size_t errlen);

/* Closes the connection and frees s. No other call on s may be running or follow. NULL is a
 * no-op. */
void store_close(store *s);

// ---- corpora

typedef struct store_corpus {
    int64_t id;
    char *name;                       /* owned */
    char *text;                       /* owned; NULL unless asked for; bytes long plus a NUL */
    int64_t bytes;                    /* length of the UTF-8 text in bytes */
    int64_t chars;                    /* code points */
    int64_t distinct_chars;           /* distinct code points */
    char sha256[STORE_SHA256_SIZE];   /* of the raw bytes */
    char created_at[STORE_TIME_SIZE];
} store_corpus;

/* Frees c's strings (c itself is the caller's); safe on a zeroed struct. */
void store_corpus_deinit(store_corpus *c);
/* Deinits n corpora and frees the array; store_free_corpora(NULL, 0) is a no-op. */
void store_free_corpora(store_corpus *list, size_t n);

/* Stores a corpus: name, len bytes of text (stored byte for byte; may contain any byte), and its
 * statistics as the caller computed them (chars <= len, distinct_chars <= chars, sha256 64
 * lowercase hex digits; otherwise CORE_EINVAL). The text is not copied by the store beyond the
 * SQLite write. On success *out is the new row's metadata (id, created_at; out->text NULL). */
int store_add_corpus(store *s, store_corpus *out, const char *name, const char *text, size_t len,
                     int64_t chars, int64_t distinct_chars, const char *sha256, char *err,
                     size_t errlen);

/* Reads corpus id into *out, with its text when with_text is nonzero (tens of MB possible).
 * STORE_ENOTFOUND when there is no such corpus. */
int store_get_corpus(store *s, store_corpus *out, int64_t id, int with_text, char *err,
                     size_t errlen);

/* Lists corpora newest first, metadata only: at most limit rows after skipping offset (both >= 0,
 * else CORE_EINVAL). *out is a new array of *n rows (NULL when none); store_free_corpora it. */
int store_list_corpora(store *s, store_corpus **out, size_t *n, int64_t limit, int64_t offset,
                       char *err, size_t errlen);

/* Deletes corpus id. STORE_ENOTFOUND when there is no such corpus; STORE_ECONFLICT (and nothing
 * changes) while a queued or running job uses it. Finished jobs that used it are kept, with
 * corpus_id 0 (SQL NULL), so their history and epochs survive. */
int store_delete_corpus(store *s, int64_t id, char *err, size_t errlen);

// ---- jobs

typedef enum store_job_status {
    STORE_JOB_ANY = -1, /* only as a list filter */
    STORE_JOB_QUEUED = 0,
    STORE_JOB_RUNNING,
    STORE_JOB_SUCCEEDED,
    STORE_JOB_FAILED,
    STORE_JOB_CANCELLED,
    STORE_JOB_NSTATUS
} store_job_status;

/* "queued", "running", ...; NULL for a value outside [0, STORE_JOB_NSTATUS). */
const char *store_job_status_name(store_job_status st);
/* The inverse of store_job_status_name; CORE_EINVAL for any other string (out untouched). */
int store_job_status_parse(const char *name, store_job_status *out);

/* What the worker reports while a job runs. A NAN double means "not known yet" (SQL NULL). */
typedef struct store_progress {
    int64_t epoch;         /* current epoch, 1-based (0 before the first) */
    int64_t epochs;        /* total epochs */
    int64_t step;          /* batch within the epoch */
    int64_t steps;         /* batches per epoch */
    double fraction;       /* of the whole job, in [0, 1] */
    double chars_per_sec;
    double eta_seconds;
    double train_loss;
} store_progress;

typedef struct store_job {
    int64_t id;
    int64_t corpus_id;         /* 0 when the corpus has been deleted since */
    char *model_name;          /* owned */
    char *hyperparameters;     /* owned; the client's JSON text, verbatim */
    store_job_status status;
    char *error;               /* owned; NULL unless set by store_finish_job */
    int cancel_requested;      /* 0 or 1 */
    store_progress progress;
    char created_at[STORE_TIME_SIZE];
    char started_at[STORE_TIME_SIZE];   /* the latest start; "" while never started */
    char finished_at[STORE_TIME_SIZE];
    char updated_at[STORE_TIME_SIZE];
    char *checkpoint_path;     /* owned; NULL when not set */
    int64_t attempts;          /* times the job was claimed (> 1 after a resume) */
    int64_t stalled_attempts;  /* claims since it last completed a new epoch (store_add_epoch) */
    char *base_model;          /* owned; fine-tuning: the model it starts from, else NULL */
    char *unknown_chars;       /* owned; with base_model: "error", "drop" or "replace=C"; NULL */
    char *plan;                /* owned; JSON: what a time budget chose (core/budget.h); NULL */
} store_job;

/* Frees j's strings (j itself is the caller's); safe on a zeroed struct. */
void store_job_deinit(store_job *j);
/* Deinits n jobs and frees the array; store_free_jobs(NULL, 0) is a no-op. */
void store_free_jobs(store_job *list, size_t n);

/* Queues a job on corpus corpus_id (STORE_ENOTFOUND when it does not exist). model_name and
 * hyperparameters (JSON text, stored verbatim, not parsed) must not be NULL; base_model and
 * unknown_chars may be (no fine-tuning). On success *out is the new row (status queued,
 * attempts 0). */
int store_add_job(store *s, store_job *out, int64_t corpus_id, const char *model_name,
                  const char *hyperparameters, const char *base_model, const char *unknown_chars,
                  char *err, size_t errlen);

/* The trainer lease: one process at a time runs a database's jobs. Takes it for holder (writing
 * now, Unix seconds, as its heartbeat) when nobody holds it, when the holder's last heartbeat is
 * ttl seconds old or more, when is_stale (may be NULL) says the holder is a process that no
 * longer exists, or when holder has it already (a renewal). Otherwise STORE_ECONFLICT, with the
 * holder in other and its heartbeat's age in *age. */
int store_take_lease(store *s, const char *holder, double now, double ttl,
                     int (*is_stale)(const char *holder), char *other, size_t n_other,
                     double *age, char *err, size_t errlen);
/* Gives the lease up, if holder has it (a clean shutdown: the next trainer needs no wait). */
int store_drop_lease(store *s, const char *holder, char *err, size_t errlen);

/* Reads job id into *out; STORE_ENOTFOUND when there is none. */
int store_get_job(store *s, store_job *out, int64_t id, char *err, size_t errlen);

/* Lists jobs newest first, only those with the given status unless it is STORE_JOB_ANY; at most
 * limit rows after skipping offset (both >= 0). *out is a new array of *n rows (NULL when none);
 * store_free_jobs it. */
int store_list_jobs(store *s, store_job **out, size_t *n, store_job_status status, int64_t limit,
                    int64_t offset, char *err, size_t errlen);

/* Cancels job id. A queued job becomes cancelled at once (finished_at set); a running job gets
 * cancel_requested = 1 and stays running until the worker calls store_finish_job (asking twice is
 * fine). STORE_ENOTFOUND when there is no such job; STORE_ECONFLICT when it has already
 * finished. If out is not NULL it receives the job as it is after the call. */
int store_cancel_job(store *s, store_job *out, int64_t id, char *err, size_t errlen);

/* Atomically takes the oldest queued job (lowest id, so a job requeued after a crash goes first):
 * it becomes running, started_at = now, attempts + 1, cancel_requested and error cleared.
 * *out is the claimed job. STORE_ENOTFOUND when no job is queued. Two callers, even on two stores
 * open on the same file, never get the same job. */
int store_claim_job(store *s, store_job *out, char *err, size_t errlen);

/* Records progress of running job id (one UPDATE; cheap enough for a few calls a second).
 * Negative counts or a fraction outside [0, 1] are CORE_EINVAL. STORE_ENOTFOUND when there is no
 * such job, STORE_ECONFLICT when it is not running. */
int store_update_progress(store *s, int64_t id, const store_progress *p, char *err,
                          size_t errlen);

/* Records what a time budget chose for running job id (the plan's JSON text), as
 * store_update_progress. */
int store_set_plan(store *s, int64_t id, const char *plan, char *err, size_t errlen);

/* Sets (or with path NULL clears) job id's working checkpoint path, whatever its status.
 * STORE_ENOTFOUND when there is no such job. */
int store_set_checkpoint(store *s, int64_t id, const char *path, char *err, size_t errlen);

/* Ends running job id with status succeeded, failed or cancelled (else CORE_EINVAL), an optional
 * error text (NULL for none), finished_at = now. STORE_ENOTFOUND when there is no such job;
 * STORE_ECONFLICT when it is not running (so a job is finished exactly once). */
int store_finish_job(store *s, int64_t id, store_job_status status, const char *error,
                     char *err, size_t errlen);

/* The cheap poll for the worker: *requested = job id's cancel_requested (0 or 1).
 * STORE_ENOTFOUND when there is no such job. */
int store_poll_cancel(store *s, int64_t id, int *requested, char *err, size_t errlen);

/* For startup, before the worker starts: every job a dead process left running goes back to
 * queued (attempts, progress and checkpoint_path kept, so the worker resumes it), except that a
 * job whose cancel had been requested becomes cancelled instead. *requeued (may be NULL) is the
 * number of jobs requeued. All in one transaction. */
int store_requeue_running(store *s, int64_t *requeued, char *err, size_t errlen);

/* For a clean shutdown: running job id goes back to queued, its attempt given back (attempts
 * and stalled_attempts count interrupted starts, to give up on a job that keeps bringing the
 * server down).
 * STORE_ENOTFOUND when there is no such running job. */
int store_requeue_job(store *s, int64_t id, char *err, size_t errlen);

/* counts[st] = number of jobs with status st, for every status (0 when none). */
int store_count_jobs(store *s, int64_t counts[STORE_JOB_NSTATUS], char *err, size_t errlen);

// ---- per-epoch results

typedef struct store_epoch {
    int64_t job_id;
    int64_t epoch;      /* 1-based */
    double train_loss;  /* NAN when unknown */
    double val_loss;    /* NAN when there was no validation */
    double seconds;     /* wall time of the epoch */
    char *samples;      /* owned; JSON object text, temperature -> sample */
} store_epoch;

/* Frees e's string (e itself is the caller's); safe on a zeroed struct. */
void store_epoch_deinit(store_epoch *e);
/* Deinits n epochs and frees the array; store_free_epochs(NULL, 0) is a no-op. */
void store_free_epochs(store_epoch *list, size_t n);

/* Records epoch (>= 1) of job job_id; samples is JSON text stored verbatim (NULL stores "{}").
 * Recording an epoch again replaces the row, because a job resumed after a crash may rerun an
 * epoch. When the epoch is new (above every one recorded), a running job's stalled_attempts goes
 * back to 1: it is making progress. STORE_ENOTFOUND when there is no such job. */
int store_add_epoch(store *s, int64_t job_id, int64_t epoch, double train_loss, double val_loss,
                    double seconds, const char *samples, char *err, size_t errlen);

/* Lists job job_id's epochs in epoch order. *out is a new array of *n rows (NULL when none);
 * store_free_epochs it. STORE_ENOTFOUND when there is no such job. */
int store_list_epochs(store *s, store_epoch **out, size_t *n, int64_t job_id, char *err,
                      size_t errlen);

#endif
