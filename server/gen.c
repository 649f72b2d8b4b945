/* gen: per model version, a scheduler thread with its queue, its active requests, a batch
 * workspace of --max-batch rows and a pool to split big steps. Locks: s->lock guards the queues,
 * the lists, the counters and the statistics; a request's lock guards what its reader sees. Order:
 * s->lock before a request's lock. Everything in a running request's genstreams belongs to the
 * scheduler thread alone until the request is done. */
#include "gen.h"

#include "err.h"
#include "infer.h"
#include "metrics.h"
#include "pool.h"
#include "rng.h"

#include <errno.h>
#include <math.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

enum { REQ_QUEUED = 0, REQ_RUNNING = 1, REQ_DONE = 2 };

static const double batch_le[] = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512};
static const double tick_le[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                 0.05, 0.1, 0.25};
#define N_BATCH_LE (sizeof batch_le / sizeof *batch_le)
#define N_TICK_LE (sizeof tick_le / sizeof *tick_le)
#define RATE_TAU 5.0 /* seconds: the window of the per-model rates */

typedef struct sched_stats {
    long long ticks, rows, chars;
    long long batch_hist[N_BATCH_LE + 1]; /* the last slot: +Inf only */
    long long tick_hist[N_TICK_LE + 1];
    double tick_sum;
    double char_rate, stream_rate, rate_t; /* decayed rates (per second) and when updated */
} sched_stats;

typedef struct model_sched {
    struct gen_sched *s;
    loaded_model *lm;      /* the scheduler's own reference */
    infer_weights *w;
    infer_batch *batch;
    pool *pool;            /* NULL with one generation thread */
    pthread_t thread;
    pthread_cond_t wake;
    /* under s->lock */
    gen_req *head, *tail;  /* waiting requests, in order */
    int queued;            /* streams waiting */
    int reserved;          /* streams admitted (a request reserves all its choices at once) */
    int exited;            /* the thread has returned */
    sched_stats st;
    struct model_sched *next;
    /* the scheduler thread's alone */
    gen_req **active;      /* (batch capacity) */
    int n_active;
    infer_row *rows;       /* (batch capacity: --max-batch, or GEN_MAX_CHOICES if more) */
} model_sched;

struct gen_sched {
    registry *models;
    gen_limits lim;
    pthread_mutex_t lock;
    model_sched *scheds;
    gen_req *all;          /* live requests, newest first */
    int pending, running;  /* streams queued or running; running */
    int busy;              /* schedulers with streams to step (atomic) */
    int stopping;
    rng ids;               /* request ids: random, so no client can guess another's to cancel it */
};

static double now_mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

// ----------------------------------------------------------------------------
// requests

gen_req *gen_req_new(const sample_request *req, int n, int streaming)
{
    gen_req *g = calloc(1, sizeof *g);
    if (!g)
        return NULL;
    g->refs = 1;
    g->n = n;
    g->streaming = streaming;
    g->done_fd = -1;
    pthread_mutex_init(&g->lock, NULL);
    pthread_cond_init(&g->cond, NULL);
    g->req = *req;
    g->req.emit = NULL, g->req.emit_ctx = NULL, g->req.cancel = NULL;
    g->choice = calloc((size_t)n, sizeof *g->choice);
    g->seed_copy = malloc(req->seed_len + 1);
    g->stop_copy = calloc((size_t)req->n_stop + 1, sizeof *g->stop_copy);
    g->done_fd = eventfd(0, EFD_CLOEXEC);
    if (!g->choice || !g->seed_copy || !g->stop_copy || g->done_fd < 0)
        goto fail;
    if (req->seed_len)
        memcpy(g->seed_copy, req->seed_text, req->seed_len);
    g->seed_copy[req->seed_len] = '\0';
    g->req.seed_text = g->seed_copy;
    for (int i = 0; i < req->n_stop; i++)
        if (!(g->stop_copy[i] = strdup(req->stop[i])))
            goto fail;
    g->req.stop = (const char *const *)g->stop_copy;
    for (int i = 0; i < n; i++)
        g->choice[i].finish = SAMPLE_FINISH_CANCELLED;
    return g;
fail:
    gen_req_release(g);
    return NULL;
}

void gen_req_release(gen_req *g)
{
    if (!g)
        return;
    pthread_mutex_lock(&g->lock);
    int last = --g->refs == 0;
    pthread_mutex_unlock(&g->lock);
    if (!last)
        return;
    for (int i = 0; g->choice && i < g->n; i++) {
        if (g->choice[i].started)
            genstream_deinit(&g->choice[i].gs);
        free(g->choice[i].out);
        free(g->choice[i].out_lp);
    }
    free(g->choice);
    for (int i = 0; g->stop_copy && g->stop_copy[i]; i++)
        free(g->stop_copy[i]);
    free(g->stop_copy);
    free(g->seed_copy);
    if (g->done_fd >= 0)
        close(g->done_fd);
    pthread_mutex_destroy(&g->lock);
    pthread_cond_destroy(&g->cond);
    free(g);
}

static int req_stopping(gen_req *g) { return __atomic_load_n(&g->cancel, __ATOMIC_RELAXED); }

// ----------------------------------------------------------------------------
// statistics (s->lock)

/* The rates are decayed counts per second: r <- r e^(-dt/tau) + count / tau. */
static void rates_add(sched_stats *st, double now, double chars, double streams)
{
    double decay = exp(-(now - st->rate_t) / RATE_TAU);
    st->char_rate = st->char_rate * decay + chars / RATE_TAU;
    st->stream_rate = st->stream_rate * decay + streams / RATE_TAU;
    st->rate_t = now;
}

static void stats_tick(sched_stats *st, int rows, double seconds)
{
    st->ticks++;
    st->rows += rows;
    st->tick_sum += seconds;
    size_t b = 0;
    while (b < N_BATCH_LE && rows > batch_le[b])
        b++;
    st->batch_hist[b]++;
    b = 0;
    while (b < N_TICK_LE && seconds > tick_le[b])
        b++;
    st->tick_hist[b]++;
}

// ----------------------------------------------------------------------------
// ending requests

/* Publishes the end of g to its readers and drops the scheduler's reference. The caller has
 * unlinked g from the lists and counters. */
static void req_finish(gen_req *g)
{
    for (int i = 0; i < g->n; i++) {
        gen_choice *c = &g->choice[i];
        if (c->started) {
            c->finish = c->gs.finish >= 0 ? c->gs.finish : SAMPLE_FINISH_CANCELLED;
            c->gs.text[c->gs.len] = '\0'; /* genstream always keeps room for it */
        }
    }
    pthread_mutex_lock(&g->lock);
    g->t_end = now_mono();
    for (int i = 0; i < g->n; i++)
        g->choice[i].ended = 1;
    __atomic_store_n(&g->state, REQ_DONE, __ATOMIC_RELAXED);
    pthread_cond_broadcast(&g->cond);
    pthread_mutex_unlock(&g->lock);
    uint64_t one = 1;
    ssize_t w = write(g->done_fd, &one, sizeof one);
    (void)w; /* an eventfd write of 1 cannot fail short of overflowing 2^64 */
    gen_req_release(g);
}

static void unlink_all(gen_sched *s, gen_req *g)
{
    if (g->prev_all)
        g->prev_all->next_all = g->next_all;
    else
        s->all = g->next_all;
    if (g->next_all)
        g->next_all->prev_all = g->prev_all;
}

/* Ends the queued requests that were cancelled or ran out of time while waiting (s->lock). */
static void expire_queue(model_sched *ms, double now, gen_req **ended)
{
    gen_sched *s = ms->s;
    for (gen_req **p = &ms->head, *prev = NULL; *p;) {
        gen_req *g = *p;
        int late = g->deadline > 0 && now > g->deadline;
        if (!req_stopping(g) && !late) {
            prev = g;
            p = &g->next;
            continue;
        }
        g->timed_out = late && !req_stopping(g);
        *p = g->next;
        if (ms->tail == g)
            ms->tail = prev;
        ms->queued -= g->n;
        s->pending -= g->n;
        unlink_all(s, g);
        g->next = *ended;
        *ended = g;
    }
}

// ----------------------------------------------------------------------------
// one tick

/* A streaming reader is cap bytes behind (text, and logprobs when it asked for them). */
static int paused(const gen_req *g, const gen_choice *c, size_t cap)
{
    size_t behind = __atomic_load_n(&c->out_len, __ATOMIC_RELAXED) +
                    __atomic_load_n(&c->out_nlp, __ATOMIC_RELAXED) * sizeof(gen_logprob);
    return g->streaming && behind >= cap;
}

static void req_fail(gen_req *g, int rc)
{
    if (!g->rc)
        g->rc = rc;
    for (int i = 0; i < g->n; i++)
        if (g->choice[i].started)
            genstream_cancel(&g->choice[i].gs);
}

/* Draws for every choice whose logits are ready; forks the seed reader into n choices first. */
static void settle(model_sched *ms, gen_req *g)
{
    gen_choice *c0 = &g->choice[0];
    if (c0->stepped) { /* the seed reader's row of this tick (before any fork) */
        genstream_stepped(&c0->gs);
        c0->stepped = 0;
    }
    if (g->n > 1 && !g->forked && c0->started &&
        (genstream_ready(&c0->gs) || genstream_done(&c0->gs))) {
        for (int i = 1; i < g->n; i++) {
            if (genstream_fork(&g->choice[i].gs, &c0->gs, g->req.seed + (uint64_t)i)) {
                req_fail(g, CORE_ENOMEM);
                break;
            }
            g->choice[i].started = 1;
        }
        g->forked = 1;
    }
    if (g->n > 1 && !g->forked)
        return;
    size_t chars = 0;
    for (int i = 0; i < g->n; i++) {
        gen_choice *c = &g->choice[i];
        if (!c->started)
            continue;
        if (c->stepped) { /* it had a row in this tick's step */
            genstream_stepped(&c->gs);
            c->stepped = 0;
        }
        if (genstream_ready(&c->gs) && !paused(g, c, ms->s->lim.stream_buffer))
            if (genstream_predict(&c->gs))
                req_fail(g, CORE_ENOMEM);
        chars += c->gs.chars;
    }
    __atomic_store_n(&g->chars, chars, __ATOMIC_RELAXED);
}

typedef struct settle_job {
    model_sched *ms;
    int T;
} settle_job;

static void settle_worker(void *ctx, int t)
{
    settle_job *j = ctx;
    for (int k = t; k < j->ms->n_active; k += j->T)
        settle(j->ms, j->ms->active[k]);
}

/* With logprobs, the entries of the fresh bytes' characters go to the reader beside the text
 * (a stream that echoes its prompt has no streamed logprobs: the route refuses it). Under the
 * request's lock. */
static int deliver_logprobs(gen_req *g, gen_choice *c, size_t fresh)
{
    if (!g->req.want_logprobs || g->req.echo_logprobs)
        return 0;
    size_t chars = 0;
    for (size_t i = 0; i < fresh; i++)
        chars += ((unsigned char)c->gs.text[c->published + i] & 0xC0) != 0x80;
    if (c->out_nlp + chars > c->out_lp_cap) {
        size_t cap = c->out_lp_cap ? c->out_lp_cap : 16;
        while (cap < c->out_nlp + chars)
            cap *= 2;
        gen_logprob *p = realloc(c->out_lp, cap * sizeof *p);
        if (!p)
            return CORE_ENOMEM;
        c->out_lp = p, c->out_lp_cap = cap;
    }
    int top_n = g->req.top_logprobs;
    size_t n = c->out_nlp;
    for (size_t k = 0; k < chars && c->lp_published < c->gs.n_lp; k++, c->lp_published++) {
        gen_logprob *o = &c->out_lp[n++];
        o->id = c->gs.lp_id[c->lp_published];
        o->logprob = c->gs.lp[c->lp_published];
        for (int j = 0; j < top_n; j++)
            o->top[j] = c->gs.lp_top[c->lp_published * (size_t)top_n + j];
    }
    __atomic_store_n(&c->out_nlp, n, __ATOMIC_RELAXED); /* paused() reads it unlocked */
    return 0;
}

/* Moves new final text of each choice to its reader; 1 if every choice has ended. */
static int deliver(gen_req *g)
{
    int all_done = 1, woke = 0;
    for (int i = 0; i < g->n; i++) {
        gen_choice *c = &g->choice[i];
        int done = !c->started || genstream_done(&c->gs);
        all_done &= done;
        if (!g->streaming || !c->started || c->ended)
            continue;
        size_t fresh = c->gs.safe - c->published;
        if (!fresh && !done)
            continue;
        pthread_mutex_lock(&g->lock);
        if (fresh && c->out_len + fresh + 1 > c->out_cap) {
            size_t cap = c->out_cap ? c->out_cap : 256;
            while (cap < c->out_len + fresh + 1)
                cap *= 2;
            char *p = realloc(c->out, cap);
            if (!p) { /* the reader cannot get this text: end the request with the error */
                req_fail(g, CORE_ENOMEM);
                c->published = c->gs.safe = c->gs.len;
                fresh = 0;
            } else {
                c->out = p, c->out_cap = cap;
            }
        }
        if (fresh && deliver_logprobs(g, c, fresh) != 0) {
            req_fail(g, CORE_ENOMEM);
            c->published = c->gs.safe = c->gs.len;
            fresh = 0;
        }
        if (fresh) {
            memcpy(c->out + c->out_len, c->gs.text + c->published, fresh);
            __atomic_store_n(&c->out_len, c->out_len + fresh, __ATOMIC_RELAXED);
            c->out[c->out_len] = '\0';
            c->published = c->gs.safe;
        }
        if (done) {
            c->finish = c->gs.finish;
            c->ended = 1;
        }
        pthread_mutex_unlock(&g->lock);
        woke = 1;
    }
    if (woke)
        pthread_cond_signal(&g->cond);
    return all_done && (g->n == 1 || g->forked || g->rc);
}

/* One tick; returns the rows it stepped. */
static int tick(model_sched *ms)
{
    gen_sched *s = ms->s;
    double t0 = now_mono();
    long long chars_before = 0, chars_after = 0;
    for (int k = 0; k < ms->n_active; k++)
        chars_before += (long long)ms->active[k]->chars;
    /* what ends requests from outside: a cancel, the deadline */
    for (int k = 0; k < ms->n_active; k++) {
        gen_req *g = ms->active[k];
        int late = g->deadline > 0 && t0 > g->deadline;
        if (!req_stopping(g) && !late)
            continue;
        if (late && !req_stopping(g))
            g->timed_out = 1;
        gen_req_cancel(g);
        for (int i = 0; i < g->n; i++)
            if (g->choice[i].started)
                genstream_cancel(&g->choice[i].gs);
    }
    for (int k = 0; k < ms->n_active; k++)
        settle(ms, ms->active[k]);

    /* one row per stream that reads a character this tick */
    int B = 0;
    for (int k = 0; k < ms->n_active; k++) {
        gen_req *g = ms->active[k];
        for (int i = 0; i < g->n; i++) {
            gen_choice *c = &g->choice[i];
            if (!c->started || genstream_done(&c->gs) || genstream_ready(&c->gs) ||
                paused(g, c, s->lim.stream_buffer))
                continue;
            infer_row *row = &ms->rows[B++];
            row->st = &c->gs.st;
            row->id = genstream_input(&c->gs, &row->want_logits);
            c->stepped = 1;
        }
    }
    int T = 1;
    if (B > 0) {
        int alone = __atomic_load_n(&s->busy, __ATOMIC_RELAXED) <= 1;
        T = alone ? infer_threads_for(ms->w, B, s->lim.threads) : 1;
        infer_batch_step(ms->batch, ms->rows, B, T > 1 ? ms->pool : NULL);
    }

    /* each request draws with its own RNG: the workers that shared the step share this too */
    settle_job sj = {ms, T};
    if (T > 1)
        pool_run(ms->pool, settle_worker, &sj);
    else
        settle_worker(&sj, 0);
    gen_req *ended = NULL;
    int streams_ended = 0;
    for (int k = 0; k < ms->n_active;) {
        gen_req *g = ms->active[k];
        chars_after += (long long)g->chars;
        if (!deliver(g)) {
            k++;
            continue;
        }
        ms->active[k] = ms->active[--ms->n_active];
        streams_ended += g->n;
        g->next = ended;
        ended = g;
    }

    double t1 = now_mono();
    pthread_mutex_lock(&s->lock);
    stats_tick(&ms->st, B, t1 - t0);
    ms->st.chars += chars_after - chars_before;
    rates_add(&ms->st, t1, (double)(chars_after - chars_before), streams_ended);
    for (gen_req *g = ended; g; g = g->next) {
        unlink_all(s, g);
        ms->reserved -= g->n;
        s->running -= g->n;
        s->pending -= g->n;
    }
    pthread_mutex_unlock(&s->lock);
    while (ended) {
        gen_req *g = ended;
        ended = g->next;
        req_finish(g);
    }
    return B;
}

// ----------------------------------------------------------------------------
// the scheduler thread

/* Starts a newly admitted request: its first choice reads the seed. */
static void start(model_sched *ms, gen_req *g)
{
    char err[256];
    g->t_start = now_mono();
    int rc = genstream_init(&g->choice[0].gs, ms->lm->m, &g->req, err, sizeof err);
    if (rc) { /* the handler checked the request: only memory can fail here */
        g->rc = rc;
        g->forked = 1;
        return;
    }
    g->choice[0].started = 1;
}

static void *sched_main(void *arg)
{
    model_sched *ms = arg;
    gen_sched *s = ms->s;
    pthread_mutex_lock(&s->lock);
    for (;;) {
        gen_req *admitted = NULL, *ended = NULL, **tail = &admitted;
        double now = now_mono();
        expire_queue(ms, now, &ended);
        /* a request with more choices than --max-batch still runs, alone */
        while (ms->head &&
               (ms->reserved == 0 || ms->reserved + ms->head->n <= s->lim.max_batch)) {
            gen_req *g = ms->head;
            ms->head = g->next;
            if (!ms->head)
                ms->tail = NULL;
            ms->queued -= g->n;
            ms->reserved += g->n;
            s->running += g->n;
            __atomic_store_n(&g->state, REQ_RUNNING, __ATOMIC_RELAXED);
            g->next = NULL;
            *tail = g;
            tail = &g->next;
        }
        if (!admitted && !ended && ms->n_active == 0) {
            if (ms->head == NULL && (s->stopping || !registry_is_current(s->models, ms->lm)))
                break; /* shut down, or a replaced model's last stream is done */
            __atomic_sub_fetch(&s->busy, 1, __ATOMIC_RELAXED);
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_sec += 5; /* now and then, see whether the model file was replaced */
            pthread_cond_timedwait(&ms->wake, &s->lock, &ts);
            __atomic_add_fetch(&s->busy, 1, __ATOMIC_RELAXED);
            continue;
        }
        pthread_mutex_unlock(&s->lock);
        while (ended) {
            gen_req *g = ended;
            ended = g->next;
            req_finish(g);
        }
        while (admitted) {
            gen_req *g = admitted;
            admitted = g->next;
            start(ms, g);
            ms->active[ms->n_active++] = g;
        }
        int rows = tick(ms);
        pthread_mutex_lock(&s->lock);
        if (rows == 0 && ms->n_active > 0 && !ms->head) {
            /* every stream waits for its reader: sleep until one drains (gen_take signals), a
             * request arrives, or a moment passes (deadlines and cancels are checked per tick) */
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += 5 * 1000 * 1000;
            if (ts.tv_nsec >= 1000000000)
                ts.tv_sec++, ts.tv_nsec -= 1000000000;
            pthread_cond_timedwait(&ms->wake, &s->lock, &ts);
        }
    }
    ms->exited = 1;
    __atomic_sub_fetch(&s->busy, 1, __ATOMIC_RELAXED);
    pthread_mutex_unlock(&s->lock);
    return NULL;
}

static void sched_free(model_sched *ms)
{
    if (!ms)
        return;
    infer_batch_free(ms->batch);
    infer_weights_free(ms->w);
    pool_free(ms->pool);
    free(ms->active);
    free(ms->rows);
    pthread_cond_destroy(&ms->wake);
    if (ms->lm)
        registry_release(ms->s->models, ms->lm);
    free(ms);
}

/* A scheduler for lm, its thread started; s->lock held. */
static model_sched *sched_new(gen_sched *s, loaded_model *lm)
{
    model_sched *ms = calloc(1, sizeof *ms);
    if (!ms)
        return NULL;
    ms->s = s;
    pthread_cond_init(&ms->wake, NULL);
    int cap = s->lim.max_batch > GEN_MAX_CHOICES ? s->lim.max_batch : GEN_MAX_CHOICES;
    int T = s->lim.threads;
    ms->active = calloc((size_t)cap, sizeof *ms->active);
    ms->rows = calloc((size_t)cap, sizeof *ms->rows);
    if (!ms->active || !ms->rows || infer_weights_new(&ms->w, lm->m) ||
        infer_batch_new(&ms->batch, ms->w, cap, T) || (T > 1 && pool_new(&ms->pool, T))) {
        sched_free(ms);
        return NULL;
    }
    if (ms->pool)
        pool_set_spin(ms->pool, 100); /* ticks follow each other within microseconds */
    registry_hold(s->models, lm);
    ms->lm = lm;
    ms->st.rate_t = now_mono();
    __atomic_add_fetch(&s->busy, 1, __ATOMIC_RELAXED); /* until it first goes idle */
    if (pthread_create(&ms->thread, NULL, sched_main, ms) != 0) {
        __atomic_sub_fetch(&s->busy, 1, __ATOMIC_RELAXED);
        sched_free(ms);
        return NULL;
    }
    ms->next = s->scheds;
    s->scheds = ms;
    return ms;
}

/* Joins and frees the schedulers whose threads have returned; s->lock held. */
static void reap(gen_sched *s)
{
    for (model_sched **p = &s->scheds; *p;) {
        model_sched *ms = *p;
        if (!ms->exited) {
            p = &ms->next;
            continue;
        }
        *p = ms->next;
        pthread_join(ms->thread, NULL);
        sched_free(ms);
    }
}

// ----------------------------------------------------------------------------
// the API

int gen_sched_new(gen_sched **out, registry *models, const gen_limits *lim)
{
    gen_sched *s = calloc(1, sizeof *s);
    if (!s)
        return CORE_ENOMEM;
    s->models = models;
    s->lim = *lim;
    pthread_mutex_init(&s->lock, NULL);
    uint64_t seed[2] = {rng_fresh_seed(), rng_fresh_seed()};
    rng_seed(&s->ids, seed[0] ^ (seed[1] << 11));
    *out = s;
    return 0;
}

/* Seconds until a new stream would likely start on ms: what is ahead of it over the rate at
 * which streams have been finishing. */
static int retry_estimate(const model_sched *ms, int n)
{
    if (!ms || ms->st.stream_rate <= 0)
        return 1;
    double decay = exp(-(now_mono() - ms->st.rate_t) / RATE_TAU);
    double rate = ms->st.stream_rate * decay;
    double secs = rate > 0 ? (ms->queued + n) / rate : 60;
    return secs < 1 ? 1 : secs > 60 ? 60 : (int)ceil(secs);
}

int gen_submit(gen_sched *s, gen_req *g, loaded_model *lm, int *retry_after)
{
    pthread_mutex_lock(&s->lock);
    reap(s);
    model_sched *ms = NULL;
    for (model_sched *m = s->scheds; m && !ms; m = m->next)
        if (m->lm == lm && !m->exited)
            ms = m;
    if (s->stopping) {
        pthread_mutex_unlock(&s->lock);
        return CORE_ECANCELLED;
    }
    if (g->n < 1 || g->n > GEN_MAX_CHOICES) {
        pthread_mutex_unlock(&s->lock);
        return CORE_EINVAL;
    }
    if (s->pending + g->n > s->lim.max_pending) {
        *retry_after = retry_estimate(ms, g->n);
        pthread_mutex_unlock(&s->lock);
        return CORE_ERANGE;
    }
    if (!ms && !(ms = sched_new(s, lm))) {
        pthread_mutex_unlock(&s->lock);
        return CORE_ENOMEM;
    }
    if (!g->id[0]) {
        uint64_t a = rng_u64(&s->ids), b = rng_u64(&s->ids);
        snprintf(g->id, sizeof g->id, "gen-%016llx%016llx", (unsigned long long)a,
                 (unsigned long long)b);
    }
    snprintf(g->model, sizeof g->model, "%s", lm->name);
    g->ms = ms;
    g->t_submit = now_mono();
    g->deadline = s->lim.timeout > 0 ? g->t_submit + s->lim.timeout : 0;
    g->state = REQ_QUEUED;
    pthread_mutex_lock(&g->lock);
    g->refs++; /* the scheduler's */
    pthread_mutex_unlock(&g->lock);
    g->next = NULL;
    if (ms->tail)
        ms->tail->next = g;
    else
        ms->head = g;
    ms->tail = g;
    ms->queued += g->n;
    s->pending += g->n;
    g->prev_all = NULL;
    g->next_all = s->all;
    if (s->all)
        s->all->prev_all = g;
    s->all = g;
    pthread_cond_signal(&ms->wake);
    pthread_mutex_unlock(&s->lock);
    return 0;
}

int gen_wait(gen_req *g, int client_fd)
{
    int gone = 0;
    for (;;) {
        pthread_mutex_lock(&g->lock);
        int done = __atomic_load_n(&g->state, __ATOMIC_RELAXED) == REQ_DONE;
        pthread_mutex_unlock(&g->lock);
        if (done)
            return !gone;
        struct pollfd p[2] = {{g->done_fd, POLLIN, 0}, {client_fd, POLLRDHUP, 0}};
        int n = client_fd >= 0 && !gone ? 2 : 1;
        if (poll(p, (nfds_t)n, -1) < 0 && errno != EINTR)
            n = 1; /* cannot watch the socket: just wait for the end */
        if (n == 2 && (p[1].revents & (POLLRDHUP | POLLHUP | POLLERR))) {
            gone = 1;
            gen_req_cancel(g);
        }
    }
}

void gen_take(gen_req *g, gen_event *ev)
{
    memset(ev, 0, sizeof *ev);
    pthread_mutex_lock(&g->lock);
    for (;;) {
        for (int i = 0; i < g->n; i++) {
            gen_choice *c = &g->choice[i];
            if (c->out_len > 0) {
                ev->kind = GEN_TEXT, ev->choice = i;
                ev->text = c->out, ev->len = c->out_len;
                ev->lp = c->out_lp, ev->n_lp = c->out_nlp;
                c->out = NULL, c->out_cap = 0;
                c->out_lp = NULL, c->out_lp_cap = 0;
                __atomic_store_n(&c->out_nlp, 0, __ATOMIC_RELAXED);
                __atomic_store_n(&c->out_len, 0, __ATOMIC_RELAXED);
                /* the scheduler may have paused this choice for us; it outlives the request's
                 * running state, which cannot end while we hold the lock */
                if (__atomic_load_n(&g->state, __ATOMIC_RELAXED) != REQ_DONE)
                    pthread_cond_signal(&g->ms->wake);
                pthread_mutex_unlock(&g->lock);
                return;
            }
        }
        for (int i = 0; i < g->n; i++) {
            gen_choice *c = &g->choice[i];
            if (c->ended && !c->end_taken) {
                c->end_taken = 1;
                ev->kind = GEN_CHOICE_END, ev->choice = i;
                pthread_mutex_unlock(&g->lock);
                return;
            }
        }
        if (__atomic_load_n(&g->state, __ATOMIC_RELAXED) == REQ_DONE) {
            ev->kind = GEN_END;
            pthread_mutex_unlock(&g->lock);
            return;
        }
        pthread_cond_wait(&g->cond, &g->lock);
    }
}

int gen_cancel(gen_sched *s, const char *id)
{
    int rc = CORE_ENOTFOUND;
    pthread_mutex_lock(&s->lock);
    for (gen_req *g = s->all; g; g = g->next_all) /* every request that shares the id */
        if (strcmp(g->id, id) == 0) {
            gen_req_cancel(g);
            rc = 0;
        }
    pthread_mutex_unlock(&s->lock);
    return rc;
}

void gen_cancel_all(gen_sched *s)
{
    pthread_mutex_lock(&s->lock);
    s->stopping = 1;
    for (gen_req *g = s->all; g; g = g->next_all)
        gen_req_cancel(g);
    for (model_sched *ms = s->scheds; ms; ms = ms->next)
        pthread_cond_signal(&ms->wake);
    pthread_mutex_unlock(&s->lock);
}

void gen_counts(gen_sched *s, int *queued, int *running)
{
    pthread_mutex_lock(&s->lock);
    *queued = s->pending - s->running;
    *running = s->running;
    pthread_mutex_unlock(&s->lock);
}

int gen_list(gen_sched *s, gen_info **out, int *n)
{
    pthread_mutex_lock(&s->lock);
    int count = 0;
    for (gen_req *g = s->all; g; g = g->next_all)
        count++;
    gen_info *list = calloc((size_t)count + 1, sizeof *list);
    if (!list) {
        pthread_mutex_unlock(&s->lock);
        return CORE_ENOMEM;
    }
    double now = now_mono();
    int i = count;
    for (gen_req *g = s->all; g; g = g->next_all) { /* newest first: fill from the end */
        gen_info *e = &list[--i];
        snprintf(e->id, sizeof e->id, "%s", g->id);
        snprintf(e->model, sizeof e->model, "%s", g->model);
        e->queued = __atomic_load_n(&g->state, __ATOMIC_RELAXED) == REQ_QUEUED;
        e->n = g->n;
        e->chars = __atomic_load_n(&g->chars, __ATOMIC_RELAXED);
        e->age = now - g->t_submit;
    }
    pthread_mutex_unlock(&s->lock);
    *out = list;
    *n = count;
    return 0;
}

void gen_sched_free(gen_sched *s)
{
    if (!s)
        return;
    gen_cancel_all(s);
    pthread_mutex_lock(&s->lock);
    while (s->scheds) {
        for (model_sched *ms = s->scheds; ms; ms = ms->next)
            pthread_cond_signal(&ms->wake);
        pthread_mutex_unlock(&s->lock);
        struct timespec ts = {0, 5 * 1000 * 1000};
        nanosleep(&ts, NULL);
        pthread_mutex_lock(&s->lock);
        reap(s);
    }
    pthread_mutex_unlock(&s->lock);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

// ----------------------------------------------------------------------------
// metrics

/* One model name's statistics: its schedulers summed (a replaced model's old version that is
 * still finishing counts with the new one). */
typedef struct model_sum {
    const char *name;
    char labels[96]; /* model="NAME" */
    sched_stats st;
    int queued, streams;
} model_sum;

static int sum_models(gen_sched *s, model_sum *sums)
{
    int n = 0;
    double now = now_mono();
    for (model_sched *ms = s->scheds; ms; ms = ms->next) {
        int i = 0;
        while (i < n && strcmp(sums[i].name, ms->lm->name) != 0)
            i++;
        if (i == n)
            sums[n++] = (model_sum){.name = ms->lm->name};
        sched_stats *sum = &sums[i].st;
        const sched_stats *st = &ms->st;
        sum->ticks += st->ticks, sum->rows += st->rows, sum->chars += st->chars;
        sum->tick_sum += st->tick_sum;
        for (size_t b = 0; b <= N_BATCH_LE; b++)
            sum->batch_hist[b] += st->batch_hist[b];
        for (size_t b = 0; b <= N_TICK_LE; b++)
            sum->tick_hist[b] += st->tick_hist[b];
        sum->char_rate += st->char_rate * exp(-(now - st->rate_t) / RATE_TAU);
        sums[i].queued += ms->queued;
        sums[i].streams += ms->reserved;
    }
    return n;
}

char *gen_metrics(gen_sched *s)
{
    metrics_text b = {0};
    pthread_mutex_lock(&s->lock);
    int count = 0;
    for (model_sched *ms = s->scheds; ms; ms = ms->next)
        count++;
    model_sum *sums = calloc((size_t)count + 1, sizeof *sums);
    int n = sums ? sum_models(s, sums) : 0;
    for (int i = 0; i < n; i++)
        snprintf(sums[i].labels, sizeof sums[i].labels, "model=\"%s\"", sums[i].name);
    metrics_put(&b, "# HELP lstmgen_generation_batch_size Streams stepped together per scheduler "
                    "tick.\n# TYPE lstmgen_generation_batch_size histogram\n");
    for (int i = 0; i < n; i++)
        metrics_put_histogram(&b, "lstmgen_generation_batch_size", sums[i].labels, batch_le,
                              N_BATCH_LE, sums[i].st.batch_hist, (double)sums[i].st.rows);
    metrics_put(&b, "# HELP lstmgen_generation_tick_seconds Time of one scheduler tick.\n"
                    "# TYPE lstmgen_generation_tick_seconds histogram\n");
    for (int i = 0; i < n; i++)
        metrics_put_histogram(&b, "lstmgen_generation_tick_seconds", sums[i].labels, tick_le,
                              N_TICK_LE, sums[i].st.tick_hist, sums[i].st.tick_sum);
    metrics_put(&b, "# HELP lstmgen_model_queue_depth Streams of a model waiting for a batch "
                    "slot.\n# TYPE lstmgen_model_queue_depth gauge\n");
    for (int i = 0; i < n; i++)
        metrics_put(&b, "lstmgen_model_queue_depth{%s} %d\n", sums[i].labels,
                    sums[i].queued);
    metrics_put(&b, "# HELP lstmgen_model_streams Streams of a model in its batch.\n"
                    "# TYPE lstmgen_model_streams gauge\n");
    for (int i = 0; i < n; i++)
        metrics_put(&b, "lstmgen_model_streams{%s} %d\n", sums[i].labels, sums[i].streams);
    metrics_put(&b, "# HELP lstmgen_model_chars_per_second Characters a model generated per "
                    "second, averaged over the last 5 s.\n"
                    "# TYPE lstmgen_model_chars_per_second gauge\n");
    for (int i = 0; i < n; i++)
        metrics_put(&b, "lstmgen_model_chars_per_second{%s} %.1f\n", sums[i].labels,
                    sums[i].st.char_rate);
    metrics_put(&b, "# HELP lstmgen_model_generated_chars_total Characters a model generated.\n"
                    "# TYPE lstmgen_model_generated_chars_total counter\n");
    for (int i = 0; i < n; i++)
        metrics_put(&b, "lstmgen_model_generated_chars_total{%s} %lld\n", sums[i].labels,
                    sums[i].st.chars);
    pthread_mutex_unlock(&s->lock);
    free(sums);
    if (b.failed || !sums) {
        free(b.p);
        return NULL;
    }
    return b.p;
}
