/* tests/lib/test.h: the whole test framework.  A test program is a set of
 * static void functions run by TEST_RUN(); each prints one line
 *   PASS <program>/<test>      or      FAIL <program>/<test>
 * which tests/run.sh counts.  CHECK stops the current test at its first
 * failing condition and says where and why on stderr.
 *
 *   static void test_alloc_basic(void) { CHECK(x == 1); CHECK_EQ(a, b); }
 *   int main(void) { TEST_RUN(test_alloc_basic); return test_done(); }
 */
#ifndef WKSP_TESTS_TEST_H
#define WKSP_TESTS_TEST_H

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static int test_cur_failed;
static int test_n_failed;
static int test_n_passed;

/* Macros only because a failure must name its file, line and expression. */
#define CHECK(cond)                                                              \
  do {                                                                           \
    if (!(cond)) {                                                               \
      fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);   \
      test_cur_failed = 1;                                                       \
      return;                                                                    \
    }                                                                            \
  } while (0)

#define CHECK_EQ(a, b)                                                           \
  do {                                                                           \
    uint64_t check_a_ = (uint64_t)(a), check_b_ = (uint64_t)(b);                 \
    if (check_a_ != check_b_) {                                                  \
      fprintf(stderr, "%s:%d: CHECK failed: %s == %s (%" PRIu64 " vs %" PRIu64 ")\n", \
              __FILE__, __LINE__, #a, #b, check_a_, check_b_);                   \
      test_cur_failed = 1;                                                       \
      return;                                                                    \
    }                                                                            \
  } while (0)

/* CHECK that a wksp call returned `want`, printing the recorded message
 * when it did not. */
#define CHECK_ERR(call, want)                                                    \
  do {                                                                           \
    int check_r_ = (call);                                                       \
    if (check_r_ != (want)) {                                                    \
      fprintf(stderr, "%s:%d: %s returned %d, want %d (%s)\n", __FILE__,         \
              __LINE__, #call, check_r_, (int)(want), wksp_errmsg());            \
      test_cur_failed = 1;                                                       \
      return;                                                                    \
    }                                                                            \
  } while (0)

#define CHECK_OK(call) CHECK_ERR(call, 0)

#define TEST_RUN(fn) test_run_one(#fn, fn)

static inline const char *test_prog_name(void) {
  extern char *program_invocation_short_name;
  return program_invocation_short_name;
}

/* WKSP_TEST_ONLY=a,b,...: run only the tests whose name contains one of
 * these words (e.g. the delta sections of a reliability program). */
static inline int test_selected(const char *name) {
  const char *e = getenv("WKSP_TEST_ONLY");
  if (!e || !*e) return 1;
  for (const char *w = e; *w;) {
    size_t n = strcspn(w, ",");
    for (const char *p = name; n && *p; p++)
      if (!strncmp(p, w, n)) return 1;
    w += n + (w[n] == ',');
  }
  return 0;
}

/* WKSP_TEST_SKIP=prog/test,...: tests not run where they cannot hold (the
 * aarch64 run under qemu-user, scripts/cross.sh: an emulator that ignores
 * madvise and robust futexes); each is reported as a SKIP line. */
static inline int test_skipped(const char *name) {
  const char *e = getenv("WKSP_TEST_SKIP");
  char full[256];
  snprintf(full, sizeof full, "%s/%s", test_prog_name(), name);
  for (const char *w = e ? e : ""; *w;) {
    size_t n = strcspn(w, ",");
    if (n == strlen(full) && !strncmp(w, full, n)) return 1;
    w += n + (w[n] == ',');
  }
  return 0;
}

static inline void test_run_one(const char *name, void (*fn)(void)) {
  if (!test_selected(name)) return;
  if (test_skipped(name)) {
    printf("SKIP %s/%s\n", test_prog_name(), name);
    fflush(stdout);
    return;
  }
  test_cur_failed = 0;
  fn();
  if (test_cur_failed) test_n_failed++; else test_n_passed++;
  printf("%s %s/%s\n", test_cur_failed ? "FAIL" : "PASS", test_prog_name(), name);
  fflush(stdout);
}

static inline int test_done(void) { return test_n_failed ? 1 : 0; }

/* splitmix64: the deterministic generator used by tests and by the
 * reference vectors' README. */
static inline uint64_t test_rng(uint64_t *s) {
  uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

/* Seed for randomized tests: WKSP_TEST_SEED if set, else a fixed value, so a
 * failure can be replayed.  The seed in use is printed once. */
static inline uint64_t test_seed(void) {
  const char *e = getenv("WKSP_TEST_SEED");
  uint64_t s = e ? strtoull(e, NULL, 0) : 0x5eed1234ull;
  fprintf(stderr, "%s: WKSP_TEST_SEED=%" PRIu64 "\n", test_prog_name(), s);
  return s;
}

/* Entries of directory d other than . and .. (-1 if it cannot be read). */
static inline int test_dir_entries(const char *d) {
  DIR *h = opendir(d);
  struct dirent *e;
  int n = 0;
  if (!h) return -1;
  while ((e = readdir(h))) n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
  closedir(h);
  return n;
}

/* Removes every entry of directory d (flat), then d itself. */
static inline void test_rmdir(const char *d) {
  DIR *h = opendir(d);
  struct dirent *e;
  char p[4096];
  while (h && (e = readdir(h)))
    if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
      snprintf(p, sizeof p, "%s/%s", d, e->d_name);
      unlink(p);
    }
  if (h) closedir(h);
  rmdir(d);
}

/* Threads there before main that are not the program's: an emulator's
 * own (qemu-user runs one beside the program's, scripts/cross.sh). */
static int test_threads_before_main;
__attribute__((constructor)) static void test_threads_at_start(void) {
  test_threads_before_main = test_dir_entries("/proc/self/task") - 1;
}

/* Threads of this process; with want >= 0, given up to 1 s to come down to
 * want: a thread pthread_join has reaped can stay listed in /proc/self/task
 * for a moment while the kernel finishes its exit; one really left behind
 * stays. */
static inline int test_thread_count(int want) {
  int n = -1;
  for (int i = 0; i == 0 || (want >= 0 && n != want && i < 1000); i++) {
    if (i) usleep(1000);
    n = test_dir_entries("/proc/self/task") - test_threads_before_main;
  }
  return n;
}

/* ---- tests in a child process ------------------------------------------
 * For what must not touch the test program itself (a private mount
 * namespace, another uid, a death by a signal): fn runs in a child whose
 * exit status is the result: 0 pass, 1 fail (CHILD_CHECK says why on
 * stderr), CHILD_SKIP not possible here (the caller prints a SKIP line). */
enum { CHILD_SKIP = 77 };

#define CHILD_CHECK(c)                                                                  \
  do {                                                                                  \
    if (!(c)) {                                                                         \
      fprintf(stderr, "%s:%d: child CHECK failed: %s (%s)\n", __FILE__, __LINE__, #c,    \
              wksp_errmsg());                                                           \
      return 1;                                                                         \
    }                                                                                   \
  } while (0)

/* fn's result in a child; 1 if it could not run or did not exit. */
static inline int test_run_child(int (*fn)(void)) {
  fflush(NULL);
  pid_t pid = fork();
  if (pid == 0) _exit(fn());
  int st;
  if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st)) return 1;
  return WEXITSTATUS(st);
}

/* In a child: a private mount namespace with a new mount of `type` (opts)
 * at parent/mnt (created), its path in dir.  0, CHILD_SKIP (not root, no
 * namespaces, the mount refused) or 1. */
static inline int test_private_mount(const char *type, const char *opts, const char *parent,
                                     char *dir, size_t n) {
  if (geteuid() != 0) return CHILD_SKIP;
  if (unshare(CLONE_NEWNS)) return CHILD_SKIP;
  /* Type and source are ignored for a propagation change; named for valgrind. */
  if (mount("none", "/", "none", MS_REC | MS_PRIVATE, NULL)) return CHILD_SKIP;
  snprintf(dir, n, "%s/mnt", parent);
  if (mkdir(dir, 0700)) return 1;
  if (mount("none", dir, type, 0, opts)) return CHILD_SKIP;
  return 0;
}

#endif
