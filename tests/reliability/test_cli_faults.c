/* Promises 2 and 3 through the command-line tool: `wksp checkpt` with each
 * of its I/O calls failing in turn (ENOSPC, EIO) and `wksp restore` with
 * each of its read-side calls failing (EIO), driven by libfaultshim.so from
 * the environment.  Each run must exit with status 1 and print exactly one
 * line "wksp: <command>: ..." naming the injected error; a failed checkpt
 * leaves its directory empty; a failed restore leaves a workspace that
 * verifies.
 *
 * The binary is $WKSP_BIN (set by tests/run.sh), else bin/wksp beside this
 * program's build tree. */
#include "../lib/rel.h"

#include <fcntl.h>
#include <inttypes.h>
#include <sys/wait.h>

static char bin[4200], shim[4200], dir[256], path[400], errf[300];

/* Runs bin with argv and the shim armed by the FAULTSHIM_* variables in
 * env (NULL-terminated "K=V" list); returns the exit status (-1 if not
 * exited). */
static int run(char *const argv[], const char *const *env) {
  fflush(NULL);
  pid_t pid = fork();
  if (pid < 0) return -1;
  if (!pid) {
    int fd = open(errf, O_WRONLY | O_CREAT | O_TRUNC, 0600), nul = open("/dev/null", O_WRONLY);
    if (fd < 0 || nul < 0) _exit(125);
    dup2(fd, 2);
    dup2(nul, 1);
    setenv("LD_PRELOAD", shim, 1);
    const char *old = getenv("ASAN_OPTIONS");
    char asan[1024];
    snprintf(asan, sizeof asan, "%s%sverify_asan_link_order=0", old ? old : "", old && *old ? ":" : "");
    setenv("ASAN_OPTIONS", asan, 1);
    for (; env && *env; env++) putenv((char *)*env);
    execv(bin, argv);
    _exit(126);
  }
  int st;
  if (waitpid(pid, &st, 0) != pid) return -1;
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* The stderr of the last run is one line starting with prefix and naming
 * the error. */
static int one_line(const char *prefix, int err) {
  size_t sz = 0;
  char *s = vec_slurp(errf, &sz);
  int ok = s && sz > 0 && !strncmp(s, prefix, strlen(prefix)) && strchr(s, '\n') == s + sz - 1 &&
           strstr(s, strerror(err));
  if (!ok) fprintf(stderr, "stderr was: %s\n", s ? s : "(none)");
  free(s);
  return ok;
}

static long count_lines(const char *file) {
  size_t sz = 0;
  char *s = vec_slurp(file, &sz);
  long n = 0;
  for (size_t i = 0; s && i < sz; i++) n += s[i] == '\n';
  free(s);
  return n;
}

/* Whether the report of the last dry run lists the call name. */
static int report_has(const char *report, const char *name) {
  size_t sz = 0;
  char *s = vec_slurp(report, &sz), want[64];
  snprintf(want, sizeof want, "\n%s\n", name);
  int has = s && (!strncmp(s, want + 1, strlen(want + 1)) || strstr(s, want));
  free(s);
  return has;
}

/* A fresh process moves the data between the region's file and the
 * checkpoint, never through its mapping (v2: sendfile, pread + pwrite; v3:
 * pread of the region, pwrite of decoded bytes): those calls are in the
 * lists and must be seen in the dry runs. */
static void cli_faults(int v2) {
  snprintf(dir, sizeof dir, "/tmp/wksp-rel-cli-%d-XXXXXX", (int)getpid());
  CHECK(mkdtemp(dir));
  setenv("WKSP_SHMEM_DIR", dir, 1);
  char ckdir[320], report[320];
  snprintf(ckdir, sizeof ckdir, "%s/ck", dir);
  CHECK(mkdir(ckdir, 0700) == 0);
  snprintf(path, sizeof path, "%s/a.ckpt", ckdir);
  snprintf(errf, sizeof errf, "%s/stderr", dir);
  snprintf(report, sizeof report, "%s/calls", dir);

  /* A source workspace with some allocations, and a restore target. */
  CHECK_OK(wksp_new_named("clisrc", 8 << 20, WKSP_PAGE_NORMAL, 0600, 1, 0));
  CHECK_OK(wksp_new_named("clidst", 8 << 20, WKSP_PAGE_NORMAL, 0600, 1, 0));
  wksp_t *w;
  CHECK_OK(wksp_attach("clisrc", 0, &w));
  uint64_t rng = 1;
  ws_fill(w, 60, 30000, 1, &rng);

  const char *const wcalls =
      v2 ? "FAULTSHIM_CALLS=write,writev,pwrite,fsync,fdatasync,fchmod,linkat,renameat,open,openat,sendfile"
         : "FAULTSHIM_CALLS=write,writev,pwrite,fsync,fdatasync,fchmod,linkat,renameat,open,openat,pread";
  const char *const rcalls =
      "FAULTSHIM_CALLS=open,openat,read,readv,pread,mmap,pwrite";
  char *ck_argv[] = {bin, "checkpt", "clisrc", path, "--threads", "2", "--quiet", "--style", v2 ? "v2" : "v3", NULL};
  char *rs_argv[] = {bin, "restore", "clidst", path, "--threads", "2", "--quiet", NULL};

  /* Dry runs: how many calls each command makes. */
  char rep_env[400];
  snprintf(rep_env, sizeof rep_env, "FAULTSHIM_REPORT=%s", report);
  const char *dry_w[] = {wcalls, rep_env, NULL};
  unlink(report);
  CHECK_EQ(run(ck_argv, dry_w), 0);
  long nw = count_lines(report);
  CHECK(report_has(report, v2 ? "sendfile" : "pread")); /* the region file is read */
  const char *dry_r[] = {rcalls, rep_env, NULL};
  unlink(report);
  CHECK_EQ(run(rs_argv, dry_r), 0);
  long nr = count_lines(report);
  CHECK(nw > 0 && nr > 0);
  CHECK(report_has(report, "pwrite"));

  uint64_t cases = 0;
  static const char *const errs[] = {"ENOSPC", "EIO"};
  static const int errv[] = {ENOSPC, EIO};
  for (long k = 1; k <= nw; k++)
    for (int e = 0; e < 2; e++) {
      unlink(path);
      char nth[64], en[64];
      snprintf(nth, sizeof nth, "FAULTSHIM_NTH=%ld", k);
      snprintf(en, sizeof en, "FAULTSHIM_ERRNO=%s", errs[e]);
      const char *env[] = {wcalls, nth, en, "FAULTSHIM_STICKY=1", rep_env, NULL};
      unlink(report);
      int st = run(ck_argv, env);
      if (count_lines(report) < k) continue; /* this run made fewer calls (threads) */
      char ls[256];
      int n = rel_dir_list(ckdir, ls, sizeof ls);
      if (st != 1 || n != 0) fprintf(stderr, "checkpt, %s at call %ld: exit %d, directory \"%s\"\n", errs[e], k, st, ls);
      CHECK_EQ(st, 1);
      CHECK_EQ(n, 0);
      CHECK(one_line("wksp: checkpt: ", errv[e]));
      cases++;
    }
  unlink(path);
  CHECK_EQ(run(ck_argv, NULL), 0);
  wksp_t *d;
  CHECK_OK(wksp_attach("clidst", 0, &d));
  for (long k = 1; k <= nr; k++) {
    char nth[64];
    snprintf(nth, sizeof nth, "FAULTSHIM_NTH=%ld", k);
    const char *env[] = {rcalls, nth, "FAULTSHIM_ERRNO=EIO", rep_env, NULL};
    unlink(report);
    int st = run(rs_argv, env);
    if (count_lines(report) < k) continue;
    if (st != 1) fprintf(stderr, "restore, EIO at call %ld: exit %d\n", k, st);
    CHECK_EQ(st, 1);
    CHECK(one_line("wksp: restore: ", EIO));
    CHECK_OK(wksp_verify(d));
    cases++;
  }
  rel_figure("2", v2 ? "cli-v2" : "cli",
             "bin/wksp%s: %" PRIu64 " runs with one injected fault (checkpt: each of %ld calls x ENOSPC/EIO; "
             "restore: each of %ld calls x EIO): every one exited 1 with one line naming the error, nothing left",
             v2 ? " --style v2 (data through the region file: sendfile, pwrite)" : "", cases, nw, nr);
  wksp_detach(d);
  wksp_detach(w);
  wksp_delete_named("clisrc");
  wksp_delete_named("clidst");
  test_rmdir(ckdir);
  test_rmdir(dir);
}

static void test_cli_faults(void) { cli_faults(0); }
static void test_cli_faults_v2(void) { cli_faults(1); }

int main(void) {
  char exe[4096];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n <= 0) return 1;
  exe[n] = 0;
  const char *e = getenv("WKSP_BIN");
  char *d = dirname(exe); /* .../build/tests/reliability */
  if (e && *e) snprintf(bin, sizeof bin, "%s", e);
  else snprintf(bin, sizeof bin, "%s/../../../bin/wksp", d);
  snprintf(shim, sizeof shim, "%s/../../shim/libfaultshim.so", d);
  if (access(bin, X_OK) || access(shim, R_OK)) {
    printf("FAIL %s/setup (%s or %s missing)\n", test_prog_name(), bin, shim);
    return 1;
  }
  TEST_RUN(test_cli_faults);
  TEST_RUN(test_cli_faults_v2);
  return test_done();
}
