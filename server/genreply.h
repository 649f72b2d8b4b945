/* genreply: what the generation routes (routes_gen.c: /generate; routes_openai.c: OpenAI's
 * completions and chat) share between reading a request and answering it: the check and
 * submission to the scheduler, the wait for a buffered answer, and the server-sent events that
 * a streamed answer is written as. */
#ifndef SERVER_GENREPLY_H
#define SERVER_GENREPLY_H

#include "gen.h"
#include "http.h"

#include <cJSON.h>

/* How a route names core's sample_request fields (sample_request_check's *field), for errors. */
typedef struct field_name {
    const char *core, *json;
} field_name;

/* Checks q against lm's model, then queues it for n choices, under a new id or, with id, that
 * earlier request's (gen_submit). NULL after a reply: 400 naming the field, 503 with Retry-After
 * when the queue is full or the server is stopping. */
gen_req *submit_or_reply(request *r, loaded_model *lm, const sample_request *q, int n,
                         int streaming, const field_name *names, const char *id);
/* Waits for a non-streamed request (a gone client cancels it); nonzero after an error reply. */
int outcome_or_reply(request *r, gen_req *g);

size_t gen_req_generated_chars(const gen_req *g);
size_t gen_req_seed_chars(const gen_req *g);
/* The seed that replays a request, as an integer token (a double would round above 2^53). */
void json_add_seed(cJSON *o, uint64_t seed);
/* The error of a request that ended badly, as an event's {"error": ...}; NULL if it did not. */
cJSON *gen_req_error_json(const gen_req *g, int openai);

/* OpenAI's own limits, which its clients expect (GET /props shows them) */
#define OPENAI_MAX_STOPS 4
#define OPENAI_MAX_LOGPROBS 5      /* completions' logprobs */
#define OPENAI_MAX_TOP_LOGPROBS 20 /* chat's top_logprobs */
#define OPENAI_DEFAULT_MAX_TOKENS 16 /* completions' (a chat's is SAMPLE_DEFAULT_LENGTH) */

// ----------------------------------------------------------------------------
// server-sent events: the connection's thread takes what the scheduler delivers and formats it

#define SSE_MAX_REQS 16 /* requests behind one stream: OpenAI's prompt arrays */

typedef struct sse sse;
/* Formats one delivery into events (sse_put). ev->choice counts across the stream's requests
 * (request k's choice i is k * n + i); GEN_END comes once, after the last request ended. */
typedef void (*sse_format_fn)(sse *e, const gen_event *ev);

struct sse {
    struct app *a;
    gen_req *g[SSE_MAX_REQS]; /* read in order: the stream ends after the last */
    int n_g, cur;
    sse_format_fn format;
    char *buf;                /* formatted bytes not yet handed to the connection */
    size_t len, off, cap;
    int ended;
    /* the OpenAI routes' own */
    char id[64], model[72];
    long long created;
    int include_usage;
    int chat;                 /* chat.completion.chunk, else text_completion */
    int logprobs;             /* alternatives per position in each chunk; -1: no logprobs */
    size_t sent[SSE_MAX_REQS * GEN_MAX_CHOICES]; /* characters sent per choice */
    int opened;               /* requests whose choices had their first chunk (role, echo) */
    const char *echo[SSE_MAX_REQS]; /* completions: each prompt, sent first for its choices */
    const model *m;           /* for the characters of logprobs */
};

void sse_append(sse *e, const char *s, size_t n);
/* Appends `data: JSON\n\n` and deletes o. */
void sse_put(sse *e, cJSON *o);
/* Characters generated and read as seed by all of the stream's requests. */
size_t sse_generated_chars(const sse *e);
size_t sse_seed_chars(const sse *e);
/* Answers with the events of init->g[0..n_g) (taking over the caller's references) as format
 * writes them. */
int reply_sse(request *r, sse_format_fn format, const sse *init);

#endif
