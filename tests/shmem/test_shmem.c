/* Tests of the shmem layer (src/shmem/): names, named regions in a private
 * temporary WKSP_SHMEM_DIR, joins, anonymous regions, hugetlbfs discovery.
 * Tests that need root and a private mount namespace (a hugetlbfs or a tiny
 * tmpfs mount) run in a child process and print a SKIP line, never PASS or
 * FAIL, when that is not possible. */
#include "../lib/test.h"
#include "shmem/shmem_private.h"
#include "util/err.h"
#include <wksp/shmem.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char tmp_dir[64]; /* the private WKSP_SHMEM_DIR of this program */

static int has(const char *hay, const char *needle) { return strstr(hay, needle) != NULL; }

/* Number of entries (besides . and ..) in dir. */
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

/* Removes every file of dir, then dir itself. */
static void dir_remove(const char *dir) {
  DIR *d = opendir(dir);
  if (!d) return;
  struct dirent *e;
  char p[512];
  while ((e = readdir(d))) {
    if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
    snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
    if (unlink(p)) rmdir(p);
  }
  closedir(d);
  rmdir(dir);
}

static void make_tmp_dir(char *out, size_t n) {
  snprintf(out, n, "%s/wksp-test-XXXXXX", access("/dev/shm", W_OK) ? "/tmp" : "/dev/shm");
  if (!mkdtemp(out)) {
    perror("mkdtemp");
    exit(2);
  }
}

/* Does /proc/mounts list a hugetlbfs of this page size?  (Then the "no
 * mount" error cannot be provoked without a private mount namespace.) */
static int system_has_huge_mount(wksp_page_t page) {
  FILE *f = fopen("/proc/mounts", "r");
  char dir[256];
  int r = f && wksp_private_shmem_mounts_find(f, wksp_page_sz(page), 2u << 20, dir, sizeof dir);
  if (f) fclose(f);
  return r;
}

/* ---- names ------------------------------------------------------------- */

static void test_page_sz(void) {
  CHECK_EQ(wksp_page_sz(WKSP_PAGE_NORMAL), 4096);
  CHECK_EQ(wksp_page_sz(WKSP_PAGE_HUGE), 2u << 20);
  CHECK_EQ(wksp_page_sz(WKSP_PAGE_GIGANTIC), 1u << 30);
  CHECK_EQ(wksp_page_sz((wksp_page_t)3), 0);
  CHECK_EQ(wksp_page_sz((wksp_page_t)-1), 0);
}

static void test_name_valid(void) {
  char n39[40];
  memset(n39, 'z', 39);
  n39[39] = 0;
  const char *ok[] = {"a", "Z", "0", "9", "a.b-c_d", "0_", "A-", "x.", "ws1", n39};
  for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) CHECK_OK(wksp_name_check(ok[i]));
}

static void test_name_invalid(void) {
  CHECK_ERR(wksp_name_check(NULL), WKSP_ERR_INVAL);
  CHECK(has(wksp_errmsg(), "NULL"));
  CHECK_ERR(wksp_name_check(""), WKSP_ERR_INVAL);
  CHECK(has(wksp_errmsg(), "empty"));

  char n40[41], n100[101];
  memset(n40, 'a', 40);
  n40[40] = 0;
  CHECK_ERR(wksp_name_check(n40), WKSP_ERR_INVAL);
  CHECK(has(wksp_errmsg(), "too long"));
  memset(n100, 'b', 100);
  n100[100] = 0;
  CHECK_ERR(wksp_name_check(n100), WKSP_ERR_INVAL);
  CHECK(has(wksp_errmsg(), "more than 39"));

  /* A 40-byte buffer with no NUL must not be read past its end: the check
   * reads at most 40 bytes (ASan would catch an overread). */
  char *raw = malloc(40);
  CHECK(raw);
  memset(raw, 'c', 40);
  int rc = wksp_name_check(raw);
  free(raw);
  CHECK_EQ(rc, WKSP_ERR_INVAL);

  CHECK_ERR(wksp_name_check("_a"), WKSP_ERR_INVAL);
  CHECK(has(wksp_errmsg(), "first byte is 0x5f"));
  CHECK_ERR(wksp_name_check("a/b"), WKSP_ERR_INVAL);
  CHECK(has(wksp_errmsg(), "byte 1 is 0x2f"));
  CHECK_ERR(wksp_name_check("ab:1"), WKSP_ERR_INVAL);
  CHECK(has(wksp_errmsg(), "byte 2 is 0x3a"));
  CHECK_ERR(wksp_name_check("a\nb"), WKSP_ERR_INVAL);
  CHECK(has(wksp_errmsg(), "\"a\\nb\"")); /* shown escaped (util/esc.h) */
}

/* Every byte value in first and in later position. */
static void test_name_every_byte(void) {
  for (int c = 1; c < 256; c++) {
    int alnum = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    int punct = c == '_' || c == '-' || c == '.';
    char first[2] = {(char)c, 0}, later[4] = {'a', (char)c, 'b', 0};
    CHECK_ERR(wksp_name_check(first), alnum ? WKSP_SUCCESS : WKSP_ERR_INVAL);
    CHECK_ERR(wksp_name_check(later), alnum || punct ? WKSP_SUCCESS : WKSP_ERR_INVAL);
  }
}

/* ---- named regions ----------------------------------------------------- */

static void test_create_stat_unlink(void) {
  wksp_shmem_info_t info;
  CHECK_OK(wksp_shmem_create("r1", 3 * 4096, WKSP_PAGE_NORMAL, 0600));
  char path[256];
  snprintf(path, sizeof path, "%s/r1", tmp_dir);
  struct stat st;
  CHECK(!stat(path, &st));
  CHECK_EQ(st.st_size, 3 * 4096);
  CHECK_EQ(st.st_blocks * 512, 3 * 4096); /* backed, not sparse */

  memset(&info, 0xff, sizeof info);
  CHECK_OK(wksp_shmem_stat("r1", &info));
  CHECK(!strcmp(info.name, "r1"));
  CHECK_EQ(info.sz, 3 * 4096);
  CHECK_EQ(info.page, WKSP_PAGE_NORMAL);
  CHECK_EQ(info.mode, 0600);

  CHECK_ERR(wksp_shmem_create("r1", 4096, WKSP_PAGE_NORMAL, 0600), WKSP_ERR_EXIST);
  CHECK(has(wksp_errmsg(), "already exists"));
  CHECK_OK(wksp_shmem_stat("r1", &info));
  CHECK_EQ(info.sz, 3 * 4096); /* untouched by the failed create */

  CHECK_OK(wksp_shmem_unlink("r1"));
  CHECK_ERR(wksp_shmem_unlink("r1"), WKSP_ERR_NOENT);
  CHECK(has(wksp_errmsg(), "r1") && has(wksp_errmsg(), tmp_dir));
  CHECK_ERR(wksp_shmem_stat("r1", &info), WKSP_ERR_NOENT);
  CHECK_EQ(dir_count(tmp_dir), 0);
}

static void test_create_mode_exact(void) {
  const uint32_t modes[] = {0600, 0640, 0644, 0666, 0777, 0000, 0604, 0750};
  const mode_t masks[] = {077, 0, 022, 0777};
  for (size_t m = 0; m < sizeof masks / sizeof masks[0]; m++) {
    mode_t old = umask(masks[m]);
    for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++) {
      wksp_shmem_info_t info;
      CHECK_OK(wksp_shmem_create("moded", 4096, WKSP_PAGE_NORMAL, modes[i]));
      CHECK_EQ(umask(masks[m]), masks[m]); /* umask never changed */
      CHECK_OK(wksp_shmem_stat("moded", &info));
      CHECK_EQ(info.mode, modes[i]);
      CHECK_OK(wksp_shmem_unlink("moded"));
    }
    umask(old);
  }
}

static void test_create_bad_args(void) {
  CHECK_ERR(wksp_shmem_create("x", 0, WKSP_PAGE_NORMAL, 0600), WKSP_ERR_INVAL);
  CHECK(has(wksp_errmsg(), "4096"));
  CHECK_ERR(wksp_shmem_create("x", 4095, WKSP_PAGE_NORMAL, 0600), WKSP_ERR_INVAL);
  CHECK(has(wksp_errmsg(), "4095") && has(wksp_errmsg(), "4096"));
  CHECK_ERR(wksp_shmem_create("x", 4097, WKSP_PAGE_NORMAL, 0600), WKSP_ERR_INVAL);
  CHECK_ERR(wksp_shmem_create("x", UINT64_C(1) << 62, WKSP_PAGE_NORMAL, 0600), WKSP_ERR_INVAL);
  CHECK_ERR(wksp_shmem_create("x", UINT64_MAX - 4095, WKSP_PAGE_NORMAL, 0600), WKSP_ERR_INVAL);
  CHECK_ERR(wksp_shmem_create("x", 4096, WKSP_PAGE_HUGE, 0600), WKSP_ERR_INVAL);
  CHECK(has(wksp_errmsg(), "2097152"));
  CHECK_ERR(wksp_shmem_create("x", 4096, (wksp_page_t)3, 0600), WKSP_ERR_INVAL);
  CHECK_ERR(wksp_shmem_create("x", 4096, (wksp_page_t)-1, 0600), WKSP_ERR_INVAL);
  CHECK_ERR(wksp_shmem_create("x", 4096, WKSP_PAGE_NORMAL, 01000), WKSP_ERR_INVAL);
  CHECK(has(wksp_errmsg(), "01000"));
  CHECK_ERR(wksp_shmem_create("x", 4096, WKSP_PAGE_NORMAL, 04755), WKSP_ERR_INVAL);
  CHECK_ERR(wksp_shmem_create("x", 4096, WKSP_PAGE_NORMAL, 0x80000000u), WKSP_ERR_INVAL);
  CHECK_ERR(wksp_shmem_create(NULL, 4096, WKSP_PAGE_NORMAL, 0600), WKSP_ERR_INVAL);
  CHECK_ERR(wksp_shmem_create("../x", 4096, WKSP_PAGE_NORMAL, 0600), WKSP_ERR_INVAL);
  CHECK(has(wksp_errmsg(), "wksp_shmem_create") && has(wksp_errmsg(), "first byte"));
  CHECK_EQ(dir_count(tmp_dir), 0);
}

/* ---- create with an initializer ------------------------------------------ */

typedef struct {
  int calls, fail, race, named_during;
  uint64_t sz;
} init_ctx_t;

/* Writes a pattern; may check that the name is still free, fail, or let
 * another creator take the name meanwhile. */
static int init_pattern(void *mem, uint64_t sz, void *vctx) {
  init_ctx_t *c = vctx;
  c->calls++;
  c->sz = sz;
  c->named_during = wksp_shmem_stat("ini", &(wksp_shmem_info_t){0}) != WKSP_ERR_NOENT;
  uint8_t *b = mem;
  int zero = 1;
  for (uint64_t i = 0; i < sz; i++) zero &= b[i] == 0;
  if (!zero) return wksp_err(WKSP_ERR_FAIL, 0, "init: region not zero-filled");
  for (uint64_t i = 0; i < sz; i++) b[i] = (uint8_t)(i * 7 + 1);
  if (c->race && wksp_shmem_create("ini", 4096, WKSP_PAGE_NORMAL, 0600)) return WKSP_ERR_FAIL;
  return c->fail ? wksp_err(WKSP_ERR_CORRUPT, 0, "init: told to fail") : WKSP_SUCCESS;
}

/* Files of tmp_dir whose name starts with prefix. */
static int dir_count_prefix(const char *prefix) {
  DIR *d = opendir(tmp_dir);
  if (!d) return -1;
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d))) n += !strncmp(e->d_name, prefix, strlen(prefix));
  closedir(d);
  return n;
}

/* The initializer runs before the name exists, on the whole zero-filled
 * region; its bytes are what joiners see; a failing initializer or a name
 * taken meanwhile leaves no file.  Both routes: O_TMPFILE and the hidden
 * temporary name of file systems without it. */
static void test_create_init(void) {
  for (int route = 0; route < 2; route++) {
    wksp_private_shmem_test_no_tmpfile = route;
    init_ctx_t c = {0};
    int rc = wksp_private_shmem_create("ini", 3 * 4096, WKSP_PAGE_NORMAL, 0640, init_pattern, &c);
    int n_ok = dir_count(tmp_dir);
    init_ctx_t f = {.fail = 1};
    int rc_fail = wksp_private_shmem_create("fails", 4096, WKSP_PAGE_NORMAL, 0600, init_pattern, &f);
    char msg_fail[256];
    snprintf(msg_fail, sizeof msg_fail, "%s", wksp_errmsg());
    int n_fail = dir_count(tmp_dir);
    wksp_private_shmem_test_no_tmpfile = 0;
    CHECK_OK(rc);
    CHECK_EQ(c.calls, 1);
    CHECK_EQ(c.sz, 3 * 4096);
    CHECK(!c.named_during);
    CHECK_EQ(n_ok, 1); /* no temporary left */
    CHECK_EQ(rc_fail, WKSP_ERR_CORRUPT);
    CHECK(has(msg_fail, "told to fail"));
    CHECK_EQ(n_fail, 1);
    wksp_shmem_info_t info;
    CHECK_OK(wksp_shmem_stat("ini", &info));
    CHECK_EQ(info.mode, 0640);
    void *mem;
    CHECK_OK(wksp_shmem_join("ini", 0, &mem, NULL));
    int same = 1;
    for (uint64_t i = 0; i < 3 * 4096; i++) same &= ((uint8_t *)mem)[i] == (uint8_t)(i * 7 + 1);
    CHECK_OK(wksp_shmem_leave(mem));
    CHECK(same);
    CHECK_OK(wksp_shmem_unlink("ini"));

    /* Another creator takes the name while this one initializes. */
    wksp_private_shmem_test_no_tmpfile = route;
    init_ctx_t r = {.race = 1};
    rc = wksp_private_shmem_create("ini", 2 * 4096, WKSP_PAGE_NORMAL, 0600, init_pattern, &r);
    int n_race = dir_count(tmp_dir), n_tmp = dir_count_prefix(".ini.");
    wksp_private_shmem_test_no_tmpfile = 0;
    CHECK_EQ(rc, WKSP_ERR_EXIST);
    CHECK_EQ(n_race, 1);
    CHECK_EQ(n_tmp, 0);
    CHECK_OK(wksp_shmem_stat("ini", &info));
    CHECK_EQ(info.sz, 4096); /* the other creator's region, untouched */
    CHECK_OK(wksp_shmem_unlink("ini"));
  }
  CHECK_EQ(dir_count(tmp_dir), 0);
}

static int count_cb(const wksp_shmem_info_t *info, void *ctx) {
  (void)info;
  ++*(int *)ctx;
  return 0;
}

/* WKSP_SHMEM_DIR is read at every call; a directory that does not exist is
 * a clean FAIL naming it. */
static void test_dir_override(void) {
  char other[64];
  make_tmp_dir(other, sizeof other);
  setenv("WKSP_SHMEM_DIR", other, 1);
  int rc = wksp_shmem_create("elsewhere", 4096, WKSP_PAGE_NORMAL, 0600);
  int n_other = dir_count(other), n_tmp = dir_count(tmp_dir);
  setenv("WKSP_SHMEM_DIR", tmp_dir, 1);
  int src = wksp_shmem_stat("elsewhere", &(wksp_shmem_info_t){0});
  dir_remove(other);
  CHECK_OK(rc);
  CHECK_EQ(n_other, 1);
  CHECK_EQ(n_tmp, 0);
  CHECK_EQ(src, WKSP_ERR_NOENT);

  char gone[80];
  snprintf(gone, sizeof gone, "%s/no-such-dir", tmp_dir);
  setenv("WKSP_SHMEM_DIR", gone, 1);
  rc = wksp_shmem_create("x", 4096, WKSP_PAGE_NORMAL, 0600);
  char msg[1024];
  snprintf(msg, sizeof msg, "%s", wksp_errmsg());
  int lrc = wksp_shmem_list(count_cb, &(int){0});
  setenv("WKSP_SHMEM_DIR", tmp_dir, 1);
  CHECK_EQ(rc, WKSP_ERR_FAIL);
  CHECK(has(msg, "no-such-dir"));
  CHECK_EQ(lrc, WKSP_ERR_FAIL);
}

static void test_join_rw_ro(void) {
  void *rw = NULL, *ro = NULL;
  uint64_t sz = 0;
  CHECK_OK(wksp_shmem_create("jr", 8 * 4096, WKSP_PAGE_NORMAL, 0644));
  CHECK_OK(wksp_shmem_join("jr", 1, &rw, &sz));
  CHECK_EQ(sz, 8 * 4096);
  CHECK_EQ((uintptr_t)rw % 4096, 0);
  for (size_t i = 0; i < sz; i++) CHECK_EQ(((uint8_t *)rw)[i], 0); /* new regions are zeroed */
  memset(rw, 0xa5, (size_t)sz);

  CHECK_OK(wksp_shmem_join("jr", 0, &ro, NULL));
  CHECK(ro != rw); /* a read-only join is its own PROT_READ mapping */
  CHECK_EQ(((uint8_t *)ro)[sz - 1], 0xa5);
  ((uint8_t *)rw)[5] = 7;
  CHECK_EQ(((uint8_t *)ro)[5], 7);

  CHECK_EQ(wksp_private_shmem_writable(rw), 1);
  CHECK_EQ(wksp_private_shmem_writable((uint8_t *)rw + sz - 1), 1);
  CHECK_EQ(wksp_private_shmem_writable(ro), 0);
  CHECK_EQ(wksp_private_shmem_writable((uint8_t *)ro + 100), 0);
  int local;
  CHECK_EQ(wksp_private_shmem_writable(&local), -1);

  CHECK(wksp_shmem_name(rw) && !strcmp(wksp_shmem_name(rw), "jr"));
  CHECK(!strcmp(wksp_shmem_name((uint8_t *)ro + 4097), "jr"));
  CHECK(wksp_shmem_name(&local) == NULL);

  wksp_private_shmem_region_t reg;
  CHECK_OK(wksp_private_shmem_find((uint8_t *)rw + 10, &reg));
  CHECK(reg.mem == rw && reg.sz == sz && reg.writable == 1 && !reg.anon && !strcmp(reg.name, "jr"));
  CHECK_ERR(wksp_private_shmem_find(&local, &reg), WKSP_ERR_INVAL);

  CHECK_ERR(wksp_shmem_leave((uint8_t *)rw + 64), WKSP_ERR_INVAL);
  CHECK(has(wksp_errmsg(), "pass its start"));
  CHECK_OK(wksp_shmem_leave(ro));
  CHECK_OK(wksp_shmem_leave(rw));
  CHECK_EQ(wksp_private_shmem_writable(rw), -1);
  CHECK_OK(wksp_shmem_unlink("jr"));
}

static void test_join_refcount(void) {
  void *a, *b, *c;
  CHECK_OK(wksp_shmem_create("rc", 4096, WKSP_PAGE_NORMAL, 0600));
  CHECK_OK(wksp_shmem_join("rc", 1, &a, NULL));
  CHECK_OK(wksp_shmem_join("rc", 1, &b, NULL));
  CHECK_OK(wksp_shmem_join("rc", 7, &c, NULL)); /* any non-zero means read-write */
  CHECK(a == b && b == c);
  CHECK_OK(wksp_shmem_leave(a));
  CHECK_OK(wksp_shmem_leave(a));
  ((volatile uint8_t *)a)[0] = 1; /* still mapped: one join left */
  CHECK(!strcmp(wksp_shmem_name(a), "rc"));
  CHECK_OK(wksp_shmem_leave(a));
  CHECK(wksp_shmem_name(a) == NULL);
  CHECK_ERR(wksp_shmem_leave(a), WKSP_ERR_INVAL);
  CHECK_OK(wksp_shmem_unlink("rc"));
}

/* The descriptor a join keeps (wksp_private_shmem_file): the region's own
 * file at the offset of the address asked about, a new descriptor each
 * time, gone at the last leave; none for anonymous regions; and none when
 * the kept number was closed and reused for another file (a forked child
 * closing its descriptors), instead of the wrong file. */
static int kept_fd(const char *path) {
  DIR *d = opendir("/proc/self/fd");
  int found = -1;
  for (struct dirent *e; d && (e = readdir(d));) {
    char l[300], t[PATH_MAX];
    snprintf(l, sizeof l, "/proc/self/fd/%s", e->d_name);
    ssize_t n = readlink(l, t, sizeof t - 1);
    if (n > 0 && (t[n] = 0, !strcmp(t, path))) found = atoi(e->d_name);
  }
  if (d) closedir(d);
  return found;
}

static void test_join_file(void) {
  void *m;
  CHECK_OK(wksp_shmem_create("jf", 3 * 4096, WKSP_PAGE_NORMAL, 0600));
  CHECK_OK(wksp_shmem_join("jf", 1, &m, NULL));
  memset((uint8_t *)m + 4096, 0x5a, 4096);
  int fd = -1;
  uint64_t off = 0;
  CHECK_OK(wksp_private_shmem_file((uint8_t *)m + 4096 + 10, &fd, &off));
  CHECK(fd >= 0 && off == 4096 + 10);
  uint8_t b[4];
  CHECK(pread(fd, b, sizeof b, (off_t)off) == 4 && b[0] == 0x5a && b[3] == 0x5a);
  close(fd);
  char path[PATH_MAX];
  snprintf(path, sizeof path, "%s/jf", tmp_dir);
  int k = kept_fd(path);
  CHECK(k >= 0);
  /* the number reused for another file: refused, not the wrong file */
  int other = open("/dev/null", O_RDONLY);
  CHECK(other >= 0 && dup2(other, k) == k);
  close(other);
  CHECK_ERR(wksp_private_shmem_file(m, &fd, &off), WKSP_ERR_INVAL);
  CHECK_EQ(fd, -1);
  CHECK_OK(wksp_shmem_leave(m)); /* closes k (now /dev/null): harmless */
  CHECK_OK(wksp_shmem_join("jf", 1, &m, NULL));
  CHECK(kept_fd(path) >= 0);
  CHECK_OK(wksp_shmem_leave(m));
  CHECK_EQ(kept_fd(path), -1); /* closed at the last leave */
  CHECK_ERR(wksp_private_shmem_file(m, &fd, &off), WKSP_ERR_INVAL);
  void *a;
  CHECK_OK(wksp_shmem_anon_new(4096, WKSP_PAGE_NORMAL, &a));
  CHECK_ERR(wksp_private_shmem_file(a, &fd, &off), WKSP_ERR_INVAL);
  CHECK_OK(wksp_shmem_anon_delete(a));
  CHECK_OK(wksp_shmem_unlink("jf"));
}

/* Many sizes, each mapping page aligned; fresh joins get distinct ranges. */
static void test_join_alignment(void) {
  void *m[6];
  char name[16];
  for (int i = 0; i < 6; i++) {
    snprintf(name, sizeof name, "al%d", i);
    CHECK_OK(wksp_shmem_create(name, (uint64_t)(1 + 7 * i) * 4096, WKSP_PAGE_NORMAL, 0600));
    CHECK_OK(wksp_shmem_join(name, i & 1, &m[i], NULL));
    CHECK_EQ((uintptr_t)m[i] % 4096, 0);
  }
  for (int i = 0; i < 6; i++) {
    snprintf(name, sizeof name, "al%d", i);
    CHECK_OK(wksp_shmem_leave(m[i]));
    CHECK_OK(wksp_shmem_unlink(name));
  }
}

static void test_join_errors(void) {
  void *m = NULL;
  CHECK_ERR(wksp_shmem_join("nothere", 1, &m, NULL), WKSP_ERR_NOENT);
  CHECK(has(wksp_errmsg(), "nothere") && has(wksp_errmsg(), tmp_dir));
  CHECK_ERR(wksp_shmem_join("bad name", 1, &m, NULL), WKSP_ERR_INVAL);
  CHECK_ERR(wksp_shmem_join(NULL, 1, &m, NULL), WKSP_ERR_INVAL);
  CHECK_OK(wksp_shmem_create("ok", 4096, WKSP_PAGE_NORMAL, 0600));
  CHECK_ERR(wksp_shmem_join("ok", 1, NULL, NULL), WKSP_ERR_INVAL);
  CHECK_OK(wksp_shmem_unlink("ok"));

  /* Files in the directory that are not regions. */
  char p[256];
  snprintf(p, sizeof p, "%s/odd", tmp_dir);
  FILE *f = fopen(p, "w");
  CHECK(f);
  fputs("hello", f);
  fclose(f);
  CHECK_ERR(wksp_shmem_join("odd", 0, &m, NULL), WKSP_ERR_CORRUPT);
  CHECK(has(wksp_errmsg(), "5 bytes"));
  CHECK_OK(wksp_shmem_unlink("odd")); /* still a name that unlink can remove */
  snprintf(p, sizeof p, "%s/empty", tmp_dir);
  f = fopen(p, "w");
  CHECK(f);
  fclose(f);
  CHECK_ERR(wksp_shmem_join("empty", 1, &m, NULL), WKSP_ERR_CORRUPT);
  unlink(p);
  snprintf(p, sizeof p, "%s/adir", tmp_dir);
  CHECK(!mkdir(p, 0700));
  CHECK_ERR(wksp_shmem_join("adir", 1, &m, NULL), WKSP_ERR_NOENT);
  CHECK(has(wksp_errmsg(), "not a regular file"));
  CHECK_ERR(wksp_shmem_create("adir", 4096, WKSP_PAGE_NORMAL, 0600), WKSP_ERR_EXIST);
  rmdir(p);
  snprintf(p, sizeof p, "%s/link", tmp_dir);
  CHECK(!symlink("/etc/passwd", p));
  CHECK_ERR(wksp_shmem_join("link", 0, &m, NULL), WKSP_ERR_NOENT);
  unlink(p);
  CHECK_EQ(dir_count(tmp_dir), 0);
}

/* Unlinking keeps existing mappings; a new region of the same name is a
 * different region, not the old mapping. */
static void test_unlink_while_joined(void) {
  void *old, *fresh;
  CHECK_OK(wksp_shmem_create("re", 4096, WKSP_PAGE_NORMAL, 0600));
  CHECK_OK(wksp_shmem_join("re", 1, &old, NULL));
  memset(old, 0x11, 4096);
  CHECK_OK(wksp_shmem_unlink("re"));
  CHECK_EQ(((uint8_t *)old)[4095], 0x11);
  CHECK_ERR(wksp_shmem_join("re", 1, &fresh, NULL), WKSP_ERR_NOENT);
  CHECK_OK(wksp_shmem_create("re", 2 * 4096, WKSP_PAGE_NORMAL, 0600));
  uint64_t sz;
  CHECK_OK(wksp_shmem_join("re", 1, &fresh, &sz));
  CHECK(fresh != old);
  CHECK_EQ(sz, 2 * 4096);
  CHECK_EQ(((uint8_t *)fresh)[0], 0);
  CHECK_OK(wksp_shmem_leave(old));
  CHECK_OK(wksp_shmem_leave(fresh));
  CHECK_OK(wksp_shmem_unlink("re"));
}

typedef struct {
  char names[8][WKSP_NAME_MAX];
  uint64_t sz[8];
  int n, stop_at;
} list_ctx_t;

static int list_cb(const wksp_shmem_info_t *info, void *vctx) {
  list_ctx_t *ctx = vctx;
  if (ctx->n < 8) {
    memcpy(ctx->names[ctx->n], info->name, WKSP_NAME_MAX);
    ctx->sz[ctx->n] = info->sz;
  }
  ctx->n++;
  return ctx->n == ctx->stop_at ? 42 : 0;
}

static void test_list(void) {
  list_ctx_t ctx = {.stop_at = -1};
  CHECK_OK(wksp_shmem_list(list_cb, &ctx));
  CHECK_EQ(ctx.n, 0);
  CHECK_OK(wksp_shmem_create("b", 2 * 4096, WKSP_PAGE_NORMAL, 0600));
  CHECK_OK(wksp_shmem_create("a", 4096, WKSP_PAGE_NORMAL, 0600));
  CHECK_OK(wksp_shmem_create("c.1", 3 * 4096, WKSP_PAGE_NORMAL, 0600));
  /* Not regions: invalid names, a directory. */
  char p[256];
  const char *junk[] = {".hidden", "bad name", "_x"};
  for (int i = 0; i < 3; i++) {
    snprintf(p, sizeof p, "%s/%s", tmp_dir, junk[i]);
    FILE *f = fopen(p, "w");
    CHECK(f);
    fclose(f);
  }
  snprintf(p, sizeof p, "%s/d", tmp_dir);
  CHECK(!mkdir(p, 0700));

  CHECK_OK(wksp_shmem_list(list_cb, &ctx));
  CHECK_EQ(ctx.n, 3);
  CHECK(!strcmp(ctx.names[0], "a") && !strcmp(ctx.names[1], "b") && !strcmp(ctx.names[2], "c.1"));
  CHECK(ctx.sz[0] == 4096 && ctx.sz[1] == 8192 && ctx.sz[2] == 12288);

  list_ctx_t stop = {.stop_at = 2};
  CHECK_ERR(wksp_shmem_list(list_cb, &stop), 42);
  CHECK_EQ(stop.n, 2);
  CHECK_ERR(wksp_shmem_list(NULL, NULL), WKSP_ERR_INVAL);

  rmdir(p);
  for (int i = 0; i < 3; i++) {
    snprintf(p, sizeof p, "%s/%s", tmp_dir, junk[i]);
    unlink(p);
  }
  CHECK_OK(wksp_shmem_unlink("a"));
  CHECK_OK(wksp_shmem_unlink("b"));
  CHECK_OK(wksp_shmem_unlink("c.1"));
}

/* stat and list report the file's times: mtime, and the birth time where
 * the file system records one (tmpfs does since Linux 5.x; 0 otherwise). */
static void test_times(void) {
  struct timespec t0, t1;
  clock_gettime(CLOCK_REALTIME, &t0);
  CHECK_OK(wksp_shmem_create("tm", 4096, WKSP_PAGE_NORMAL, 0600));
  clock_gettime(CLOCK_REALTIME, &t1);
  int64_t lo = (int64_t)t0.tv_sec * 1000000000 - 1000000000, hi = (int64_t)t1.tv_sec * 1000000000 + 1000000000;
  wksp_shmem_info_t info;
  CHECK_OK(wksp_shmem_stat("tm", &info));
  CHECK(info.mtime >= lo && info.mtime <= hi);
  CHECK(info.btime == 0 || (info.btime >= lo && info.btime <= hi));
  char path[256];
  snprintf(path, sizeof path, "%s/tm", tmp_dir);
  struct stat st;
  CHECK(!stat(path, &st));
  CHECK_EQ(info.mtime, (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec);
  CHECK_OK(wksp_shmem_unlink("tm"));
}

typedef struct {
  wksp_shmem_map_t m[16];
  int n;
} maps_ctx_t;

static int maps_cb(const wksp_shmem_map_t *m, void *vctx) {
  maps_ctx_t *c = vctx;
  if (c->n < 16) c->m[c->n] = *m;
  c->n++;
  return 0;
}

/* The entry for (name, pid) in c, or NULL. */
static const wksp_shmem_map_t *maps_find(const maps_ctx_t *c, const char *name, pid_t pid) {
  for (int i = 0; i < c->n && i < 16; i++)
    if (!strcmp(c->m[i].name, name) && c->m[i].pid == (uint32_t)pid) return &c->m[i];
  return NULL;
}

/* A child that joins `name` read-only, says so on ready[1] and waits for
 * go[1] to close. */
static pid_t joined_child(const char *name, const int ready[2], const int go[2]) {
  pid_t pid = fork();
  if (pid) return pid;
  close(go[1]);
  int fd = ready[1];
  void *m;
  char b = wksp_shmem_join(name, 0, &m, NULL) ? 'n' : 'y';
  if (write(fd, &b, 1) != 1) _exit(1);
  (void)read(go[0], &b, 1);
  _exit(0);
}

static void test_maps(void) {
  void *m;
  maps_ctx_t c = {0};
  uint64_t unreadable = 99;
  CHECK_OK(wksp_shmem_maps(maps_cb, &c, &unreadable));
  CHECK_EQ(c.n, 0); /* no region yet */
  CHECK_OK(wksp_shmem_create("mb", 4096, WKSP_PAGE_NORMAL, 0600));
  CHECK_OK(wksp_shmem_create("ma", 4096, WKSP_PAGE_NORMAL, 0600));
  int ready[2], go[2];
  CHECK(!pipe(ready) && !pipe(go));
  pid_t kid = joined_child("mb", ready, go); /* before the join below, which it would inherit */
  char b = 0;
  CHECK(kid > 0 && read(ready[0], &b, 1) == 1);
  CHECK_OK(wksp_shmem_join("mb", 1, &m, NULL));
  c.n = 0;
  int rc = wksp_shmem_maps(maps_cb, &c, &unreadable);
  close(go[1]);
  waitpid(kid, NULL, 0);
  close(ready[0]), close(ready[1]), close(go[0]);
  CHECK_EQ(b, 'y');
  CHECK_OK(rc);
  const wksp_shmem_map_t *self = maps_find(&c, "mb", getpid()), *child = maps_find(&c, "mb", kid);
  CHECK(self && child);
  CHECK_EQ(self->writable, 1);
  CHECK_EQ(child->writable, 0);
  CHECK_EQ(self->page, WKSP_PAGE_NORMAL);
  CHECK_EQ(c.n, 2); /* nobody maps "ma"; each pid once */
  CHECK(kid > getpid() ? self == &c.m[0] : child == &c.m[0]); /* by pid */

  /* An unlinked region is not reported, nor mistaken for a new one of the
   * same name (matched by device and inode, not by path). */
  CHECK_OK(wksp_shmem_unlink("mb"));
  CHECK_OK(wksp_shmem_create("mb", 4096, WKSP_PAGE_NORMAL, 0600));
  c.n = 0;
  CHECK_OK(wksp_shmem_maps(maps_cb, &c, NULL));
  CHECK_EQ(c.n, 0);
  CHECK_OK(wksp_shmem_leave(m));
  CHECK_OK(wksp_shmem_unlink("mb"));
  CHECK_OK(wksp_shmem_unlink("ma"));
  CHECK_ERR(wksp_shmem_maps(NULL, NULL, &unreadable), WKSP_ERR_INVAL);
  CHECK_EQ(unreadable, 0);
}

/* Without privileges another user's maps cannot be read: counted, and the
 * mapping it holds is not reported (root drops to nobody in a child). */
static void test_maps_unreadable(void) {
  if (geteuid() != 0) {
    maps_ctx_t c = {0};
    uint64_t unreadable = 0;
    CHECK_OK(wksp_shmem_maps(maps_cb, &c, &unreadable));
    return; /* whether pid 1 is readable depends on the machine */
  }
  char dir[128];
  snprintf(dir, sizeof dir, "%s-pub", tmp_dir);
  CHECK(!mkdir(dir, 0755));
  setenv("WKSP_SHMEM_DIR", dir, 1);
  void *m = NULL;
  int rc = wksp_shmem_create("pub", 4096, WKSP_PAGE_NORMAL, 0644);
  if (!rc) rc = wksp_shmem_join("pub", 1, &m, NULL);
  pid_t kid = rc ? -1 : fork();
  if (kid == 0) {
    maps_ctx_t c = {0};
    uint64_t unreadable = 0;
    if (setgid(65534) || setuid(65534)) _exit(2);
    if (wksp_shmem_maps(maps_cb, &c, &unreadable)) _exit(3);
    _exit(unreadable == 0 ? 4 : maps_find(&c, "pub", getppid()) ? 5 : 0);
  }
  int status = -1;
  if (kid > 0) waitpid(kid, &status, 0);
  if (m) wksp_shmem_leave(m);
  wksp_shmem_unlink("pub");
  rmdir(dir);
  setenv("WKSP_SHMEM_DIR", tmp_dir, 1);
  CHECK_OK(rc);
  CHECK(WIFEXITED(status));
  CHECK_EQ(WEXITSTATUS(status), 0);
}

/* ---- huge pages -------------------------------------------------------- */

static void test_mounts_parse(void) {
  static const char mounts[] =
      "proc /proc proc rw,nosuid 0 0\n"
      "tmpfs /dev/shm tmpfs rw,size=100k 0 0\n"
      "none /mnt/giant hugetlbfs rw,relatime,pagesize=1024M 0 0\n"
      "none /mnt/with\\040space hugetlbfs rw,pagesize=2M 0 0\n"
      "none /mnt/default hugetlbfs rw,relatime 0 0\n"
      "garbage\n"
      "\n";
  char dir[256];
  FILE *f = fmemopen((void *)mounts, sizeof mounts - 1, "r");
  CHECK(f);
  CHECK_EQ(wksp_private_shmem_mounts_find(f, 2u << 20, 2u << 20, dir, sizeof dir), 1);
  CHECK(!strcmp(dir, "/mnt/with space"));
  rewind(f);
  CHECK_EQ(wksp_private_shmem_mounts_find(f, 1u << 30, 2u << 20, dir, sizeof dir), 1);
  CHECK(!strcmp(dir, "/mnt/giant"));
  rewind(f);
  /* No pagesize option: the default huge page size decides. */
  CHECK_EQ(wksp_private_shmem_mounts_find(f, 4u << 20, 4u << 20, dir, sizeof dir), 1);
  CHECK(!strcmp(dir, "/mnt/default"));
  rewind(f);
  CHECK_EQ(wksp_private_shmem_mounts_find(f, 16u << 20, 2u << 20, dir, sizeof dir), 0);
  rewind(f);
  CHECK_EQ(wksp_private_shmem_mounts_find(f, 2u << 20, 2u << 20, dir, 8), 0); /* does not fit */
  fclose(f);

  static const char none[] = "tmpfs /dev/shm tmpfs rw 0 0\nnone /x hugetlbfs rw,pagesize=2X 0 0\n";
  f = fmemopen((void *)none, sizeof none - 1, "r");
  CHECK(f);
  CHECK_EQ(wksp_private_shmem_mounts_find(f, 2u << 20, 2u << 20, dir, sizeof dir), 0);
  fclose(f);
}

static void test_huge_unsupported(void) {
  unsetenv("WKSP_SHMEM_HUGE_DIR");
  unsetenv("WKSP_SHMEM_GIGANTIC_DIR");
  if (!system_has_huge_mount(WKSP_PAGE_HUGE)) {
    CHECK_ERR(wksp_shmem_create("h", 2u << 20, WKSP_PAGE_HUGE, 0600), WKSP_ERR_UNSUP);
    CHECK(has(wksp_errmsg(), "no hugetlbfs mount with 2M pages"));
    CHECK(has(wksp_errmsg(), "WKSP_SHMEM_HUGE_DIR"));
    CHECK(has(wksp_errmsg(), "mount -t hugetlbfs -o pagesize=2M"));
  } else {
    fprintf(stderr, "note: a 2M hugetlbfs is mounted; the no-mount message is not checked\n");
  }
  if (!system_has_huge_mount(WKSP_PAGE_GIGANTIC)) {
    CHECK_ERR(wksp_shmem_create("g", 1u << 30, WKSP_PAGE_GIGANTIC, 0600), WKSP_ERR_UNSUP);
    CHECK(has(wksp_errmsg(), "WKSP_SHMEM_GIGANTIC_DIR"));
  }
  /* A configured directory that is not hugetlbfs is refused, not used. */
  setenv("WKSP_SHMEM_HUGE_DIR", tmp_dir, 1);
  int rc = wksp_shmem_create("h", 2u << 20, WKSP_PAGE_HUGE, 0600);
  char msg[1024];
  snprintf(msg, sizeof msg, "%s", wksp_errmsg());
  unsetenv("WKSP_SHMEM_HUGE_DIR");
  CHECK_EQ(rc, WKSP_ERR_UNSUP);
  CHECK(has(msg, "is not a hugetlbfs mount with 2M pages"));
  CHECK_EQ(dir_count(tmp_dir), 0);
  CHECK_ERR(wksp_shmem_create("h", 4096, WKSP_PAGE_HUGE, 0600), WKSP_ERR_INVAL);
  /* Normal pages keep working whatever the huge page configuration. */
  CHECK_OK(wksp_shmem_create("n", 4096, WKSP_PAGE_NORMAL, 0600));
  CHECK_OK(wksp_shmem_unlink("n"));
}

/* Child-process tests that need a private mount namespace (test.h). */
static int private_mount(const char *type, const char *opts, char *dir, size_t n) {
  return test_private_mount(type, opts, tmp_dir, dir, n);
}

static int huge_child(void) {
  char dir[128];
  int r = private_mount("hugetlbfs", "pagesize=2M", dir, sizeof dir);
  if (r) return r;
  unsetenv("WKSP_SHMEM_HUGE_DIR"); /* found through /proc/mounts */
  int rc = wksp_shmem_create("h", 2u << 20, WKSP_PAGE_HUGE, 0600);
  if (rc == WKSP_ERR_FAIL) {
    /* No free huge pages on this machine: a clean error, nothing left. */
    CHILD_CHECK(wksp_errno() == ENOSPC || wksp_errno() == ENOMEM);
    CHILD_CHECK(dir_count(dir) == 0);
    fprintf(stderr, "note: no free 2 MiB pages; checked the clean failure only\n");
    return 0;
  }
  CHILD_CHECK(rc == WKSP_SUCCESS);
  wksp_shmem_info_t info;
  CHILD_CHECK(!wksp_shmem_stat("h", &info) && info.page == WKSP_PAGE_HUGE && info.sz == 2u << 20);
  CHILD_CHECK(wksp_shmem_create("h", 2u << 20, WKSP_PAGE_NORMAL, 0600) == WKSP_ERR_EXIST);
  void *m;
  CHILD_CHECK(!wksp_shmem_join("h", 1, &m, NULL));
  CHILD_CHECK((uintptr_t)m % (2u << 20) == 0);
  memset(m, 1, 2u << 20);
  CHILD_CHECK(!wksp_shmem_leave(m));
  CHILD_CHECK(!wksp_shmem_unlink("h"));
  return 0;
}

/* A full tmpfs: create fails cleanly with ENOSPC and leaves nothing. */
static int enospc_child(void) {
  char dir[128];
  int r = private_mount("tmpfs", "size=1m", dir, sizeof dir);
  if (r) return r;
  setenv("WKSP_SHMEM_DIR", dir, 1);
  CHILD_CHECK(wksp_shmem_create("big", 4u << 20, WKSP_PAGE_NORMAL, 0600) == WKSP_ERR_FAIL);
  CHILD_CHECK(wksp_errno() == ENOSPC);
  CHILD_CHECK(has(wksp_errmsg(), "No space left"));
  CHILD_CHECK(dir_count(dir) == 0);
  CHILD_CHECK(!wksp_shmem_create("small", 256u << 10, WKSP_PAGE_NORMAL, 0600));
  CHILD_CHECK(dir_count(dir) == 1);
  return 0;
}

static int huge_result, enospc_result;
static void test_huge_mounted(void) { CHECK_EQ(huge_result, 0); }
static void test_create_enospc(void) { CHECK_EQ(enospc_result, 0); }

/* ---- anonymous regions ------------------------------------------------- */

static void test_anon(void) {
  void *m = NULL;
  CHECK_OK(wksp_shmem_anon_new(5 * 4096, WKSP_PAGE_NORMAL, &m));
  CHECK_EQ((uintptr_t)m % 4096, 0);
  for (size_t i = 0; i < 5 * 4096; i++) CHECK_EQ(((uint8_t *)m)[i], 0);
  memset(m, 3, 5 * 4096);
  CHECK_EQ(wksp_private_shmem_writable((uint8_t *)m + 4 * 4096), 1);
  CHECK(wksp_shmem_name(m) == NULL);
  wksp_private_shmem_region_t reg;
  CHECK_OK(wksp_private_shmem_find(m, &reg));
  CHECK(reg.anon && reg.writable && reg.sz == 5 * 4096 && reg.name[0] == 0);
  CHECK_ERR(wksp_shmem_leave(m), WKSP_ERR_INVAL); /* not a join */
  CHECK(has(wksp_errmsg(), "anonymous"));
  CHECK_ERR(wksp_shmem_anon_delete((uint8_t *)m + 4096), WKSP_ERR_INVAL);
  CHECK_OK(wksp_shmem_anon_delete(m));
  CHECK_ERR(wksp_shmem_anon_delete(m), WKSP_ERR_INVAL);
  CHECK_EQ(wksp_private_shmem_writable(m), -1);

  CHECK_ERR(wksp_shmem_anon_new(0, WKSP_PAGE_NORMAL, &m), WKSP_ERR_INVAL);
  CHECK_ERR(wksp_shmem_anon_new(100, WKSP_PAGE_NORMAL, &m), WKSP_ERR_INVAL);
  CHECK_ERR(wksp_shmem_anon_new(4096, WKSP_PAGE_NORMAL, NULL), WKSP_ERR_INVAL);
  CHECK_ERR(wksp_shmem_anon_new(4096, (wksp_page_t)9, &m), WKSP_ERR_INVAL);
  CHECK_ERR(wksp_shmem_anon_new(UINT64_C(1) << 60, WKSP_PAGE_NORMAL, &m), WKSP_ERR_INVAL);

  /* A named join is not an anonymous region. */
  void *j;
  CHECK_OK(wksp_shmem_create("nj", 4096, WKSP_PAGE_NORMAL, 0600));
  CHECK_OK(wksp_shmem_join("nj", 1, &j, NULL));
  CHECK_ERR(wksp_shmem_anon_delete(j), WKSP_ERR_INVAL);
  CHECK(has(wksp_errmsg(), "region nj"));
  CHECK_OK(wksp_shmem_leave(j));
  CHECK_OK(wksp_shmem_unlink("nj"));
}

/* Huge anonymous regions need reserved huge pages, not a mount: either
 * they work and are 2 MiB aligned or the error says what is missing. */
static void test_anon_huge(void) {
  void *m = NULL;
  int rc = wksp_shmem_anon_new(2u << 20, WKSP_PAGE_HUGE, &m);
  if (rc == WKSP_SUCCESS) {
    CHECK_EQ((uintptr_t)m % (2u << 20), 0);
    memset(m, 1, 2u << 20);
    CHECK_OK(wksp_shmem_anon_delete(m));
  } else {
    CHECK(rc == WKSP_ERR_FAIL || rc == WKSP_ERR_UNSUP);
    CHECK(has(wksp_errmsg(), "huge"));
  }
}

/* MAP_SHARED: a child forked after anon_new / join writes, the parent sees. */
static void test_fork_sharing(void) {
  void *a, *n;
  CHECK_OK(wksp_shmem_anon_new(4096, WKSP_PAGE_NORMAL, &a));
  CHECK_OK(wksp_shmem_create("fk", 4096, WKSP_PAGE_NORMAL, 0600));
  CHECK_OK(wksp_shmem_join("fk", 1, &n, NULL));
  fflush(NULL);
  pid_t pid = fork();
  if (pid == 0) {
    ((volatile uint8_t *)a)[10] = 0x5a;
    /* The child also joins by name on its own: same table, same mapping. */
    void *cn;
    int ok = !wksp_shmem_join("fk", 1, &cn, NULL) && cn == n;
    ((volatile uint8_t *)cn)[20] = 0x6b;
    ok = ok && !wksp_shmem_leave(cn) && !wksp_shmem_leave(n) && !wksp_shmem_anon_delete(a);
    _exit(ok ? 0 : 1);
  }
  int st;
  CHECK(pid > 0 && waitpid(pid, &st, 0) == pid);
  CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  CHECK_EQ(((uint8_t *)a)[10], 0x5a);
  CHECK_EQ(((uint8_t *)n)[20], 0x6b);
  CHECK_OK(wksp_shmem_anon_delete(a));
  CHECK_OK(wksp_shmem_leave(n));
  CHECK_OK(wksp_shmem_unlink("fk"));
}

/* A write through a read-only join faults (PROT_READ). */
static void test_ro_write_faults(void) {
  void *ro;
  CHECK_OK(wksp_shmem_create("rof", 4096, WKSP_PAGE_NORMAL, 0600));
  CHECK_OK(wksp_shmem_join("rof", 0, &ro, NULL));
  fflush(NULL);
  pid_t pid = fork();
  if (pid == 0) {
    signal(SIGSEGV, SIG_DFL);
    ((volatile uint8_t *)ro)[0] = 1;
    _exit(0);
  }
  int st;
  CHECK(pid > 0 && waitpid(pid, &st, 0) == pid);
  CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGSEGV);
  CHECK_EQ(((uint8_t *)ro)[0], 0);
  CHECK_OK(wksp_shmem_leave(ro));
  CHECK_OK(wksp_shmem_unlink("rof"));
}

/* File permissions, seen by an unprivileged user (needs root to become one:
 * main prints a SKIP line when a child cannot). */
static int become_nobody(void) { return setgid(65534) || setuid(65534) ? CHILD_SKIP : 0; }

static int perm_child(void) {
  if (become_nobody()) return 1;
  void *m;
  CHILD_CHECK(wksp_shmem_join("p600", 0, &m, NULL) == WKSP_ERR_PERM);
  CHILD_CHECK(has(wksp_errmsg(), "read-only"));
  CHILD_CHECK(wksp_shmem_join("p600", 1, &m, NULL) == WKSP_ERR_PERM);
  CHILD_CHECK(wksp_shmem_join("p644", 1, &m, NULL) == WKSP_ERR_PERM);
  CHILD_CHECK(wksp_shmem_join("p644", 0, &m, NULL) == WKSP_SUCCESS);
  CHILD_CHECK(wksp_private_shmem_writable(m) == 0);
  CHILD_CHECK(!wksp_shmem_leave(m));
  CHILD_CHECK(wksp_shmem_unlink("p644") == WKSP_ERR_PERM); /* directory is root's 0755 */
  CHILD_CHECK(wksp_shmem_create("p2", 4096, WKSP_PAGE_NORMAL, 0600) == WKSP_ERR_PERM);
  return 0;
}

static void test_permissions(void) {
  CHECK(!chmod(tmp_dir, 0755));
  CHECK_OK(wksp_shmem_create("p600", 4096, WKSP_PAGE_NORMAL, 0600));
  CHECK_OK(wksp_shmem_create("p644", 4096, WKSP_PAGE_NORMAL, 0644));
  int r = test_run_child(perm_child);
  chmod(tmp_dir, 0700);
  CHECK_OK(wksp_shmem_unlink("p600"));
  CHECK_OK(wksp_shmem_unlink("p644"));
  CHECK_EQ(r, 0);
}

/* ---- concurrency and limits -------------------------------------------- */

static void *held_mem;
static volatile int stop_readers;

static void *joiner(void *arg) {
  (void)arg;
  for (int i = 0; i < 2000; i++) {
    void *m;
    if (wksp_shmem_join("thr", i & 1, &m, NULL)) return (void *)1;
    if ((i & 1) && m != held_mem) return (void *)2;
    if (!(i & 1) && wksp_private_shmem_writable(m) != 0) return (void *)3;
    if (wksp_shmem_leave(m)) return (void *)4;
  }
  return NULL;
}

static void *querier(void *arg) {
  (void)arg;
  long bad = 0;
  while (!stop_readers) bad += wksp_private_shmem_writable(held_mem) != 1;
  return (void *)bad;
}

static void test_threads(void) {
  CHECK_OK(wksp_shmem_create("thr", 4096, WKSP_PAGE_NORMAL, 0600));
  CHECK_OK(wksp_shmem_join("thr", 1, &held_mem, NULL));
  pthread_t t[4], q;
  stop_readers = 0;
  CHECK(!pthread_create(&q, NULL, querier, NULL));
  for (int i = 0; i < 4; i++) CHECK(!pthread_create(&t[i], NULL, joiner, NULL));
  void *r[4], *qr;
  for (int i = 0; i < 4; i++) pthread_join(t[i], &r[i]);
  stop_readers = 1;
  pthread_join(q, &qr);
  for (int i = 0; i < 4; i++) CHECK(r[i] == NULL);
  CHECK(qr == NULL);
  CHECK_OK(wksp_shmem_leave(held_mem));
  CHECK(wksp_shmem_name(held_mem) == NULL);
  CHECK_OK(wksp_shmem_unlink("thr"));
}

/* The per-process table is bounded: past it a clean FAIL, and it recovers. */
static void test_table_full(void) {
  enum { N = 1100 };
  static void *m[N];
  int n = 0, rc = 0;
  while (n < N && !(rc = wksp_shmem_anon_new(4096, WKSP_PAGE_NORMAL, &m[n]))) n++;
  CHECK_EQ(rc, WKSP_ERR_FAIL);
  CHECK(has(wksp_errmsg(), "regions already"));
  CHECK(n >= 1000);
  for (int i = 0; i < n; i++) CHECK_OK(wksp_shmem_anon_delete(m[i]));
  CHECK_OK(wksp_shmem_anon_new(4096, WKSP_PAGE_NORMAL, &m[0]));
  CHECK_OK(wksp_shmem_anon_delete(m[0]));
}

static void test_bad_args(void) {
  int local = 0;
  CHECK_ERR(wksp_shmem_leave(NULL), WKSP_ERR_INVAL);
  CHECK_ERR(wksp_shmem_leave(&local), WKSP_ERR_INVAL);
  CHECK_ERR(wksp_shmem_anon_delete(NULL), WKSP_ERR_INVAL);
  CHECK_ERR(wksp_shmem_anon_delete(&local), WKSP_ERR_INVAL);
  CHECK(wksp_shmem_name(NULL) == NULL);
  CHECK_ERR(wksp_shmem_stat(NULL, &(wksp_shmem_info_t){0}), WKSP_ERR_INVAL);
  CHECK_ERR(wksp_shmem_stat("x", NULL), WKSP_ERR_INVAL);
  CHECK_ERR(wksp_shmem_unlink(NULL), WKSP_ERR_INVAL);
  CHECK_ERR(wksp_shmem_unlink(""), WKSP_ERR_INVAL);
  CHECK_ERR(wksp_shmem_join("", 0, &(void *){0}, NULL), WKSP_ERR_INVAL);
  CHECK_EQ(wksp_private_shmem_writable(NULL), -1);
  CHECK_ERR(wksp_private_shmem_find(NULL, NULL), WKSP_ERR_INVAL);
  char dir[8];
  CHECK_ERR(wksp_private_shmem_dir((wksp_page_t)5, dir, sizeof dir), WKSP_ERR_INVAL);
  CHECK_ERR(wksp_private_shmem_dir(WKSP_PAGE_NORMAL, dir, 4), WKSP_ERR_INVAL); /* does not fit */
}

static int hook_calls;
static void count_hook(int err, const char *msg, void *ctx) {
  (void)err, (void)msg, (void)ctx;
  hook_calls++;
}

/* Success records nothing (the log hook stays silent, even while names are
 * looked up in directories that do not have them); a failure logs once. */
static void test_log_hook_quiet(void) {
  hook_calls = 0;
  wksp_log_set(count_hook, NULL);
  void *m, *a;
  wksp_shmem_info_t info;
  int rc = wksp_shmem_create("quiet", 4096, WKSP_PAGE_NORMAL, 0600);
  rc = rc ? rc : wksp_shmem_join("quiet", 1, &m, NULL);
  rc = rc ? rc : wksp_shmem_join("quiet", 0, &a, NULL);
  rc = rc ? rc : wksp_shmem_stat("quiet", &info);
  rc = rc ? rc : wksp_shmem_list(count_cb, &(int){0});
  rc = rc ? rc : wksp_shmem_leave(a);
  rc = rc ? rc : wksp_shmem_leave(m);
  rc = rc ? rc : wksp_shmem_unlink("quiet");
  rc = rc ? rc : wksp_shmem_anon_new(4096, WKSP_PAGE_NORMAL, &a);
  rc = rc ? rc : wksp_shmem_anon_delete(a);
  int quiet_calls = hook_calls;
  int leave_rc = wksp_shmem_leave(&info);
  int fail_calls = hook_calls - quiet_calls;
  wksp_log_set(NULL, NULL);
  CHECK_OK(rc);
  CHECK_EQ(quiet_calls, 0);
  CHECK_EQ(leave_rc, WKSP_ERR_INVAL);
  CHECK_EQ(fail_calls, 1);
}

int main(void) {
  make_tmp_dir(tmp_dir, sizeof tmp_dir);
  setenv("WKSP_SHMEM_DIR", tmp_dir, 1);

  TEST_RUN(test_page_sz);
  TEST_RUN(test_name_valid);
  TEST_RUN(test_name_invalid);
  TEST_RUN(test_name_every_byte);
  TEST_RUN(test_create_stat_unlink);
  TEST_RUN(test_create_mode_exact);
  TEST_RUN(test_create_bad_args);
  TEST_RUN(test_create_init);
  TEST_RUN(test_dir_override);
  TEST_RUN(test_join_rw_ro);
  TEST_RUN(test_join_refcount);
  TEST_RUN(test_join_file);
  TEST_RUN(test_join_alignment);
  TEST_RUN(test_join_errors);
  TEST_RUN(test_unlink_while_joined);
  TEST_RUN(test_list);
  TEST_RUN(test_times);
  TEST_RUN(test_maps);
  TEST_RUN(test_maps_unreadable);
  TEST_RUN(test_mounts_parse);
  TEST_RUN(test_huge_unsupported);

  huge_result = test_run_child(huge_child);
  if (huge_result == CHILD_SKIP) printf("SKIP %s/test_huge_mounted: cannot mount a private hugetlbfs here\n", test_prog_name());
  else TEST_RUN(test_huge_mounted);
  dir_remove(tmp_dir); /* the children's mount points */
  make_tmp_dir(tmp_dir, sizeof tmp_dir);
  setenv("WKSP_SHMEM_DIR", tmp_dir, 1);
  enospc_result = test_run_child(enospc_child);
  if (enospc_result == CHILD_SKIP) printf("SKIP %s/test_create_enospc: cannot mount a private tmpfs here\n", test_prog_name());
  else TEST_RUN(test_create_enospc);
  dir_remove(tmp_dir);
  make_tmp_dir(tmp_dir, sizeof tmp_dir);
  setenv("WKSP_SHMEM_DIR", tmp_dir, 1);

  TEST_RUN(test_anon);
  TEST_RUN(test_anon_huge);
  TEST_RUN(test_fork_sharing);
  TEST_RUN(test_ro_write_faults);
  if (test_run_child(become_nobody)) printf("SKIP %s/test_permissions: cannot become uid 65534 (not root)\n", test_prog_name());
  else TEST_RUN(test_permissions);
  TEST_RUN(test_threads);
  TEST_RUN(test_table_full);
  TEST_RUN(test_bad_args);
  TEST_RUN(test_log_hook_quiet);

  int left = dir_count(tmp_dir);
  if (left) printf("FAIL %s/cleanup: %d files left in %s\n", test_prog_name(), left, tmp_dir);
  dir_remove(tmp_dir);
  return test_done() || left;
}
