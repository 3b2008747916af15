/* Tests of the named-workspace glue (src/wksp/named.c): wksp_new_named,
 * attach / detach, delete, anonymous workspaces, "name:gaddr" strings and
 * wksp_map.  Regions live in a private temporary WKSP_SHMEM_DIR. */
#include "../lib/test.h"
#include "shmem/shmem_private.h"
#include <wksp/wksp.h>
#include "../../src/wksp/wksp_private.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stddef.h>
#include <sys/wait.h>
#include <unistd.h>


static char tmp_dir[64];

static int has(const char *hay, const char *needle) { return strstr(hay, needle) != NULL; }

static int dir_count(const char *dir) {
  DIR *d = opendir(dir);
  if (!d) return -1;
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)))
    if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
  closedir(d);
  return n;
}

/* ---- address strings --------------------------------------------------- */

static void test_addr_format(void) {
  char buf[WKSP_ADDR_MAX];
  CHECK_OK(wksp_addr_format("ws", 123, buf, sizeof buf));
  CHECK(!strcmp(buf, "ws:123"));
  CHECK_OK(wksp_addr_format("a", 0, buf, sizeof buf));
  CHECK(!strcmp(buf, "a:0"));
  char n39[40];
  memset(n39, 'q', 39);
  n39[39] = 0;
  CHECK_OK(wksp_addr_format(n39, UINT64_MAX, buf, sizeof buf)); /* the longest fits */
  CHECK_EQ(strlen(buf), 39 + 1 + 20);
  CHECK(!strcmp(buf + 40, "18446744073709551615"));

  memset(buf, 'Z', sizeof buf);
  CHECK_ERR(wksp_addr_format("ws", 123, buf, 6), WKSP_ERR_INVAL); /* needs 7 */
  CHECK(has(wksp_errmsg(), "needs 7 bytes"));
  CHECK_EQ(buf[0], 'Z');
  CHECK_OK(wksp_addr_format("ws", 123, buf, 7));
  CHECK_ERR(wksp_addr_format("ws", 1, NULL, 64), WKSP_ERR_INVAL);
  CHECK_ERR(wksp_addr_format("bad:name", 1, buf, sizeof buf), WKSP_ERR_INVAL);
  CHECK_ERR(wksp_addr_format(NULL, 1, buf, sizeof buf), WKSP_ERR_INVAL);
  CHECK_ERR(wksp_addr_format("ws", 1, buf, 0), WKSP_ERR_INVAL);
}

static void test_addr_parse_good(void) {
  static const struct {
    const char *s, *name;
    uint64_t gaddr;
  } ok[] = {
      {"a:0", "a", 0},
      {"ws:123", "ws", 123},
      {"ws:007", "ws", 7},
      {"w.s-1_x:0x1F", "w.s-1_x", 31},
      {"W:0X1f", "W", 31},
      {"z:0x0", "z", 0},
      {"x:18446744073709551615", "x", UINT64_MAX},
      {"x:0xffffffffffffffff", "x", UINT64_MAX},
      {"x:0x00000000000000000000ff", "x", 255},
      {"qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq:42", "qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq", 42},
  };
  for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
    char name[WKSP_NAME_MAX];
    uint64_t g = 1;
    CHECK_OK(wksp_addr_parse(ok[i].s, name, &g));
    CHECK(!strcmp(name, ok[i].name));
    CHECK_EQ(g, ok[i].gaddr);
  }
}

static void test_addr_parse_bad(void) {
  static const struct {
    const char *s, *why;
  } bad[] = {
      {"", "no ':'"},
      {"ws", "no ':'"},
      {":12", "empty"},
      {"ws:", "no digits"},
      {"ws:0x", "no digits"},
      {"ws:0X", "no digits"},
      {"ws: 1", "0x20"},
      {"ws:1 ", "0x20"},
      {"ws:+1", "0x2b"},
      {"ws:-1", "0x2d"},
      {"ws:12a", "not a decimal digit"},
      {"ws:0b1", "0x62"},
      {"ws:0xg", "not a hex digit"},
      {"ws:1:2", "0x3a"},
      {"ws:18446744073709551616", "64 bits"},
      {"ws:99999999999999999999999", "64 bits"},
      {"ws:0x10000000000000000", "64 bits"},
      {"_ws:1", "first byte"},
      {"w s:1", "byte 1"},
      {"qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq:1", "no ':'"}, /* 40-byte name */
      {"ws\n:1", "byte 2"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    char name[WKSP_NAME_MAX] = "keep";
    uint64_t g = 77;
    int rc = wksp_addr_parse(bad[i].s, name, &g);
    if (rc != WKSP_ERR_INVAL || !has(wksp_errmsg(), bad[i].why))
      fprintf(stderr, "case \"%s\": rc %d, message \"%s\"\n", bad[i].s, rc, wksp_errmsg());
    CHECK_EQ(rc, WKSP_ERR_INVAL);
    CHECK(has(wksp_errmsg(), bad[i].why));
    CHECK(!strcmp(name, "keep") && g == 77); /* outputs untouched */
  }
  char name[WKSP_NAME_MAX];
  uint64_t g;
  CHECK_ERR(wksp_addr_parse(NULL, name, &g), WKSP_ERR_INVAL);
  CHECK_ERR(wksp_addr_parse("a:1", NULL, &g), WKSP_ERR_INVAL);
  CHECK_ERR(wksp_addr_parse("a:1", name, NULL), WKSP_ERR_INVAL);
}

static void test_addr_roundtrip(void) {
  uint64_t s = test_seed();
  static const char alpha[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.";
  for (int i = 0; i < 20000; i++) {
    char name[WKSP_NAME_MAX], back[WKSP_NAME_MAX], buf[WKSP_ADDR_MAX];
    size_t len = 1 + test_rng(&s) % 39;
    for (size_t k = 0; k < len; k++) name[k] = alpha[test_rng(&s) % (k ? 65 : 62)];
    name[len] = 0;
    uint64_t g = test_rng(&s) >> (test_rng(&s) % 64), g2;
    CHECK_OK(wksp_addr_format(name, g, buf, sizeof buf));
    CHECK_OK(wksp_addr_parse(buf, back, &g2));
    CHECK(!strcmp(name, back));
    CHECK_EQ(g, g2);
    char hex[WKSP_ADDR_MAX];
    snprintf(hex, sizeof hex, "%s:0x%" PRIx64, name, g);
    CHECK_OK(wksp_addr_parse(hex, back, &g2));
    CHECK_EQ(g, g2);
  }
}

/* ---- named workspaces -------------------------------------------------- */

static void test_new_attach_detach(void) {
  CHECK_OK(wksp_new_named("w1", 1u << 20, WKSP_PAGE_NORMAL, 0600, 7, 0));
  wksp_shmem_info_t info;
  CHECK_OK(wksp_shmem_stat("w1", &info));
  CHECK_EQ(info.sz, 1u << 20);
  CHECK_EQ(info.mode, 0600);

  wksp_t *w, *w2, *ro;
  CHECK_OK(wksp_attach("w1", 0, &w));
  CHECK_EQ((uintptr_t)w % 4096, 0);
  CHECK(!strcmp(wksp_name(w), "w1"));
  CHECK(wksp_part_max(w) > 0 && wksp_data_max(w) > 0);
  CHECK(wksp_footprint(wksp_part_max(w), wksp_data_max(w)) <= info.sz);
  CHECK_OK(wksp_attach("w1", 0, &w2));
  CHECK(w == w2); /* reference counted: one mapping */
  CHECK_EQ(wksp_private_shmem_writable(w), 1);

  CHECK_OK(wksp_attach("w1", WKSP_RDONLY, &ro));
  CHECK(ro != w);
  CHECK_EQ(wksp_private_shmem_writable(ro), 0);
  CHECK(!strcmp(wksp_name(ro), "w1"));
  CHECK_OK(wksp_detach(ro));

  CHECK_OK(wksp_detach(w));
  CHECK(wksp_shmem_name(w) != NULL); /* still attached once */
  CHECK_OK(wksp_detach(w2));
  CHECK(wksp_shmem_name(w) == NULL);
  CHECK_ERR(wksp_detach(w), WKSP_ERR_INVAL);

  CHECK_ERR(wksp_attach("w1", 2, &w), WKSP_ERR_INVAL);
  CHECK(has(wksp_errmsg(), "flags"));
  CHECK_ERR(wksp_attach("w1", 0, NULL), WKSP_ERR_INVAL);
  CHECK_ERR(wksp_attach("nope", 0, &w), WKSP_ERR_NOENT);
  CHECK_ERR(wksp_attach("no pe", 0, &w), WKSP_ERR_INVAL);
  CHECK_OK(wksp_delete_named("w1"));
  CHECK_EQ(dir_count(tmp_dir), 0);
}

static void test_new_named_sizes(void) {
  wksp_shmem_info_t info;
  CHECK_OK(wksp_new_named("r", 300000, WKSP_PAGE_NORMAL, 0640, 1, 0)); /* rounded up to pages */
  CHECK_OK(wksp_shmem_stat("r", &info));
  CHECK_EQ(info.sz, 303104);
  CHECK_EQ(info.mode, 0640);
  CHECK_OK(wksp_delete_named("r"));

  /* Too small for the default part_max, fine with an explicit one. */
  CHECK_ERR(wksp_new_named("s", 10000, WKSP_PAGE_NORMAL, 0600, 1, 0), WKSP_ERR_INVAL);
  CHECK(has(wksp_errmsg(), "give a part_max"));
  CHECK(!strncmp(wksp_errcause(), "12288 bytes are too few", 23)); /* the size in whole pages */
  CHECK_OK(wksp_new_named("s", 10000, WKSP_PAGE_NORMAL, 0600, 1, 8));
  CHECK_OK(wksp_shmem_stat("s", &info));
  CHECK_EQ(info.sz, 12288);
  CHECK_OK(wksp_delete_named("s"));

  CHECK_OK(wksp_new_named("p", 1u << 20, WKSP_PAGE_NORMAL, 0600, 1, 100)); /* explicit part_max */
  wksp_t *w;
  CHECK_OK(wksp_attach("p", WKSP_RDONLY, &w));
  CHECK_EQ(wksp_part_max(w), 100);
  CHECK_OK(wksp_detach(w));
  CHECK_OK(wksp_delete_named("p"));
}

/* wksp_new_named_exact keeps part_max and data_max as given; the region is
 * the footprint rounded up to the page size. */
static void test_new_named_exact(void) {
  uint64_t data_max = 1000003, part_max = 100;
  CHECK_OK(wksp_new_named_exact("x", part_max, data_max, WKSP_PAGE_NORMAL, 0640, 9));
  wksp_shmem_info_t info;
  CHECK_OK(wksp_shmem_stat("x", &info));
  CHECK_EQ(info.sz, (wksp_footprint(part_max, data_max) + 4095) & ~UINT64_C(4095));
  CHECK(info.sz > wksp_footprint(part_max, data_max)); /* room the workspace leaves unused */
  CHECK_EQ(info.mode, 0640);
  wksp_t *w;
  CHECK_OK(wksp_attach("x", 0, &w));
  CHECK_EQ(wksp_data_max(w), data_max);
  CHECK_EQ(wksp_part_max(w), part_max);
  CHECK_EQ(wksp_seed(w), 9);
  CHECK_OK(wksp_verify(w));
  uint64_t g;
  CHECK_OK(wksp_alloc(w, 1, data_max - 4096, 1, &g)); /* the whole data region is usable */
  CHECK_OK(wksp_detach(w));
  CHECK_ERR(wksp_new_named_exact("x", part_max, 4096, WKSP_PAGE_NORMAL, 0600, 1), WKSP_ERR_EXIST);
  CHECK_OK(wksp_attach("x", WKSP_RDONLY, &w)); /* untouched */
  CHECK_EQ(wksp_data_max(w), data_max);
  CHECK_OK(wksp_detach(w));
  CHECK_OK(wksp_delete_named("x"));

  CHECK_ERR(wksp_new_named_exact("y", 0, 4096, WKSP_PAGE_NORMAL, 0600, 1), WKSP_ERR_INVAL);
  CHECK(has(wksp_errmsg(), "wksp_new_named_exact y: part_max 0 and data_max 4096"));
  CHECK_ERR(wksp_new_named_exact("y", 4, 0, WKSP_PAGE_NORMAL, 0600, 1), WKSP_ERR_INVAL);
  CHECK_ERR(wksp_new_named_exact("y", 4, UINT64_MAX - 4096, WKSP_PAGE_NORMAL, 0600, 1), WKSP_ERR_INVAL);
  CHECK_ERR(wksp_new_named_exact("y", 4, 4096, (wksp_page_t)4, 0600, 1), WKSP_ERR_INVAL);
  CHECK_ERR(wksp_new_named_exact("y", 4, 4096, WKSP_PAGE_NORMAL, 07777, 1), WKSP_ERR_INVAL);
  CHECK_ERR(wksp_new_named_exact("y:1", 4, 4096, WKSP_PAGE_NORMAL, 0600, 1), WKSP_ERR_INVAL);
  CHECK_EQ(dir_count(tmp_dir), 0);
}

/* Every failure leaves no region behind (and an existing one untouched). */
static void test_new_named_failures(void) {
  CHECK_ERR(wksp_new_named("f", 0, WKSP_PAGE_NORMAL, 0600, 1, 0), WKSP_ERR_INVAL);
  CHECK_ERR(wksp_new_named("f", UINT64_MAX, WKSP_PAGE_NORMAL, 0600, 1, 0), WKSP_ERR_INVAL);
  CHECK_ERR(wksp_new_named("f", 4096, (wksp_page_t)4, 0600, 1, 0), WKSP_ERR_INVAL);
  CHECK_ERR(wksp_new_named("f", 4096, WKSP_PAGE_NORMAL, 0600, 1, UINT64_C(1) << 40), WKSP_ERR_INVAL);
  CHECK_ERR(wksp_new_named("f", 1u << 20, WKSP_PAGE_NORMAL, 0600, 1, 1u << 20), WKSP_ERR_INVAL);
  CHECK_ERR(wksp_new_named("f", 4096, WKSP_PAGE_NORMAL, 07777, 1, 0), WKSP_ERR_INVAL);
  CHECK_ERR(wksp_new_named("f:1", 4096, WKSP_PAGE_NORMAL, 0600, 1, 0), WKSP_ERR_INVAL);
  CHECK(has(wksp_errmsg(), "wksp_new_named"));
  CHECK_ERR(wksp_new_named(NULL, 4096, WKSP_PAGE_NORMAL, 0600, 1, 0), WKSP_ERR_INVAL);
  CHECK_EQ(dir_count(tmp_dir), 0);

  CHECK_OK(wksp_new_named("f", 1u << 18, WKSP_PAGE_NORMAL, 0600, 1, 0));
  CHECK_ERR(wksp_new_named("f", 1u << 19, WKSP_PAGE_NORMAL, 0600, 2, 0), WKSP_ERR_EXIST);
  wksp_shmem_info_t info;
  CHECK_OK(wksp_shmem_stat("f", &info));
  CHECK_EQ(info.sz, 1u << 18);
  wksp_t *w;
  CHECK_OK(wksp_attach("f", 0, &w)); /* still a good workspace */
  CHECK_OK(wksp_detach(w));
  CHECK_OK(wksp_delete_named("f"));

  if (!getenv("WKSP_SHMEM_HUGE_DIR")) {
    int rc = wksp_new_named("h", 1, WKSP_PAGE_HUGE, 0600, 1, 0);
    CHECK(rc != WKSP_SUCCESS || !wksp_delete_named("h"));
  }
  CHECK_EQ(dir_count(tmp_dir), 0);
}

/* A region that is not a workspace, or whose header claims more bytes than
 * the region has, is refused by attach and by delete_named. */
static void test_attach_not_workspace(void) {
  wksp_t *w;
  CHECK_OK(wksp_shmem_create("plain", 8192, WKSP_PAGE_NORMAL, 0600));
  CHECK_ERR(wksp_attach("plain", 0, &w), WKSP_ERR_CORRUPT);
  CHECK(has(wksp_errmsg(), "wksp_attach plain"));
  CHECK_ERR(wksp_delete_named("plain"), WKSP_ERR_CORRUPT);
  CHECK(has(wksp_errmsg(), "wksp_delete_named"));
  wksp_shmem_info_t info;
  CHECK_OK(wksp_shmem_stat("plain", &info)); /* not deleted */

  /* The first 8 KiB of a 1 MiB workspace copied into an 8 KiB region. */
  CHECK_OK(wksp_new_named("big", 1u << 20, WKSP_PAGE_NORMAL, 0600, 1, 4));
  void *big, *small;
  CHECK_OK(wksp_shmem_join("big", 0, &big, NULL));
  CHECK_OK(wksp_shmem_join("plain", 1, &small, NULL));
  memcpy(small, big, 8192);
  CHECK_OK(wksp_shmem_leave(big));
  CHECK_OK(wksp_shmem_leave(small));
  CHECK_ERR(wksp_attach("plain", WKSP_RDONLY, &w), WKSP_ERR_CORRUPT);
  CHECK(wksp_shmem_name(small) == NULL); /* the failed attach left no join */

  CHECK_OK(wksp_shmem_unlink("plain"));
  CHECK_OK(wksp_delete_named("big"));
  CHECK_ERR(wksp_delete_named("big"), WKSP_ERR_NOENT);
}

/* ---- a creator killed half-way --------------------------------------------- */

static int stop_point;

static void stop_hook(int point) {
  if (point == stop_point) raise(SIGSTOP);
}

/* Removes the files of tmp_dir whose name starts with prefix; how many. */
static int remove_prefixed(const char *prefix) {
  DIR *d = opendir(tmp_dir);
  if (!d) return -1;
  int n = 0;
  struct dirent *e;
  char path[sizeof tmp_dir + sizeof e->d_name + 1];
  while ((e = readdir(d))) {
    if (strncmp(e->d_name, prefix, strlen(prefix))) continue;
    snprintf(path, sizeof path, "%s/%s", tmp_dir, e->d_name);
    n += !unlink(path);
  }
  closedir(d);
  return n;
}

/* A child creating workspace "k" stops at `point` and is SIGKILLed there.
 * *during gets what wksp_attach said while it was stopped, *after what it
 * says once it is dead.  1 if the child stopped at the point. */
static int new_killed_at(int point, int *during, int *after) {
  fflush(NULL);
  pid_t pid = fork();
  if (!pid) {
    stop_point = point;
    wksp_private_test_hook = stop_hook;
    wksp_new_named("k", 1u << 20, WKSP_PAGE_NORMAL, 0600, 1, 0);
    _exit(3); /* the point was never reached */
  }
  int st;
  if (pid < 0 || waitpid(pid, &st, WUNTRACED) != pid) return 0;
  int stopped = WIFSTOPPED(st);
  wksp_t *w;
  *during = wksp_attach("k", WKSP_RDONLY, &w);
  if (!*during) wksp_detach(w);
  kill(pid, SIGKILL);
  waitpid(pid, &st, 0);
  *after = wksp_attach("k", WKSP_RDONLY, &w);
  if (!*after) wksp_detach(w);
  return stopped;
}

/* The name of a workspace being created is never visible before the
 * workspace is complete: a creator SIGKILLed after creating the region and
 * before (or after) formatting it leaves the name free, never a region whose
 * magic is 0.  Both routes of the shmem layer: O_TMPFILE, and the hidden
 * temporary name of file systems without it (which stays behind). */
static void test_new_killed_midway(void) {
  static const int points[] = {WKSP_HOOK_NEW_REGION, WKSP_HOOK_NEW_FORMATTED};
  for (int route = 0; route < 2; route++) {
    for (size_t k = 0; k < sizeof points / sizeof points[0]; k++) {
      int during = 0, after = 0;
      wksp_private_shmem_test_no_tmpfile = route;
      int stopped = new_killed_at(points[k], &during, &after);
      wksp_private_shmem_test_no_tmpfile = 0;
      if (during != WKSP_ERR_NOENT || after != WKSP_ERR_NOENT)
        fprintf(stderr, "route %d point %d: attach while stopped %d, after the kill %d (%s)\n", route, points[k],
                during, after, wksp_errmsg());
      CHECK(stopped);
      CHECK_EQ(during, WKSP_ERR_NOENT);
      CHECK_EQ(after, WKSP_ERR_NOENT);
      CHECK_EQ(remove_prefixed(".k.wksp-new."), route);
      CHECK_EQ(dir_count(tmp_dir), 0);
    }
    /* The name is free: a new creator succeeds and leaves one file. */
    wksp_private_shmem_test_no_tmpfile = route;
    int rc = wksp_new_named("k", 1u << 20, WKSP_PAGE_NORMAL, 0640, 1, 0);
    int n = dir_count(tmp_dir);
    wksp_private_shmem_test_no_tmpfile = 0;
    CHECK_OK(rc);
    CHECK_EQ(n, 1);
    wksp_t *w;
    CHECK_OK(wksp_attach("k", 0, &w));
    CHECK_OK(wksp_verify(w));
    CHECK_OK(wksp_detach(w));
    wksp_shmem_info_t info;
    CHECK_OK(wksp_shmem_stat("k", &info));
    CHECK_EQ(info.mode, 0640);
    CHECK_OK(wksp_delete_named("k"));
  }
}

/* wksp_delete_region removes a region whatever it holds, saying what that
 * was; a file that is not a region is left alone. */
static void test_delete_region(void) {
  char note[WKSP_NOTE_MAX];
  /* Zero-filled: what a creator killed before formatting used to leave. */
  CHECK_OK(wksp_shmem_create("zero", 8192, WKSP_PAGE_NORMAL, 0600));
  CHECK_ERR(wksp_delete_named("zero"), WKSP_ERR_CORRUPT);
  CHECK_OK(wksp_delete_region("zero", note, sizeof note));
  CHECK(!strcmp(note, "held no workspace (bad magic 0x0000000000000000)"));
  CHECK_ERR(wksp_shmem_stat("zero", &(wksp_shmem_info_t){0}), WKSP_ERR_NOENT);

  /* A good workspace: no note. */
  CHECK_OK(wksp_new_named("good", 1u << 18, WKSP_PAGE_NORMAL, 0600, 1, 0));
  strcpy(note, "stale");
  CHECK_OK(wksp_delete_region("good", note, sizeof note));
  CHECK(!strcmp(note, ""));

  /* The magic is right but the header claims more than the region holds. */
  CHECK_OK(wksp_new_named("dmg", 1u << 18, WKSP_PAGE_NORMAL, 0600, 1, 0));
  void *mem;
  CHECK_OK(wksp_shmem_join("dmg", 1, &mem, NULL));
  ((struct wksp *)mem)->part_max += 1000;
  CHECK_OK(wksp_shmem_leave(mem));
  CHECK_OK(wksp_delete_region("dmg", note, 24)); /* truncated note */
  CHECK_EQ(strlen(note), 23);
  CHECK(has(note, "held a damaged"));
  CHECK_OK(wksp_shmem_create("nonote", 4096, WKSP_PAGE_NORMAL, 0600));
  CHECK_OK(wksp_delete_region("nonote", NULL, 0));

  /* Not a region (size not a multiple of the page size): left alone. */
  char path[256];
  snprintf(path, sizeof path, "%s/odd", tmp_dir);
  int fd = open(path, O_CREAT | O_EXCL | O_WRONLY, 0600);
  CHECK(fd >= 0);
  CHECK_EQ(write(fd, "abc", 3), 3);
  close(fd);
  strcpy(note, "stale");
  CHECK_ERR(wksp_delete_region("odd", note, sizeof note), WKSP_ERR_CORRUPT);
  CHECK(has(wksp_errmsg(), "wksp_delete_region") && has(wksp_errmsg(), "not a positive multiple"));
  CHECK(!strcmp(note, "")); /* cleared, nothing else */
  CHECK(!access(path, F_OK));
  unlink(path);

  CHECK_ERR(wksp_delete_region("gone", note, sizeof note), WKSP_ERR_NOENT);
  CHECK_ERR(wksp_delete_region("a/b", note, sizeof note), WKSP_ERR_INVAL);
  CHECK_EQ(dir_count(tmp_dir), 0);
}

/* ---- one damaged header byte ----------------------------------------------- */

enum { HDR_PART_MAX = 64, HDR_ALLOCS = 12 };

/* Where header byte `off` lies: the truth (magic, data_max, part_max,
 * name), which may only give a clear CORRUPT or be harmless; derived state
 * (seed: the treaps' shape follows it; gen; the roots and the free index
 * geometry), which the recovery path must repair; or the lock. */
enum { HDR_TRUTH, HDR_DERIVED, HDR_LOCK };

static int hdr_kind(size_t off) {
  if (off >= offsetof(struct wksp, lock) && off < offsetof(struct wksp, gen)) return HDR_LOCK;
  if (off < offsetof(struct wksp, seed) || (off >= offsetof(struct wksp, name) && off < offsetof(struct wksp, lock)))
    return HDR_TRUTH;
  return HDR_DERIVED;
}

typedef struct {
  void *mem;      /* a read-write join of the region, for the damage */
  uint8_t *image; /* the region as it was before */
  uint64_t sz;
  wksp_part_t allocs[HDR_PART_MAX];
  size_t nallocs;
} hdr_case_t;

/* Every allocation of the image is there with its range, tag and bytes. */
static int hdr_allocs_intact(wksp_t *w, const hdr_case_t *h) {
  wksp_part_t now[HDR_PART_MAX];
  size_t n = 0;
  uint64_t tags[4] = {1, 2, 3, 4};
  if (wksp_tag_query(w, tags, 4, now, HDR_PART_MAX, &n) || n != h->nallocs ||
      memcmp(now, h->allocs, n * sizeof *now))
    return 0;
  return 1;
}

/* The bytes of every allocation are as in the image, whatever the calls
 * said (no damage to data that was fine). */
static int hdr_bytes_intact(const hdr_case_t *h) {
  for (size_t i = 0; i < h->nallocs; i++) {
    const wksp_part_t *p = &h->allocs[i];
    if (memcmp((uint8_t *)h->mem + p->gaddr_lo, h->image + p->gaddr_lo, p->gaddr_hi - p->gaddr_lo)) return 0;
  }
  return 1;
}

/* Damage visible to a read-only verify (which repairs nothing)?  A gen left
 * odd is visible by itself (and would make the read-only verify wait). */
static int hdr_damage_visible(void) {
  wksp_t *ro;
  if (wksp_attach("hdr", WKSP_RDONLY, &ro)) return 1;
  uint32_t gen = ((const struct wksp *)ro)->gen;
  int bad = (gen & WKSP_GEN_FLAGS) || wksp_verify(ro);
  wksp_detach(ro);
  return bad;
}

/* Allocates and frees at once, as an application would after the damage;
 * 0 if both worked, else the first error code. */
static int hdr_alloc_free(wksp_t *w) {
  uint64_t g;
  int r = wksp_alloc(w, 64, 5000, 9, &g);
  return r ? r : wksp_free(w, g);
}

static int documented(int r) { return r == 0 || r == WKSP_ERR_CORRUPT || r == WKSP_ERR_FULL || r == WKSP_ERR_INVAL; }

/* One damaged byte, then either wksp_check first (check_first) or an
 * allocation first.  Returns 0 if the outcome is allowed, else prints why. */
static int hdr_one(hdr_case_t *h, size_t off, uint8_t v, int check_first) {
  memcpy(h->mem, h->image, h->sz);
  ((uint8_t *)h->mem)[off] = v;
  int kind = hdr_kind(off), visible = check_first && hdr_damage_visible();
  char note[WKSP_NOTE_MAX] = "", msg[512] = "";
  wksp_t *w;
  int ra = wksp_attach("hdr", 0, &w), rc = ra, first = 0, ok;
  if (ra) {
    snprintf(msg, sizeof msg, "%s", wksp_errmsg());
    ok = ra == WKSP_ERR_CORRUPT && kind == HDR_TRUTH && msg[0];
  } else {
    if (!check_first) first = hdr_alloc_free(w);
    rc = wksp_check(w, note, sizeof note);
    snprintf(msg, sizeof msg, "%s", rc ? wksp_errmsg() : note);
    if (!rc) {
      /* Repaired (or harmless): complete, every allocation intact, and
       * allocating works; the first allocation already did. */
      ok = !first && (!visible || note[0]) && !wksp_verify(w) && hdr_allocs_intact(w, h) && !hdr_alloc_free(w) &&
           !wksp_verify(w);
    } else {
      /* Not repairable: a clear CORRUPT, and every later call a documented
       * code, never a crash. */
      uint64_t t;
      wksp_usage_t u;
      int ra2 = hdr_alloc_free(w), rf = wksp_free(w, h->allocs[0].gaddr_lo), rv = wksp_verify(w);
      int rt = wksp_tag(w, h->allocs[1].gaddr_lo, &t), ru = wksp_usage(w, NULL, 0, &u);
      ok = rc == WKSP_ERR_CORRUPT && kind != HDR_DERIVED && msg[0] && documented(first) && documented(ra2) &&
           (rf == WKSP_ERR_CORRUPT || rf == WKSP_ERR_INVAL) && rv == WKSP_ERR_CORRUPT &&
           (rt == WKSP_ERR_CORRUPT || !rt) && (ru == WKSP_ERR_CORRUPT || !ru);
    }
    wksp_detach(w);
  }
  ok = ok && hdr_bytes_intact(h);
  if (!ok)
    fprintf(stderr, "header byte %zu (%s) = 0x%02x, %s first: attach %d, first alloc %d, check %d, damage %s: %s\n",
            off, kind == HDR_TRUTH ? "truth" : kind == HDR_DERIVED ? "derived" : "lock", v,
            check_first ? "check" : "alloc", ra, first, rc, visible ? "visible" : "not seen", msg);
  return ok ? 0 : -1;
}

/* A damaged lock word that names a thread (the lock reads as held). */
static int hdr_lock_names_holder(hdr_case_t *h, size_t off, uint8_t v) {
  memcpy(h->mem, h->image, h->sz);
  ((uint8_t *)h->mem)[off] = v;
  wksp_t *w;
  wksp_lock_info_t li = {0};
  if (wksp_attach("hdr", WKSP_RDONLY, &w)) return 0;
  int held = !wksp_lock_info(w, &li) && li.state == WKSP_LOCK_HELD;
  wksp_detach(w);
  return held;
}

static int hdr_give_up(const wksp_t *w, int64_t pid, uint64_t waited_ns, void *ctx) {
  (void)w, (void)pid, (void)waited_ns;
  ++*(int *)ctx;
  return WKSP_ERR_DEADLK;
}

/* A lock word naming thread tid reads as that live holder: wksp_lock_info
 * names it and a waiter is asked (its check runs, which may give up)
 * instead of the lock being taken; no byte changes.  (Our own tid in it
 * fails at once: the mutex checks errors.) */
static int hdr_lock_held(hdr_case_t *h, size_t off, uint8_t v) {
  memcpy(h->mem, h->image, h->sz);
  ((uint8_t *)h->mem)[off] = v;
  uint32_t word;
  memcpy(&word, (uint8_t *)h->mem + offsetof(struct wksp, lock), 4);
  wksp_t *w;
  wksp_lock_info_t li = {0};
  int asked = 0, ok = !wksp_attach("hdr", 0, &w);
  if (ok) {
    wksp_private_waiter_t wt = {.check = hdr_give_up, .check_ctx = &asked};
    int named = !wksp_lock_info(w, &li) && li.state == WKSP_LOCK_HELD && li.tid == (word & 0x3fffffffu);
    int r = wksp_private_lock_wait(w, &wt);
    ok = named && (r == WKSP_ERR_DEADLK ? asked == 1 : li.tid == (uint32_t)getpid() && r < 0);
    if (!r) wksp_private_unlock(w);
    wksp_detach(w);
  }
  ok = ok && !memcmp((uint8_t *)h->mem + offsetof(struct wksp, lock) + 4, h->image + offsetof(struct wksp, lock) + 4,
                     h->sz - offsetof(struct wksp, lock) - 4) &&
       !memcmp(h->mem, h->image, offsetof(struct wksp, lock));
  if (!ok) fprintf(stderr, "header byte %zu (lock) = 0x%02x: lock word 0x%08x, state %d, tid %u, check asked %d times\n", off, v, word, (int)li.state, li.tid, asked);
  return ok ? 0 : -1;
}

/* Every byte of the header, set to 0x00 and 0xff and with each of its bits
 * flipped (skipping values it already has): no crash and no undefined
 * behaviour (run under SAN=1 too); damage to derived state is repaired by
 * the recovery path, whether the first call after it allocates (which must
 * work) or is wksp_check (which says what it repaired, never "ok" for
 * damage a read-only verify sees), with every allocation intact; damage to
 * the truth gives a clear CORRUPT (or is harmless), never a silent change.
 * The lock word (the first 4 bytes of the mutex) too: a value that reads as
 * free or as a dead holder is recovered as above; one that names a thread
 * reads as a live holder, which is waited for as any holder is
 * (hdr_lock_held). */
static void test_header_every_byte(void) {
  hdr_case_t h = {0};
  CHECK_OK(wksp_new_named("hdr", 1u << 20, WKSP_PAGE_NORMAL, 0600, 5, HDR_PART_MAX));
  wksp_t *w;
  CHECK_OK(wksp_attach("hdr", 0, &w));
  uint64_t g[HDR_ALLOCS];
  for (int i = 0; i < HDR_ALLOCS; i++) CHECK_OK(wksp_alloc(w, 64, 1000 + 300 * (uint64_t)i, 1 + (uint64_t)i % 4, &g[i]));
  CHECK_OK(wksp_free(w, g[3]));
  CHECK_OK(wksp_free(w, g[7]));
  uint64_t tags[4] = {1, 2, 3, 4};
  CHECK_OK(wksp_tag_query(w, tags, 4, h.allocs, HDR_PART_MAX, &h.nallocs));
  for (size_t i = 0; i < h.nallocs; i++)
    for (uint64_t a = h.allocs[i].gaddr_lo; a < h.allocs[i].gaddr_hi; a++) ((uint8_t *)w)[a] = (uint8_t)(a * 13 + i);
  CHECK_OK(wksp_detach(w));
  CHECK_OK(wksp_shmem_join("hdr", 1, &h.mem, &h.sz));
  h.image = malloc(h.sz);
  CHECK(h.image);
  memcpy(h.image, h.mem, h.sz);
  size_t lock_word = offsetof(struct wksp, lock), fails = 0, cases = 0;
  for (size_t off = 0; off < WKSP_HDR_SZ; off++) {
    uint8_t orig = h.image[off], vals[10] = {0x00, 0xff};
    for (int b = 0; b < 8; b++) vals[2 + b] = (uint8_t)(orig ^ (1u << b));
    for (int k = 0; k < 10; k++) {
      if (vals[k] == orig) continue;
      cases += 2;
      if (off >= lock_word && off < lock_word + 4 && hdr_lock_names_holder(&h, off, vals[k]))
        fails += 2 * (hdr_lock_held(&h, off, vals[k]) != 0);
      else
        fails += (hdr_one(&h, off, vals[k], 1) != 0) + (hdr_one(&h, off, vals[k], 0) != 0);
    }
  }
  memcpy(h.mem, h.image, h.sz);
  free(h.image);
  CHECK_OK(wksp_shmem_leave(h.mem));
  CHECK_OK(wksp_attach("hdr", 0, &w));
  CHECK_OK(wksp_verify(w));
  CHECK_OK(wksp_detach(w));
  CHECK_OK(wksp_delete_named("hdr"));
  if (fails) fprintf(stderr, "%zu of %zu damaged headers handled wrongly\n", fails, cases);
  CHECK_EQ(fails, 0);
  CHECK(cases > 2000);
}

/* Deleting removes the name; an attachment keeps working until detached. */
static void test_delete_while_attached(void) {
  wksp_t *w;
  CHECK_OK(wksp_new_named("d", 1u << 18, WKSP_PAGE_NORMAL, 0600, 1, 0));
  CHECK_OK(wksp_attach("d", 0, &w));
  CHECK_OK(wksp_delete_named("d"));
  CHECK_ERR(wksp_attach("d", 0, &(wksp_t *){0}), WKSP_ERR_NOENT);
  CHECK(!strcmp(wksp_name(w), "d"));
  CHECK_OK(wksp_detach(w));
  CHECK_EQ(dir_count(tmp_dir), 0);
}

static void test_anon_workspace(void) {
  wksp_t *w;
  CHECK_OK(wksp_new_anon("an", 300000, WKSP_PAGE_NORMAL, 3, 0, &w));
  CHECK_EQ((uintptr_t)w % 4096, 0);
  CHECK(!strcmp(wksp_name(w), "an"));
  CHECK_EQ(wksp_private_shmem_writable(w), 1);
  CHECK(wksp_shmem_name(w) == NULL);
  CHECK_ERR(wksp_detach(w), WKSP_ERR_INVAL); /* not attached by name */
  CHECK_ERR(wksp_delete_anon((wksp_t *)((uint8_t *)w + 4096)), WKSP_ERR_INVAL);
  CHECK_OK(wksp_delete_anon(w));
  CHECK_ERR(wksp_delete_anon(w), WKSP_ERR_INVAL);
  CHECK_ERR(wksp_delete_anon(NULL), WKSP_ERR_INVAL);

  CHECK_ERR(wksp_new_anon("an", 300000, WKSP_PAGE_NORMAL, 3, 0, NULL), WKSP_ERR_INVAL);
  CHECK_ERR(wksp_new_anon("a n", 100000, WKSP_PAGE_NORMAL, 3, 0, &w), WKSP_ERR_INVAL);
  CHECK_ERR(wksp_new_anon("an", 0, WKSP_PAGE_NORMAL, 3, 0, &w), WKSP_ERR_INVAL);

  /* An attached named workspace is not anonymous. */
  CHECK_OK(wksp_new_named("nm", 1u << 18, WKSP_PAGE_NORMAL, 0600, 1, 0));
  CHECK_OK(wksp_attach("nm", 0, &w));
  CHECK_ERR(wksp_delete_anon(w), WKSP_ERR_INVAL);
  CHECK(!strcmp(wksp_name(w), "nm")); /* and was not deleted */
  CHECK_OK(wksp_detach(w));
  CHECK_OK(wksp_delete_named("nm"));
}

static void test_map_unmap(void) {
  wksp_t *w;
  CHECK_OK(wksp_new_named("m", 1u << 20, WKSP_PAGE_NORMAL, 0600, 1, 0));
  CHECK_OK(wksp_attach("m", 0, &w));
  uint64_t lo = wksp_gaddr_lo(w);
  char addr[WKSP_ADDR_MAX];
  CHECK_OK(wksp_addr_format("m", lo + 100, addr, sizeof addr));
  void *p;
  CHECK_OK(wksp_map(addr, &p));
  CHECK(p == (uint8_t *)w + lo + 100);
  *(volatile uint8_t *)p = 9;
  snprintf(addr, sizeof addr, "m:0x%" PRIx64, lo + 100);
  void *p2;
  CHECK_OK(wksp_map(addr, &p2));
  CHECK(p2 == p);
  CHECK_OK(wksp_unmap(p2));
  CHECK_OK(wksp_unmap(p));
  CHECK(wksp_shmem_name(w) != NULL); /* our own attach remains */

  /* Failures leave no attachment behind. */
  CHECK_ERR(wksp_map("m:0", &p), WKSP_ERR_INVAL);
  snprintf(addr, sizeof addr, "m:%" PRIu64, wksp_gaddr_hi(w) + (1u << 20));
  CHECK_ERR(wksp_map(addr, &p), WKSP_ERR_INVAL);
  CHECK(has(wksp_errmsg(), "not inside workspace m"));
  CHECK_ERR(wksp_map("m:zz", &p), WKSP_ERR_INVAL);
  CHECK_ERR(wksp_map("gone:4096", &p), WKSP_ERR_NOENT);
  CHECK_ERR(wksp_map(NULL, &p), WKSP_ERR_INVAL);
  CHECK_ERR(wksp_map("m:1", NULL), WKSP_ERR_INVAL);
  CHECK_OK(wksp_detach(w));
  CHECK(wksp_shmem_name(w) == NULL);

  int local;
  CHECK_ERR(wksp_unmap(&local), WKSP_ERR_INVAL);
  CHECK_ERR(wksp_unmap(NULL), WKSP_ERR_INVAL);
  CHECK_OK(wksp_delete_named("m"));
}

/* Another process attaches by name and sees the same bytes. */
static void test_attach_across_fork(void) {
  wksp_t *w;
  CHECK_OK(wksp_new_named("x", 1u << 18, WKSP_PAGE_NORMAL, 0600, 1, 0));
  CHECK_OK(wksp_attach("x", 0, &w));
  uint64_t g = wksp_gaddr_lo(w) + 8;
  fflush(NULL);
  pid_t pid = fork();
  if (pid == 0) {
    char addr[WKSP_ADDR_MAX];
    void *p;
    int ok = !wksp_addr_format("x", g, addr, sizeof addr) && !wksp_map(addr, &p);
    if (ok) *(volatile uint64_t *)p = 0x1122334455667788ull;
    ok = ok && !wksp_unmap(p);
    _exit(ok ? 0 : 1);
  }
  int st;
  CHECK(pid > 0 && waitpid(pid, &st, 0) == pid && WIFEXITED(st) && !WEXITSTATUS(st));
  CHECK_EQ(*(uint64_t *)wksp_laddr(w, g), 0x1122334455667788ull);
  CHECK_OK(wksp_detach(w));
  CHECK_OK(wksp_delete_named("x"));
}

static int hook_calls;
static void count_hook(int err, const char *msg, void *ctx) {
  (void)err, (void)msg, (void)ctx;
  hook_calls++;
}

/* One failure, one logged message, even when the glue asks the shmem
 * layer questions on the way. */
static void test_failures_log_once(void) {
  int local;
  hook_calls = 0;
  wksp_log_set(count_hook, NULL);
  int r1 = wksp_detach((wksp_t *)&local), c1 = hook_calls;
  int r2 = wksp_unmap(&local), c2 = hook_calls - c1;
  int r3 = wksp_delete_anon((wksp_t *)&local), c3 = hook_calls - c1 - c2;
  wksp_log_set(NULL, NULL);
  CHECK_EQ(r1, WKSP_ERR_INVAL);
  CHECK_EQ(r2, WKSP_ERR_INVAL);
  CHECK_EQ(r3, WKSP_ERR_INVAL);
  CHECK(c1 == 1 && c2 == 1 && c3 == 1);
}

/* A read-only attachment refuses to mutate. */
static void test_rdonly_alloc_perm(void) {
  wksp_t *rw, *ro;
  uint64_t g;
  CHECK_OK(wksp_new_named("ro", 1u << 20, WKSP_PAGE_NORMAL, 0600, 1, 0));
  CHECK_OK(wksp_attach("ro", 0, &rw));
  CHECK_OK(wksp_attach("ro", WKSP_RDONLY, &ro));
  CHECK_ERR(wksp_alloc(ro, 0, 100, 1, &g), WKSP_ERR_PERM);
  CHECK_OK(wksp_alloc(rw, 0, 100, 1, &g));
  CHECK_ERR(wksp_free(ro, g), WKSP_ERR_PERM);
  CHECK_OK(wksp_free(rw, g));
  CHECK_OK(wksp_detach(ro));
  CHECK_OK(wksp_detach(rw));
  CHECK_OK(wksp_delete_named("ro"));
}

int main(void) {
  snprintf(tmp_dir, sizeof tmp_dir, "%s/wksp-test-XXXXXX", access("/dev/shm", W_OK) ? "/tmp" : "/dev/shm");
  if (!mkdtemp(tmp_dir)) return 2;
  setenv("WKSP_SHMEM_DIR", tmp_dir, 1);

  TEST_RUN(test_addr_format);
  TEST_RUN(test_addr_parse_good);
  TEST_RUN(test_addr_parse_bad);
  TEST_RUN(test_addr_roundtrip);
  TEST_RUN(test_new_attach_detach);
  TEST_RUN(test_new_named_sizes);
  TEST_RUN(test_new_named_exact);
  TEST_RUN(test_new_named_failures);
  TEST_RUN(test_attach_not_workspace);
  TEST_RUN(test_delete_while_attached);
  TEST_RUN(test_new_killed_midway);
  TEST_RUN(test_delete_region);
  TEST_RUN(test_header_every_byte);
  TEST_RUN(test_anon_workspace);
  TEST_RUN(test_map_unmap);
  TEST_RUN(test_attach_across_fork);
  TEST_RUN(test_failures_log_once);
  TEST_RUN(test_rdonly_alloc_perm);

  int left = dir_count(tmp_dir);
  if (left) printf("FAIL %s/cleanup: %d files left in %s\n", test_prog_name(), left, tmp_dir);
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp_dir);
  if (left && system(cmd)) left++;
  rmdir(tmp_dir);
  return test_done() || left;
}
