/* lease: one process at a time runs a database's training jobs. SQLite's file locks keep one
 * database consistent, but they are not a lock between machines on a network volume, and two
 * trainers would each claim and run jobs. The lease is a row in the database that names the
 * holder and carries its heartbeat, renewed every few seconds; another trainer refuses to run
 * while the heartbeat is fresh. A holder on this machine whose process is gone is taken over at
 * once (a crash and a restart need no wait); one elsewhere, after LEASE_TTL seconds. */
#ifndef SERVER_LEASE_H
#define SERVER_LEASE_H

#include <stddef.h>

#define LEASE_TTL 15.0  /* seconds without a heartbeat before another machine may take over */

struct store;
typedef struct trainer_lease trainer_lease;

/* Takes the lease and starts renewing it. STORE_ECONFLICT with a message naming the holder
 * when another live trainer has it. */
int lease_take(trainer_lease **out, struct store *s, char *err, size_t errlen);
/* 1 while this process holds the lease (a renewal that finds another holder clears it; one that
 * succeeds again sets it). NULL: a process that takes no lease, which always may. */
int lease_held(const trainer_lease *l);
/* Stops renewing, gives the lease up, frees l. NULL is a no-op. */
void lease_drop(trainer_lease *l);

#endif
