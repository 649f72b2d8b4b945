/* pool: a fixed set of worker threads that run one function on every worker and wait for all of
 * them: fork-join for the trainer's data-parallel shards and for the column ranges of a batched
 * generation step. The calling thread is worker 0, so a pool of 1 starts no thread at all. */
#ifndef CORE_POOL_H
#define CORE_POOL_H

typedef void (*pool_fn)(void *ctx, int worker);

typedef struct pool pool;

/* Starts n - 1 threads (n in 1..64). */
int pool_new(pool **out, int n);
/* Runs fn(ctx, w) for every w in [0, n), concurrently, and returns when all have returned. Not
 * reentrant: one pool_run at a time per pool. */
void pool_run(pool *p, pool_fn fn, void *ctx);
int pool_size(const pool *p);
/* Inside fn: returns when every worker of the running job has called it (a reusable barrier).
 * Waiting workers spin briefly, then yield the CPU. */
void pool_barrier(pool *p);
/* How long an idle worker, and pool_run waiting for the others, spin before sleeping (0, the
 * default, sleeps at once). Back-to-back jobs microseconds apart (generation ticks) then start
 * without a wake-up through the kernel. Call before the first pool_run. */
void pool_set_spin(pool *p, int microseconds);
/* Stops and joins the threads; pool_free(NULL) is a no-op. */
void pool_free(pool *p);

#endif
