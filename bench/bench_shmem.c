/* Speed of the shmem layer: the writability query the allocator makes on
 * every call, joins that hit the reference count, and region create /
 * anonymous region life cycles.  Regions live in a private temporary
 * WKSP_SHMEM_DIR. */
#include "shmem/shmem_private.h"
#include <wksp/shmem.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

static int fail(const char *what) {
  fprintf(stderr, "bench_shmem: %s: %s\n", what, wksp_errmsg());
  return 1;
}

int main(void) {
  char dir[64];
  snprintf(dir, sizeof dir, "%s/wksp-bench-XXXXXX", access("/dev/shm", W_OK) ? "/tmp" : "/dev/shm");
  if (!mkdtemp(dir)) return 1;
  setenv("WKSP_SHMEM_DIR", dir, 1);
  int rc = 0;
  enum { N_ANON = 64 };
  void *anon[N_ANON], *m = NULL;

  /* The query with the target in the last of 1 and of 64 live regions. */
  for (int n = 0; n < N_ANON && !rc; n++)
    if (wksp_shmem_anon_new(4096, WKSP_PAGE_NORMAL, &anon[n])) rc = fail("anon_new");
  if (!rc && wksp_shmem_create("bench", 1u << 20, WKSP_PAGE_NORMAL, 0600)) rc = fail("create");
  if (!rc && wksp_shmem_join("bench", 1, &m, NULL)) rc = fail("join");
  if (!rc) {
    const long iters = 10000000;
    long sum = 0;
    double t0 = now_ns();
    for (long i = 0; i < iters; i++) sum += wksp_private_shmem_writable(m);
    double t1 = now_ns();
    printf("wksp_private_shmem_writable, 65 regions held: %.1f ns/op (%ld)\n", (t1 - t0) / iters, sum);
    t0 = now_ns();
    for (long i = 0; i < iters; i++) sum += wksp_private_shmem_writable(anon[0]);
    t1 = now_ns();
    printf("wksp_private_shmem_writable, first region:     %.1f ns/op\n", (t1 - t0) / iters);

    const int joins = 20000;
    void *m2;
    t0 = now_ns();
    for (int i = 0; i < joins && !rc; i++)
      if (wksp_shmem_join("bench", 1, &m2, NULL) || wksp_shmem_leave(m2)) rc = fail("join/leave");
    t1 = now_ns();
    printf("join + leave of a joined region (refcount):     %.1f us/op\n", (t1 - t0) / joins / 1e3);
  }
  if (m) wksp_shmem_leave(m);
  wksp_shmem_unlink("bench");
  for (int n = 0; n < N_ANON; n++) wksp_shmem_anon_delete(anon[n]);

  if (!rc) {
    const int cycles = 2000;
    double t0 = now_ns();
    for (int i = 0; i < cycles && !rc; i++) {
      void *j;
      if (wksp_shmem_create("cyc", 1u << 20, WKSP_PAGE_NORMAL, 0600) ||
          wksp_shmem_join("cyc", 1, &j, NULL) || wksp_shmem_leave(j) || wksp_shmem_unlink("cyc"))
        rc = fail("create/join/leave/unlink");
    }
    double t1 = now_ns();
    printf("create + join + leave + unlink, 1 MiB region:  %.1f us/op\n", (t1 - t0) / cycles / 1e3);
    t0 = now_ns();
    for (int i = 0; i < cycles && !rc; i++) {
      void *a;
      if (wksp_shmem_anon_new(1u << 20, WKSP_PAGE_NORMAL, &a) || wksp_shmem_anon_delete(a))
        rc = fail("anon_new/delete");
    }
    t1 = now_ns();
    printf("anon_new + anon_delete, 1 MiB (untouched):      %.1f us/op\n", (t1 - t0) / cycles / 1e3);
  }
  rmdir(dir);
  return rc;
}
