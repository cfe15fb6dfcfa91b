/* SPDX-License-Identifier: Apache-2.0 */
#ifndef COMMON_WORKQ_H
#define COMMON_WORKQ_H
/*
 * One worker thread for slow jobs (compiling an unwind table, reading a symbol
 * file) that must not stall the thread that drains the ring buffer.
 *
 * The owner submits items and takes them back once done; the worker only runs
 * an item's work function, which must touch nothing but the item. So the
 * owner's state keeps one owner: results are applied by the owner, on its own
 * thread, when it takes the item. An eventfd is readable while done items wait,
 * for the owner's poll loop. Finished items the owner has not taken yet are
 * bounded (max_done): past it the worker waits, so results never pile up.
 * The items of all the process's queues run one at a time: each is a peak of
 * memory, and the peaks must not add up. An urgent queue's items go first.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct workq_item {
	struct workq_item *next;
	void (*work)(struct workq_item *it);	/* on the worker thread */
};

struct workq;

/* name: the thread's name (15 characters at most). NULL with errno. */
struct workq *workq_new(const char *name, uint32_t max_done);
/* Stops the worker (after the job it runs) and gives back every item not taken,
 * done or not, through release (may be NULL). */
void workq_free(struct workq *q, void (*release)(struct workq_item *it));
/* Its items go before those of other queues (set before the first submit). */
void workq_set_urgent(struct workq *q);
void workq_submit(struct workq *q, struct workq_item *it);
/* Takes back an item the worker has not started: true (the caller owns it again), else false. */
bool workq_cancel(struct workq *q, struct workq_item *it);
/* A done item, oldest first, or NULL. Never blocks. */
struct workq_item *workq_take(struct workq *q);
/* Blocks until every submitted item is done (taken or not), or timeout_ms passed
 * (< 0: no limit). true when all are done. */
bool workq_wait_idle(struct workq *q, int timeout_ms);
/*
 * Blocks until the worker has finished it (it waits to be taken), or
 * timeout_ms passed (< 0: no limit), or max_done results wait untaken. true
 * when it is done.
 */
bool workq_wait_item(struct workq *q, const struct workq_item *it, int timeout_ms);
/* Items submitted and not taken back yet. */
uint32_t workq_outstanding(struct workq *q);
/* Readable while done items wait to be taken (level-triggered). */
int workq_fd(const struct workq *q);

#endif
