/* test_train: the trainer end to end on corpora generated here (English-like words from a fixed
 * list, and Chinese from a few dozen CJK characters, both from a seeded generator): both regimes
 * learn well below the uniform loss ln V, bit-identical checkpoints for the same seed, stopping
 * mid-epoch and resuming gives the very same file as an uninterrupted run, best/latest files,
 * divergence leaves earlier files intact, and bad input or options fail with the right code. */
#include "test.h"

#include "budget.h"
#include "checkpoint.h"
#include "corpus.h"
#include "err.h"
#include "json.h"
#include "model.h"
#include "optim.h"
#include "sample.h"
#include "sha256.h"
#include "train.h"
#include "trainopts.h"
#include "utf8.h"
#include "vocab.h"

#include <dirent.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>

#define ASSERT_CONTAINS(s, sub)                                                          \
    do {                                                                                 \
        if (!strstr((s), (sub)))                                                         \
            TEST_FAIL("\"%s\" does not contain \"%s\"", (s), (sub));                     \
    } while (0)

static char tmpdir[] = "/tmp/test_train.XXXXXX";

static const char *tmp_path(const char *name)
{
    static char buf[8][256];
    static int k;
    k = (k + 1) % 8;
    snprintf(buf[k], sizeof buf[k], "%s/%.200s", tmpdir, name);
    return buf[k];
}

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

// ----------------------------------------------------------------------------
// generated corpora

/* splitmix64: the corpora depend on nothing but this file. */
static uint64_t mix_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static int mix_below(uint64_t *s, int n) { return (int)(mix_next(s) % (uint64_t)n); }

static const char *const WORDS[] = {
    "the",   "of",    "and",   "to",    "in",    "is",    "was",   "he",    "that",  "it",
    "for",   "on",    "with",  "as",    "his",   "at",    "by",    "from",  "they",  "we",
    "this",  "had",   "not",   "are",   "but",   "or",    "have",  "an",    "which", "one",
    "were",  "her",   "all",   "she",   "there", "would", "their", "will",  "when",  "who",
    "him",   "been",  "has",   "more",  "if",    "no",    "out",   "so",    "said",  "what",
    "up",    "about", "into",  "than",  "them",  "can",   "only",  "other", "new",   "some",
    "could", "time",  "these", "two",   "may",   "then",  "do",    "first", "any",   "my",
    "now",   "such",  "like",  "our",   "over",  "man",   "me",    "even",  "most",  "made",
    "after", "also",  "did",   "many",  "before", "must", "through", "back", "years", "where",
    "much",  "your",  "way",   "well",  "down",  "should", "because", "each", "just", "those",
    "people", "how",  "too",   "little", "state", "good", "very",  "make",  "world", "still",
    "own",   "see",   "men",   "work",  "long",  "get",   "here",  "between", "both", "life",
};
#define N_WORDS ((int)(sizeof WORDS / sizeof WORDS[0]))

/* Sentences of 4-9 words from WORDS, capitalised, ". " between them, a newline every few. */
static char *gen_english(uint64_t seed, size_t min_bytes, size_t *len)
{
    size_t cap = min_bytes + 256, n = 0;
    char *s = malloc(cap);
    ASSERT(s != NULL);
    int sentences = 0;
    while (n < min_bytes) {
        int k = 4 + mix_below(&seed, 6);
        for (int w = 0; w < k; w++) {
            const char *word = WORDS[mix_below(&seed, N_WORDS)];
            size_t wl = strlen(word);
            memcpy(s + n, word, wl);
            if (w == 0)
                s[n] = (char)(s[n] - 'a' + 'A');
            n += wl;
            s[n++] = w + 1 < k ? ' ' : '.';
        }
        s[n++] = ++sentences % 5 == 0 ? '\n' : ' ';
    }
    s[n] = '\0';
    *len = n;
    return s;
}

/* Two-character words drawn from 40 CJK characters, ， between words now and then, 。 and a
 * newline after sentences: 3-byte UTF-8 throughout. */
static const char *const HANZI[] = {
    "天", "地", "人", "和", "风", "雨", "山", "水", "花", "月", "春", "秋", "日", "夜",
    "红", "楼", "梦", "心", "中", "大", "小", "上", "下", "来", "去", "说", "道", "是",
    "不", "了", "我", "你", "他", "她", "们", "的", "有", "也", "这", "那",
};
#define N_HANZI ((int)(sizeof HANZI / sizeof HANZI[0]))

static char *gen_chinese(uint64_t seed, size_t min_bytes, size_t *len)
{
    /* a fixed set of "words": pairs of characters, so the text has structure to learn */
    int pairs[60][2];
    uint64_t ps = 12345;
    for (int i = 0; i < 60; i++)
        pairs[i][0] = mix_below(&ps, N_HANZI), pairs[i][1] = mix_below(&ps, N_HANZI);
    size_t cap = min_bytes + 256, n = 0;
    char *s = malloc(cap);
    ASSERT(s != NULL);
    while (n < min_bytes) {
        int k = 3 + mix_below(&seed, 5);
        for (int w = 0; w < k; w++) {
            const int *p = pairs[mix_below(&seed, 60)];
            for (int j = 0; j < 2; j++) {
                memcpy(s + n, HANZI[p[j]], 3);
                n += 3;
            }
            if (w + 1 < k && mix_below(&seed, 4) == 0) {
                memcpy(s + n, "，", 3);
                n += 3;
            }
        }
        memcpy(s + n, "。\n", 4);
        n += 4;
    }
    s[n] = '\0';
    *len = n;
    return s;
}

/* Entropy in nats of the text's character frequencies: what a model without memory can reach. */
static double unigram_entropy(const char *text, size_t len, int *V)
{
    uint32_t *cps = NULL;
    size_t n = 0;
    ASSERT_EQ_INT(utf8_decode(&cps, &n, NULL, text, len, NULL, 0), 0);
    vocab v = {0};
    ASSERT_EQ_INT(vocab_build(&v, cps, n, NULL, 0), 0);
    double *count = calloc((size_t)v.V, sizeof *count);
    ASSERT(count != NULL);
    for (size_t i = 0; i < n; i++)
        count[vocab_index(&v, cps[i])] += 1;
    double h = 0;
    for (int i = 0; i < v.V; i++)
        if (count[i] > 0)
            h -= count[i] / (double)n * log(count[i] / (double)n);
    *V = v.V;
    free(count);
    free(cps);
    vocab_deinit(&v);
    return h;
}

// ----------------------------------------------------------------------------
// files

static unsigned char *read_all(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        TEST_FAIL("cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *buf = malloc((size_t)size + 1);
    ASSERT(buf != NULL);
    ASSERT_EQ_INT(fread(buf, 1, (size_t)size, f), size);
    fclose(f);
    *n = (size_t)size;
    return buf;
}

static int same_bytes(const char *a, const char *b)
{
    size_t na, nb;
    unsigned char *x = read_all(a, &na), *y = read_all(b, &nb);
    int same = na == nb && memcmp(x, y, na) == 0;
    free(x);
    free(y);
    return same;
}

static void assert_same_file(const char *a, const char *b)
{
    if (!same_bytes(a, b))
        TEST_FAIL("%s and %s differ", a, b);
}

static int file_exists(const char *path) { return access(path, F_OK) == 0; }

static void clean_tmpdir(void)
{
    DIR *d = opendir(tmpdir);
    ASSERT(d != NULL);
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, ".."))
            ASSERT_EQ_INT(unlink(tmp_path(e->d_name)), 0);
    closedir(d);
}

static const char *latest_of(const char *out)
{
    static char buf[4][300];
    static int k;
    k = (k + 1) % 4;
    train_latest_path(buf[k], sizeof buf[k], out);
    return buf[k];
}

static model *load_ok(const char *path, ckpt_tensor **x, int *nx)
{
    model *m = NULL;
    char err[256] = "";
    int rc = checkpoint_load(&m, x, nx, path, err, sizeof err);
    if (rc)
        TEST_FAIL("checkpoint_load(%s): %s (%s)", path, core_errname(rc), err);
    return m;
}

static const ckpt_tensor *find_extra(const ckpt_tensor *x, int nx, const char *name)
{
    for (int i = 0; i < nx; i++)
        if (strcmp(x[i].name, name) == 0)
            return &x[i];
    return NULL;
}

// ----------------------------------------------------------------------------
// running the trainer

#define MAX_EPOCHS 64

/* Records the epoch reports and stops the run on request. */
typedef struct recorder {
    int n;
    double train[MAX_EPOCHS], val[MAX_EPOCHS];
    int epoch[MAX_EPOCHS], partial[MAX_EPOCHS], best[MAX_EPOCHS];
    double lr[MAX_EPOCHS];
    train_plan plan; /* a time budget's, when on_plan was called */
    int planned;
    char *samples[TRAIN_N_TEMPS]; /* copies from the last report */
    int progress_calls;
    int cancel_at_first_progress; /* stops after the first batch the run trains */
    int cancel_after_epoch;       /* stops after the first batch following this epoch's end */
    volatile int cancel;
} recorder;

static void rec_progress(void *ctx, const train_progress *p)
{
    recorder *r = ctx;
    ASSERT(p->batch >= 1 && p->batch <= p->batches);
    ASSERT(p->epoch >= 1 && p->epoch <= p->epochs);
    if (++r->progress_calls == 1 && r->cancel_at_first_progress)
        r->cancel = 1;
}

static void rec_epoch(void *ctx, const train_epoch_report *e)
{
    recorder *r = ctx;
    ASSERT(r->n < MAX_EPOCHS);
    r->epoch[r->n] = e->epoch;
    r->train[r->n] = e->train_loss;
    r->val[r->n] = e->val_loss;
    r->partial[r->n] = e->partial;
    r->best[r->n] = e->best;
    r->lr[r->n] = e->lr;
    r->n++;
    for (int k = 0; k < TRAIN_N_TEMPS; k++) {
        free(r->samples[k]);
        r->samples[k] = k < e->n_samples ? strdup(e->samples[k]) : NULL;
    }
    if (r->cancel_after_epoch && e->epoch == r->cancel_after_epoch && !e->partial)
        r->cancel = 1;
}

static void rec_plan(void *ctx, const train_plan *p)
{
    recorder *r = ctx;
    r->plan = *p;
    r->planned++;
}

static void rec_deinit(recorder *r)
{
    for (int k = 0; k < TRAIN_N_TEMPS; k++)
        free(r->samples[k]);
    memset(r, 0, sizeof *r);
}

static void attach(train_options *o, recorder *r)
{
    o->on_progress = rec_progress;
    o->on_epoch = rec_epoch;
    o->on_plan = rec_plan;
    o->ctx = r;
    o->cancel = &r->cancel;
}

static train_result train_ok(const train_options *o, const char *text, size_t len)
{
    train_result res;
    char err[512] = "";
    int rc = train_run(&res, o, text, len, err, sizeof err);
    if (rc)
        TEST_FAIL("train_run: %s (%s)", core_errname(rc), err);
    return res;
}

static void train_fails(int want, const char *want_msg, const train_options *o, const char *text,
                        size_t len)
{
    train_result res = {.epochs_done = -12345};
    char err[512] = "";
    int rc = train_run(&res, o, text, len, err, sizeof err);
    if (rc != want)
        TEST_FAIL("train_run returned %s, expected %s (%s)", core_errname(rc), core_errname(want),
                  err);
    ASSERT_EQ_INT(res.epochs_done, -12345); /* untouched on failure */
    if (want_msg)
        ASSERT_CONTAINS(err, want_msg);
    printf("  %-10s %s\n", core_errname(rc), err);
}

static train_options window_options(const char *out)
{
    train_options o;
    train_options_default(&o);
    o.cfg = (model_config){.L = 1, .H = 16, .regime = REGIME_WINDOW, .maxlen = 12, .step = 2,
                           .seq_len = 1};
    o.batch = 16;
    o.epochs = 2;
    o.lr = 0.01f;
    o.optimizer = OPTIM_RMSPROP;
    o.val_fraction = 0.1;
    o.seed = 7;
    o.threads = 1;
    o.sample_chars = 0;
    o.out = out;
    return o;
}

static train_options sequence_options(const char *out)
{
    train_options o = window_options(out);
    o.cfg = (model_config){.L = 1, .H = 16, .regime = REGIME_SEQUENCE, .maxlen = 1, .step = 1,
                           .seq_len = 20};
    o.batch = 8;
    o.optimizer = OPTIM_ADAM;
    o.lr = 0.005f;
    o.clip = 5.0f;
    return o;
}

// ----------------------------------------------------------------------------
// learning

static void check_learns(const char *name, const train_options *o, const char *text, size_t len)
{
    int V;
    double h1 = unigram_entropy(text, len, &V);
    recorder r = {0};
    train_options oo = *o;
    attach(&oo, &r);
    double t0 = now_seconds();
    train_result res = train_ok(&oo, text, len);
    double secs = now_seconds() - t0;
    printf("  %s: %zu bytes, V %d, ln V %.3f, unigram entropy %.3f, %.2fs\n", name, len, V,
           log((double)V), h1, secs);
    printf("    epoch  train   val\n");
    for (int e = 0; e < r.n; e++)
        printf("    %5d  %.4f  %.4f\n", r.epoch[e], r.train[e], r.val[e]);
    ASSERT_EQ_INT(res.stopped, 0);
    ASSERT_EQ_INT(res.epochs_done, o->epochs);
    ASSERT_EQ_INT(r.n, o->epochs);
    for (int e = 1; e < r.n; e++)
        if (!(r.train[e] < r.train[e - 1]))
            TEST_FAIL("%s: train loss rose from epoch %d to %d: %.4f -> %.4f", name, e, e + 1,
                      r.train[e - 1], r.train[e]);
    /* A uniform predictor scores ln V and one without memory (a broken recurrent or input
     * gradient) at best the unigram entropy; a working LSTM gets well below both. */
    double limit = 0.6 * log((double)V);
    if (h1 - 0.5 < limit)
        limit = h1 - 0.5;
    ASSERT(res.train_loss < limit);
    ASSERT(res.val_loss < limit);
    ASSERT_NEAR(res.train_loss, r.train[r.n - 1], 0);
    double best = INFINITY;
    for (int e = 0; e < r.n; e++)
        best = r.val[e] < best ? r.val[e] : best;
    ASSERT_NEAR(res.best_val_loss, best, 0);
    rec_deinit(&r);
}

static void test_learns(void)
{
    printf("learning\n");
    size_t len;
    char *text = gen_english(1, 20000, &len);
    train_options o = window_options(tmp_path("learn_w.safetensors"));
    o.cfg.H = 64;
    o.cfg.maxlen = 20;
    o.cfg.step = 3;
    o.batch = 32;
    o.epochs = 3;
    check_learns("window (maxlen 20, step 3, H 64, batch 32, rmsprop 0.01)", &o, text, len);

    o = sequence_options(tmp_path("learn_s.safetensors"));
    o.cfg.H = 64;
    o.cfg.seq_len = 50;
    o.batch = 16;
    o.lr = 0.01f;
    o.epochs = 10;
    check_learns("sequence (seq_len 50, H 64, batch 16, adam 0.01)", &o, text, len);
    free(text);
    clean_tmpdir();
}

// ----------------------------------------------------------------------------
// determinism

static void test_determinism(void)
{
    printf("determinism\n");
    size_t len;
    char *text = gen_english(2, 4000, &len);
    for (int regime = 0; regime < 2; regime++) {
        const char *a = tmp_path("det_a.safetensors"), *b = tmp_path("det_b.safetensors");
        const char *c = tmp_path("det_c.safetensors");
        train_options o = regime ? sequence_options(a) : window_options(a);
        o.cfg.dropout = 0.2f;
        o.cfg.L = 2;
        train_ok(&o, text, len);
        o.out = b;
        train_ok(&o, text, len);
        assert_same_file(a, b);
        assert_same_file(latest_of(a), latest_of(b));
        o.out = c;
        o.seed = 8;
        train_ok(&o, text, len);
        ASSERT(!same_bytes(a, c));
        ASSERT(!same_bytes(latest_of(a), latest_of(c)));
        printf("  %s: same seed, same bytes; another seed, other bytes\n",
               regime ? "sequence" : "window");
        clean_tmpdir();
    }
    free(text);
}

// ----------------------------------------------------------------------------
// resume

/* How a run in a resume chain stops: not at all, after its first batch, or after the first batch
 * following the end of epoch e (1-based). */
enum { STOP_NONE = 0, STOP_FIRST_BATCH = 1 };
#define STOP_AFTER_EPOCH(e) (100 + (e))
#define STOP_AFTER_EPOCH_1 STOP_AFTER_EPOCH(1)
#define STOP_AFTER_EPOCH_2 STOP_AFTER_EPOCH(2)

/* Trains o straight into "<name>_straight", then again into "<name>_cut" through a chain of runs
 * that each stop as plan[i] says and resume from the state file the previous one left; the
 * final state files (and best files) must be byte-identical. perturb: every resume passes the
 * caller's hyperparameters changed, which must not matter (they come from the checkpoint). */
static void check_resume(const char *name, const train_options *base, const char *text, size_t len,
                         const int *plan, int n_plan, int perturb)
{
    char straight[64], cut[64];
    snprintf(straight, sizeof straight, "%s_straight.safetensors", name);
    snprintf(cut, sizeof cut, "%s_cut.safetensors", name);
    const char *out_a = tmp_path(straight), *out_b = tmp_path(cut);
    int has_val = base->val_fraction > 0;
    train_options o = *base;
    o.out = out_a;
    recorder ra = {0};
    attach(&o, &ra);
    train_result want = train_ok(&o, text, len);
    ASSERT_EQ_INT(want.stopped, 0);
    ASSERT_EQ_INT(ra.progress_calls > 0, 1);

    double partial_min = INFINITY; /* the lowest validation loss seen at a stop */
    char state_b[300];
    snprintf(state_b, sizeof state_b, "%s", has_val ? latest_of(out_b) : out_b);
    printf("  %s:", name);
    int quiet = n_plan > 8;
    for (int i = 0; i < n_plan; i++) {
        train_options p = *base;
        recorder r = {0};
        attach(&p, &r);
        p.out = out_b;
        if (i > 0) {
            p.resume = state_b;
            if (perturb) {
                p.lr *= 3;
                p.lr_decay = 0.5f;
                p.clip = 0.5f;
                p.seed += 1000;
                p.batch += 3;
                p.val_fraction = 0.3;
                p.optimizer = p.optimizer == OPTIM_ADAM ? OPTIM_RMSPROP : OPTIM_ADAM;
                p.cfg.H *= 2;
                p.cfg.dropout = 0.5f;
            }
        }
        r.cancel_at_first_progress = plan[i] == STOP_FIRST_BATCH;
        r.cancel_after_epoch = plan[i] > 100 ? plan[i] - 100 : 0;
        train_result res = train_ok(&p, text, len);
        ASSERT_EQ_INT(res.stopped, plan[i] == STOP_NONE ? 0 : 2);
        for (int e = 0; e < r.n; e++) {
            if (r.partial[e] && r.val[e] < partial_min)
                partial_min = r.val[e];
            /* a stop is written to out only as a stand-in before the first whole epoch */
            if (r.partial[e] && has_val)
                ASSERT_EQ_INT(r.best[e], r.epoch[e] == 1);
        }
        if (i == 0 && plan[i] != STOP_NONE)
            ASSERT_EQ_INT(file_exists(out_b), 1); /* loadable right after the first stop */
        ckpt_tensor *x = NULL;
        int nx = 0;
        model *m = load_ok(state_b, &x, &nx);
        if (!quiet || i + 2 >= n_plan)
            printf(" stop at epoch %s batch %s;", model_meta_get(m, "optim.epoch"),
                   model_meta_get(m, "optim.batch"));
        if (plan[i] != STOP_NONE)
            ASSERT(atoll(model_meta_get(m, "optim.batch")) > 0); /* really mid-epoch */
        ASSERT_EQ_INT(atoi(model_meta_get(m, "optim.epoch")), res.epochs_done);
        model_free(m);
        checkpoint_extra_free(x, nx);
        rec_deinit(&r);
    }
    printf(" then finished\n");
    if (has_val)
        printf("    best whole-epoch val %.4f, lowest val at a stop %.4f\n", want.best_val_loss,
               partial_min);
    if (has_val) {
        assert_same_file(latest_of(out_a), latest_of(out_b));
        assert_same_file(out_a, out_b);
    } else {
        assert_same_file(out_a, out_b);
        ASSERT(!file_exists(latest_of(out_a)));
    }
    rec_deinit(&ra);
}

static void test_resume(void)
{
    printf("resume\n");
    size_t len;
    char *text = gen_english(3, 4000, &len);
    static const int chain[] = {STOP_FIRST_BATCH, STOP_FIRST_BATCH, STOP_AFTER_EPOCH_1,
                                STOP_FIRST_BATCH, STOP_NONE};
    static const int one_cut[] = {STOP_AFTER_EPOCH_1, STOP_NONE};
    static const int two_cuts[] = {STOP_FIRST_BATCH, STOP_AFTER_EPOCH_2, STOP_NONE};

    /* window regime, 2 layers with dropout, RMSprop, a validation split, and a seed above 2^53 */
    train_options o = window_options(NULL);
    o.cfg.L = 2;
    o.cfg.dropout = 0.25f;
    o.epochs = 3;
    o.seed = (1ull << 53) + 1;
    check_resume("window_dropout", &o, text, len, chain, 5, 0);
    check_resume("window_caller_opts", &o, text, len, one_cut, 2, 1);

    /* sequence regime, Adam, carried state, a validation split */
    o = sequence_options(NULL);
    o.epochs = 3;
    check_resume("sequence_adam", &o, text, len, chain, 5, 0);
    check_resume("sequence_caller_opts", &o, text, len, two_cuts, 3, 1);

    /* sequence regime without a split: the state lives in out itself; 2 layers, dropout, RMSprop,
     * clip and lr decay */
    o = sequence_options(NULL);
    o.cfg.L = 2;
    o.cfg.dropout = 0.1f;
    o.optimizer = OPTIM_RMSPROP;
    o.lr = 0.003f;
    o.lr_decay = 0.9f;
    o.val_fraction = 0;
    o.epochs = 3;
    check_resume("sequence_nosplit", &o, text, len, two_cuts, 3, 0);

    /* overfitting (as in test_best_latest): the best epoch is the 5th of 12; stop just after it */
    {
        free(text);
        text = gen_english(4, 1500, &len);
        o = window_options(NULL);
        o.cfg.H = 64;
        o.cfg.maxlen = 8;
        o.cfg.step = 1;
        o.val_fraction = 0.2;
        o.epochs = 6;
        /* stop after every one of the first 60 batches of epoch 5: some of these mid-epoch
         * models validate better than any whole epoch, yet must not become the best */
        int plan[62];
        plan[0] = STOP_AFTER_EPOCH(4);
        for (int i = 1; i < 61; i++)
            plan[i] = STOP_FIRST_BATCH;
        plan[61] = STOP_NONE;
        check_resume("overfit", &o, text, len, plan, 62, 0);
        free(text);
        text = gen_english(3, 4000, &len);
    }

    /* raising the epoch count of a finished run continues it like a longer run */
    o = window_options(tmp_path("more_a.safetensors"));
    o.epochs = 3;
    train_ok(&o, text, len);
    o.out = tmp_path("more_b.safetensors");
    o.epochs = 2;
    train_ok(&o, text, len);
    o.epochs = 3;
    o.resume = latest_of(o.out);
    train_ok(&o, text, len);
    assert_same_file(latest_of(tmp_path("more_a.safetensors")), latest_of(o.out));
    printf("  2 epochs, then resumed to 3: same as 3 straight\n");
    free(text);
    clean_tmpdir();
}

// ----------------------------------------------------------------------------
// best and latest

static void test_best_latest(void)
{
    printf("best and latest\n");
    size_t len;
    /* a tiny corpus and a big learning rate: it overfits, so the best epoch is not the last */
    char *text = gen_english(4, 1500, &len);
    const char *out = tmp_path("best.safetensors");
    train_options o = window_options(out);
    o.cfg.H = 64;
    o.cfg.maxlen = 8;
    o.cfg.step = 1;
    o.lr = 0.01f;
    o.val_fraction = 0.2;
    o.epochs = 12;
    recorder r = {0};
    attach(&o, &r);
    train_result res = train_ok(&o, text, len);
    int best = 0;
    for (int e = 0; e < r.n; e++) {
        if (r.val[e] < r.val[best])
            best = e;
    }
    /* a report's best flag marks a new minimum */
    double running = INFINITY;
    for (int e = 0; e < r.n; e++) {
        ASSERT_EQ_INT(r.best[e], r.val[e] < running);
        if (r.val[e] < running)
            running = r.val[e];
    }
    printf("  val losses:");
    for (int e = 0; e < r.n; e++)
        printf(" %.3f%s", r.val[e], e == best ? "*" : "");
    printf("\n");
    ASSERT_NEAR(res.best_val_loss, r.val[best], 0);

    ckpt_tensor *x = NULL;
    int nx = 0;
    model *m = load_ok(out, &x, &nx);
    ASSERT_EQ_INT(nx, 0); /* the best model carries no optimizer state */
    ASSERT_EQ_INT(atoi(model_meta_get(m, "epochs")), best + 1);
    ASSERT_REL(strtod(model_meta_get(m, "val_loss"), NULL), r.val[best], 1e-7);
    model *best_m = m;
    checkpoint_extra_free(x, nx);

    m = load_ok(latest_of(out), &x, &nx);
    ASSERT_EQ_INT(atoi(model_meta_get(m, "epochs")), o.epochs);
    ASSERT_REL(strtod(model_meta_get(m, "val_loss"), NULL), r.val[r.n - 1], 1e-7);
    const ckpt_tensor *v = find_extra(x, nx, "optim.v");
    ASSERT(v != NULL);
    ASSERT_EQ_INT(v->ndim, 1);
    ASSERT_EQ_INT(v->shape[0], (long long)m->n_params);
    ASSERT(find_extra(x, nx, "optim.m") == NULL); /* RMSprop has no first moment */
    double v_sum = 0;
    for (size_t i = 0; i < m->n_params; i++)
        v_sum += (double)v->data[i];
    ASSERT(v_sum > 0);
    if (best + 1 < o.epochs) /* the weights differ when the best epoch is not the last */
        ASSERT(memcmp(m->params, best_m->params, m->n_params * sizeof(float)) != 0);
    printf("  out: epoch %d of %d, no extra tensors; latest: epoch %d, optim.v of %lld\n",
           best + 1, o.epochs, o.epochs, (long long)v->shape[0]);
    model_free(m);
    model_free(best_m);
    checkpoint_extra_free(x, nx);
    rec_deinit(&r);

    /* without a split, out is the latest state, Adam moments and carried state included */
    const char *out2 = tmp_path("nosplit.safetensors");
    o = sequence_options(out2);
    o.val_fraction = 0;
    o.epochs = 2;
    res = train_ok(&o, text, len);
    ASSERT(isnan(res.val_loss));
    ASSERT(isnan(res.best_val_loss));
    ASSERT(!file_exists(latest_of(out2)));
    m = load_ok(out2, &x, &nx);
    ASSERT_EQ_INT(atoi(model_meta_get(m, "epochs")), 2);
    ASSERT(find_extra(x, nx, "optim.v") != NULL);
    ASSERT(find_extra(x, nx, "optim.m") != NULL);
    const ckpt_tensor *sh = find_extra(x, nx, "optim.state_h");
    ASSERT(sh != NULL);
    ASSERT_EQ_INT(sh->ndim, 3);
    ASSERT_EQ_INT(sh->shape[0], 1);
    ASSERT_EQ_INT(sh->shape[1], o.batch);
    ASSERT_EQ_INT(sh->shape[2], o.cfg.H);
    ASSERT(find_extra(x, nx, "optim.state_c") != NULL);
    printf("  no split: out has optim.v, optim.m, optim.state_h/c; no .latest file\n");
    model_free(m);
    checkpoint_extra_free(x, nx);
    free(text);
    clean_tmpdir();
}

// ----------------------------------------------------------------------------
// divergence and stopping

static void test_divergence(void)
{
    printf("divergence\n");
    size_t len;
    char *text = gen_english(5, 3000, &len);
    const char *out = tmp_path("div.safetensors");
    train_options o = window_options(out);
    train_ok(&o, text, len);
    size_t n1, n2;
    unsigned char *before = read_all(out, &n1), *before_latest = read_all(latest_of(out), &n2);

    o.lr = 10.0f;
    o.clip = 0;
    train_fails(CORE_EDIVERGED, "diverged", &o, text, len);
    size_t m1, m2;
    unsigned char *after = read_all(out, &m1), *after_latest = read_all(latest_of(out), &m2);
    ASSERT(n1 == m1 && memcmp(before, after, n1) == 0);
    ASSERT(n2 == m2 && memcmp(before_latest, after_latest, n2) == 0);
    /* no temporary files left behind: exactly the two checkpoints */
    DIR *d = opendir(tmpdir);
    int files = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        files += e->d_name[0] != '.';
    closedir(d);
    ASSERT_EQ_INT(files, 2);
    free(before);
    free(before_latest);
    free(after);
    free(after_latest);

    o = sequence_options(out);
    o.lr = 10.0f;
    o.clip = 0;
    o.optimizer = OPTIM_RMSPROP;
    train_fails(CORE_EDIVERGED, "diverged", &o, text, len);
    printf("  earlier checkpoints intact\n");

    /* the time budget stops cleanly and leaves a loadable, resumable state */
    o = window_options(out);
    o.epochs = 1000;
    o.max_seconds = 0.2;
    recorder r = {0};
    attach(&o, &r);
    double t0 = now_seconds();
    train_result res = train_ok(&o, text, len);
    double secs = now_seconds() - t0;
    ASSERT_EQ_INT(res.stopped, 1);
    ASSERT(res.epochs_done < 1000);
    ASSERT(secs < 5);
    ASSERT(r.n >= 1);
    ASSERT_EQ_INT(r.partial[r.n - 1], 1);
    ckpt_tensor *x = NULL;
    int nx = 0;
    model *m = load_ok(latest_of(out), &x, &nx);
    ASSERT_EQ_INT(atoi(model_meta_get(m, "optim.epoch")), res.epochs_done);
    model_free(m);
    checkpoint_extra_free(x, nx);
    printf("  max_seconds 0.2: stopped after %.2fs at %d whole epochs\n", secs, res.epochs_done);
    rec_deinit(&r);
    free(text);
    clean_tmpdir();
}

// ----------------------------------------------------------------------------
// bad input

static void test_bad_input(void)
{
    printf("bad input\n");
    size_t len;
    char *text = gen_english(6, 3000, &len);
    const char *out = tmp_path("bad.safetensors");
    train_options o = window_options(out);

    /* invalid UTF-8 at byte 1234: a lone continuation byte */
    char *bad = malloc(len + 1);
    memcpy(bad, text, len + 1);
    bad[1234] = (char)0x80;
    train_fails(CORE_EUTF8, "1234", &o, bad, len);
    bad[1234] = (char)0xC3; /* a truncated two-byte sequence at the very end */
    train_fails(CORE_EUTF8, NULL, &o, bad, 1235);
    free(bad);

    /* too short for the windows, or for the streams */
    train_fails(CORE_EINVAL, "maxlen", &o, "hello world", 11);
    o.val_fraction = 0;
    train_fails(CORE_EINVAL, "maxlen", &o, "hello world", 11);
    train_fails(CORE_EINVAL, "maxlen", &o, "hello world!", 12);
    o.val_fraction = 0.1;
    train_fails(CORE_EINVAL, NULL, &o, "", 0);
    train_options s = sequence_options(out);
    s.val_fraction = 0;
    train_fails(CORE_EINVAL, "streams", &s, "hello", 5);

    /* options out of range */
    o = window_options(out);
    o.batch = 0;
    train_fails(CORE_ERANGE, "batch", &o, text, len);
    o = window_options(out);
    o.lr = NAN;
    train_fails(CORE_ERANGE, "lr", &o, text, len);
    o.lr = -1;
    train_fails(CORE_ERANGE, "lr", &o, text, len);
    o = window_options(out);
    o.val_fraction = 0.9;
    train_fails(CORE_ERANGE, "val_fraction", &o, text, len);
    o = window_options(out);
    o.epochs = 0;
    train_fails(CORE_ERANGE, "epochs", &o, text, len);
    o = window_options(out);
    o.clip = -1;
    train_fails(CORE_ERANGE, "clip", &o, text, len);
    o = window_options(out);
    o.cfg.H = 3;
    train_fails(CORE_ERANGE, NULL, &o, text, len);
    o = window_options(out);
    o.cfg.dropout = 1.5f;
    train_fails(CORE_ERANGE, NULL, &o, text, len);
    ASSERT(!file_exists(out));

    /* resuming from something that is not a latest-state checkpoint */
    o = window_options(out);
    train_ok(&o, text, len);
    o.resume = out; /* the best model: no optimizer state */
    o.out = tmp_path("bad2.safetensors");
    train_fails(CORE_EFORMAT, "optimizer state", &o, text, len);
    o.resume = tmp_path("missing.safetensors");
    train_fails(CORE_EIO, "missing.safetensors", &o, text, len);
    {
        /* a bare model, as checkpoint_save writes it without the trainer */
        model *m = load_ok(out, NULL, NULL);
        model *bare = NULL;
        ASSERT_EQ_INT(model_new(&bare, &m->cfg, &m->voc, NULL, 0), 0);
        ASSERT_EQ_INT(checkpoint_save(tmp_path("bare.safetensors"), bare, NULL, 0, NULL, 0), 0);
        o.resume = tmp_path("bare.safetensors");
        train_fails(CORE_EFORMAT, "training state", &o, text, len);
        model_free(m);
        model_free(bare);
    }
    /* a different corpus over the same characters, and one with a new character */
    o.resume = latest_of(out);
    char *other = malloc(len + 1);
    memcpy(other, text, len + 1);
    size_t j = 101;
    while (other[j] == other[100])
        j++;
    char tmp = other[100];
    other[100] = other[j], other[j] = tmp; /* the same characters, another text */
    train_fails(CORE_EINVAL, "corpus", &o, other, len);
    other[100] = '#';
    train_fails(CORE_EVOCAB, "'#'", &o, other, len);
    free(other);
    /* the same corpus resumes fine */
    o.epochs = 3;
    train_ok(&o, text, len);
    free(text);
    clean_tmpdir();
}

// ----------------------------------------------------------------------------
// Chinese

static void test_chinese(void)
{
    printf("chinese\n");
    size_t len;
    char *text = gen_chinese(8, 12000, &len);
    int V;
    double h1 = unigram_entropy(text, len, &V);
    const char *out = tmp_path("zh.safetensors");
    train_options o = sequence_options(out);
    o.cfg.H = 48;
    o.cfg.seq_len = 30;
    o.lr = 0.01f;
    o.epochs = 6;
    o.sample_chars = 40;
    recorder r = {0};
    attach(&o, &r);
    train_result res = train_ok(&o, text, len);
    printf("  %zu bytes, V %d (ln V %.3f, unigram %.3f): train", len, V, log((double)V), h1);
    for (int e = 0; e < r.n; e++)
        printf(" %.3f", r.train[e]);
    printf(", val %.3f\n", res.val_loss);
    ASSERT(res.train_loss < 0.8 * h1);
    ASSERT(res.val_loss < 0.8 * h1);

    model *m = load_ok(out, NULL, NULL);
    ASSERT_EQ_INT(m->V, V);
    for (int k = 0; k < TRAIN_N_TEMPS + 1; k++) {
        sample_result sr = {0};
        const char *s = k < TRAIN_N_TEMPS ? r.samples[k] : NULL;
        if (!s) {
            /* and one from the checkpoint, seeded with Chinese text */
            sample_request req = {.seed_text = "天地", .seed_len = 6, .length = 100,
                                  .temperature = 0.8, .top_p = 1.0, .seed = 3};
            char err[256] = "";
            int rc = sample_generate(&sr, m, &req, err, sizeof err);
            if (rc)
                TEST_FAIL("sample_generate: %s", err);
            ASSERT_EQ_INT(sr.generated_chars, 100);
            s = sr.text;
        }
        uint32_t *cps = NULL;
        size_t n = 0;
        ASSERT_EQ_INT(utf8_decode(&cps, &n, NULL, s, strlen(s), NULL, 0), 0);
        ASSERT(n > 0);
        size_t cjk = 0;
        for (size_t i = 0; i < n; i++) {
            ASSERT(vocab_index(&m->voc, cps[i]) >= 0);
            cjk += cps[i] >= 0x4E00;
        }
        ASSERT(cjk > n / 2);
        if (k == 0 || k == TRAIN_N_TEMPS)
            printf("  %s: %s\n", k < TRAIN_N_TEMPS ? "epoch sample T=0.2" : "sample T=0.8", s);
        free(cps);
        sample_result_deinit(&sr);
    }
    model_free(m);
    rec_deinit(&r);
    free(text);
    clean_tmpdir();
}

// ----------------------------------------------------------------------------
// fine-tuning

/* Starting from a trained model's weights beats fresh ones on text of the same kind (its first
 * epoch's loss is far lower); the vocabulary and architecture are the model's; characters it
 * lacks are named, dropped or replaced as asked; the parent is recorded by name and sha256. */
static void test_fine_tune(void)
{
    size_t la, lb;
    char *a = gen_english(41, 60000, &la), *b = gen_english(42, 30000, &lb);
    train_options base = sequence_options(tmp_path("base.safetensors"));
    base.epochs = 4;
    train_ok(&base, a, la);

    recorder fresh_r = {0}, tuned_r = {0};
    train_options fresh = sequence_options(tmp_path("fresh.safetensors"));
    fresh.epochs = 1;
    attach(&fresh, &fresh_r);
    train_ok(&fresh, b, lb);
    train_options tuned = fresh;
    tuned.out = tmp_path("tuned.safetensors");
    tuned.init = tmp_path("base.safetensors");
    attach(&tuned, &tuned_r);
    train_ok(&tuned, b, lb);
    printf("  fine-tune: first epoch's loss %.3f from the model, %.3f from fresh weights\n",
           tuned_r.train[0], fresh_r.train[0]);
    ASSERT(tuned_r.train[0] < fresh_r.train[0] - 0.3);

    model *m = load_ok(tmp_path("tuned.safetensors"), NULL, NULL);
    ASSERT_EQ_STR(model_meta_get(m, "parent_model"), "base");
    size_t n;
    unsigned char *bytes = read_all(tmp_path("base.safetensors"), &n);
    unsigned char digest[SHA256_DIGEST_LEN];
    char hex[65];
    sha256_digest(digest, bytes, n);
    sha256_hex(hex, digest);
    free(bytes);
    ASSERT_EQ_STR(model_meta_get(m, "parent_sha256"), hex);
    ASSERT(model_meta_get(m, "job_id") == NULL);
    model_free(m);

    /* a text with characters the model lacks ('#' twice, '@' once): named, most frequent first */
    size_t lc = lb + 3;
    char *c = malloc(lc + 1);
    memcpy(c, b, lb);
    memcpy(c + lb, "#@#", 4);
    train_fails(CORE_EVOCAB, "2 distinct character(s) (3 in all)", &tuned, c, lc);
    train_fails(CORE_EVOCAB, "'#' (U+0023) x2, '@' (U+0040) x1", &tuned, c, lc);
    tuned.unknown_chars = CORPUS_UNKNOWN_REPLACE;
    tuned.replacement = 0x20AC; /* not in the vocabulary either */
    train_fails(CORE_EINVAL, "is not in the model's vocabulary", &tuned, c, lc);
    tuned.replacement = ' ';
    train_ok(&tuned, c, lc);
    tuned.unknown_chars = CORPUS_UNKNOWN_DROP;
    train_ok(&tuned, c, lc);
    /* another architecture than the model's is refused, not silently taken */
    tuned.cfg.H = 32;
    train_fails(CORE_EINVAL, "fine-tuning keeps the model's", &tuned, b, lb);
    rec_deinit(&fresh_r);
    rec_deinit(&tuned_r);
    free(a);
    free(b);
    free(c);
    clean_tmpdir();
}

// ----------------------------------------------------------------------------
// a time budget

static void test_budget(void)
{
    printf("budget\n");
    /* the schedule: a warm-up to lr (a fiftieth of the plan), a cosine to the floor at the
     * plan's end, the floor after it */
    ASSERT(budget_lr(1, 0, 1000) < budget_lr(1, 10, 1000));
    ASSERT_NEAR(budget_lr(1, 19, 1000), 1.0, 1e-6);
    ASSERT_NEAR(budget_lr(1, 20 + 490, 1000), BUDGET_LR_FLOOR + (1 - BUDGET_LR_FLOOR) / 2, 1e-6);
    ASSERT_NEAR(budget_lr(1, 1000, 1000), BUDGET_LR_FLOOR, 1e-6);
    ASSERT_NEAR(budget_lr(1, 5000, 1000), BUDGET_LR_FLOOR, 1e-6);
    for (long long k = 21; k <= 1000; k++)
        ASSERT(budget_lr(1, k, 1000) <= budget_lr(1, k - 1, 1000));

    /* what a size needs, by where its parameters are (parameters that learn from every character:
     * all but layer 0's input rows) */
    double english = 4.0 * 128 * (128 + 2) + 4.0 * 128 * (256 + 2) + 65.0 * 129; /* 2 x 128 */
    ASSERT_NEAR(budget_chars_needed(65, 128, 2, 1, 1e5), BUDGET_DROPOUT_CHARS_PER_PARAM * english,
                1e-6);
    ASSERT_NEAR(budget_chars_needed(65, 128, 2, 1, 2e5), BUDGET_DROPOUT_PASSES * 2e5, 1e-6);
    ASSERT_NEAR(budget_chars_needed(65, 128, 2, 0, 1e5), BUDGET_CHARS_PER_PARAM * english, 1e-6);
    double one = 4.0 * 256 * (256 + 2) + 65.0 * 257; /* 1 x 256: no allowance */
    ASSERT_NEAR(budget_chars_needed(65, 256, 1, 1, 1e5), BUDGET_CHARS_PER_PARAM * one, 1e-6);
    double chinese = 4.0 * 128 * (128 + 2) + 4000.0 * 129; /* 1 x 128, 4000 characters */
    ASSERT_NEAR(budget_chars_needed(4000, 128, 1, 1, 1e5), BUDGET_OUTPUT_CHARS_PER_PARAM * chinese,
                1e-6);
    double deep = chinese + 4.0 * 128 * (256 + 2); /* 2 x 128: dropout would not reach */
    ASSERT_NEAR(budget_chars_needed(4000, 128, 2, 1, 1e5), BUDGET_CHARS_PER_PARAM * deep, 1e-6);

    /* options: a budget alone chooses the size, in the sequence regime; a given size keeps it
     * (and the book's regime), given epochs keep the per-epoch schedule */
    int given[TOPT_COUNT] = {0};
    double value[TOPT_COUNT] = {0};
    train_options o;
    given[TOPT_MAX_SECONDS] = 1, value[TOPT_MAX_SECONDS] = 3;
    ASSERT_EQ_INT(train_opts_build(&o, given, value, NULL, NULL, 0), 0);
    ASSERT(o.auto_size && o.budget_schedule && o.cfg.regime == REGIME_SEQUENCE);
    given[TOPT_HIDDEN] = 1, value[TOPT_HIDDEN] = 32;
    ASSERT_EQ_INT(train_opts_build(&o, given, value, NULL, NULL, 0), 0);
    ASSERT(!o.auto_size && o.budget_schedule && o.cfg.regime == REGIME_WINDOW && o.cfg.H == 32);
    given[TOPT_EPOCHS] = 1, value[TOPT_EPOCHS] = 5;
    ASSERT_EQ_INT(train_opts_build(&o, given, value, NULL, NULL, 0), 0);
    ASSERT(!o.budget_schedule && o.epochs == 5);

    /* a run of 3 s: it chooses a size, keeps the seq_len given, decays the rate, stops in time,
     * and its checkpoint says what it chose */
    size_t len;
    char *text = gen_english(51, 20000, &len);
    memset(given, 0, sizeof given);
    given[TOPT_MAX_SECONDS] = 1, value[TOPT_MAX_SECONDS] = 3;
    given[TOPT_SEQ_LEN] = 1, value[TOPT_SEQ_LEN] = 32;
    given[TOPT_SAMPLE_CHARS] = 1, value[TOPT_SAMPLE_CHARS] = 0;
    ASSERT_EQ_INT(train_opts_build(&o, given, value, NULL, NULL, 0), 0);
    o.out = tmp_path("budget.safetensors");
    o.threads = 1;
    recorder r = {0};
    attach(&o, &r);
    double t0 = now_seconds();
    train_result res = train_ok(&o, text, len);
    double took = now_seconds() - t0;
    ASSERT_EQ_INT(r.planned, 1);
    const train_plan plan = r.plan;
    printf("  plan: %s\n  ran %.1f s, %d epochs, best val %.3f\n", plan.why, took,
           res.epochs_done, res.best_val_loss);
    ASSERT(plan.chose_size && plan.cfg.seq_len == 32 && plan.chars_per_sec > 0 && plan.steps > 0);
    ASSERT_EQ_INT(res.stopped, 1);
    ASSERT(took < 3 + 1.5);
    model *m = load_ok(o.out, NULL, NULL);
    ASSERT_EQ_INT(m->cfg.L, plan.cfg.L);
    ASSERT_EQ_INT(m->cfg.H, plan.cfg.H);
    ASSERT_EQ_INT(m->cfg.seq_len, 32);
    /* the size qualified at the speed measured for it (the plan's is re-measured: within 2x) */
    ASSERT(plan.budget_chars >= budget_chars_needed(m->V, m->cfg.H, m->cfg.L, 1,
                                                    plan.budget_chars / plan.passes) / 2 ||
           (m->cfg.L == 1 && m->cfg.H == 64)); /* the smallest size, when none fits */
    ASSERT_EQ_STR(model_meta_get(m, "lr_schedule"), "budget");
    const char *meta_plan = model_meta_get(m, "plan");
    ASSERT(meta_plan != NULL);
    json_value *j = NULL;
    ASSERT_EQ_INT(json_parse(&j, meta_plan, strlen(meta_plan), NULL, NULL, 0), 0);
    ASSERT_EQ_INT(j->type, JSON_OBJECT);
    char want[64];
    snprintf(want, sizeof want, "\"hidden\":%d", m->cfg.H);
    ASSERT_CONTAINS(meta_plan, want);
    ASSERT_CONTAINS(meta_plan, "\"why\":\"3 s at ");
    json_free(j);
    model_free(m);

    /* the rate fell from the plan's peak to near the floor by the deadline */
    ASSERT(r.n >= 2);
    double peak = 0;
    for (int e = 0; e < r.n; e++)
        peak = fmax(peak, r.lr[e]);
    printf("  the rate at each epoch's end: peak %.5f, last %.5f (lr %.5f)\n", peak,
           r.lr[r.n - 1], plan.lr);
    ASSERT(peak <= plan.lr * 1.0001);
    ASSERT(r.lr[r.n - 1] < plan.lr * 0.35);
    rec_deinit(&r);
    free(text);

    /* a short text with a long budget: the plan ends after BUDGET_MAX_PASSES passes, and so
     * does the run, long before the deadline */
    text = gen_english(52, 3000, &len);
    value[TOPT_MAX_SECONDS] = 30;
    ASSERT_EQ_INT(train_opts_build(&o, given, value, NULL, NULL, 0), 0);
    o.out = tmp_path("short.safetensors");
    o.threads = 1;
    recorder rs = {0};
    attach(&o, &rs);
    t0 = now_seconds();
    res = train_ok(&o, text, len);
    took = now_seconds() - t0;
    printf("  plan: %s\n  ran %.1f s\n", rs.plan.why, took);
    ASSERT(rs.plan.ends_early);
    ASSERT_NEAR(rs.plan.passes, BUDGET_MAX_PASSES, 0.01);
    ASSERT_EQ_INT(res.stopped, 1);
    ASSERT(took < 15);
    m = load_ok(latest_of(o.out), NULL, NULL);
    ASSERT_EQ_STR(model_meta_get(m, "optim.steps"), model_meta_get(m, "lr_stop_steps"));
    ASSERT_EQ_INT(atoll(model_meta_get(m, "lr_stop_steps")), rs.plan.steps);
    model_free(m);
    rec_deinit(&rs);
    free(text);
    clean_tmpdir();
}

int main(void)
{
    /* pins created_at, so identical runs give identical files */
    ASSERT_EQ_INT(setenv("SOURCE_DATE_EPOCH", "1700000000", 1), 0);
    ASSERT(mkdtemp(tmpdir) != NULL);
    double t0 = now_seconds();
    test_learns();
    test_determinism();
    test_resume();
    test_best_latest();
    test_divergence();
    test_bad_input();
    test_chinese();
    test_fine_tune();
    test_budget();
    ASSERT_EQ_INT(rmdir(tmpdir), 0);
    printf("test_train: ok (%.1fs)\n", now_seconds() - t0);
    return 0;
}
