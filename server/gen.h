/* gen: the generation scheduler. Every loaded model version that generates has one scheduler
 * thread, which owns all of that model's running streams. Each tick it admits waiting requests
 * (up to --max-batch streams), advances every active stream by one character with one batched
 * step (infer_batch_step: a product per layer for all of them), lets each draw with its own
 * options and RNG, and delivers the new text. Streams join and leave between ticks. A stream
 * still reading its seed feeds its next seed character in the same tick, so a long seed never
 * stalls the others; a request for n choices reads its seed once and then forks.
 *
 * A request's path: the handler validates (sample_request_check), gen_submit()s, then only
 * waits (gen_wait) or reads what is delivered (gen_take). The scheduler alone decides when a
 * request ends: its length or stop string, a cancel (DELETE /generations/{id}, a gone client,
 * shutdown) or its deadline (--request-timeout). A streaming reader gets a bounded buffer per
 * choice; while it is full the choice sits out of the batch. */
#ifndef SERVER_GEN_H
#define SERVER_GEN_H

#include "genstream.h"
#include "registry.h"
#include "sample.h"
#include "score.h"

#include <pthread.h>

#define GEN_MAX_CHOICES 16 /* choices of one request (OpenAI's n) */

typedef struct gen_sched gen_sched;
struct model_sched;

/* One streamed character's log-probability and its most probable alternatives. */
typedef struct gen_logprob {
    int id;
    double logprob;
    score_alt top[SCORE_MAX_TOP]; /* the request's top_logprobs of them */
} gen_logprob;

typedef struct gen_choice {
    genstream gs;      /* the scheduler's while the request runs; the handler's once it is done */
    int started;       /* gs is initialised (choice 0) or forked (the others) */
    int stepped;       /* scheduler: gs had a row in this tick's step */
    int finish;        /* enum sample_finish once ended (also for a choice that never started) */
    /* delivery to a streaming reader, under the request's lock */
    char *out;         /* text not yet taken */
    size_t out_len, out_cap;
    gen_logprob *out_lp;  /* with logprobs: one per character of out */
    size_t out_nlp, out_lp_cap;
    size_t lp_published;  /* scheduler: entries of gs.lp moved to out_lp so far */
    size_t published;  /* scheduler: bytes of gs.text moved to out so far */
    int ended;         /* scheduler: no more text will come */
    int end_taken;     /* reader: the end was reported */
} gen_choice;

typedef struct gen_req {
    char id[48];              /* "gen-" + 32 random hex digits: unguessable, for DELETE; shared
                                 by the prompts of one request (gen_submit) */
    char model[72];
    sample_request req;       /* seed_text and stop point at the request's own copies */
    int n;                    /* choices; choice i draws from seed req.seed + i */
    int streaming;            /* deliver text as it comes (gen_take) */
    gen_choice *choice;       /* (n) */
    int cancel;               /* a cancel was asked for (gen_req_cancel); acted on next tick */
    /* the outcome, valid once gen_wait returns or gen_take reports GEN_END */
    int timed_out;            /* the deadline ended it */
    int rc;                   /* a core error code that ended it (out of memory), else 0 */
    double t_submit, t_start, t_end; /* monotonic seconds */
    /* internal */
    struct model_sched *ms;
    int state;                /* queued, running, done */
    double deadline;          /* monotonic; 0 = none */
    int refs;
    int forked;
    size_t chars;             /* characters so far, for GET /generations (atomic) */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int done_fd;              /* eventfd, readable once done (gen_wait polls it with the socket) */
    char *seed_copy;
    char **stop_copy;
    struct gen_req *next;     /* the model's queue */
    struct gen_req *prev_all, *next_all; /* every live request, for cancel and listing */
} gen_req;

/* Threads per model step (--gen-threads), streams per model per tick (--max-batch), streams
 * running or queued in all before 503 (--max-concurrent), seconds a request may take
 * (--request-timeout, 0 = none), and the bytes a streaming reader may fall behind per choice. */
typedef struct gen_limits {
    int threads, max_batch, max_pending;
    double timeout;
    size_t stream_buffer;
} gen_limits;

int gen_sched_new(gen_sched **out, registry *models, const gen_limits *lim);
/* Cancels everything, joins the scheduler threads and frees the scheduler. */
void gen_sched_free(gen_sched *s);

/* A request for n choices of req (already checked with sample_request_check): copies of the seed
 * text and stop strings, one reference (the caller's). NULL if out of memory. */
gen_req *gen_req_new(const sample_request *req, int n, int streaming);
void gen_req_release(gen_req *g);
/* Asks the scheduler to end g (its reader is gone); any thread, any time. */
static inline void gen_req_cancel(gen_req *g) { __atomic_store_n(&g->cancel, 1, __ATOMIC_RELAXED); }

/* Queues g on lm's scheduler and gives it an id, or keeps the one it has (g->id set by the
 * caller to an earlier request's id: the prompts of one OpenAI request share theirs, so that one
 * DELETE ends them all). The scheduler takes a reference to g and one to
 * lm of its own; the caller keeps its own. CORE_ERANGE when --max-concurrent streams are already
 * running or queued (answer 503; *retry_after is an estimate in seconds from the measured rate),
 * CORE_ECANCELLED while shutting down, CORE_EINVAL for n outside 1..GEN_MAX_CHOICES,
 * CORE_ENOMEM. A request with more choices than --max-batch runs alone. */
int gen_submit(gen_sched *s, gen_req *g, loaded_model *lm, int *retry_after);

/* Blocks until g is done, or until client_fd (>= 0) reports the peer gone: then it cancels g,
 * waits for the scheduler to end it, and returns 0. 1 when g ended on its own. */
int gen_wait(gen_req *g, int client_fd);

enum gen_event_kind {
    GEN_TEXT = 0,       /* ev->text (malloc'ed, the reader frees it) of choice ev->choice */
    GEN_CHOICE_END = 1, /* choice ev->choice ended: nothing more comes for it */
    GEN_END = 2,        /* the request is done: its outcome is in g */
};
typedef struct gen_event {
    int kind, choice;
    char *text;
    size_t len;
    gen_logprob *lp;    /* with logprobs (and no echo): one per character of text, malloc'ed */
    size_t n_lp;
} gen_event;
/* For a streaming request's reader: blocks until the next event. After GEN_END it returns
 * GEN_END again. Text of one choice arrives in order, in whole characters. */
void gen_take(gen_req *g, gen_event *ev);

/* Cancels the queued or running requests with this id (the prompts of one request share it);
 * CORE_ENOTFOUND if there is none. */
int gen_cancel(gen_sched *s, const char *id);
/* Cancels every request and refuses new ones from now on. */
void gen_cancel_all(gen_sched *s);
/* Streams queued and running now, across models. */
void gen_counts(gen_sched *s, int *queued, int *running);

/* A running or queued request, for GET /generations (never its text). */
typedef struct gen_info {
    char id[48];
    char model[72];
    int queued;          /* not started yet */
    int n;
    size_t chars;        /* characters made so far, all choices */
    double age;          /* seconds since it was submitted */
} gen_info;
/* A malloc'ed array of the live requests, oldest first (caller frees). */
int gen_list(gen_sched *s, gen_info **out, int *n);

/* Prometheus lines per model: batch size and tick time histograms, queue depth, active streams,
 * characters per second (over the last few seconds) and in all. Malloc'ed; NULL if out of
 * memory. */
char *gen_metrics(gen_sched *s);

#endif
