// SPDX-License-Identifier: Apache-2.0
#include "workq.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include <sys/eventfd.h>

/*
 * Items of all queues run one at a time: each is a peak of memory (a table's
 * compile, a symbol file's read), and two at once would add their peaks. The
 * items of an urgent queue go first: no other queue's item starts while one is
 * submitted and not done.
 */
static pthread_mutex_t slot_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t slot_cond = PTHREAD_COND_INITIALIZER;
static bool slot_busy;
static uint32_t urgent_pending;

struct list {
	struct workq_item *head, *tail;
	uint32_t n;
};

struct workq {
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;	/* waiting, done or stop changed */
	struct list waiting, done;
	struct workq_item *current;	/* the item the worker runs, or NULL */
	bool stop;		/* written under lock, atomically: slot_take reads it without */
	bool urgent;
	uint32_t max_done;
	int efd;
};

static void list_push(struct list *l, struct workq_item *it)
{
	it->next = NULL;
	if (l->tail)
		l->tail->next = it;
	else
		l->head = it;
	l->tail = it;
	l->n++;
}

static struct workq_item *list_pop(struct list *l)
{
	struct workq_item *it = l->head;

	if (!it)
		return NULL;
	l->head = it->next;
	if (!l->head)
		l->tail = NULL;
	l->n--;
	return it;
}

static void urgent_done(uint32_t n)
{
	pthread_mutex_lock(&slot_lock);
	urgent_pending -= n;
	pthread_cond_broadcast(&slot_cond);
	pthread_mutex_unlock(&slot_lock);
}

/* The process's one slot for an item to run; false when q is being freed. */
static bool slot_take(struct workq *q)
{
	bool ok;

	pthread_mutex_lock(&slot_lock);
	while (!__atomic_load_n(&q->stop, __ATOMIC_ACQUIRE) &&
	       (slot_busy || (!q->urgent && urgent_pending)))
		pthread_cond_wait(&slot_cond, &slot_lock);
	ok = !__atomic_load_n(&q->stop, __ATOMIC_ACQUIRE);
	slot_busy |= ok;
	pthread_mutex_unlock(&slot_lock);
	return ok;
}

static void slot_give(struct workq *q)
{
	pthread_mutex_lock(&slot_lock);
	slot_busy = false;
	urgent_pending -= q->urgent;
	pthread_cond_broadcast(&slot_cond);
	pthread_mutex_unlock(&slot_lock);
}

static void *worker(void *arg)
{
	struct workq *q = arg;
	struct workq_item *it;
	uint64_t one = 1;

	pthread_mutex_lock(&q->lock);
	for (;;) {
		while (!q->stop && (!q->waiting.n || q->done.n >= q->max_done))
			pthread_cond_wait(&q->cond, &q->lock);
		if (q->stop)
			break;
		it = list_pop(&q->waiting);
		q->current = it;
		pthread_mutex_unlock(&q->lock);
		if (!slot_take(q)) {
			pthread_mutex_lock(&q->lock);
			list_push(&q->waiting, it);	/* given back by workq_free */
			q->current = NULL;
			break;
		}
		it->work(it);
		slot_give(q);
		pthread_mutex_lock(&q->lock);
		q->current = NULL;
		list_push(&q->done, it);
		pthread_cond_broadcast(&q->cond);
		if (write(q->efd, &one, sizeof(one)) < 0) {
			/* the counter cannot overflow at one write per item */
		}
	}
	pthread_mutex_unlock(&q->lock);
	return NULL;
}

struct workq *workq_new(const char *name, uint32_t max_done)
{
	struct workq *q = calloc(1, sizeof(*q));
	pthread_condattr_t ca;
	int err;

	if (!q)
		return NULL;
	q->max_done = max_done ? max_done : 1;
	q->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (q->efd < 0) {
		err = errno;
		free(q);
		errno = err;
		return NULL;
	}
	pthread_mutex_init(&q->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);	/* waits immune to clock jumps */
	pthread_cond_init(&q->cond, &ca);
	pthread_condattr_destroy(&ca);
	err = pthread_create(&q->thread, NULL, worker, q);
	if (err) {
		close(q->efd);
		pthread_cond_destroy(&q->cond);
		pthread_mutex_destroy(&q->lock);
		free(q);
		errno = err;
		return NULL;
	}
	if (name)
		pthread_setname_np(q->thread, name);
	return q;
}

void workq_free(struct workq *q, void (*release)(struct workq_item *it))
{
	struct workq_item *it;

	if (!q)
		return;
	pthread_mutex_lock(&q->lock);
	__atomic_store_n(&q->stop, true, __ATOMIC_RELEASE);
	pthread_cond_broadcast(&q->cond);
	pthread_mutex_unlock(&q->lock);
	pthread_mutex_lock(&slot_lock);		/* a worker waiting for the slot sees stop */
	pthread_cond_broadcast(&slot_cond);
	pthread_mutex_unlock(&slot_lock);
	pthread_join(q->thread, NULL);
	if (q->urgent && q->waiting.n)
		urgent_done(q->waiting.n);		/* never run */
	while ((it = list_pop(&q->done)) || (it = list_pop(&q->waiting)))
		if (release)
			release(it);
	close(q->efd);
	pthread_cond_destroy(&q->cond);
	pthread_mutex_destroy(&q->lock);
	free(q);
}

void workq_set_urgent(struct workq *q)
{
	q->urgent = true;
}

void workq_submit(struct workq *q, struct workq_item *it)
{
	if (q->urgent) {
		pthread_mutex_lock(&slot_lock);
		urgent_pending++;
		pthread_mutex_unlock(&slot_lock);
	}
	pthread_mutex_lock(&q->lock);
	list_push(&q->waiting, it);
	pthread_cond_broadcast(&q->cond);
	pthread_mutex_unlock(&q->lock);
}

bool workq_cancel(struct workq *q, struct workq_item *it)
{
	struct workq_item **pp, *prev = NULL;
	bool found = false;

	pthread_mutex_lock(&q->lock);
	for (pp = &q->waiting.head; *pp; prev = *pp, pp = &(*pp)->next) {
		if (*pp != it)
			continue;
		*pp = it->next;
		if (q->waiting.tail == it)
			q->waiting.tail = prev;
		q->waiting.n--;
		found = true;
		break;
	}
	if (found)
		pthread_cond_broadcast(&q->cond);	/* workq_wait_idle may be done */
	pthread_mutex_unlock(&q->lock);
	if (found && q->urgent)
		urgent_done(1);
	return found;
}

struct workq_item *workq_take(struct workq *q)
{
	struct workq_item *it;
	uint64_t n;

	pthread_mutex_lock(&q->lock);
	it = list_pop(&q->done);
	if (it)
		pthread_cond_broadcast(&q->cond);	/* room for the worker's next result */
	if (!q->done.n && read(q->efd, &n, sizeof(n)) < 0) {
		/* EAGAIN: nothing was signalled */
	}
	pthread_mutex_unlock(&q->lock);
	return it;
}

/* timeout_ms from now on the queue's clock. */
static struct timespec deadline(int timeout_ms)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	t.tv_sec += timeout_ms / 1000;
	t.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
	if (t.tv_nsec >= 1000000000) {
		t.tv_sec++;
		t.tv_nsec -= 1000000000;
	}
	return t;
}

static int wait_until(struct workq *q, int timeout_ms, const struct timespec *until)
{
	return timeout_ms < 0 ? pthread_cond_wait(&q->cond, &q->lock) :
				pthread_cond_timedwait(&q->cond, &q->lock, until);
}

bool workq_wait_idle(struct workq *q, int timeout_ms)
{
	struct timespec until = deadline(timeout_ms < 0 ? 0 : timeout_ms);
	bool idle;
	int err = 0;

	pthread_mutex_lock(&q->lock);
	/* done items past max_done would keep the worker waiting: the caller takes them */
	while ((q->waiting.n || q->current) && q->done.n < q->max_done && err != ETIMEDOUT)
		err = wait_until(q, timeout_ms, &until);
	idle = !q->waiting.n && !q->current;
	pthread_mutex_unlock(&q->lock);
	return idle;
}

static bool queued(const struct workq *q, const struct workq_item *it)
{
	for (const struct workq_item *p = q->waiting.head; p; p = p->next)
		if (p == it)
			return true;
	return false;
}

bool workq_wait_item(struct workq *q, const struct workq_item *it, int timeout_ms)
{
	struct timespec until = deadline(timeout_ms < 0 ? 0 : timeout_ms);
	bool done;
	int err = 0;

	pthread_mutex_lock(&q->lock);
	while ((q->current == it || queued(q, it)) && q->done.n < q->max_done && err != ETIMEDOUT)
		err = wait_until(q, timeout_ms, &until);
	done = q->current != it && !queued(q, it);
	pthread_mutex_unlock(&q->lock);
	return done;
}

uint32_t workq_outstanding(struct workq *q)
{
	uint32_t n;

	pthread_mutex_lock(&q->lock);
	n = q->waiting.n + q->done.n + (q->current ? 1u : 0u);
	pthread_mutex_unlock(&q->lock);
	return n;
}

int workq_fd(const struct workq *q)
{
	return q->efd;
}
