// SPDX-License-Identifier: Apache-2.0
/*
 * The unwinder's tables against real BPF maps (needs root): a table whose last
 * process exits stays, idle, and the next process of the same binary reuses it;
 * idle tables give their rows up when a new table needs the room; rows land in
 * the mapped array where the LPM entries say. Tables are built by the
 * unwinder's worker: a sync never waits for one.
 */
#include <bpf/bpf.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "helpers.h"
#include "procs.h"
#include "unwind.h"
#include "unwinder.h"

static int make_maps(uint32_t rows_cap, int *lpm, int *rows)
{
	LIBBPF_OPTS(bpf_map_create_opts, lo, .map_flags = BPF_F_NO_PREALLOC);
	LIBBPF_OPTS(bpf_map_create_opts, ro, .map_flags = BPF_F_MMAPABLE);

	*lpm = bpf_map_create(BPF_MAP_TYPE_LPM_TRIE, "t_lpm", sizeof(struct mapping_key),
			      sizeof(struct mapping_info), 65536, &lo);
	*rows = bpf_map_create(BPF_MAP_TYPE_ARRAY, "t_rows", 4, sizeof(struct unwind_row), rows_cap,
			       &ro);
	return *lpm >= 0 && *rows >= 0 ? 0 : -errno;
}

/* An unwinder on maps of cap rows, with opts (may be NULL); the test is skipped without root. */
static struct unwinder *open_unwinder_opts(uint32_t cap, const struct unwinder_opts *opts,
					   struct procs **procs, int *lpm, int *rows)
{
	struct unwinder *u;

	if (geteuid() != 0 || make_maps(cap, lpm, rows)) {
		print_message("needs root to create BPF maps\n");
		skip();
	}
	*procs = procs__new(NULL);
	u = unwinder__new(*lpm, *rows, cap, *procs, opts);
	assert_non_null(u);
	return u;
}

static struct unwinder *open_unwinder(uint32_t cap, struct procs **procs, int *lpm, int *rows)
{
	return open_unwinder_opts(cap, NULL, procs, lpm, rows);
}

/* the children, killed by the teardown too when an assertion cut the test short */
static pid_t kids[8];
static int nkids;

static int kill_kids(void **state)
{
	(void)state;
	for (int i = 0; i < nkids; i++)
		if (kids[i] > 0) {
			kill(kids[i], SIGKILL);
			waitpid(kids[i], NULL, 0);
		}
	nkids = 0;
	return 0;
}

/* A process of prog that waits, exec'd (so its mappings are prog's). */
static pid_t spawn(const char *prog, const char *a1, const char *a2)
{
	pid_t pid = fork();

	if (pid == 0) {
		execl(prog, prog, a1, a2, (char *)NULL);
		_exit(127);
	}
	if (pid > 0 && nkids < 8)
		kids[nkids++] = pid;
	usleep(200000);	/* the exec and the loader's mappings */
	return pid;
}

static void reap(pid_t pid)
{
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	for (int i = 0; i < nkids; i++)
		if (kids[i] == pid)
			kids[i] = 0;
}

/* A copy of /bin/sleep with another build id: the same code, its own table. */
static void other_build(char *path, size_t len)
{
	char cmd[600], *bid = run_capture("readelf -n /bin/sleep | awk '/Build ID/ { print $3 }'");

	assert_non_null(bid);
	bid[strcspn(bid, "\n")] = 0;
	assert_true(strlen(bid) >= 8);
	snprintf(path, len, "/tmp/profleet-sleep-%d", (int)getpid());
	snprintf(cmd, sizeof(cmd),
		 "perl -e 'local $/; open F, \"<\", \"/bin/sleep\" or die; binmode F; $b = <F>;"
		 " $id = pack(\"H*\", \"%s\"); $n = $id; substr($n, 0, 4) = \"\\xde\\xad\\xbe\\xef\";"
		 " $b =~ s/\\Q$id\\E/$n/ or die; open O, \">\", \"%s\" or die; binmode O; print O $b;'"
		 " && chmod 755 %s", bid, path, path);
	free(bid);
	assert_int_equal(system(cmd), 0);
}

/* A sync, then the worker's tables placed and the process synced again. */
static int sync_settled(struct unwinder *u, pid_t pid)
{
	int err = unwinder__sync_pid(u, pid, false);

	assert_true(unwinder__settle(u, 60000));
	return err;
}

static void test_idle_tables(void **state)
{
	char copy[64];
	struct unwinder_stats st, st2;
	struct procs *procs;
	struct unwinder *u;
	int lpm, rows;
	pid_t a, b, c;


	(void)state;
	u = open_unwinder(1u << 20, &procs, &lpm, &rows);
	a = spawn("/bin/sleep", "30", NULL);
	assert_int_equal(sync_settled(u, a), 0);
	unwinder__stats(u, &st);
	assert_true(st.tables_loaded >= 2);	/* sleep, libc, the loader */
	assert_int_equal(st.tables_idle, 0);
	unwinder__forget_pid(u, a);
	reap(a);
	unwinder__stats(u, &st2);
	assert_int_equal(st2.tables_idle, st.tables_live);	/* kept, with their rows */
	assert_int_equal(st2.rows_live, st.rows_live);
	/* the next process of the same binary: nothing compiled again */
	b = spawn("/bin/sleep", "30", NULL);
	assert_int_equal(sync_settled(u, b), 0);
	unwinder__stats(u, &st2);
	assert_int_equal(st2.tables_loaded, st.tables_loaded);
	assert_int_equal(st2.tables_idle, 0);
	assert_true(st2.lpm_entries > 0);
	unwinder__forget_pid(u, b);
	reap(b);
	unwinder__free(u);
	close(lpm);
	close(rows);

	/* a rows array that holds sleep's set exactly: another build of sleep (its own
	 * table, as big as sleep's) gets the room of sleep's idle table */
	assert_int_equal(make_maps((uint32_t)st.rows_live, &lpm, &rows), 0);
	u = unwinder__new(lpm, rows, (uint32_t)st.rows_live, procs, NULL);
	a = spawn("/bin/sleep", "30", NULL);
	assert_int_equal(sync_settled(u, a), 0);
	unwinder__forget_pid(u, a);
	reap(a);
	other_build(copy, sizeof(copy));
	c = spawn(copy, "30", NULL);
	assert_int_equal(sync_settled(u, c), 0);
	unwinder__stats(u, &st2);
	print_message("# sleep's set: %lu rows in %lu tables; then %lu loaded, %lu evicted, %lu failed\n",
		      (unsigned long)st.rows_live, (unsigned long)st.tables_live,
		      (unsigned long)st2.tables_loaded, (unsigned long)st2.tables_evicted,
		      (unsigned long)st2.tables_failed);
	assert_int_equal(st2.tables_evicted, 1);	/* sleep's own, idle */
	assert_int_equal(st2.tables_failed, 0);
	assert_int_equal(st2.tables_loaded, st.tables_loaded + 1);	/* the copy's came in */
	unwinder__forget_pid(u, c);
	reap(c);
	unlink(copy);
	unwinder__free(u);
	procs__free(procs);
	close(lpm);
	close(rows);
}

/*
 * A sync hands the tables to the worker and returns: nothing is placed until
 * the owner takes them (so the counts below do not depend on the worker's
 * speed). A process gone before its tables were built leaves them idle.
 */
static void test_sync_does_not_wait(void **state)
{
	struct unwinder_stats st;
	uint64_t pending;
	struct procs *procs;
	struct unwinder *u;
	int lpm, rows;
	pid_t a;

	(void)state;
	u = open_unwinder(1u << 20, &procs, &lpm, &rows);
	a = spawn("/bin/sleep", "30", NULL);
	assert_int_equal(unwinder__sync_pid(u, a, false), 0);
	unwinder__stats(u, &st);
	assert_true(st.tables_pending >= 2);	/* sleep, libc, the loader */
	assert_int_equal(st.tables_loaded, 0);
	assert_int_equal(st.lpm_entries, 0);
	assert_true(unwinder__settle(u, 60000));
	unwinder__stats(u, &st);
	assert_int_equal(st.tables_pending, 0);
	assert_true(st.tables_loaded >= 2);
	assert_true(st.lpm_entries > 0);	/* synced again once they were placed */

	unwinder__forget_pid(u, a);
	reap(a);
	unwinder__free(u);

	/*
	 * Gone while its tables are on their way: those the worker has not started
	 * are dropped (it stops after two results untaken, so of three at least one
	 * is), those it built are kept, idle.
	 */
	u = unwinder__new(lpm, rows, 1u << 20, procs, NULL);
	a = spawn("/bin/sleep", "30", NULL);
	assert_int_equal(unwinder__sync_pid(u, a, false), 0);
	unwinder__stats(u, &st);
	pending = st.tables_pending;
	assert_true(pending >= 3);
	unwinder__forget_pid(u, a);
	reap(a);
	unwinder__stats(u, &st);
	assert_int_equal(st.pids, 0);
	assert_true(st.tables_cancelled >= pending - 2);
	assert_int_equal(st.tables_cancelled + st.tables_pending, pending);
	assert_true(unwinder__settle(u, 60000));
	unwinder__stats(u, &st);
	print_message("# %lu builds: %lu dropped, %lu kept idle\n", (unsigned long)pending,
		      (unsigned long)st.tables_cancelled, (unsigned long)st.tables_idle);
	assert_int_equal(st.tables_pending, 0);
	assert_int_equal(st.tables_loaded + st.tables_cancelled + st.no_cfi + st.tables_failed,
			 pending);
	assert_int_equal(st.tables_idle, st.tables_live);
	assert_int_equal(st.lpm_entries, 0);
	unwinder__free(u);

	/* the same once the worker has built one (its wake-up fd is readable): that
	 * one cannot be dropped, and is kept idle with its rows */
	u = unwinder__new(lpm, rows, 1u << 20, procs, NULL);
	a = spawn("/bin/sleep", "30", NULL);
	assert_int_equal(unwinder__sync_pid(u, a, false), 0);
	assert_int_equal(poll(&(struct pollfd){ .fd = unwinder__wake_fd(u), .events = POLLIN }, 1,
			      60000), 1);
	unwinder__forget_pid(u, a);
	reap(a);
	assert_true(unwinder__settle(u, 60000));
	unwinder__stats(u, &st);
	assert_true(st.tables_loaded >= 1);
	assert_true(st.tables_idle >= 1);
	assert_int_equal(st.tables_idle, st.tables_live);
	unwinder__free(u);
	procs__free(procs);
	close(lpm);
	close(rows);
}

/*
 * sleep, then a copy of it with its own build id, on cap rows with retry_ns
 * (0 = the default): the unwinder's counters after both synced.
 */
static void two_sleeps(uint32_t cap, uint64_t retry_ns, struct unwinder_stats *st)
{
	struct unwinder_opts opts = { .retry_ns = retry_ns };
	struct procs *procs;
	struct unwinder *u;
	char copy[64];
	int lpm, rows;
	pid_t a;

	u = open_unwinder_opts(cap, &opts, &procs, &lpm, &rows);
	a = spawn("/bin/sleep", "30", NULL);
	sync_settled(u, a);
	unwinder__forget_pid(u, a);
	reap(a);
	other_build(copy, sizeof(copy));
	a = spawn(copy, "30", NULL);
	sync_settled(u, a);
	unwinder__stats(u, st);
	print_message("# retry %lu ns: %lu loaded, %lu failed, %lu reused, %lu evicted, %lu idle\n",
		      (unsigned long)retry_ns, (unsigned long)st->tables_loaded,
		      (unsigned long)st->tables_failed, (unsigned long)st->failures_reused,
		      (unsigned long)st->tables_evicted, (unsigned long)st->tables_idle);
	unwinder__forget_pid(u, a);
	reap(a);
	unlink(copy);
	unwinder__free(u);
	procs__free(procs);
	close(lpm);
	close(rows);
}

/*
 * A table that cannot fit, even in what idle tables hold, fails without
 * evicting them: rows for sleep and the loader plus one more sleep-sized slice;
 * libc's never fits. Another build of sleep then fits the free slice, and
 * sleep's idle table stays; libc's failure is remembered until its retry time.
 */
static void test_too_big_keeps_idle(void **state)
{
	struct unwinder_stats st;
	struct procs *procs;
	struct unwinder *u;
	uint32_t cap;
	int lpm, rows;
	pid_t a;

	(void)state;
	/* the rows of sleep's and the loader's tables, measured */
	u = open_unwinder(1u << 20, &procs, &lpm, &rows);
	a = spawn("/bin/sleep", "30", NULL);
	sync_settled(u, a);
	unwinder__stats(u, &st);
	cap = (uint32_t)st.rows_live;	/* sleep + libc + the loader */
	unwinder__free(u);
	procs__free(procs);
	reap(a);
	close(lpm);
	close(rows);
	assert_true(cap > 28000);	/* libc's is the big one */
	/* sleep's and the loader's only, known by failing libc's: */
	u = open_unwinder(cap / 4, &procs, &lpm, &rows);
	a = spawn("/bin/sleep", "30", NULL);
	sync_settled(u, a);
	unwinder__stats(u, &st);
	unwinder__free(u);
	procs__free(procs);
	reap(a);
	close(lpm);
	close(rows);
	print_message("# sleep's set: %u rows; without libc's: %lu\n", cap,
		      (unsigned long)st.rows_live);
	assert_int_equal(st.tables_failed, 1);	/* libc's: over cap / 4 */
	cap = (uint32_t)(st.rows_live + st.rows_live / 4);

	/* libc's refusal is remembered: the next process's libc is not built again */
	two_sleeps(cap, 0, &st);
	assert_int_equal(st.tables_failed, 1);
	assert_true(st.failures_reused >= 1);
	assert_int_equal(st.tables_evicted, 0);
	assert_int_equal(st.tables_idle, 1);	/* sleep's own */
	/* past its retry time (1 ns) too: still no room for its rows, so no build for nothing */
	two_sleeps(cap, 1, &st);
	assert_int_equal(st.tables_failed, 1);
	assert_int_equal(st.tables_evicted, 0);
	assert_int_equal(st.tables_idle, 1);
}

/*
 * A file without CFI, known by its build id, fails for good: the same bytes
 * say the same, so it is not built again, not even past a retry time.
 */
static void test_no_cfi_is_final(void **state)
{
	struct unwinder_opts opts = { .retry_ns = 0 };
	struct unwinder_stats st;
	struct procs *procs;
	struct unwinder *u;
	char copy[64], nocfi[96], cmd[300];
	int lpm, rows;
	pid_t a;

	(void)state;
	other_build(copy, sizeof(copy));	/* its own build id: its own table */
	snprintf(nocfi, sizeof(nocfi), "%s-nocfi", copy);
	snprintf(cmd, sizeof(cmd), "objcopy --remove-section .eh_frame --remove-section "
		 ".eh_frame_hdr %s %s && chmod 755 %s", copy, nocfi, nocfi);
	assert_int_equal(system(cmd), 0);
	for (int pass = 0; pass < 2; pass++) {
		opts.retry_ns = pass ? 1 : 0;	/* the default (a minute), then 1 ns */
		u = open_unwinder_opts(1u << 20, &opts, &procs, &lpm, &rows);
		for (int k = 0; k < 2; k++) {	/* two processes of it, one after the other */
			a = spawn(nocfi, "30", NULL);
			sync_settled(u, a);
			unwinder__forget_pid(u, a);
			reap(a);
		}
		unwinder__stats(u, &st);
		print_message("# retry %s: no CFI %lu, found again %lu\n", pass ? "1 ns" : "default",
			      (unsigned long)st.no_cfi, (unsigned long)st.failures_reused);
		assert_int_equal(st.no_cfi, 1);
		assert_true(st.failures_reused >= 2);	/* the second process, and the resyncs */
		unwinder__free(u);
		procs__free(procs);
		close(lpm);
		close(rows);
	}
	unlink(nocfi);
	unlink(copy);
}

/*
 * One build at a time (max_builds 1): the others are deferred without opening
 * their files, and handed over as room comes; settling ends with all of them
 * placed and the process's entries in.
 */
static void test_deferred_builds(void **state)
{
	struct unwinder_opts uo = { .max_builds = 1 };
	struct unwinder_stats st;
	struct procs *procs;
	struct unwinder *u;
	int lpm, rows;
	pid_t a;

	(void)state;
	u = open_unwinder_opts(1u << 20, &uo, &procs, &lpm, &rows);
	a = spawn("/bin/sleep", "30", NULL);
	assert_int_equal(unwinder__sync_pid(u, a, false), 0);
	unwinder__stats(u, &st);
	assert_int_equal(st.tables_pending, 1);
	assert_true(st.builds_deferred >= 2);	/* libc, the loader (sleep's went first) */
	assert_true(unwinder__settle(u, 60000));
	unwinder__stats(u, &st);
	print_message("# %lu deferrals; %lu tables loaded\n", (unsigned long)st.builds_deferred,
		      (unsigned long)st.tables_loaded);
	assert_int_equal(st.tables_pending, 0);
	assert_true(st.tables_loaded >= 3);
	assert_int_equal(st.tables_failed, 0);
	assert_true(st.lpm_entries > 0);
	unwinder__forget_pid(u, a);
	reap(a);
	unwinder__free(u);
	procs__free(procs);
	close(lpm);
	close(rows);
}

/* Freed while the worker builds: no leak (valgrind/ASan tiers), no hang. */
static void test_free_in_flight(void **state)
{
	struct procs *procs;
	struct unwinder *u;
	int lpm, rows;
	pid_t a;

	(void)state;
	u = open_unwinder(1u << 20, &procs, &lpm, &rows);
	a = spawn("/bin/sleep", "30", NULL);
	assert_int_equal(unwinder__sync_pid(u, a, false), 0);
	unwinder__free(u);
	reap(a);
	procs__free(procs);
	close(lpm);
	close(rows);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_idle_tables),
		cmocka_unit_test(test_sync_does_not_wait),
		cmocka_unit_test(test_too_big_keeps_idle),
		cmocka_unit_test(test_no_cfi_is_final),
		cmocka_unit_test(test_deferred_builds),
		cmocka_unit_test(test_free_in_flight),
	};

	return cmocka_run_group_tests(tests, NULL, kill_kids);
}
