/* rng: a small, fast, seedable generator (xoshiro256** seeded through splitmix64). Every random
 * choice in core/ draws from an explicit rng, never a global, so runs are reproducible. */
#ifndef CORE_RNG_H
#define CORE_RNG_H

#include <stdint.h>

typedef struct rng {
    uint64_t s[4];
} rng;

void rng_seed(rng *r, uint64_t seed);
uint64_t rng_u64(rng *r);
/* Uniform in [0, 1) with 53 random bits. */
double rng_uniform(rng *r);
/* Uniform integer in [0, n), without modulo bias; n > 0. */
uint64_t rng_below(rng *r, uint64_t n);
/* Standard normal (Box-Muller). */
double rng_normal(rng *r);

/* A fresh seed from /dev/urandom (the clock and pid if that fails), cut to 53 bits so it is exact
 * as a JSON number and can be given back to reproduce a run. */
uint64_t rng_fresh_seed(void);

#endif
