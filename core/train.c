/* train: batching, the optimisation loop, validation, epoch samples and checkpoints. */
#include "train.h"

#include "budget.h"
#include "checkpoint.h"
#include "corpus.h"
#include "err.h"
#include "dpnet.h"
#include "optim.h"
#include "rng.h"
#include "sample.h"
#include "sha256.h"
#include "trainopts.h"
#include "utf8.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

void train_options_default(train_options *o)
{
    memset(o, 0, sizeof *o);
    o->cfg = (model_config){.L = 1, .H = 128, .dropout = 0.0f, .regime = REGIME_WINDOW,
                            .maxlen = 60, .step = 3, .seq_len = 100, .lowercase = 0};
    o->batch = 128;
    o->epochs = 20;
    o->lr = 0.01f;
    o->lr_decay = 1.0f;
    o->clip = 0.0f;
    o->optimizer = OPTIM_RMSPROP;
    o->val_fraction = 0.05;
    o->seed = 1;
    o->sample_chars = 200;
}

void train_options_regime_defaults(train_options *o, int regime)
{
    int seq = regime == REGIME_SEQUENCE;
    o->cfg.regime = regime;
    o->cfg.L = seq ? 2 : 1;
    o->cfg.H = seq ? 256 : 128;
    o->cfg.dropout = seq ? 0.1f : 0.0f;
    o->batch = seq ? 64 : 128;
    o->optimizer = seq ? OPTIM_ADAM : OPTIM_RMSPROP;
    o->lr = seq ? 0.002f : 0.01f;
    o->clip = seq ? 5.0f : 0.0f;
}

void train_latest_path(char *buf, size_t n, const char *out)
{
    const char *ext = ".safetensors";
    size_t len = strlen(out), el = strlen(ext);
    if (len > el && strcmp(out + len - el, ext) == 0)
        snprintf(buf, n, "%.*s.latest%s", (int)(len - el), out, ext);
    else
        snprintf(buf, n, "%s.latest", out);
}

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* A seed for an (epoch, batch) position, so shuffles and dropout masks need no stored state. */
static uint64_t position_seed(uint64_t seed, uint64_t epoch, uint64_t batch, uint64_t salt)
{
    rng r;
    rng_seed(&r, seed ^ (salt * 0xD1B54A32D192ED03ull));
    uint64_t x = rng_u64(&r) ^ (epoch * 0x9E3779B97F4A7C15ull);
    rng_seed(&r, x ^ (batch * 0xBF58476D1CE4E5B9ull));
    return rng_u64(&r);
}

// ----------------------------------------------------------------------------
// the run's state

typedef struct trainer {
    const train_options *o; /* &opts */
    train_options opts;     /* the caller's, with a resumed run's hyperparameters from its file */
    model_config cfg;
    corpus c;
    model *m;
    char parent[128];        /* fine-tuning: the model started from, and its file's sha256 */
    char parent_sha256[65];
    float *grads;         /* (n_params) the batch-mean gradient */
    optim opt;
    dpnet dp;             /* the batch, sharded over the worker threads */
    int B, T;
    int *ids, *targets;   /* (T, B) batch inputs, and targets (T, B) or (B) */
    size_t *perm;         /* window regime: shuffled window starts */
    size_t n_windows, n_val_windows;
    size_t stream_len;    /* sequence regime: characters per stream */
    long long batches;    /* per epoch */
    float *carry;         /* (2, L, B, H) sequence regime: state to resume from */
    /* position and history */
    int epoch;            /* 0-based epoch in progress */
    long long batch;      /* next batch in it */
    double loss_sum;      /* sum of batch losses (weighted by rows) this epoch */
    double loss_rows;
    double best_val;
    char *history;        /* JSON array text of finished epochs */
    /* a time budget's schedule: the optimizer step it ends at (re-estimated as the run goes) */
    long long plan_steps;
    long long stop_steps;  /* a budget that ends early (the text is learned): stop here; or 0 */
    train_plan plan;      /* made by this run (not a resumed one's): planned is 1 */
    int planned;
    char plan_json[BUDGET_PLAN_JSON_MAX]; /* budget_plan_json, or "" without a budget */
} trainer;

static size_t count_windows(size_t n, int maxlen, int step)
{
    /* the book: for i in range(0, len(text) - maxlen, step) */
    return n > (size_t)maxlen ? (n - (size_t)maxlen + (size_t)step - 1) / (size_t)step : 0;
}

static void shuffle_epoch(trainer *t)
{
    rng r;
    rng_seed(&r, position_seed(t->o->seed, (uint64_t)t->epoch, 0, 1));
    for (size_t i = 0; i < t->n_windows; i++)
        t->perm[i] = i * (size_t)t->cfg.step;
    for (size_t i = t->n_windows; i > 1; i--) { /* Fisher-Yates */
        size_t j = (size_t)rng_below(&r, i);
        size_t tmp = t->perm[i - 1];
        t->perm[i - 1] = t->perm[j];
        t->perm[j] = tmp;
    }
}

/* Fills t->ids/targets with batch k of the epoch from ids[0, n); returns the batch's b and
 * *steps. */
static int window_batch(trainer *t, const int *ids, const size_t *starts, size_t count, long long k,
                        int *steps)
{
    int T = t->cfg.maxlen;
    size_t first = (size_t)k * t->B;
    int b = (int)(count - first < (size_t)t->B ? count - first : (size_t)t->B);
    for (int j = 0; j < b; j++) {
        size_t s = starts ? starts[first + j] : (first + j) * (size_t)t->cfg.step;
        for (int tt = 0; tt < T; tt++)
            t->ids[tt * b + j] = ids[s + tt]; /* time-major (T, b) */
        t->targets[j] = ids[s + T];
    }
    *steps = T;
    return b;
}

/* Batch k of b parallel streams of stream_len characters over ids (inputs), ids + 1 (targets). */
static int sequence_batch(trainer *t, const int *ids, size_t stream_len, int b, long long k,
                          int *steps)
{
    size_t pos = (size_t)k * t->cfg.seq_len;
    int T = (int)(stream_len - pos < (size_t)t->cfg.seq_len ? stream_len - pos
                                                            : (size_t)t->cfg.seq_len);
    for (int j = 0; j < b; j++) {
        const int *s = ids + (size_t)j * stream_len + pos;
        for (int tt = 0; tt < T; tt++) {
            t->ids[tt * b + j] = s[tt];
            t->targets[tt * b + j] = s[tt + 1];
        }
    }
    *steps = T;
    return b;
}

// ----------------------------------------------------------------------------
// validation and samples

static double validate(trainer *t)
{
    const int *val = t->c.ids + t->c.n_train;
    size_t n_val = t->c.n - t->c.n_train;
    double sum = 0, rows = 0;
    if (t->cfg.regime == REGIME_WINDOW) {
        long long nb = (long long)((t->n_val_windows + t->B - 1) / t->B);
        for (long long k = 0; k < nb; k++) {
            int steps;
            int b = window_batch(t, val, NULL, t->n_val_windows, k, &steps);
            dpnet_zero_state(&t->dp);
            sum += dpnet_step(&t->dp, &t->m->p, t->ids, t->targets, b, steps, 0, 0, NULL) * b;
            rows += b;
        }
    } else {
        /* as in training: parallel streams with carried state, as many as the text allows */
        int b = t->B;
        while (b > 1 && (n_val - 1) / (size_t)b < (size_t)t->cfg.seq_len)
            b--;
        size_t stream_len = (n_val - 1) / (size_t)b;
        long long nb = (long long)((stream_len + t->cfg.seq_len - 1) / t->cfg.seq_len);
        dpnet_zero_state(&t->dp);
        for (long long k = 0; k < nb; k++) {
            int steps;
            sequence_batch(t, val, stream_len, b, k, &steps);
            sum +=
                dpnet_step(&t->dp, &t->m->p, t->ids, t->targets, b, steps, 0, 0, NULL) * b * steps;
            rows += (double)b * steps;
            dpnet_carry_state(&t->dp);
        }
    }
    return rows > 0 ? sum / rows : NAN;
}

#define SAMPLE_SEED_CHARS 60 /* the book's window */

static int is_space(uint32_t cp) { return cp == ' ' || cp == '\n' || cp == '\t' || cp == '\r'; }

/* Where the samples' seed lies in the text from `from` on: it starts at a word (the first
 * character after whitespace) and ends after whitespace when one falls in its second half, so
 * the samples continue whole words instead of a fragment. Text without whitespace (Chinese)
 * keeps the plain window. */
static void seed_window(const corpus *c, size_t from, size_t want, size_t *start, size_t *len)
{
    size_t n = c->n, s = from;
    while (s < n && s > 0 && s - from < 1000 &&
           !(is_space(c->voc.chars[c->ids[s - 1]]) && !is_space(c->voc.chars[c->ids[s]])))
        s++;
    if (s >= n || s - from >= 1000 || n - s < want / 2) /* no word start near: as it is */
        s = from;
    size_t l = n - s < want ? n - s : want;
    for (size_t e = l; e > want / 2; e--)
        if (is_space(c->voc.chars[c->ids[s + e - 1]])) {
            l = e;
            break;
        }
    *start = s, *len = l;
}

static void make_samples(trainer *t, train_epoch_report *r, char **texts, char **seed_text)
{
    static const double temps[TRAIN_N_TEMPS] = {0.2, 0.5, 1.0, 1.2};
    *seed_text = NULL;
    if (t->o->sample_chars <= 0)
        return;
    /* The seed is text the model never trained on: the validation text (the book picks a
     * random window of the training text; without a split, the corpus's start). */
    size_t start = t->c.n_train < t->c.n ? t->c.n_train : 0, len;
    seed_window(&t->c, start, SAMPLE_SEED_CHARS, &start, &len);
    uint32_t *cps = malloc((len ? len : 1) * sizeof *cps);
    if (!cps)
        return;
    for (size_t i = 0; i < len; i++)
        cps[i] = t->c.voc.chars[t->c.ids[start + i]];
    *seed_text = utf8_encode_all(cps, len);
    free(cps);
    if (!*seed_text)
        return;
    r->sample_seed = *seed_text;
    for (int k = 0; k < TRAIN_N_TEMPS; k++) {
        sample_request req = {.seed_text = *seed_text, .seed_len = strlen(*seed_text),
                              .length = t->o->sample_chars, .temperature = temps[k], .top_p = 1.0,
                              .seed = t->o->seed + (uint64_t)k, .mode = SAMPLE_MODE_AUTO};
        sample_result res;
        texts[k] = NULL;
        if (sample_generate(&res, t->m, &req, NULL, 0) == 0) {
            texts[k] = res.text; /* taken over; freed by the caller */
        }
        r->samples[k] = texts[k] ? texts[k] : "";
        r->temps[k] = temps[k];
    }
    r->n_samples = TRAIN_N_TEMPS;
}

// ----------------------------------------------------------------------------
// checkpoints

static int set_meta_num(model *m, const char *key, double v, const char *fmt)
{
    char buf[64];
    snprintf(buf, sizeof buf, fmt, v);
    return model_meta_set(m, key, buf);
}

static void iso_time(char *buf, size_t n)
{
    /* SOURCE_DATE_EPOCH (the reproducible-builds convention) pins the creation time, so two
     * identical runs can give bit-identical files. */
    const char *env = getenv("SOURCE_DATE_EPOCH");
    time_t now = env && *env ? (time_t)strtoll(env, NULL, 10) : time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* Metadata for a checkpoint whose resume position is (epoch, batch): the next batch to run. */
static int write_meta(trainer *t, double train_loss, double val_loss, int epoch, long long batch)
{
    const train_options *o = t->o;
    model *m = t->m;
    char created[32];
    iso_time(created, sizeof created);
    int rc = 0;
    rc |= model_meta_set(m, "corpus_sha256", t->c.sha256);
    rc |= model_meta_set(m, "created_at", created);
    rc |= set_meta_num(m, "corpus_chars", (double)t->c.n, "%.0f");
    rc |= set_meta_num(m, "batch", o->batch, "%.0f");
    rc |= set_meta_num(m, "lr", o->lr, "%.9g");
    rc |= set_meta_num(m, "lr_decay", o->lr_decay, "%.9g");
    rc |= set_meta_num(m, "clip", o->clip, "%.9g");
    rc |= model_meta_set(m, "optimizer", optim_name(o->optimizer));
    rc |= set_meta_num(m, "val_fraction", o->val_fraction, "%.9g");
    char seed[24]; /* as an integer: a double would round seeds above 2^53 */
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)o->seed);
    rc |= model_meta_set(m, "seed", seed);
    rc |= set_meta_num(m, "epochs", epoch, "%.0f"); /* whole epochs completed */
    rc |= set_meta_num(m, "epochs_target", o->epochs, "%.0f"); /* what the run was asked for */
    rc |= set_meta_num(m, "max_seconds", o->max_seconds, "%.9g");
    rc |= model_meta_set(m, "lr_schedule", o->budget_schedule ? "budget" : "epoch");
    if (o->budget_schedule)
        rc |= set_meta_num(m, "lr_plan_steps", (double)t->plan_steps, "%.0f");
    if (t->stop_steps)
        rc |= set_meta_num(m, "lr_stop_steps", (double)t->stop_steps, "%.0f");
    if (t->plan_json[0]) /* what the time budget chose, and why */
        rc |= model_meta_set(m, "plan", t->plan_json);
    if (o->corpus_path)
        rc |= model_meta_set(m, "corpus_path", o->corpus_path);
    rc |= set_meta_num(m, "train_loss", train_loss, "%.9g");
    rc |= set_meta_num(m, "val_loss", val_loss, "%.9g");
    rc |= model_meta_set(m, "history", t->history ? t->history : "[]");
    if (t->parent[0]) { /* a resumed fine-tune keeps what its checkpoint recorded */
        rc |= model_meta_set(m, "parent_model", t->parent);
        rc |= model_meta_set(m, "parent_sha256", t->parent_sha256);
    }
    /* resume position */
    rc |= set_meta_num(m, "optim.steps", (double)t->opt.steps, "%.0f");
    rc |= set_meta_num(m, "optim.epoch", epoch, "%.0f");
    rc |= set_meta_num(m, "optim.batch", (double)batch, "%.0f");
    rc |= set_meta_num(m, "optim.loss_sum", t->loss_sum, "%.17g");
    rc |= set_meta_num(m, "optim.loss_rows", t->loss_rows, "%.17g");
    rc |= set_meta_num(m, "optim.best_val", t->best_val, "%.17g");
    return rc ? CORE_ENOMEM : 0;
}

static int save(trainer *t, const char *path, int with_state, char *err, size_t errlen)
{
    ckpt_tensor x[4];
    int nx = 0;
    if (with_state) {
        size_t n = t->opt.n;
        x[nx++] = (ckpt_tensor){"optim.v", 1, {(int64_t)n}, t->opt.v};
        if (t->opt.m)
            x[nx++] = (ckpt_tensor){"optim.m", 1, {(int64_t)n}, t->opt.m};
        if (t->cfg.regime == REGIME_SEQUENCE) {
            size_t lbh = (size_t)t->cfg.L * t->B * t->cfg.H;
            x[nx++] = (ckpt_tensor){"optim.state_h", 3, {t->cfg.L, t->B, t->cfg.H}, t->carry};
            x[nx++] = (ckpt_tensor){"optim.state_c", 3, {t->cfg.L, t->B, t->cfg.H}, t->carry + lbh};
        }
    }
    return checkpoint_save(path, t->m, x, nx, err, errlen);
}

static void snapshot_carry(trainer *t)
{
    if (t->cfg.regime != REGIME_SEQUENCE)
        return;
    size_t lbh = (size_t)t->cfg.L * t->B * t->cfg.H;
    dpnet_get_state(&t->dp, t->carry, t->carry + lbh);
}

static void restore_carry(trainer *t)
{
    size_t lbh = (size_t)t->cfg.L * t->B * t->cfg.H;
    dpnet_set_state(&t->dp, t->carry, t->carry + lbh);
}

static int append_history(trainer *t, double train_loss, double val_loss)
{
    char item[160];
    if (isnan(val_loss))
        snprintf(item, sizeof item, "{\"epoch\":%d,\"train_loss\":%.6f,\"val_loss\":null}",
                 t->epoch + 1, train_loss);
    else
        snprintf(item, sizeof item, "{\"epoch\":%d,\"train_loss\":%.6f,\"val_loss\":%.6f}",
                 t->epoch + 1, train_loss, val_loss);
    size_t old = t->history ? strlen(t->history) : 0;
    char *h = realloc(t->history, old + strlen(item) + 4);
    if (!h)
        return CORE_ENOMEM;
    if (old <= 2) /* none yet: NULL, or "[]" from a checkpoint saved before the first epoch */
        sprintf(h, "[%s]", item);
    else
        sprintf(h + old - 1, ",%s]", item);
    t->history = h;
    return 0;
}

// ----------------------------------------------------------------------------
// setup

/* Loads the model and position from o->resume; its extra tensors go to *x, *nx (the optimizer and
 * net do not exist yet: adopt_resume_tensors unpacks them later). */
static int load_resume(trainer *t, ckpt_tensor **xs, int *nxs, char *err, size_t errlen)
{
    ckpt_tensor *x = NULL;
    int nx = 0;
    int rc = checkpoint_load(&t->m, &x, &nx, t->o->resume, err, errlen);
    if (rc)
        return rc;
    t->cfg = t->m->cfg;
    const char *need[] = {"optim.epoch", "optim.batch", "optim.steps", "optimizer", "batch"};
    for (size_t i = 0; i < sizeof need / sizeof *need; i++)
        if (!model_meta_get(t->m, need[i])) {
            rc = core_errf(err, errlen, CORE_EFORMAT,
                           "%s has no training state (%s); resume from the .latest checkpoint",
                           t->o->resume, need[i]);
            goto done;
        }
    t->epoch = atoi(model_meta_get(t->m, "optim.epoch"));
    t->batch = atoll(model_meta_get(t->m, "optim.batch"));
    const char *s;
    t->loss_sum = (s = model_meta_get(t->m, "optim.loss_sum")) ? strtod(s, NULL) : 0;
    t->loss_rows = (s = model_meta_get(t->m, "optim.loss_rows")) ? strtod(s, NULL) : 0;
    t->best_val = (s = model_meta_get(t->m, "optim.best_val")) ? strtod(s, NULL) : NAN;
    t->plan_steps = (s = model_meta_get(t->m, "lr_plan_steps")) ? atoll(s) : 0;
    t->stop_steps = (s = model_meta_get(t->m, "lr_stop_steps")) ? atoll(s) : 0;
    if ((s = model_meta_get(t->m, "plan")))
        snprintf(t->plan_json, sizeof t->plan_json, "%s", s);
    if ((s = model_meta_get(t->m, "history")) && !(t->history = strdup(s))) {
        rc = CORE_ENOMEM;
        goto done;
    }
    rc = CORE_EFORMAT;
    for (int i = 0; i < nx; i++) {
        if (strcmp(x[i].name, "optim.v") == 0 && x[i].shape[0] == (int64_t)t->m->n_params)
            rc = 0;
    }
    if (rc)
        rc = core_errf(err, errlen, rc, "%s has no optimizer state", t->o->resume);
done:
    if (rc == 0) {
        *xs = x;
        *nxs = nx;
    } else {
        checkpoint_extra_free(x, nx);
    }
    return rc;
}

static int adopt_resume_tensors(trainer *t, ckpt_tensor *x, int nx, char *err, size_t errlen)
{
    t->opt.steps = atoll(model_meta_get(t->m, "optim.steps"));
    size_t lbh = (size_t)t->cfg.L * t->B * t->cfg.H;
    for (int i = 0; i < nx; i++) {
        size_t count = 1;
        for (int d = 0; d < x[i].ndim; d++)
            count *= (size_t)x[i].shape[d];
        float *dst = NULL;
        size_t want = 0;
        if (strcmp(x[i].name, "optim.v") == 0)
            dst = t->opt.v, want = t->opt.n;
        else if (strcmp(x[i].name, "optim.m") == 0)
            dst = t->opt.m, want = t->opt.n;
        else if (strcmp(x[i].name, "optim.state_h") == 0)
            dst = t->carry, want = lbh;
        else if (strcmp(x[i].name, "optim.state_c") == 0)
            dst = t->carry ? t->carry + lbh : NULL, want = lbh;
        if (!dst)
            continue;
        if (count != want)
            return core_errf(err, errlen, CORE_EFORMAT, "%s has %zu values, expected %zu",
                             x[i].name, count, want);
        memcpy(dst, x[i].data, want * sizeof(float));
    }
    if (t->opt.kind == OPTIM_ADAM) {
        int has_m = 0;
        for (int i = 0; i < nx; i++)
            has_m |= strcmp(x[i].name, "optim.m") == 0;
        if (!has_m)
            return core_errf(err, errlen, CORE_EFORMAT, "the checkpoint has no Adam moments");
    }
    return 0;
}

/* Fine-tuning: the model of o->init, with the run's own training settings (dropout, step,
 * seq_len) in its config; its architecture must be the options' (train_opts_adopt_model). The
 * parent is recorded by name (the file's, without .safetensors) and by the file's sha256. */
static int load_init(trainer *t, char *err, size_t errlen)
{
    const train_options *o = t->o;
    char *bytes = NULL;
    size_t n = 0;
    int rc = corpus_read_file(&bytes, &n, o->init, err, errlen);
    if (rc)
        return rc;
    char why[256];
    rc = checkpoint_parse(&t->m, NULL, NULL, (const unsigned char *)bytes, n, why, sizeof why);
    if (rc) {
        free(bytes);
        return core_errf(err, errlen, rc, "%s: %s", o->init, why);
    }
    unsigned char digest[SHA256_DIGEST_LEN];
    sha256_digest(digest, bytes, n);
    sha256_hex(t->parent_sha256, digest);
    free(bytes);
    const char *base = strrchr(o->init, '/') ? strrchr(o->init, '/') + 1 : o->init;
    size_t blen = strlen(base);
    if (blen > 12 && strcmp(base + blen - 12, ".safetensors") == 0)
        blen -= 12;
    snprintf(t->parent, sizeof t->parent, "%.*s", (int)blen, base);
    const model_config *mc = &t->m->cfg, *want = &o->cfg;
    if (mc->regime != want->regime || mc->L != want->L || mc->H != want->H ||
        mc->lowercase != want->lowercase || (mc->regime == REGIME_WINDOW &&
                                             mc->maxlen != want->maxlen))
        return core_errf(err, errlen, CORE_EINVAL, "%s is a %s %d x %d model; the options ask "
                         "for another architecture (fine-tuning keeps the model's)", o->init,
                         model_regime_name(mc->regime), mc->L, mc->H);
    /* the weights into a model of its own: none of the parent's metadata (its corpus, its
     * history, its job) describes the new run */
    model_config cfg = *mc;
    cfg.dropout = want->dropout, cfg.step = want->step, cfg.seq_len = want->seq_len;
    model *fresh;
    rc = model_new(&fresh, &cfg, &t->m->voc, err, errlen);
    if (rc)
        return rc;
    memcpy(fresh->params, t->m->params, fresh->n_params * sizeof *fresh->params);
    model_free(t->m);
    t->m = fresh;
    t->cfg = cfg;
    return 0;
}

/* A resumed run trains with the hyperparameters it started with; only the epoch count (0: the
 * run's own target), time budget, threads, output and callbacks come from the caller. */
static int resume_options(train_options *o, const model *m, char *err, size_t errlen)
{
    const char *keys[] = {"batch", "lr", "lr_decay", "clip", "val_fraction", "seed"};
    double v[6];
    for (int i = 0; i < 6; i++) {
        const char *s = model_meta_get(m, keys[i]);
        char *end;
        v[i] = s ? strtod(s, &end) : NAN;
        if (!s || *end || !isfinite(v[i]))
            return core_errf(err, errlen, CORE_EFORMAT, "the checkpoint's %s is missing or invalid",
                             keys[i]);
    }
    o->batch = (int)v[0];
    o->lr = (float)v[1];
    o->lr_decay = (float)v[2];
    o->clip = (float)v[3];
    o->val_fraction = v[4];
    o->seed = strtoull(model_meta_get(m, "seed"), NULL, 10);
    o->optimizer = optim_parse(model_meta_get(m, "optimizer"));
    o->cfg = m->cfg;
    const char *schedule = model_meta_get(m, "lr_schedule");
    o->budget_schedule = schedule && strcmp(schedule, "budget") == 0;
    o->auto_size = 0; /* the model exists */
    if (o->epochs == 0) { /* not given: the target the run started with (20 before it was kept) */
        const char *target = model_meta_get(m, "epochs_target");
        o->epochs = target ? atoi(target) : 20;
    }
    return train_options_check(o, err, errlen);
}

int train_options_check(const train_options *o, char *err, size_t errlen)
{
    /* every option of the table (trainopts.c), then what only the caller sets */
    for (int id = 0; id < TOPT_COUNT; id++) {
        int rc = train_opt_check(id, train_opt_get(o, id), err, errlen);
        if (rc)
            return rc;
    }
    if (o->threads < 0 || o->threads > 256)
        return core_errf(err, errlen, CORE_ERANGE, "threads must be 0..256, got %d", o->threads);
    if (!o->out || !*o->out)
        return core_errf(err, errlen, CORE_EINVAL, "an output path is required");
    return model_config_check(&o->cfg, err, errlen);
}

static void trainer_deinit(trainer *t)
{
    corpus_deinit(&t->c);
    model_free(t->m);
    free(t->grads);
    optim_deinit(&t->opt);
    dpnet_deinit(&t->dp);
    free(t->ids);
    free(t->targets);
    free(t->perm);
    free(t->carry);
    free(t->history);
}

static int trainer_init(trainer *t, const train_options *o, const char *text, size_t len, char *err,
                        size_t errlen)
{
    memset(t, 0, sizeof *t);
    t->opts = *o;
    t->o = &t->opts;
    t->cfg = o->cfg;
    t->best_val = NAN;
    /* a resumed run's options are checked once its checkpoint has supplied them */
    int rc = o->resume ? 0 : train_options_check(o, err, errlen);
    if (rc)
        return rc;
    ckpt_tensor *resume_x = NULL;
    int resume_nx = 0;
    if (o->resume) {
        rc = load_resume(t, &resume_x, &resume_nx, err, errlen);
        if (rc) {
            trainer_deinit(t);
            return rc;
        }
        rc = resume_options(&t->opts, t->m, err, errlen);
        if (rc)
            goto fail;
        o = &t->opts;
    }
    if (o->init && !o->resume) {
        rc = load_init(t, err, errlen);
        if (rc)
            goto fail;
    }
    const model_config *cfg = &t->cfg;
    if (o->init && !o->resume)
        rc = corpus_init_fixed(&t->c, text, len, cfg->lowercase, o->val_fraction, &t->m->voc,
                               o->unknown_chars, o->replacement, err, errlen);
    else
        rc = corpus_init(&t->c, text, len, cfg->lowercase, o->val_fraction,
                         t->m ? &t->m->voc : NULL, err, errlen);
    if (rc)
        goto fail;
    if (o->resume) {
        const char *parent = model_meta_get(t->m, "parent_model");
        const char *psha = model_meta_get(t->m, "parent_sha256");
        snprintf(t->parent, sizeof t->parent, "%s", parent ? parent : "");
        snprintf(t->parent_sha256, sizeof t->parent_sha256, "%s", psha ? psha : "");
    }
    /* Threads default to one per core: the shards are independent, so they scale. */
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    int threads = o->threads > 0 ? o->threads : (int)(cores > 0 ? cores : 1);
    if (o->max_seconds > 0 && !o->resume && t->c.n > 2) {
        rc = budget_plan(&t->plan, &t->opts, &t->c, threads, err, errlen);
        if (rc)
            goto fail;
        o = &t->opts;
        if (t->plan.chose_size)
            t->cfg = o->cfg;
        t->planned = 1;
        t->plan_steps = t->plan.steps;
        t->stop_steps = t->plan.ends_early ? t->plan.steps : 0;
        budget_plan_json(t->plan_json, sizeof t->plan_json, &t->plan);
    }
    if (o->resume) {
        const char *sha = model_meta_get(t->m, "corpus_sha256");
        if (sha && strcmp(sha, t->c.sha256) != 0) {
            rc = core_errf(err, errlen, CORE_EINVAL,
                           "the corpus differs from the one the checkpoint was trained on "
                           "(sha256 %.12s..., checkpoint %.12s...)", t->c.sha256, sha);
            goto fail;
        }
    } else if (!t->m) { /* not fine-tuning: fresh weights */
        rc = model_new(&t->m, cfg, &t->c.voc, err, errlen);
        if (rc)
            goto fail;
        rc = model_init_weights(t->m, o->seed);
        if (rc)
            goto fail;
    }
    t->B = o->batch;
    size_t n_train = t->c.n_train, n_val = t->c.n - t->c.n_train;
    if (cfg->regime == REGIME_WINDOW) {
        t->T = cfg->maxlen;
        t->n_windows = count_windows(n_train, cfg->maxlen, cfg->step);
        t->n_val_windows = count_windows(n_val, cfg->maxlen, cfg->step);
        if (t->n_windows == 0) {
            rc = core_errf(err, errlen, CORE_EINVAL,
                           "the training text (%zu characters) is not longer than maxlen (%d)",
                           n_train, cfg->maxlen);
            goto fail;
        }
        if (n_val > 0 && t->n_val_windows == 0) {
            rc = core_errf(err, errlen, CORE_EINVAL,
                           "the validation text (%zu characters) is not longer than maxlen (%d); "
                           "raise val_fraction or use 0", n_val, cfg->maxlen);
            goto fail;
        }
        t->batches = (long long)((t->n_windows + t->B - 1) / t->B);
        t->perm = malloc(t->n_windows * sizeof *t->perm);
        if (!t->perm)
            goto nomem;
    } else {
        t->T = cfg->seq_len;
        t->stream_len = n_train > 0 ? (n_train - 1) / (size_t)t->B : 0;
        if (t->stream_len < 1) {
            rc = core_errf(err, errlen, CORE_EINVAL,
                           "the training text (%zu characters) is too short for %d parallel "
                           "streams; lower batch", n_train, t->B);
            goto fail;
        }
        if (n_val == 1) {
            rc = core_errf(err, errlen, CORE_EINVAL, "the validation text is a single character");
            goto fail;
        }
        t->batches = (long long)((t->stream_len + cfg->seq_len - 1) / cfg->seq_len);
        t->carry = calloc(2 * (size_t)cfg->L * t->B * cfg->H, sizeof *t->carry);
        if (!t->carry)
            goto nomem;
    }
    t->grads = calloc(t->m->n_params, sizeof *t->grads);
    t->ids = malloc((size_t)t->T * t->B * sizeof *t->ids);
    t->targets = malloc((size_t)t->T * t->B * sizeof *t->targets);
    if (!t->grads || !t->ids || !t->targets)
        goto nomem;
    int kind = o->optimizer;
    if (o->resume)
        kind = optim_parse(model_meta_get(t->m, "optimizer"));
    if (kind < 0) {
        rc = core_errf(err, errlen, CORE_EFORMAT, "unknown optimizer in the checkpoint");
        goto fail;
    }
    if (optim_init(&t->opt, kind, t->m->n_params))
        goto nomem;
    rc = dpnet_init(&t->dp, threads, t->m->V, cfg->H, cfg->L, t->B, t->T,
                    cfg->regime == REGIME_SEQUENCE, cfg->dropout, t->m->n_params);
    if (rc)
        goto nomem;
    if (resume_x) {
        rc = adopt_resume_tensors(t, resume_x, resume_nx, err, errlen);
        if (rc)
            goto fail;
        if (t->batch > t->batches || t->batch < 0) {
            rc = core_errf(err, errlen, CORE_EFORMAT, "the checkpoint's data position is invalid");
            goto fail;
        }
    }
    checkpoint_extra_free(resume_x, resume_nx);
    return 0;
nomem:
    rc = core_errf(err, errlen, CORE_ENOMEM, "out of memory");
fail:
    checkpoint_extra_free(resume_x, resume_nx);
    trainer_deinit(t);
    return rc;
}

// ----------------------------------------------------------------------------
// the loop

int train_run(train_result *res, const train_options *o, const char *text, size_t len, char *err,
              size_t errlen)
{
    trainer t;
    /* the budget counts from here: a time budget's measuring is part of it */
    double start = now_seconds();
    int rc = trainer_init(&t, o, text, len, err, errlen);
    if (rc)
        return rc;
    o = t.o; /* a resumed run's hyperparameters (lr, decay, clip, seed) come from its checkpoint */
    const model_config *cfg = &t.cfg;
    int epochs = o->epochs;
    int has_val = t.c.n_train < t.c.n;
    char latest[4096];
    train_latest_path(latest, sizeof latest, o->out);
    const char *state_path = has_val ? latest : o->out;
    double diverge_at = 3.0 * log((double)t.m->V) + 1.0; /* char-rnn: 3x the initial loss */
    double last_progress = 0, epoch_start = start;
    long long start_batches = (long long)t.epoch * t.batches + t.batch;
    long long total_batches = (long long)epochs * t.batches;
    double chars_done = 0;
    int stopped = 0;
    double train_loss = NAN, val_loss = NAN;
    train_result out = {.best_val_loss = t.best_val, .val_loss = NAN};
    if (t.planned && o->on_plan)
        o->on_plan(o->ctx, &t.plan);
    /* A budget's schedule ends where the budget does: as the run measures its own speed (with
     * validation, samples and checkpoints), it re-estimates the step the deadline falls on. */
    int budget = o->budget_schedule && o->max_seconds > 0;
    double replan_every = fmax(1.0, o->max_seconds / 25), last_plan = 0;
    double loop_start = now_seconds();
    long long start_steps = t.opt.steps;

    for (; t.epoch < epochs && !stopped; t.epoch++) {
        float lr = o->budget_schedule ? budget_lr(o->lr, t.opt.steps, t.plan_steps)
                                      : o->lr * powf(o->lr_decay, (float)t.epoch);
        if (cfg->regime == REGIME_WINDOW)
            shuffle_epoch(&t);
        if (t.batch == 0) {
            t.loss_sum = t.loss_rows = 0;
            dpnet_zero_state(&t.dp);
        } else if (cfg->regime == REGIME_SEQUENCE) {
            restore_carry(&t); /* resumed mid-epoch */
        }
        epoch_start = now_seconds();
        double epoch_chars = 0;
        for (; t.batch < t.batches; t.batch++) {
            int steps, b;
            if (cfg->regime == REGIME_WINDOW) {
                b = window_batch(&t, t.c.ids, t.perm, t.n_windows, t.batch, &steps);
                dpnet_zero_state(&t.dp);
            } else {
                b = sequence_batch(&t, t.c.ids, t.stream_len, t.B, t.batch, &steps);
            }
            uint64_t drop_seed = position_seed(o->seed, (uint64_t)t.epoch, (uint64_t)t.batch, 2);
            double loss = dpnet_step(&t.dp, &t.m->p, t.ids, t.targets, b, steps, cfg->dropout > 0,
                                     drop_seed, t.grads);
            double norm = optim_clip(t.grads, t.m->n_params, o->clip);
            if (!isfinite(loss) || !isfinite(norm) || loss > diverge_at) {
                rc = core_errf(err, errlen, CORE_EDIVERGED,
                               "training diverged at epoch %d, batch %lld: loss %g (gradient norm "
                               "%g); try a lower lr or set clip",
                               t.epoch + 1, t.batch + 1, loss, norm);
                goto done;
            }
            if (o->budget_schedule)
                lr = budget_lr(o->lr, t.opt.steps, t.plan_steps);
            optim_step(&t.opt, t.m->params, t.grads, lr);
            if (cfg->regime == REGIME_SEQUENCE)
                dpnet_carry_state(&t.dp);
            double rows = cfg->regime == REGIME_WINDOW ? b : (double)b * steps;
            t.loss_sum += loss * rows;
            t.loss_rows += rows;
            epoch_chars += (double)b * steps;
            chars_done += (double)b * steps;

            double now = now_seconds();
            long long done_batches = (long long)t.epoch * t.batches + t.batch + 1;
            double elapsed = now - start;
            if (budget && elapsed - last_plan >= replan_every && t.opt.steps > start_steps) {
                last_plan = elapsed;
                double steps_per_sec =
                    (double)(t.opt.steps - start_steps) / fmax(now - loop_start, 1e-3);
                double left = o->max_seconds * BUDGET_TRAIN_SHARE - elapsed;
                t.plan_steps = t.opt.steps + (long long)(steps_per_sec * fmax(left, 0));
                if (t.stop_steps && t.plan_steps > t.stop_steps) /* the text ends it first */
                    t.plan_steps = t.stop_steps;
            }
            double rate = elapsed > 0 ? (done_batches - start_batches) / elapsed : 0;
            if (o->on_progress && (now - last_progress > 0.25 || t.batch + 1 == t.batches)) {
                last_progress = now;
                train_progress p = {t.epoch + 1, epochs, t.batch + 1, t.batches,
                                    t.loss_sum / t.loss_rows, (double)done_batches / total_batches,
                                    elapsed, rate > 0 ? (total_batches - done_batches) / rate : 0,
                                    elapsed > 0 ? chars_done / elapsed : 0};
                if (o->max_seconds > 0) { /* a time budget ends the run first if it is shorter */
                    double left = o->max_seconds - elapsed;
                    p.eta = left < p.eta ? (left > 0 ? left : 0) : p.eta;
                    double by_time = elapsed / o->max_seconds;
                    p.fraction = by_time > p.fraction ? (by_time < 1 ? by_time : 1) : p.fraction;
                }
                o->on_progress(o->ctx, &p);
            }
            int learned = t.stop_steps && t.opt.steps >= t.stop_steps; /* the plan's end */
            if ((o->max_seconds > 0 && elapsed >= o->max_seconds) || learned ||
                (o->cancel && *o->cancel)) {
                stopped = o->cancel && *o->cancel ? 2 : 1;
                t.batch++;
                break;
            }
        }
        int partial = t.batch < t.batches;
        /* A cancel (Ctrl-C, a server shutting down) must stop within seconds: save the state,
         * but skip the validation pass and the samples, which take long on a large text. */
        int cancelled = partial && stopped == 2;
        snapshot_carry(&t);
        train_loss = t.loss_rows > 0 ? t.loss_sum / t.loss_rows : NAN;
        val_loss = has_val && !cancelled ? validate(&t) : NAN;
        /* Only whole epochs compete for the best model after a cancel: a run that never stopped
         * would not have evaluated this mid-epoch one, and a resumed run must continue exactly
         * as such a run. Until an epoch has finished, a stop still leaves its model in out,
         * provisionally. The end of a time budget is the run's end, not an interruption: its
         * model competes (with a budget's schedule it has the lowest learning rate yet). */
        int best = has_val && (isnan(t.best_val) || val_loss < t.best_val) &&
                   (!partial || isnan(t.best_val) || stopped == 1);
        if (best && (!partial || stopped == 1))
            t.best_val = val_loss;
        if (!partial) {
            rc = append_history(&t, train_loss, val_loss);
            if (rc)
                goto done;
        }
        double now = now_seconds();
        long long done_batches = (long long)t.epoch * t.batches + t.batch;
        double elapsed = now - start;
        double rate = elapsed > 0 ? (done_batches - start_batches) / elapsed : 0;
        train_epoch_report r = {.epoch = t.epoch + 1,
                                .epochs = epochs,
                                .partial = partial,
                                .train_loss = train_loss,
                                .val_loss = val_loss,
                                .best = best,
                                .lr = lr,
                                .seconds = now - epoch_start,
                                .elapsed = elapsed,
                                .eta = rate > 0 && !stopped ? (total_batches - done_batches) / rate
                                                            : 0};
        if (o->max_seconds > 0 && !stopped) /* a time budget ends the run first if it is shorter */
            r.eta = fmin(r.eta, fmax(o->max_seconds - elapsed, 0));
        double secs = now - epoch_start;
        r.chars_per_sec = secs > 0 ? epoch_chars / secs : 0;
        double per_seq = cfg->regime == REGIME_WINDOW ? cfg->maxlen : 1;
        r.seqs_per_sec = secs > 0 ? epoch_chars / per_seq / secs : 0;
        r.plan_json = t.plan_json[0] ? t.plan_json : NULL;
        char *texts[TRAIN_N_TEMPS] = {0}, *seed_text = NULL;
        if (!cancelled)
            make_samples(&t, &r, texts, &seed_text);
        /* Reported before it is saved: a crash between the two reruns the epoch, which reports
         * it again, where the other order would lose its report for good. */
        if (o->on_epoch)
            o->on_epoch(o->ctx, &r);
        for (int k = 0; k < TRAIN_N_TEMPS; k++)
            free(texts[k]);
        free(seed_text);

        rc = write_meta(&t, train_loss, val_loss, partial ? t.epoch : t.epoch + 1,
                        partial ? t.batch : 0);
        /* The best model before the state: a crash between the two then resumes from the older
         * state and reruns this epoch, which writes the same best model again. The other order
         * would resume believing this epoch's model saved while out still held an older one. */
        if (!rc && best)
            rc = save(&t, o->out, 0, err, errlen);
        if (!rc)
            rc = save(&t, state_path, 1, err, errlen);
        if (rc)
            goto done;
        if (!partial)
            t.batch = 0;
        else
            break;
    }
done:
    out.epochs_done = t.epoch;
    out.train_loss = train_loss;
    out.val_loss = val_loss;
    out.best_val_loss = t.best_val;
    out.stopped = stopped;
    out.seconds = now_seconds() - start;
    trainer_deinit(&t);
    if (rc == 0)
        *res = out;
    return rc;
}
