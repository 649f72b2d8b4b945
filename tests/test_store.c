/* test_store: the SQLite store on real files under a mkdtemp directory (no mocks): migrations and
 * WAL, corpus and job round trips, every not-found and conflict code, FIFO claims from concurrent
 * threads and connections, concurrent writers, the busy timeout, and recovery after a crash or a
 * SIGKILL. */
#include "test.h"

#include "../core/err.h"
#include "store.h"

#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdint.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char tmpdir[64];
static char err[512];

/* A call that must succeed; on failure, prints its code and message. */
#define EXPECT_OK(call)                                                                  \
    do {                                                                                 \
        err[0] = '\0';                                                                   \
        int rc_ = (call);                                                                \
        if (rc_ != 0)                                                                    \
            TEST_FAIL("%s failed: %d (%s)", #call, rc_, err);                            \
    } while (0)

/* A call that must fail with code; the message must mention needle. */
#define EXPECT_ERR(call, code, needle)                                                   \
    do {                                                                                 \
        err[0] = '\0';                                                                   \
        int rc_ = (call);                                                                \
        if (rc_ != (code))                                                               \
            TEST_FAIL("%s: got %d (%s), want %s", #call, rc_, err, #code);               \
        if (!strstr(err, (needle)))                                                      \
            TEST_FAIL("%s: message \"%s\" lacks \"%s\"", #call, err, (needle));          \
    } while (0)

static const char *SHA = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

static void db_path(char *out, size_t n, const char *name)
{
    snprintf(out, n, "%s/%s", tmpdir, name);
}

static store *open_db(const char *name)
{
    char path[256];
    db_path(path, sizeof path, name);
    store *s = NULL;
    EXPECT_OK(store_open(&s, path, err, sizeof err));
    ASSERT(s != NULL);
    return s;
}

/* One text value from a raw connection of our own (the store's is private). */
static void raw_query(const char *name, const char *sql, char *out, size_t n)
{
    char path[256];
    db_path(path, sizeof path, name);
    sqlite3 *db = NULL;
    ASSERT(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK);
    ASSERT(sqlite3_busy_timeout(db, 5000) == SQLITE_OK); /* a writer may be switching to WAL */
    sqlite3_stmt *st = NULL;
    ASSERT(sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK);
    int rc = sqlite3_step(st);
    ASSERT(rc == SQLITE_ROW || rc == SQLITE_DONE);
    snprintf(out, n, "%s", rc == SQLITE_ROW && sqlite3_column_text(st, 0)
                               ? (const char *)sqlite3_column_text(st, 0) : "");
    ASSERT(sqlite3_finalize(st) == SQLITE_OK);
    ASSERT(sqlite3_close(db) == SQLITE_OK);
}

static void raw_exec(const char *name, const char *sql)
{
    char path[256];
    db_path(path, sizeof path, name);
    sqlite3 *db = NULL;
    ASSERT(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK);
    ASSERT(sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK);
    ASSERT(sqlite3_close(db) == SQLITE_OK);
}

static void assert_timestamp(const char *t)
{
    /* 2026-11-27T09:41:03.123Z */
    ASSERT_EQ_INT(strlen(t), 24);
    ASSERT(t[4] == '-' && t[7] == '-' && t[10] == 'T' && t[13] == ':' && t[16] == ':');
    ASSERT(t[19] == '.' && t[23] == 'Z');
    ASSERT(strncmp(t, "20", 2) == 0);
}

static int64_t add_corpus(store *s, const char *name, const char *text)
{
    store_corpus c;
    size_t len = strlen(text);
    EXPECT_OK(store_add_corpus(s, &c, name, text, len, (int64_t)len, 1, SHA, err, sizeof err));
    int64_t id = c.id;
    store_corpus_deinit(&c);
    return id;
}

static int64_t add_job(store *s, int64_t corpus_id)
{
    store_job j;
    EXPECT_OK(store_add_job(s, &j, corpus_id, "m", "{\"epochs\":2}", NULL, NULL, err,
                            sizeof err));
    int64_t id = j.id;
    store_job_deinit(&j);
    return id;
}

static int64_t claim(store *s)
{
    store_job j;
    EXPECT_OK(store_claim_job(s, &j, err, sizeof err));
    int64_t id = j.id;
    store_job_deinit(&j);
    return id;
}

static store_job_status job_status(store *s, int64_t id)
{
    store_job j;
    EXPECT_OK(store_get_job(s, &j, id, err, sizeof err));
    store_job_status st = j.status;
    store_job_deinit(&j);
    return st;
}

// ---- schema

static void test_schema(void)
{
    char got[64];
    store *s = open_db("schema.db");
    store_close(s);
    raw_query("schema.db", "PRAGMA user_version", got, sizeof got);
    ASSERT_EQ_INT(atoi(got), STORE_SCHEMA_VERSION);
    raw_query("schema.db", "PRAGMA journal_mode", got, sizeof got);
    ASSERT_EQ_STR(got, "wal");
    raw_query("schema.db", "SELECT group_concat(name, ',') FROM (SELECT name FROM sqlite_master "
                           "WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name)",
              got, sizeof got);
    ASSERT_EQ_STR(got, "corpora,job_epochs,jobs,trainer_lease");

    /* Reopening migrates nothing and keeps the data; two handles may be open at once. */
    s = open_db("schema.db");
    int64_t id = add_corpus(s, "c", "abc");
    store *s2 = open_db("schema.db");
    store_corpus c;
    EXPECT_OK(store_get_corpus(s2, &c, id, 1, err, sizeof err));
    ASSERT_EQ_STR(c.text, "abc");
    store_corpus_deinit(&c);
    store_close(s2);
    store_close(s);
    raw_query("schema.db", "PRAGMA user_version", got, sizeof got);
    ASSERT_EQ_INT(atoi(got), STORE_SCHEMA_VERSION);
    store_close(NULL);
}

static void test_open_errors(void)
{
    char path[256];
    store *s = (store *)&path; /* must stay untouched on failure */

    db_path(path, sizeof path, "no/such/dir/x.db");
    EXPECT_ERR(store_open(&s, path, err, sizeof err), CORE_EIO, "no/such/dir");
    ASSERT(strstr(err, "No such file or directory"));
    ASSERT(s == (store *)&path);

    /* A schema from a newer build is refused and the file is left as it was. */
    store *t = open_db("newer.db");
    store_close(t);
    raw_exec("newer.db", "PRAGMA user_version = 99");
    db_path(path, sizeof path, "newer.db");
    EXPECT_ERR(store_open(&s, path, err, sizeof err), CORE_EFORMAT, "schema version is 99");
    ASSERT(strstr(err, "newer"));
    ASSERT(s == (store *)&path);
    char got[64];
    raw_query("newer.db", "PRAGMA user_version", got, sizeof got);
    ASSERT_EQ_STR(got, "99");

    /* Not a database at all. */
    db_path(path, sizeof path, "garbage.db");
    FILE *f = fopen(path, "wb");
    ASSERT(f != NULL);
    for (int i = 0; i < 4096; i++)
        fputc("not sqlite"[i % 10], f);
    ASSERT(fclose(f) == 0);
    EXPECT_ERR(store_open(&s, path, err, sizeof err), CORE_EFORMAT, "not a database");

    EXPECT_ERR(store_open(&s, "", err, sizeof err), CORE_EINVAL, "path");
    ASSERT(s == (store *)&path);
    ASSERT(store_open(&s, "", NULL, 0) == CORE_EINVAL); /* err is optional */
}

// ---- corpora

static void test_corpora(void)
{
    store *s = open_db("corpora.db");

    /* Multi-byte UTF-8: 2-, 3- and 4-byte sequences, statistics as the caller computed them. */
    const char *utf8 = "naïve café — 红楼梦 🎉\n";
    store_corpus c, g;
    EXPECT_OK(store_add_corpus(s, &c, "mixed ünïcode", utf8, strlen(utf8), 19, 15, SHA, err,
                               sizeof err));
    ASSERT(c.id > 0);
    ASSERT_EQ_STR(c.name, "mixed ünïcode");
    ASSERT(c.text == NULL);
    ASSERT_EQ_INT(c.bytes, strlen(utf8));
    ASSERT_EQ_INT(c.chars, 19);
    ASSERT_EQ_INT(c.distinct_chars, 15);
    ASSERT_EQ_STR(c.sha256, SHA);
    assert_timestamp(c.created_at);

    EXPECT_OK(store_get_corpus(s, &g, c.id, 1, err, sizeof err));
    ASSERT_EQ_STR(g.text, utf8);
    ASSERT_EQ_STR(g.name, c.name);
    ASSERT_EQ_STR(g.created_at, c.created_at);
    ASSERT_EQ_INT(g.bytes, c.bytes);
    store_corpus_deinit(&g);
    EXPECT_OK(store_get_corpus(s, &g, c.id, 0, err, sizeof err));
    ASSERT(g.text == NULL);
    ASSERT_EQ_INT(g.chars, 19);
    store_corpus_deinit(&g);
    int64_t first = c.id;
    store_corpus_deinit(&c);

    /* 5 MB with an embedded NUL survives byte for byte. */
    size_t big_len = 5u << 20;
    char *big = malloc(big_len);
    ASSERT(big != NULL);
    for (size_t i = 0; i < big_len; i++)
        big[i] = (char)('a' + (i * 7919u) % 26);
    big[12345] = '\0';
    EXPECT_OK(store_add_corpus(s, &c, "big", big, big_len, (int64_t)big_len, 27, SHA, err,
                               sizeof err));
    EXPECT_OK(store_get_corpus(s, &g, c.id, 1, err, sizeof err));
    ASSERT_EQ_INT(g.bytes, big_len);
    ASSERT(memcmp(g.text, big, big_len) == 0);
    ASSERT(g.text[big_len] == '\0');
    store_corpus_deinit(&g);
    store_corpus_deinit(&c);
    free(big);

    /* An empty text is a text. */
    EXPECT_OK(store_add_corpus(s, &c, "empty", NULL, 0, 0, 0, SHA, err, sizeof err));
    EXPECT_OK(store_get_corpus(s, &g, c.id, 1, err, sizeof err));
    ASSERT_EQ_STR(g.text, "");
    ASSERT_EQ_INT(g.bytes, 0);
    store_corpus_deinit(&g);
    int64_t last = c.id;
    store_corpus_deinit(&c);

    /* Bad input is refused before anything is written. */
    EXPECT_ERR(store_add_corpus(s, &c, "x", "ab", 2, 3, 1, SHA, err, sizeof err), CORE_EINVAL,
               "inconsistent");
    EXPECT_ERR(store_add_corpus(s, &c, "x", "ab", 2, 2, 3, SHA, err, sizeof err), CORE_EINVAL,
               "inconsistent");
    EXPECT_ERR(store_add_corpus(s, &c, "x", "ab", 2, 2, 1, "ABC", err, sizeof err), CORE_EINVAL,
               "sha256");

    /* Listing: newest first, metadata only, limit and offset. */
    store_corpus *list;
    size_t n;
    EXPECT_OK(store_list_corpora(s, &list, &n, 10, 0, err, sizeof err));
    ASSERT_EQ_INT(n, 3);
    ASSERT_EQ_INT(list[0].id, last);
    ASSERT_EQ_STR(list[1].name, "big");
    ASSERT_EQ_INT(list[1].bytes, big_len);
    ASSERT_EQ_INT(list[2].id, first);
    for (size_t i = 0; i < n; i++)
        ASSERT(list[i].text == NULL);
    store_free_corpora(list, n);
    EXPECT_OK(store_list_corpora(s, &list, &n, 1, 1, err, sizeof err));
    ASSERT_EQ_INT(n, 1);
    ASSERT_EQ_STR(list[0].name, "big");
    store_free_corpora(list, n);
    EXPECT_OK(store_list_corpora(s, &list, &n, 10, 5, err, sizeof err));
    ASSERT_EQ_INT(n, 0);
    ASSERT(list == NULL);
    store_free_corpora(list, n);
    EXPECT_ERR(store_list_corpora(s, &list, &n, -1, 0, err, sizeof err), CORE_EINVAL, "limit");

    /* Delete, and the not-found codes. */
    EXPECT_OK(store_delete_corpus(s, first, err, sizeof err));
    EXPECT_ERR(store_get_corpus(s, &g, first, 0, err, sizeof err), STORE_ENOTFOUND, "not found");
    EXPECT_ERR(store_delete_corpus(s, first, err, sizeof err), STORE_ENOTFOUND, "not found");
    EXPECT_ERR(store_get_corpus(s, &g, 999, 1, err, sizeof err), STORE_ENOTFOUND, "corpus 999");
    /* Ids are never reused, even for the highest one. */
    EXPECT_OK(store_delete_corpus(s, last, err, sizeof err));
    int64_t again = add_corpus(s, "again", "x");
    ASSERT(again > last);
    store_close(s);
}

static void test_corpus_delete_with_jobs(void)
{
    store *s = open_db("delete.db");
    int64_t cid = add_corpus(s, "c", "hello");
    int64_t jid = add_job(s, cid);

    EXPECT_ERR(store_delete_corpus(s, cid, err, sizeof err), STORE_ECONFLICT, "job");
    ASSERT_EQ_INT(claim(s), jid);
    EXPECT_ERR(store_delete_corpus(s, cid, err, sizeof err), STORE_ECONFLICT, "job");
    EXPECT_OK(store_add_epoch(s, jid, 1, 1.5, 1.6, 2.0, "{}", err, sizeof err));
    EXPECT_OK(store_finish_job(s, jid, STORE_JOB_SUCCEEDED, NULL, err, sizeof err));

    /* Finished: the corpus goes, the job and its epochs stay with corpus_id 0 (NULL). */
    EXPECT_OK(store_delete_corpus(s, cid, err, sizeof err));
    store_job j;
    EXPECT_OK(store_get_job(s, &j, jid, err, sizeof err));
    ASSERT_EQ_INT(j.corpus_id, 0);
    ASSERT(j.status == STORE_JOB_SUCCEEDED);
    store_job_deinit(&j);
    store_epoch *e;
    size_t n;
    EXPECT_OK(store_list_epochs(s, &e, &n, jid, err, sizeof err));
    ASSERT_EQ_INT(n, 1);
    store_free_epochs(e, n);

    /* A job on a missing corpus. */
    EXPECT_ERR(store_add_job(s, &j, cid, "m", "{}", NULL, NULL, err, sizeof err), STORE_ENOTFOUND,
               "corpus");
    store_close(s);
}

// ---- jobs

static void test_job_lifecycle(void)
{
    store *s = open_db("jobs.db");
    int64_t cid = add_corpus(s, "c", "some text");
    const char *hp = "{ \"epochs\": 2,\n  \"hidden\": 128, \"note\": \"é\" }";

    store_job j;
    EXPECT_ERR(store_claim_job(s, &j, err, sizeof err), STORE_ENOTFOUND, "no queued job");
    EXPECT_OK(store_add_job(s, &j, cid, "shakespeare-small", hp, NULL, NULL, err, sizeof err));
    int64_t id = j.id;
    ASSERT(j.status == STORE_JOB_QUEUED);
    ASSERT_EQ_INT(j.corpus_id, cid);
    ASSERT_EQ_STR(j.model_name, "shakespeare-small");
    ASSERT_EQ_STR(j.hyperparameters, hp); /* verbatim, whitespace and all */
    ASSERT_EQ_INT(j.attempts, 0);
    ASSERT_EQ_INT(j.cancel_requested, 0);
    ASSERT(j.error == NULL && j.checkpoint_path == NULL);
    ASSERT(j.base_model == NULL && j.unknown_chars == NULL);
    assert_timestamp(j.created_at);
    ASSERT_EQ_STR(j.updated_at, j.created_at);
    ASSERT_EQ_STR(j.started_at, "");
    ASSERT_EQ_STR(j.finished_at, "");
    ASSERT(isnan(j.progress.train_loss) && isnan(j.progress.eta_seconds));
    store_job_deinit(&j);

    EXPECT_OK(store_claim_job(s, &j, err, sizeof err));
    ASSERT_EQ_INT(j.id, id);
    ASSERT(j.status == STORE_JOB_RUNNING);
    ASSERT_EQ_INT(j.attempts, 1);
    assert_timestamp(j.started_at);
    store_job_deinit(&j);
    EXPECT_ERR(store_claim_job(s, &j, err, sizeof err), STORE_ENOTFOUND, "no queued job");

    store_progress p = {.epoch = 1, .epochs = 2, .step = 30, .steps = 100, .fraction = 0.15,
                        .chars_per_sec = 12345.5, .eta_seconds = 42, .train_loss = NAN};
    EXPECT_OK(store_update_progress(s, id, &p, err, sizeof err));
    /* a time budget's plan: none until the trainer records it */
    EXPECT_OK(store_get_job(s, &j, id, err, sizeof err));
    ASSERT(j.plan == NULL);
    store_job_deinit(&j);
    EXPECT_OK(store_set_plan(s, id, "{\"layers\":1}", err, sizeof err));
    EXPECT_OK(store_get_job(s, &j, id, err, sizeof err));
    ASSERT_EQ_STR(j.plan, "{\"layers\":1}");
    store_job_deinit(&j);
    p.step = 31;
    p.train_loss = 2.25;
    EXPECT_OK(store_update_progress(s, id, &p, err, sizeof err));
    EXPECT_OK(store_set_checkpoint(s, id, "/var/lib/lstmgen/jobs/1.ckpt", err, sizeof err));
    EXPECT_OK(store_add_epoch(s, id, 1, 2.5, NAN, 10.25, "{\"0.5\":\"to be\"}", err,
                              sizeof err));
    EXPECT_OK(store_add_epoch(s, id, 2, 2.0, 2.1, 9.0, NULL, err, sizeof err));
    /* A resumed job reruns epoch 2: the row is replaced, not duplicated. */
    EXPECT_OK(store_add_epoch(s, id, 2, 1.9, 2.0, 9.5, "{\"1.0\":\"or not\"}", err, sizeof err));

    EXPECT_OK(store_get_job(s, &j, id, err, sizeof err));
    ASSERT_EQ_INT(j.progress.epoch, 1);
    ASSERT_EQ_INT(j.progress.epochs, 2);
    ASSERT_EQ_INT(j.progress.step, 31);
    ASSERT_EQ_INT(j.progress.steps, 100);
    ASSERT_NEAR(j.progress.fraction, 0.15, 0);
    ASSERT_NEAR(j.progress.chars_per_sec, 12345.5, 0);
    ASSERT_NEAR(j.progress.eta_seconds, 42, 0);
    ASSERT_NEAR(j.progress.train_loss, 2.25, 0);
    ASSERT_EQ_STR(j.checkpoint_path, "/var/lib/lstmgen/jobs/1.ckpt");
    store_job_deinit(&j);

    store_epoch *e;
    size_t n;
    EXPECT_OK(store_list_epochs(s, &e, &n, id, err, sizeof err));
    ASSERT_EQ_INT(n, 2);
    ASSERT_EQ_INT(e[0].job_id, id);
    ASSERT_EQ_INT(e[0].epoch, 1);
    ASSERT_NEAR(e[0].train_loss, 2.5, 0);
    ASSERT(isnan(e[0].val_loss));
    ASSERT_NEAR(e[0].seconds, 10.25, 0);
    ASSERT_EQ_STR(e[0].samples, "{\"0.5\":\"to be\"}");
    ASSERT_EQ_INT(e[1].epoch, 2);
    ASSERT_NEAR(e[1].train_loss, 1.9, 0);
    ASSERT_NEAR(e[1].val_loss, 2.0, 0);
    ASSERT_EQ_STR(e[1].samples, "{\"1.0\":\"or not\"}");
    store_free_epochs(e, n);

    EXPECT_OK(store_finish_job(s, id, STORE_JOB_SUCCEEDED, NULL, err, sizeof err));
    EXPECT_OK(store_get_job(s, &j, id, err, sizeof err));
    ASSERT(j.status == STORE_JOB_SUCCEEDED);
    assert_timestamp(j.finished_at);
    ASSERT(j.error == NULL);
    ASSERT_EQ_STR(j.checkpoint_path, "/var/lib/lstmgen/jobs/1.ckpt");
    store_job_deinit(&j);

    /* A finished job is finished exactly once and takes no more progress. */
    EXPECT_ERR(store_finish_job(s, id, STORE_JOB_FAILED, "x", err, sizeof err), STORE_ECONFLICT,
               "succeeded, not running");
    EXPECT_ERR(store_update_progress(s, id, &p, err, sizeof err), STORE_ECONFLICT, "not running");
    EXPECT_ERR(store_set_plan(s, id, "{}", err, sizeof err), STORE_ECONFLICT, "not running");
    EXPECT_ERR(store_cancel_job(s, NULL, id, err, sizeof err), STORE_ECONFLICT, "succeeded");

    /* A failed job keeps its error text. */
    int64_t id2 = add_job(s, cid);
    ASSERT_EQ_INT(claim(s), id2);
    EXPECT_OK(store_finish_job(s, id2, STORE_JOB_FAILED, "training diverged at step 7", err,
                               sizeof err));
    EXPECT_OK(store_get_job(s, &j, id2, err, sizeof err));
    ASSERT(j.status == STORE_JOB_FAILED);
    ASSERT_EQ_STR(j.error, "training diverged at step 7");
    store_job_deinit(&j);

    /* Not-found and invalid-argument codes. */
    EXPECT_ERR(store_get_job(s, &j, 999, err, sizeof err), STORE_ENOTFOUND, "job 999");
    EXPECT_ERR(store_update_progress(s, 999, &p, err, sizeof err), STORE_ENOTFOUND, "job 999");
    EXPECT_ERR(store_finish_job(s, 999, STORE_JOB_FAILED, NULL, err, sizeof err),
               STORE_ENOTFOUND, "job 999");
    EXPECT_ERR(store_set_checkpoint(s, 999, "x", err, sizeof err), STORE_ENOTFOUND, "job 999");
    EXPECT_ERR(store_add_epoch(s, 999, 1, 1, 1, 1, "{}", err, sizeof err), STORE_ENOTFOUND,
               "job 999");
    EXPECT_ERR(store_list_epochs(s, &e, &n, 999, err, sizeof err), STORE_ENOTFOUND, "job 999");
    EXPECT_ERR(store_cancel_job(s, NULL, 999, err, sizeof err), STORE_ENOTFOUND, "job 999");
    int flag;
    EXPECT_ERR(store_poll_cancel(s, 999, &flag, err, sizeof err), STORE_ENOTFOUND, "job 999");
    EXPECT_ERR(store_finish_job(s, id2, STORE_JOB_RUNNING, NULL, err, sizeof err), CORE_EINVAL,
               "running");
    p.fraction = 1.5;
    EXPECT_ERR(store_update_progress(s, id2, &p, err, sizeof err), CORE_EINVAL, "fraction");
    EXPECT_ERR(store_add_epoch(s, id2, 0, 1, 1, 1, "{}", err, sizeof err), CORE_EINVAL, "epoch");
    store_job *jl = NULL;
    EXPECT_ERR(store_list_jobs(s, &jl, &n, (store_job_status)42, 10, 0, err, sizeof err),
               CORE_EINVAL, "status");
    ASSERT(jl == NULL);

    /* Epochs of a job that has none: an empty list, not an error. */
    int64_t id3 = add_job(s, cid);
    EXPECT_OK(store_list_epochs(s, &e, &n, id3, err, sizeof err));
    ASSERT_EQ_INT(n, 0);
    ASSERT(e == NULL);

    /* Status names round-trip. */
    for (int i = 0; i < STORE_JOB_NSTATUS; i++) {
        store_job_status st;
        ASSERT_EQ_INT(store_job_status_parse(store_job_status_name((store_job_status)i), &st), 0);
        ASSERT_EQ_INT(st, i);
    }
    store_job_status st = STORE_JOB_QUEUED;
    ASSERT_EQ_INT(store_job_status_parse("done", &st), CORE_EINVAL);
    ASSERT(store_job_status_name(STORE_JOB_NSTATUS) == NULL);
    ASSERT_EQ_STR(store_errname(STORE_ECONFLICT), "ECONFLICT");
    ASSERT(store_strerror(CORE_EIO) == NULL);
    store_close(s);
}

static void test_cancel(void)
{
    store *s = open_db("cancel.db");
    int64_t cid = add_corpus(s, "c", "text");
    int64_t queued = add_job(s, cid);
    int64_t running = add_job(s, cid);

    /* Queued: cancelled at once, never claimed. */
    store_job j;
    EXPECT_OK(store_cancel_job(s, &j, queued, err, sizeof err));
    ASSERT(j.status == STORE_JOB_CANCELLED);
    assert_timestamp(j.finished_at);
    store_job_deinit(&j);
    EXPECT_ERR(store_cancel_job(s, NULL, queued, err, sizeof err), STORE_ECONFLICT, "cancelled");

    /* Running: flagged, still running until the worker finishes it. */
    ASSERT_EQ_INT(claim(s), running);
    int flag = -1;
    EXPECT_OK(store_poll_cancel(s, running, &flag, err, sizeof err));
    ASSERT_EQ_INT(flag, 0);
    EXPECT_OK(store_cancel_job(s, &j, running, err, sizeof err));
    ASSERT(j.status == STORE_JOB_RUNNING);
    ASSERT_EQ_INT(j.cancel_requested, 1);
    ASSERT_EQ_STR(j.finished_at, "");
    store_job_deinit(&j);
    EXPECT_OK(store_cancel_job(s, NULL, running, err, sizeof err)); /* asking twice is fine */
    EXPECT_OK(store_poll_cancel(s, running, &flag, err, sizeof err));
    ASSERT_EQ_INT(flag, 1);
    EXPECT_OK(store_finish_job(s, running, STORE_JOB_CANCELLED, NULL, err, sizeof err));
    ASSERT(job_status(s, running) == STORE_JOB_CANCELLED);
    EXPECT_ERR(store_claim_job(s, &j, err, sizeof err), STORE_ENOTFOUND, "no queued job");
    store_close(s);
}

static void test_fifo_and_counts(void)
{
    store *s = open_db("fifo.db");
    int64_t cid = add_corpus(s, "c", "text");
    int64_t ids[6];
    for (int i = 0; i < 6; i++)
        ids[i] = add_job(s, cid);
    for (int i = 0; i < 3; i++)
        ASSERT_EQ_INT(claim(s), ids[i]);
    EXPECT_OK(store_finish_job(s, ids[0], STORE_JOB_SUCCEEDED, NULL, err, sizeof err));
    EXPECT_OK(store_finish_job(s, ids[1], STORE_JOB_FAILED, "boom", err, sizeof err));
    EXPECT_OK(store_cancel_job(s, NULL, ids[5], err, sizeof err));

    int64_t counts[STORE_JOB_NSTATUS];
    EXPECT_OK(store_count_jobs(s, counts, err, sizeof err));
    ASSERT_EQ_INT(counts[STORE_JOB_QUEUED], 2);
    ASSERT_EQ_INT(counts[STORE_JOB_RUNNING], 1);
    ASSERT_EQ_INT(counts[STORE_JOB_SUCCEEDED], 1);
    ASSERT_EQ_INT(counts[STORE_JOB_FAILED], 1);
    ASSERT_EQ_INT(counts[STORE_JOB_CANCELLED], 1);

    /* Newest first, with a status filter, limit and offset. */
    store_job *list;
    size_t n;
    EXPECT_OK(store_list_jobs(s, &list, &n, STORE_JOB_ANY, 100, 0, err, sizeof err));
    ASSERT_EQ_INT(n, 6);
    for (size_t i = 0; i < n; i++)
        ASSERT_EQ_INT(list[i].id, ids[5 - i]);
    store_free_jobs(list, n);
    EXPECT_OK(store_list_jobs(s, &list, &n, STORE_JOB_QUEUED, 100, 0, err, sizeof err));
    ASSERT_EQ_INT(n, 2);
    ASSERT_EQ_INT(list[0].id, ids[4]);
    ASSERT_EQ_INT(list[1].id, ids[3]);
    store_free_jobs(list, n);
    EXPECT_OK(store_list_jobs(s, &list, &n, STORE_JOB_ANY, 2, 1, err, sizeof err));
    ASSERT_EQ_INT(n, 2);
    ASSERT_EQ_INT(list[0].id, ids[4]);
    ASSERT_EQ_INT(list[1].id, ids[3]);
    store_free_jobs(list, n);
    EXPECT_OK(store_list_jobs(s, &list, &n, STORE_JOB_FAILED, 10, 0, err, sizeof err));
    ASSERT_EQ_INT(n, 1);
    ASSERT_EQ_STR(list[0].error, "boom");
    store_free_jobs(list, n);
    store_close(s);
}

/* Another process holding the write lock past the busy timeout: STORE_EBUSY, SQLite's message,
 * and nothing half-done. */
static void test_busy(void)
{
    store *s = open_db("busy.db");
    int64_t cid = add_corpus(s, "c", "text");
    char path[256];
    db_path(path, sizeof path, "busy.db");
    sqlite3 *db = NULL;
    ASSERT(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK);
    ASSERT(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) == SQLITE_OK);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    store_job j;
    EXPECT_ERR(store_add_job(s, &j, cid, "m", "{}", NULL, NULL, err, sizeof err), STORE_EBUSY,
               "database is locked");
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double waited = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    ASSERT(waited > 4.0); /* the busy timeout, not an immediate failure */
    /* Reads still work while another connection writes (WAL). */
    store_corpus c;
    EXPECT_OK(store_get_corpus(s, &c, cid, 0, err, sizeof err));
    store_corpus_deinit(&c);
    ASSERT(sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL) == SQLITE_OK);
    ASSERT(sqlite3_close(db) == SQLITE_OK);
    int64_t counts[STORE_JOB_NSTATUS];
    EXPECT_OK(store_count_jobs(s, counts, err, sizeof err));
    ASSERT_EQ_INT(counts[STORE_JOB_QUEUED], 0);
    add_job(s, cid); /* and the store is usable again */
    store_close(s);
}

// ---- crash recovery

static void test_requeue_after_crash(void)
{
    store *s = open_db("crash.db");
    int64_t cid = add_corpus(s, "c", "text");
    int64_t a = add_job(s, cid);
    int64_t b = add_job(s, cid);
    int64_t later = add_job(s, cid);
    ASSERT_EQ_INT(claim(s), a);
    ASSERT_EQ_INT(claim(s), b);
    store_progress p = {.epoch = 1, .epochs = 3, .step = 5, .steps = 10, .fraction = 0.2,
                        .chars_per_sec = NAN, .eta_seconds = NAN, .train_loss = 3.0};
    EXPECT_OK(store_update_progress(s, a, &p, err, sizeof err));
    EXPECT_OK(store_set_checkpoint(s, a, "/tmp/a.ckpt", err, sizeof err));
    EXPECT_OK(store_cancel_job(s, NULL, b, err, sizeof err));
    store_close(s); /* the "crash": neither job finished */

    s = open_db("crash.db");
    int64_t requeued = -1;
    EXPECT_OK(store_requeue_running(s, &requeued, err, sizeof err));
    ASSERT_EQ_INT(requeued, 1);
    store_job j;
    EXPECT_OK(store_get_job(s, &j, a, err, sizeof err));
    ASSERT(j.status == STORE_JOB_QUEUED);
    ASSERT_EQ_INT(j.attempts, 1);
    ASSERT_EQ_INT(j.progress.step, 5);
    ASSERT_EQ_STR(j.checkpoint_path, "/tmp/a.ckpt");
    store_job_deinit(&j);
    /* The cancel asked for before the crash is honoured rather than resumed. */
    EXPECT_OK(store_get_job(s, &j, b, err, sizeof err));
    ASSERT(j.status == STORE_JOB_CANCELLED);
    ASSERT(j.error != NULL);
    store_job_deinit(&j);

    /* The resumed job goes before jobs queued after it, and counts a second attempt. */
    EXPECT_OK(store_claim_job(s, &j, err, sizeof err));
    ASSERT_EQ_INT(j.id, a);
    ASSERT_EQ_INT(j.attempts, 2);
    store_job_deinit(&j);
    ASSERT_EQ_INT(claim(s), later);
    EXPECT_OK(store_requeue_running(s, NULL, err, sizeof err));
    EXPECT_OK(store_requeue_running(s, &requeued, err, sizeof err));
    ASSERT_EQ_INT(requeued, 0);
    store_close(s);
}

/* stalled_attempts counts the starts since the last completed epoch; a clean stop gives its
 * start back; a database from the first schema gets the column with its attempts. */
static void test_stalled_attempts(void)
{
    store *s = open_db("stalled.db");
    int64_t cid = add_corpus(s, "c", "text");
    int64_t a = add_job(s, cid);
    store_job j;
    for (int start = 1; start <= 3; start++) {
        EXPECT_OK(store_claim_job(s, &j, err, sizeof err));
        ASSERT_EQ_INT(j.id, a);
        ASSERT_EQ_INT(j.attempts, start);
        ASSERT_EQ_INT(j.stalled_attempts, start);
        store_job_deinit(&j);
        EXPECT_OK(store_requeue_running(s, NULL, err, sizeof err)); /* a crash */
    }
    EXPECT_OK(store_claim_job(s, &j, err, sizeof err));
    store_job_deinit(&j);
    EXPECT_OK(store_add_epoch(s, a, 1, 2.0, 2.1, 1.0, NULL, err, sizeof err));
    EXPECT_OK(store_get_job(s, &j, a, err, sizeof err));
    ASSERT_EQ_INT(j.attempts, 4);
    ASSERT_EQ_INT(j.stalled_attempts, 1);
    store_job_deinit(&j);
    /* A crash, then the same epoch rerun and recorded again: that is no progress. */
    EXPECT_OK(store_requeue_running(s, NULL, err, sizeof err));
    EXPECT_OK(store_claim_job(s, &j, err, sizeof err));
    store_job_deinit(&j);
    EXPECT_OK(store_add_epoch(s, a, 1, 2.0, 2.1, 1.0, NULL, err, sizeof err));
    EXPECT_OK(store_get_job(s, &j, a, err, sizeof err));
    ASSERT_EQ_INT(j.attempts, 5);
    ASSERT_EQ_INT(j.stalled_attempts, 2);
    store_job_deinit(&j);
    EXPECT_OK(store_add_epoch(s, a, 2, 2.0, 2.1, 1.0, NULL, err, sizeof err));
    EXPECT_OK(store_get_job(s, &j, a, err, sizeof err));
    ASSERT_EQ_INT(j.stalled_attempts, 1);
    store_job_deinit(&j);
    EXPECT_OK(store_requeue_job(s, a, err, sizeof err)); /* a clean stop */
    EXPECT_OK(store_get_job(s, &j, a, err, sizeof err));
    ASSERT_EQ_INT(j.attempts, 4);
    ASSERT_EQ_INT(j.stalled_attempts, 0);
    store_job_deinit(&j);
    store_close(s);

    /* Back to schema 1 by hand, then opened again: the migration fills the column. */
    raw_exec("stalled.db", "ALTER TABLE jobs DROP COLUMN stalled_attempts");
    raw_exec("stalled.db", "ALTER TABLE jobs DROP COLUMN base_model"); /* schema 3's */
    raw_exec("stalled.db", "ALTER TABLE jobs DROP COLUMN unknown_chars");
    raw_exec("stalled.db", "DROP TABLE trainer_lease"); /* schema 4's */
    raw_exec("stalled.db", "ALTER TABLE jobs DROP COLUMN plan"); /* schema 5's */
    raw_exec("stalled.db", "PRAGMA user_version = 1");
    s = open_db("stalled.db");
    EXPECT_OK(store_get_job(s, &j, a, err, sizeof err));
    ASSERT_EQ_INT(j.stalled_attempts, 4);
    store_job_deinit(&j);
    store_close(s);
    char got[64];
    raw_query("stalled.db", "PRAGMA user_version", got, sizeof got);
    ASSERT_EQ_INT(atoi(got), STORE_SCHEMA_VERSION);
}

/* A fine-tuning job keeps its base model and its unknown-characters rule; others have none. */
static void test_fine_tune_job(void)
{
    store *s = open_db("tune.db");
    int64_t cid = add_corpus(s, "c", "text");
    store_job j, got;
    EXPECT_OK(store_add_job(s, &j, cid, "tuned", "{}", "default", "replace= ", err, sizeof err));
    ASSERT_EQ_STR(j.base_model, "default");
    EXPECT_OK(store_get_job(s, &got, j.id, err, sizeof err));
    ASSERT_EQ_STR(got.base_model, "default");
    ASSERT_EQ_STR(got.unknown_chars, "replace= ");
    store_job_deinit(&got);
    store_job_deinit(&j);
    EXPECT_OK(store_add_job(s, &j, cid, "fresh", "{}", NULL, NULL, err, sizeof err));
    ASSERT(j.base_model == NULL && j.unknown_chars == NULL);
    store_job_deinit(&j);
    store_close(s);
}

static int always_stale(const char *holder) { return holder != NULL; }

/* One trainer per database: a fresh heartbeat keeps others out, an old one or a dead holder
 * lets the next one in, and a clean stop gives the lease up. */
static void test_trainer_lease(void)
{
    store *s = open_db("lease.db");
    char other[160];
    double age = -1;
    EXPECT_OK(store_take_lease(s, "A", 1000, 15, NULL, other, sizeof other, &age, err,
                               sizeof err));
    EXPECT_OK(store_take_lease(s, "A", 1005, 15, NULL, other, sizeof other, &age, err,
                               sizeof err)); /* a renewal */
    EXPECT_ERR(store_take_lease(s, "B", 1010, 15, NULL, other, sizeof other, &age, err,
                                sizeof err), STORE_ECONFLICT, "held by A");
    ASSERT_EQ_STR(other, "A");
    ASSERT(fabs(age - 5) < 1e-9);
    /* a holder this machine knows is gone: at once */
    EXPECT_OK(store_take_lease(s, "B", 1011, 15, always_stale, other, sizeof other, &age, err,
                               sizeof err));
    /* no heartbeat for ttl seconds: another machine's turn */
    EXPECT_ERR(store_take_lease(s, "C", 1025, 15, NULL, other, sizeof other, &age, err,
                                sizeof err), STORE_ECONFLICT, "held by B");
    EXPECT_OK(store_take_lease(s, "C", 1026, 15, NULL, other, sizeof other, &age, err,
                               sizeof err));
    EXPECT_OK(store_drop_lease(s, "B", err, sizeof err)); /* not B's: nothing changes */
    EXPECT_ERR(store_take_lease(s, "D", 1027, 15, NULL, other, sizeof other, &age, err,
                                sizeof err), STORE_ECONFLICT, "held by C");
    EXPECT_OK(store_drop_lease(s, "C", err, sizeof err));
    EXPECT_OK(store_take_lease(s, "D", 1027, 15, NULL, other, sizeof other, &age, err,
                               sizeof err));
    store_close(s);
}

/* A clean shutdown requeues exactly its own job and gives the attempt back. */
static void test_requeue_one(void)
{
    store *s = open_db("requeue_one.db");
    int64_t cid = add_corpus(s, "c", "text");
    int64_t a = add_job(s, cid), b = add_job(s, cid);
    ASSERT_EQ_INT(claim(s), a);
    ASSERT_EQ_INT(claim(s), b);
    EXPECT_OK(store_requeue_job(s, a, err, sizeof err));
    store_job j;
    EXPECT_OK(store_get_job(s, &j, a, err, sizeof err));
    ASSERT(j.status == STORE_JOB_QUEUED);
    ASSERT_EQ_INT(j.attempts, 0);
    store_job_deinit(&j);
    EXPECT_OK(store_get_job(s, &j, b, err, sizeof err)); /* another worker's job runs on */
    ASSERT(j.status == STORE_JOB_RUNNING);
    store_job_deinit(&j);
    ASSERT_EQ_INT(store_requeue_job(s, a, err, sizeof err), STORE_ENOTFOUND); /* not running */
    ASSERT_EQ_INT(store_requeue_job(s, 999, err, sizeof err), STORE_ENOTFOUND);
    store_close(s);
}

/* A process SIGKILLed while writing 1 MB corpora leaves only whole rows and a sound file. */
static void test_kill_mid_write(void)
{
    pid_t pid = fork();
    ASSERT(pid >= 0);
    if (pid == 0) {
        store *s = NULL;
        char path[256];
        db_path(path, sizeof path, "killed.db");
        if (store_open(&s, path, NULL, 0) != 0)
            _exit(2);
        size_t len = 1u << 20;
        char *text = malloc(len);
        if (!text)
            _exit(3);
        for (unsigned i = 0;; i++) {
            memset(text, 'a' + (int)(i % 26), len);
            store_corpus c;
            if (store_add_corpus(s, &c, "k", text, len, (int64_t)len, 1, SHA, NULL, 0) != 0)
                _exit(4);
            store_corpus_deinit(&c);
        }
    }
    /* Wait until the child has committed a few rows, then kill it mid-stream. */
    char got[64] = "";
    for (int tries = 0; tries < 2000; tries++) {
        struct timespec ts = {0, 5 * 1000 * 1000};
        nanosleep(&ts, NULL);
        int status;
        ASSERT(waitpid(pid, &status, WNOHANG) == 0); /* the child must still be writing */
        char path[256];
        db_path(path, sizeof path, "killed.db");
        if (access(path, F_OK) != 0)
            continue;
        raw_query("killed.db", "SELECT count(*) FROM sqlite_master WHERE name = 'corpora'", got,
                  sizeof got);
        if (strcmp(got, "1") != 0)
            continue;
        raw_query("killed.db", "SELECT count(*) FROM corpora", got, sizeof got);
        if (atoi(got) >= 3)
            break;
    }
    ASSERT(atoi(got) >= 3);
    ASSERT(kill(pid, SIGKILL) == 0);
    int status;
    ASSERT(waitpid(pid, &status, 0) == pid);
    ASSERT(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);

    store *s = open_db("killed.db");
    store_close(s);
    raw_query("killed.db", "PRAGMA integrity_check", got, sizeof got);
    ASSERT_EQ_STR(got, "ok");
    raw_query("killed.db",
              "SELECT count(*) FROM corpora WHERE length(text) <> bytes OR bytes <> 1048576",
              got, sizeof got);
    ASSERT_EQ_STR(got, "0");
}

// ---- concurrency

#define NJOBS 50
#define NTHREADS 4

typedef struct claimer {
    store *s;          /* shared, or NULL to open a connection of its own */
    int64_t ids[NJOBS];
    int n;
    int rc;            /* first unexpected error, 0 if none */
    char err[512];
} claimer;

static void *claim_all(void *arg)
{
    claimer *c = arg;
    store *s = c->s;
    if (!s) {
        char path[256];
        db_path(path, sizeof path, "claims.db");
        c->rc = store_open(&s, path, c->err, sizeof c->err);
        if (c->rc)
            return NULL;
    }
    for (;;) {
        store_job j;
        int rc = store_claim_job(s, &j, c->err, sizeof c->err);
        if (rc == STORE_ENOTFOUND)
            break;
        if (rc) {
            c->rc = rc;
            break;
        }
        c->ids[c->n++] = j.id;
        store_job_deinit(&j);
        sched_yield(); /* let the others interleave */
    }
    if (!c->s)
        store_close(s);
    return NULL;
}

static void check_claims(int shared)
{
    store *s = open_db("claims.db");
    int64_t cid = add_corpus(s, "c", "text");
    int64_t first = add_job(s, cid);
    for (int i = 1; i < NJOBS; i++)
        add_job(s, cid);

    claimer cl[NTHREADS];
    pthread_t th[NTHREADS];
    memset(cl, 0, sizeof cl);
    for (int t = 0; t < NTHREADS; t++) {
        cl[t].s = shared ? s : NULL;
        ASSERT(pthread_create(&th[t], NULL, claim_all, &cl[t]) == 0);
    }
    for (int t = 0; t < NTHREADS; t++)
        ASSERT(pthread_join(th[t], NULL) == 0);

    int seen[NJOBS] = {0}, total = 0;
    for (int t = 0; t < NTHREADS; t++) {
        if (cl[t].rc)
            TEST_FAIL("claimer %d: %d (%s)", t, cl[t].rc, cl[t].err);
        for (int i = 0; i < cl[t].n; i++) {
            int64_t k = cl[t].ids[i] - first;
            ASSERT(k >= 0 && k < NJOBS);
            ASSERT_EQ_INT(seen[k], 0); /* never claimed twice */
            seen[k] = 1;
            /* Each claimer sees FIFO order: its ids only grow. */
            ASSERT(i == 0 || cl[t].ids[i] > cl[t].ids[i - 1]);
        }
        total += cl[t].n;
    }
    ASSERT_EQ_INT(total, NJOBS);
    int64_t counts[STORE_JOB_NSTATUS];
    EXPECT_OK(store_count_jobs(s, counts, err, sizeof err));
    ASSERT_EQ_INT(counts[STORE_JOB_RUNNING], NJOBS);
    ASSERT_EQ_INT(counts[STORE_JOB_QUEUED], 0);
    /* Leave nothing running for the next round on the same file. */
    for (int k = 0; k < NJOBS; k++)
        EXPECT_OK(store_finish_job(s, first + k, STORE_JOB_SUCCEEDED, NULL, err, sizeof err));
    store_close(s);
}

typedef struct writer {
    store *s; /* shared, or NULL to open a connection of its own */
    int64_t corpus_id;
    int rc;
    char err[512];
} writer;

/* A worker's whole write pattern, many times over: queue, claim, progress, epoch, finish. */
static void *write_jobs(void *arg)
{
    writer *w = arg;
    store *s = w->s;
    if (!s) {
        char path[256];
        db_path(path, sizeof path, "writers.db");
        w->rc = store_open(&s, path, w->err, sizeof w->err);
        if (w->rc)
            return NULL;
    }
    for (int i = 0; i < 15 && !w->rc; i++) {
        store_job j;
        w->rc = store_add_job(s, &j, w->corpus_id, "w", "{}", NULL, NULL, w->err, sizeof w->err);
        if (w->rc)
            break;
        store_job_deinit(&j);
        w->rc = store_claim_job(s, &j, w->err, sizeof w->err);
        if (w->rc)
            break;
        int64_t id = j.id;
        store_job_deinit(&j);
        for (int k = 0; k < 5 && !w->rc; k++) {
            store_progress p = {.epoch = 1, .epochs = 1, .step = k, .steps = 5,
                                .fraction = k / 5.0, .chars_per_sec = 1000, .eta_seconds = 5 - k,
                                .train_loss = 2.0};
            int requested;
            w->rc = store_update_progress(s, id, &p, w->err, sizeof w->err);
            if (!w->rc)
                w->rc = store_poll_cancel(s, id, &requested, w->err, sizeof w->err);
        }
        if (!w->rc)
            w->rc = store_add_epoch(s, id, 1, 2.0, 2.1, 0.5, "{}", w->err, sizeof w->err);
        if (!w->rc)
            w->rc = store_finish_job(s, id, STORE_JOB_SUCCEEDED, NULL, w->err, sizeof w->err);
        int64_t counts[STORE_JOB_NSTATUS];
        if (!w->rc)
            w->rc = store_count_jobs(s, counts, w->err, sizeof w->err);
    }
    if (!w->s)
        store_close(s);
    return NULL;
}

static void test_concurrent_writers(void)
{
    store *s = open_db("writers.db");
    int64_t cid = add_corpus(s, "c", "text");
    /* Three threads share one store, three have connections of their own, so both the mutex
     * and SQLite's file locking (with the busy timeout) are exercised. */
    enum { NW = 6 };
    writer w[NW];
    pthread_t th[NW];
    memset(w, 0, sizeof w);
    for (int t = 0; t < NW; t++) {
        w[t].s = t < NW / 2 ? s : NULL;
        w[t].corpus_id = cid;
        ASSERT(pthread_create(&th[t], NULL, write_jobs, &w[t]) == 0);
    }
    for (int t = 0; t < NW; t++)
        ASSERT(pthread_join(th[t], NULL) == 0);
    for (int t = 0; t < NW; t++)
        if (w[t].rc)
            TEST_FAIL("writer %d: %d (%s)", t, w[t].rc, w[t].err);
    int64_t counts[STORE_JOB_NSTATUS];
    EXPECT_OK(store_count_jobs(s, counts, err, sizeof err));
    ASSERT_EQ_INT(counts[STORE_JOB_SUCCEEDED], NW * 15);
    ASSERT_EQ_INT(counts[STORE_JOB_QUEUED] + counts[STORE_JOB_RUNNING], 0);
    store_close(s);
}

// ---- main

static void remove_tmpdir(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", tmpdir);
}

int main(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/test_store.XXXXXX");
    ASSERT(mkdtemp(tmpdir) != NULL);
    test_kill_mid_write(); /* first, while the process has no threads to fork with */
    test_schema();
    test_open_errors();
    test_corpora();
    test_corpus_delete_with_jobs();
    test_job_lifecycle();
    test_cancel();
    test_fifo_and_counts();
    test_requeue_after_crash();
    test_requeue_one();
    test_stalled_attempts();
    test_fine_tune_job();
    test_trainer_lease();
    test_busy();
    check_claims(1);
    check_claims(0);
    test_concurrent_writers();
    remove_tmpdir(); /* kept on failure, for a look */
    printf("test_store: all passed\n");
    return 0;
}
