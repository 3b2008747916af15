/* Publication targets (src/checkpt/publish.c): what wksp_checkpt does with
 * what it finds at the path, and the temporaries that a killed writer
 * leaves.
 *   - a FIFO or character device (or a symlink to one) is a stream target:
 *     written in place, never replaced, with or without overwrite; a
 *     terminal is refused; verify is INVAL there;
 *   - a directory, socket or block device is refused (INVAL, not EXIST),
 *     also when it appears between the first check and the rename;
 *   - a symlink to anything else is replaced, never followed;
 *   - a named temporary whose writer died is removed by the next checkpoint
 *     into the directory; a live writer's is kept; nothing else is touched.
 * Device nodes are copies made with mknod in a scratch directory when
 * running as root (else /dev/null and /dev/full themselves, which an
 * unprivileged process cannot replace anyway). */
#include "../lib/ws.h"
#include "../lib/vec.h"
#include "../lib/ckpt_test.h"
#include "../../src/checkpt/checkpt_private.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>


/* The layer's test seam (checkpt_private.h), steered by these. */
static void (*g_rename)(const char *path, const char *tmp); /* at CHECKPT_HOOK_RENAME */
static int g_no_tmpfile;                                    /* publish as without O_TMPFILE */
static uint64_t g_fail_cgroup = UINT64_MAX;                 /* this cgroup frame fails */

static int test_hook(int point, const checkpt_hook_t *h) {
  if (point == CHECKPT_HOOK_RENAME && g_rename) g_rename(h->path, h->name);
  if (point == CHECKPT_HOOK_CGROUP) return h->a == g_fail_cgroup;
  return point == CHECKPT_HOOK_TMPFILE ? g_no_tmpfile : 0;
}

static char dir[256];
static wksp_t *src;

static char *at(const char *name) {
  static char p[4][512];
  static int k;
  k = (k + 1) % 4;
  snprintf(p[k], sizeof p[k], "%s/%s", dir, name);
  return p[k];
}

static int rm_entry(const char *p, const struct stat *st, int flag, struct FTW *f) {
  (void)st, (void)flag, (void)f;
  return remove(p) && errno != ENOENT;
}

/* Empties the scratch directory (whatever its entries are). */
static void scratch_reset(void) {
  nftw(dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
  if (mkdir(dir, 0700)) abort();
}

/* The names in the scratch directory, sorted, "a,b" (count returned). */
static int names(char *out, size_t sz) {
  struct dirent **e;
  int n = scandir(dir, &e, NULL, alphasort), cnt = 0;
  size_t len = 0;
  out[0] = 0;
  for (int i = 0; i < n; i++) {
    if (strcmp(e[i]->d_name, ".") && strcmp(e[i]->d_name, ".."))
      len += (size_t)snprintf(out + len, len < sz ? sz - len : 0, "%s%s", cnt++ ? "," : "", e[i]->d_name);
    free(e[i]);
  }
  free(e);
  return cnt;
}

static int has_tmp_name(void) {
  char ls[4096];
  names(ls, sizeof ls);
  return strstr(ls, ".wksp-tmp.") != NULL;
}

static mode_t ltype(const char *p) {
  struct stat st;
  return lstat(p, &st) ? 0 : st.st_mode & S_IFMT;
}

/* A character device node like /dev/<name> (major 1, minor): a copy made in
 * the scratch directory when allowed (root), else the real one. */
static const char *char_dev(const char *name, unsigned minor) {
  const char *p = at(name);
  if (!mknod(p, S_IFCHR | 0666, makedev(1, minor))) return p;
  static char real[64];
  snprintf(real, sizeof real, "/dev/%s", name);
  return real;
}

static int same_dev(const char *p, unsigned minor) {
  struct stat st;
  return !lstat(p, &st) && S_ISCHR(st.st_mode) && st.st_rdev == makedev(1, minor);
}

/* ---- stream targets ------------------------------------------------------------------------ */

/* A reader process: after delay_ms, opens the FIFO and restores from it
 * into a workspace shaped like src; exits 0 if the result equals src. */
static pid_t fifo_reader(const char *fifo, int delay_ms) {
  pid_t pid = fork();
  if (pid) return pid;
  alarm(20); /* never outlive a test that goes wrong */
  usleep((useconds_t)delay_ms * 1000);
  int fd = open(fifo, O_RDONLY | O_CLOEXEC);
  wksp_t *w = ws_new("fiforead", 3, wksp_part_max(src), wksp_data_max(src));
  if (fd < 0 || !w) _exit(2);
  int rc = wksp_restore_fd(w, fd, "fifo", &(wksp_restore_opts_t){.threads = 2});
  _exit(rc ? 3 : !ws_same(src, w) ? 4 : 0);
}

/* Waits for a reader; kills it if it is still blocked after 10 s (a FIFO
 * that was replaced leaves its reader waiting forever). */
static int reader_status(pid_t pid) {
  int st = -1;
  for (int i = 0; i < 1000 && waitpid(pid, &st, WNOHANG) == 0; i++) usleep(10000);
  if (waitpid(pid, &st, WNOHANG) == 0) {
    kill(pid, SIGKILL);
    waitpid(pid, &st, 0);
    return -1;
  }
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* A FIFO is written as a stream: the reader restores the workspace from
 * it, with and without overwrite, whether it opens before or after the
 * writer (who then waits in open, as a shell redirection does). */
static void test_target_fifo(void) {
  scratch_reset();
  const char *fifo = at("pipe");
  CHECK(!mkfifo(fifo, 0600));
  for (int i = 0; i < 4; i++) {
    int overwrite = i & 1, late = i >> 1;
    pid_t r = fifo_reader(fifo, late ? 200 : 0);
    CHECK(r > 0);
    int rc = wksp_checkpt(src, fifo, &(wksp_checkpt_opts_t){.overwrite = overwrite, .style = 2 + (i & 1)});
    if (rc) fprintf(stderr, "fifo %d: %s\n", i, wksp_errmsg());
    CHECK_EQ(reader_status(r), 0);
    CHECK_OK(rc);
    CHECK_EQ(ltype(fifo), S_IFIFO);
    char ls[256];
    CHECK_EQ(names(ls, sizeof ls), 1);
  }
  /* verify cannot read a stream back: INVAL before anything is opened
   * (no reader here: an open would block). */
  CHECK_ERR(wksp_checkpt(src, fifo, &(wksp_checkpt_opts_t){.verify = 1, .overwrite = 1}), WKSP_ERR_INVAL);
  CHECK(strstr(wksp_errmsg(), "verify"));
  CHECK_EQ(ltype(fifo), S_IFIFO);
}

/* /dev/null and /dev/full (or copies): written as streams, never replaced;
 * /dev/full fails cleanly with ENOSPC. */
static void test_target_char_devices(void) {
  scratch_reset();
  const char *nul = char_dev("null", 3), *full = char_dev("full", 7);
  for (int overwrite = 0; overwrite <= 1; overwrite++) {
    wksp_checkpt_opts_t o = {.overwrite = overwrite, .threads = 2};
    CHECK_OK(wksp_checkpt(src, nul, &o));
    CHECK(same_dev(nul, 3));
    CHECK_ERR(wksp_checkpt(src, full, &o), WKSP_ERR_FAIL);
    CHECK_EQ(wksp_errno(), ENOSPC);
    CHECK(same_dev(full, 7));
    o.verify = 1;
    CHECK_ERR(wksp_checkpt(src, nul, &o), WKSP_ERR_INVAL);
    CHECK(same_dev(nul, 3));
  }
  char ls[256];
  CHECK(names(ls, sizeof ls) <= 2 && !has_tmp_name());
}

/* A terminal is refused (a checkpoint is binary), nothing written to it. */
static void test_target_terminal(void) {
  int m = posix_openpt(O_RDWR | O_NOCTTY | O_NONBLOCK);
  CHECK(m >= 0);
  CHECK(!grantpt(m) && !unlockpt(m));
  char tty[128];
  CHECK(!ptsname_r(m, tty, sizeof tty));
  int keep = open(tty, O_RDWR | O_NOCTTY); /* keeps the slave side open */
  CHECK(keep >= 0);
  for (int overwrite = 0; overwrite <= 1; overwrite++) {
    CHECK_ERR(wksp_checkpt(src, tty, &(wksp_checkpt_opts_t){.overwrite = overwrite}), WKSP_ERR_INVAL);
    CHECK(strstr(wksp_errmsg(), "terminal"));
  }
  char c;
  CHECK(read(m, &c, 1) < 0 && errno == EAGAIN);
  struct stat st;
  CHECK(!stat(tty, &st) && S_ISCHR(st.st_mode));
  close(keep);
  close(m);
}

/* ---- refused targets ------------------------------------------------------------------------ */

static int make_socket(const char *p) {
  struct sockaddr_un a = {.sun_family = AF_UNIX};
  snprintf(a.sun_path, sizeof a.sun_path, "%s", p);
  int s = socket(AF_UNIX, SOCK_STREAM, 0);
  int r = s < 0 || bind(s, (struct sockaddr *)&a, sizeof a) ? -1 : 0;
  if (s >= 0) close(s);
  return r;
}

/* A directory, socket or block device is refused with INVAL naming what it
 * is (not EXIST: overwrite would not help), with and without overwrite,
 * and is left as it was. */
static void test_target_refused(void) {
  scratch_reset();
  CHECK(!mkdir(at("d"), 0700));
  CHECK(!make_socket(at("sock")));
  int blk = !mknod(at("blk"), S_IFBLK | 0600, makedev(7, 250)); /* root only; never opened */
  const char *what[] = {"d", "sock", "blk"};
  const char *want[] = {"is a directory", "is a socket", "is a block device"};
  const mode_t type[] = {S_IFDIR, S_IFSOCK, S_IFBLK};
  for (int i = 0; i < 2 + blk; i++) {
    struct stat a, b;
    CHECK(!lstat(at(what[i]), &a));
    for (int overwrite = 0; overwrite <= 1; overwrite++) {
      CHECK_ERR(wksp_checkpt(src, at(what[i]), &(wksp_checkpt_opts_t){.overwrite = overwrite}),
                WKSP_ERR_INVAL);
      CHECK(strstr(wksp_errmsg(), want[i]) && strstr(wksp_errmsg(), "not a regular file"));
      CHECK(!lstat(at(what[i]), &b) && (b.st_mode & S_IFMT) == type[i] && b.st_ino == a.st_ino);
    }
  }
  CHECK(!has_tmp_name());
  if (!blk) fprintf(stderr, "target_refused: no block device node (not root): skipped\n");
}

/* Something else appears at the path between the first check and the
 * rename (the hook runs there): refused then too, left as it is. */
static const char *race_kind;
static void race_hook(const char *path, const char *tmp) {
  (void)tmp;
  unlink(path);
  if (!strcmp(race_kind, "fifo")) mkfifo(path, 0600);
  else if (!strcmp(race_kind, "dir")) mkdir(path, 0700);
  else make_socket(path);
}

static void test_target_race(void) {
  const char *kinds[] = {"fifo", "dir", "sock"};
  const mode_t type[] = {S_IFIFO, S_IFDIR, S_IFSOCK};
  for (int nt = 0; nt <= 1; nt++)
    for (int i = 0; i < 3; i++) {
      scratch_reset();
      CHECK_OK(wksp_checkpt(src, at("c.ckpt"), NULL));
      race_kind = kinds[i];
      g_rename = race_hook;
      g_no_tmpfile = nt;
      int rc = wksp_checkpt(src, at("c.ckpt"), &(wksp_checkpt_opts_t){.overwrite = 1});
      g_rename = NULL;
      g_no_tmpfile = 0;
      CHECK_ERR(rc, WKSP_ERR_INVAL);
      CHECK(strstr(wksp_errmsg(), "became"));
      CHECK_EQ(ltype(at("c.ckpt")), type[i]);
      char ls[256];
      CHECK_EQ(names(ls, sizeof ls), 1);
    }
}

/* A symlink is replaced, never followed: the file it named is unchanged;
 * a symlink to a FIFO is written through (it names a stream, as
 * /dev/stdout does) and stays. */
static void test_target_symlink(void) {
  scratch_reset();
  int fd = open(at("victim"), O_WRONLY | O_CREAT | O_EXCL, 0600);
  CHECK(fd >= 0);
  CHECK_EQ(write(fd, "keep me", 7), 7);
  close(fd);
  CHECK(!symlink("victim", at("link")));
  CHECK(!symlink("nowhere", at("dangling")));
  CHECK_ERR(wksp_checkpt(src, at("link"), NULL), WKSP_ERR_EXIST);
  CHECK_OK(wksp_checkpt(src, at("link"), &(wksp_checkpt_opts_t){.overwrite = 1}));
  CHECK_OK(wksp_checkpt(src, at("dangling"), &(wksp_checkpt_opts_t){.overwrite = 1}));
  CHECK_EQ(ltype(at("link")), S_IFREG);
  CHECK_EQ(ltype(at("dangling")), S_IFREG);
  CHECK(!access(at("link"), R_OK) && !access(at("dangling"), R_OK));
  size_t n = 0;
  char *v = vec_slurp(at("victim"), &n);
  CHECK(v && n == 7 && !memcmp(v, "keep me", 7));
  free(v);
  CHECK(access(at("nowhere"), F_OK) != 0); /* the dangling symlink was not followed */

  CHECK(!mkfifo(at("fifo"), 0600));
  CHECK(!symlink("fifo", at("tofifo")));
  pid_t r = fifo_reader(at("fifo"), 0);
  CHECK(r > 0);
  int rc = wksp_checkpt(src, at("tofifo"), NULL);
  CHECK_EQ(reader_status(r), 0);
  CHECK_OK(rc);
  CHECK_EQ(ltype(at("tofifo")), S_IFLNK);
  CHECK_EQ(ltype(at("fifo")), S_IFIFO);

  /* A symlink like /dev/stdout (to /proc/self/fd/N) leading to a regular
   * file is refused: replacing it would replace /dev/stdout itself. */
  int out = open(at("out"), O_WRONLY | O_CREAT | O_EXCL, 0600);
  CHECK(out >= 0);
  char fdlink[64];
  snprintf(fdlink, sizeof fdlink, "/proc/self/fd/%d", out);
  CHECK(!symlink(fdlink, at("stdout")));
  for (int overwrite = 0; overwrite <= 1; overwrite++) {
    CHECK_ERR(wksp_checkpt(src, at("stdout"), &(wksp_checkpt_opts_t){.overwrite = overwrite}), WKSP_ERR_INVAL);
    CHECK(strstr(wksp_errmsg(), "open file descriptor"));
    CHECK_ERR(wksp_checkpt(src, fdlink, &(wksp_checkpt_opts_t){.overwrite = overwrite}), WKSP_ERR_INVAL);
  }
  close(out);
  CHECK_EQ(ltype(at("stdout")), S_IFLNK);
  struct stat st;
  CHECK(!stat(at("out"), &st) && st.st_size == 0);
}

/* ---- temporaries of dead writers ------------------------------------------------------------ */

static void kill_self(const char *path, const char *tmp) {
  (void)path, (void)tmp;
  raise(SIGKILL);
}

/* A child overwriting c.ckpt is SIGKILLed with the file under its
 * temporary name (between the link and the rename); returns that name's
 * count (1 expected). */
static int leave_stale(const char *name, int no_tmpfile) {
  pid_t pid = fork();
  if (!pid) {
    g_rename = kill_self;
    g_no_tmpfile = no_tmpfile;
    wksp_checkpt(src, at(name), &(wksp_checkpt_opts_t){.overwrite = 1});
    _exit(0);
  }
  int st;
  waitpid(pid, &st, 0);
  return WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL && has_tmp_name();
}

/* The next checkpoint into the directory (any name, any mode) removes a
 * dead writer's temporary; the published files are untouched. */
static void test_stale_removed(void) {
  for (int nt = 0; nt <= 1; nt++)
    for (int overwrite = 0; overwrite <= 1; overwrite++) {
      scratch_reset();
      CHECK_OK(wksp_checkpt(src, at("c.ckpt"), NULL));
      char ls[512], first[512];
      CHECK(leave_stale("c.ckpt", nt));
      CHECK_EQ(names(first, sizeof first), 2);
      /* The second killed writer's checkpoint already removed the first's. */
      CHECK(leave_stale("c.ckpt", !nt));
      CHECK_EQ(names(ls, sizeof ls), 2);
      CHECK(strcmp(ls, first));
      g_no_tmpfile = nt;
      int rc = wksp_checkpt(src, at("other.ckpt"), &(wksp_checkpt_opts_t){.overwrite = overwrite});
      g_no_tmpfile = 0;
      CHECK_OK(rc);
      CHECK_EQ(names(ls, sizeof ls), 2);
      CHECK(!strcmp(ls, "c.ckpt,other.ckpt"));
      wksp_checkpt_info_t I;
      CHECK_OK(wksp_checkpt_info(at("c.ckpt"), &I));
      wksp_checkpt_info_free(&I);
    }
}

/* A live writer paused between link and rename keeps its temporary while
 * another checkpoint runs in the directory, then completes. */
static int go_fd[2], wait_fd[2];
static void pause_hook(const char *path, const char *tmp) {
  (void)path, (void)tmp;
  char c = 'x';
  if (write(wait_fd[1], &c, 1) != 1 || read(go_fd[0], &c, 1) != 1) _exit(5);
}

static void test_live_temp_kept(void) {
  for (int nt = 0; nt <= 1; nt++) {
    scratch_reset();
    CHECK_OK(wksp_checkpt(src, at("c.ckpt"), NULL));
    CHECK(!pipe(go_fd) && !pipe(wait_fd));
    pid_t pid = fork();
    if (!pid) {
      g_rename = pause_hook;
      g_no_tmpfile = nt;
      _exit(wksp_checkpt(src, at("c.ckpt"), &(wksp_checkpt_opts_t){.overwrite = 1, .mode = 0640}) ? 1 : 0);
    }
    close(wait_fd[1]); /* so that a child that dies is seen */
    close(go_fd[0]);
    char c;
    struct pollfd pf = {.fd = wait_fd[0], .events = POLLIN};
    if (poll(&pf, 1, 20000) != 1) kill(pid, SIGKILL); /* never reached the hook */
    int got = (int)read(wait_fd[0], &c, 1);
    close(wait_fd[0]);
    if (got != 1) {
      close(go_fd[1]);
      waitpid(pid, NULL, 0);
    }
    CHECK_EQ(got, 1);
    CHECK(has_tmp_name());
    CHECK_OK(wksp_checkpt(src, at("other.ckpt"), NULL));
    CHECK_OK(wksp_checkpt(src, at("other.ckpt"), &(wksp_checkpt_opts_t){.overwrite = 1}));
    CHECK(has_tmp_name());
    CHECK_EQ(write(go_fd[1], "g", 1), 1);
    int st;
    CHECK(waitpid(pid, &st, 0) == pid);
    close(go_fd[1]);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    char ls[512];
    CHECK_EQ(names(ls, sizeof ls), 2);
    struct stat s;
    CHECK(!stat(at("c.ckpt"), &s) && (s.st_mode & 07777) == 0640); /* the child's file */
  }
}

static void touch(const char *name) {
  int fd = open(at(name), O_WRONLY | O_CREAT | O_EXCL, 0600);
  if (fd >= 0) close(fd);
}

/* The lock decides, not the pid in the name: a temporary named after a
 * live process (pid 1) but unlocked is removed; one named after a process
 * that is gone but locked (by a live holder) is kept.  Only the exact
 * temporary-name pattern and only regular files are considered: other
 * names, symlinks (not followed), FIFOs (not opened), directories stay. */
static void test_stale_only_exact(void) {
  scratch_reset();
  touch(".c.ckpt.wksp-tmp.1.ab12");
  touch(".x.wksp-tmp.999999.f");
  int held = open(at(".x.wksp-tmp.999999.f"), O_RDONLY);
  CHECK(held >= 0 && !flock(held, LOCK_EX));
  const char *keep[] = {".c.ckpt.wksp-tmp.1.AB", ".c.ckpt.wksp-tmp.1.abg", ".c.ckpt.wksp-tmp..ab",
                        ".c.ckpt.wksp-tmp.01.ab", "c.ckpt.wksp-tmp.1.ab", "..wksp-tmp.1.ab",
                        ".c.ckpt.wksp-tmp.1.ab.", ".c.ckpt.wksp-tmp.1.12345678901234567",
                        ".c.ckpt.wksp-tmpx1.ab"};
  for (size_t i = 0; i < sizeof keep / sizeof keep[0]; i++) touch(keep[i]);
  touch("victim");
  CHECK(!symlink("victim", at(".l.wksp-tmp.2.a")));
  CHECK(!mkfifo(at(".f.wksp-tmp.2.b"), 0600));
  CHECK(!mkdir(at(".d.wksp-tmp.2.c"), 0700));
  char before[2048], after[2048];
  int n = names(before, sizeof before);
  CHECK_OK(wksp_checkpt(src, at("new.ckpt"), NULL));
  CHECK_EQ(names(after, sizeof after), n); /* one removed, new.ckpt added */
  CHECK(!strstr(after, ".c.ckpt.wksp-tmp.1.ab12"));
  CHECK(strstr(after, ".x.wksp-tmp.999999.f"));
  for (size_t i = 0; i < sizeof keep / sizeof keep[0]; i++) CHECK(!access(at(keep[i]), F_OK));
  CHECK_EQ(ltype(at(".l.wksp-tmp.2.a")), S_IFLNK);
  CHECK_EQ(ltype(at("victim")), S_IFREG);
  CHECK_EQ(ltype(at(".f.wksp-tmp.2.b")), S_IFIFO);
  CHECK_EQ(ltype(at(".d.wksp-tmp.2.c")), S_IFDIR);
  close(held);
  /* Released: the next checkpoint takes it. */
  CHECK_OK(wksp_checkpt(src, at("new.ckpt"), &(wksp_checkpt_opts_t){.overwrite = 1}));
  CHECK(access(at(".x.wksp-tmp.999999.f"), F_OK));
}

/* ---- publication ------------------------------------------------------------------------------
 */

static void test_publish_exist_overwrite_mode(void) {
  wksp_t *w = ws_new("pub", 1, 64, 1 << 20);
  CHECK(w);
  uint64_t rng = 5;
  ws_fill(w, 10, 1000, 1, &rng);
  char path[512];
  snprintf(path, sizeof path, "%s/pub.ckpt", dir);
  mode_t old = umask(077);
  wksp_checkpt_opts_t o = {.mode = 0644};
  CHECK_OK(wksp_checkpt(w, path, &o));
  CHECK_EQ(umask(077), 077); /* umask untouched */
  struct stat st;
  CHECK(!stat(path, &st));
  CHECK_EQ(st.st_mode & 07777, 0644);
  ino_t ino = st.st_ino;
  CHECK_ERR(wksp_checkpt(w, path, &o), WKSP_ERR_EXIST);
  CHECK(!stat(path, &st) && st.st_ino == ino);
  o.overwrite = 1;
  o.mode = 0400;
  CHECK_OK(wksp_checkpt(w, path, &o));
  CHECK(!stat(path, &st) && st.st_ino != ino);
  CHECK_EQ(st.st_mode & 07777, 0400);
  CHECK_EQ(test_dir_entries(dir), 1);
  o.mode = 010000;
  CHECK_ERR(wksp_checkpt(w, path, &o), WKSP_ERR_INVAL);
  o.mode = 0;
  o.style = 1;
  CHECK_ERR(wksp_checkpt(w, path, &o), WKSP_ERR_INVAL);
  char bad[600];
  snprintf(bad, sizeof bad, "%s/nodir/x.ckpt", dir);
  CHECK_ERR(wksp_checkpt(w, bad, NULL), WKSP_ERR_FAIL);
  umask(old);
  unlink(path);
  CHECK_EQ(test_dir_entries(dir), 0);
  ws_free(w);
}

/* Without O_TMPFILE (forced): a named temporary file, gone after success,
 * after an injected failure and after EXIST; overwrite works. */
static void test_publish_fallback_named_temp(void) {
  wksp_t *w = ws_new("pub", 1, 1024, 4 << 20);
  CHECK(w);
  uint64_t rng = 9;
  ws_fill(w, 200, 5000, 1, &rng);
  char path[512];
  snprintf(path, sizeof path, "%s/named.ckpt", dir);
  g_no_tmpfile = 1;
  g_fail_cgroup = 1;
  int rc1 = wksp_checkpt(w, path, NULL);
  int n1 = test_dir_entries(dir);
  g_fail_cgroup = UINT64_MAX;
  int rc2 = wksp_checkpt(w, path, &(wksp_checkpt_opts_t){.mode = 0640});
  int n2 = test_dir_entries(dir);
  int rc3 = wksp_checkpt(w, path, NULL);
  int rc4 = wksp_checkpt(w, path, &(wksp_checkpt_opts_t){.overwrite = 1});
  int n4 = test_dir_entries(dir);
  g_no_tmpfile = 0;
  CHECK_EQ(rc1, WKSP_ERR_FAIL);
  CHECK_EQ(n1, 0);
  CHECK_OK(rc2);
  CHECK_EQ(n2, 1);
  CHECK_EQ(rc3, WKSP_ERR_EXIST);
  CHECK_OK(rc4);
  CHECK_EQ(n4, 1);
  struct stat st;
  CHECK(!stat(path, &st));
  CHECK_EQ(st.st_mode & 07777, 0600);
  wksp_checkpt_info_t I;
  CHECK_OK(wksp_checkpt_info(path, &I));
  wksp_checkpt_info_free(&I);
  unlink(path);
  ws_free(w);
}


/* An injected failure in the middle of writing leaves nothing behind. */
static void test_publish_failure_leaves_nothing(void) {
  wksp_t *w = ws_new("pub", 1, 1024, 4 << 20);
  CHECK(w);
  uint64_t rng = 6;
  ws_fill(w, 300, 5000, 1, &rng);
  char path[512];
  snprintf(path, sizeof path, "%s/fail.ckpt", dir);
  g_fail_cgroup = 2;
  int rc = wksp_checkpt(w, path, NULL);
  g_fail_cgroup = UINT64_MAX;
  CHECK_ERR(rc, WKSP_ERR_FAIL);
  CHECK(strstr(wksp_errmsg(), "injected"));
  CHECK_EQ(test_dir_entries(dir), 0);
  CHECK_OK(wksp_verify(w));
  ws_free(w);
}


/* SIGKILL at random moments during a checkpoint: the path holds either
 * nothing or the complete file, and no temporary file is ever left. */
static void test_publish_sigkill(void) {
  wksp_t *w = ws_new("kill", 1, 4096, 48 << 20);
  CHECK(w);
  uint64_t rng = test_seed();
  ws_fill(w, 600, 160000, 0, &rng);
  char path[512];
  snprintf(path, sizeof path, "%s/kill.ckpt", dir);
  /* Time one checkpoint to aim the kills inside it. */
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  CHECK_OK(wksp_checkpt(w, path, NULL));
  clock_gettime(CLOCK_MONOTONIC, &t1);
  unlink(path);
  long us = (t1.tv_sec - t0.tv_sec) * 1000000 + (t1.tv_nsec - t0.tv_nsec) / 1000;
  int complete = 0;
  for (int i = 0; i < 12; i++) {
    int go[2];
    CHECK(!pipe(go));
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (!pid) {
      close(go[0]);
      if (write(go[1], "x", 1) != 1) _exit(3);
      _exit(wksp_checkpt(w, path, NULL) ? 1 : 0);
    }
    close(go[1]);
    char c;
    CHECK_EQ(read(go[0], &c, 1), 1);
    close(go[0]);
    usleep((useconds_t)(test_rng(&rng) % (uint64_t)(us * 5 / 4 + 1)));
    kill(pid, SIGKILL);
    int status;
    waitpid(pid, &status, 0);
    int n = test_dir_entries(dir);
    struct stat st;
    if (!stat(path, &st)) {
      CHECK_EQ(n, 1);
      wksp_checkpt_info_t I;
      CHECK_OK(wksp_checkpt_info(path, &I)); /* complete and valid */
      wksp_checkpt_info_free(&I);
      complete++;
      unlink(path);
    } else {
      CHECK_EQ(n, 0);
    }
  }
  fprintf(stderr, "sigkill: %d of 12 checkpoints completed before the kill (one takes %ld us)\n",
          complete, us);
  ws_free(w);
}


int main(void) {
  wksp_private_checkpt_test_hook = test_hook;
  signal(SIGPIPE, SIG_IGN);
  snprintf(dir, sizeof dir, "/tmp/wksp-test-publish.XXXXXX");
  if (!mkdtemp(dir)) return 1;
  src = ws_new("pubsrc", 1, 512, 4 << 20);
  uint64_t rng = 11;
  if (!src || ws_fill(src, 150, 20000, 1, &rng) == 150) return 1;
  /* first: these count the entries of the (still empty) scratch directory */
  TEST_RUN(test_publish_exist_overwrite_mode);
  TEST_RUN(test_publish_failure_leaves_nothing);
  TEST_RUN(test_publish_fallback_named_temp);
  TEST_RUN(test_publish_sigkill);
  TEST_RUN(test_target_fifo);
  TEST_RUN(test_target_char_devices);
  TEST_RUN(test_target_terminal);
  TEST_RUN(test_target_refused);
  TEST_RUN(test_target_race);
  TEST_RUN(test_target_symlink);
  TEST_RUN(test_stale_removed);
  TEST_RUN(test_live_temp_kept);
  TEST_RUN(test_stale_only_exact);
  nftw(dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
  ws_free(src);
  return test_done();
}
