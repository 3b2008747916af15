/* Which processes map which named regions (wksp_shmem_maps): a scan of
 * /proc/[pid]/maps, matching mappings to region files by device and inode.
 *
 * One pass over /proc serves every region: the regions are listed first and
 * sorted by identity, then each mapping line is looked up by binary search.
 * Hits are collected per (region, pid) and reported after the scan, so fn
 * runs with nothing open. */
#include "shmem_private.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/err.h"

typedef struct {
  uint32_t region; /* index into the listing */
  uint32_t pid;
  int writable;
} hit_t;

typedef struct {
  const wksp_private_shmem_listed_t *regions;
  uint32_t *by_id; /* region indexes sorted by (dev_major, dev_minor, ino) */
  size_t n;
  hit_t *hits;
  size_t hit_cnt, hit_cap;
} scan_t;

static int id_cmp3(const wksp_private_shmem_listed_t *a, uint32_t major, uint32_t minor, uint64_t ino) {
  if (a->dev_major != major) return a->dev_major < major ? -1 : 1;
  if (a->dev_minor != minor) return a->dev_minor < minor ? -1 : 1;
  return a->ino < ino ? -1 : a->ino > ino;
}

static int id_cmp(const void *a, const void *b, void *regions) {
  const wksp_private_shmem_listed_t *v = regions, *y = &v[*(const uint32_t *)b];
  return id_cmp3(&v[*(const uint32_t *)a], y->dev_major, y->dev_minor, y->ino);
}

/* The region with this identity, or -1. */
static long region_find(const scan_t *s, uint32_t major, uint32_t minor, uint64_t ino) {
  size_t lo = 0, hi = s->n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    int c = id_cmp3(&s->regions[s->by_id[mid]], major, minor, ino);
    if (!c) return (long)s->by_id[mid];
    if (c < 0) lo = mid + 1;
    else hi = mid;
  }
  return -1;
}

static int hit_add(scan_t *s, uint32_t region, uint32_t pid, int writable) {
  for (size_t i = s->hit_cnt; i-- > 0 && s->hits[i].pid == pid;) {
    if (s->hits[i].region == region) {
      s->hits[i].writable |= writable;
      return WKSP_SUCCESS;
    }
  }
  if (s->hit_cnt == s->hit_cap) {
    size_t cap = s->hit_cap ? 2 * s->hit_cap : 64;
    hit_t *v = realloc(s->hits, cap * sizeof *v);
    if (!v) return wksp_err_in(WKSP_ERR_NOMEM, ENOMEM, "wksp_shmem_maps", "%zu mappings", cap);
    s->hits = v;
    s->hit_cap = cap;
  }
  s->hits[s->hit_cnt++] = (hit_t){region, pid, writable};
  return WKSP_SUCCESS;
}

/* One line of a maps file: "lo-hi perms offset major:minor inode [path]". */
static int scan_line(scan_t *s, uint32_t pid, const char *line) {
  char perms[5];
  unsigned major, minor;
  unsigned long long ino;
  if (sscanf(line, "%*x-%*x %4s %*x %x:%x %llu", perms, &major, &minor, &ino) != 4 || !ino) return WKSP_SUCCESS;
  long r = region_find(s, major, minor, ino);
  if (r < 0) return WKSP_SUCCESS;
  return hit_add(s, (uint32_t)r, pid, perms[1] == 'w' && perms[3] == 's');
}

/* The maps of process pid; *unreadable counts a refusal.  A process that
 * exits meanwhile simply has no (more) mappings. */
static int scan_pid(scan_t *s, int proc_fd, uint32_t pid, uint64_t *unreadable) {
  char path[32];
  snprintf(path, sizeof path, "%u/maps", pid);
  int fd = openat(proc_fd, path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == EACCES || errno == EPERM) ++*unreadable;
    return WKSP_SUCCESS;
  }
  FILE *f = fdopen(fd, "r");
  if (!f) {
    close(fd);
    return wksp_err_in(WKSP_ERR_NOMEM, errno, "wksp_shmem_maps", "reading /proc/%u/maps", pid);
  }
  char *line = NULL;
  size_t cap = 0;
  int rc = WKSP_SUCCESS;
  while (!rc && getline(&line, &cap, f) > 0) rc = scan_line(s, pid, line);
  free(line);
  fclose(f);
  return rc;
}

/* The pid a /proc entry names, or 0 for any other entry. */
static uint32_t proc_pid(const char *name) {
  uint64_t v = 0;
  for (const char *p = name; *p; p++) {
    if (!isdigit((unsigned char)*p) || v > UINT32_MAX / 10) return 0;
    v = v * 10 + (uint64_t)(*p - '0');
  }
  return v <= UINT32_MAX ? (uint32_t)v : 0;
}

static int scan_proc(scan_t *s, uint64_t *unreadable) {
  DIR *d = opendir("/proc");
  if (!d) return wksp_err_in(WKSP_ERR_FAIL, errno, "wksp_shmem_maps", "cannot read /proc");
  int rc = WKSP_SUCCESS;
  struct dirent *e;
  while (!rc && (e = readdir(d))) {
    uint32_t pid = proc_pid(e->d_name);
    if (pid) rc = scan_pid(s, dirfd(d), pid, unreadable);
  }
  closedir(d);
  return rc;
}

static int hit_cmp(const void *a, const void *b) {
  const hit_t *x = a, *y = b;
  if (x->region != y->region) return x->region < y->region ? -1 : 1;
  return x->pid < y->pid ? -1 : x->pid > y->pid;
}

/* Lists the regions and scans every process's maps into s. */
static int scan(scan_t *s, wksp_private_shmem_listed_t **regions, uint64_t *unreadable) {
  int rc = wksp_private_shmem_regions(regions, &s->n);
  if (rc) return wksp_err_wrap(rc, "wksp_shmem_maps");
  s->regions = *regions;
  s->by_id = malloc((s->n + 1) * sizeof *s->by_id);
  if (!s->by_id) return wksp_err_in(WKSP_ERR_NOMEM, ENOMEM, "wksp_shmem_maps", "%zu regions", s->n);
  for (size_t i = 0; i < s->n; i++) s->by_id[i] = (uint32_t)i;
  qsort_r(s->by_id, s->n, sizeof *s->by_id, id_cmp, *regions);
  rc = scan_proc(s, unreadable);
  if (!rc && s->hit_cnt) qsort(s->hits, s->hit_cnt, sizeof *s->hits, hit_cmp);
  return rc;
}

int wksp_shmem_maps(int (*fn)(const wksp_shmem_map_t *map, void *ctx), void *ctx, uint64_t *unreadable) {
  uint64_t dummy;
  if (!unreadable) unreadable = &dummy;
  *unreadable = 0;
  if (!fn) return wksp_err_in(WKSP_ERR_INVAL, 0, "wksp_shmem_maps", "fn is NULL");
  wksp_private_shmem_listed_t *regions = NULL;
  scan_t s = {0};
  int rc = scan(&s, &regions, unreadable);
  if (rc) *unreadable = 0;
  for (size_t i = 0; i < s.hit_cnt && !rc; i++) {
    const wksp_shmem_info_t *r = &regions[s.hits[i].region].info;
    wksp_shmem_map_t m = {.page = r->page, .pid = s.hits[i].pid, .writable = s.hits[i].writable};
    memcpy(m.name, r->name, sizeof m.name);
    rc = fn(&m, ctx);
  }
  free(s.hits);
  free(s.by_id);
  free(regions);
  return rc;
}
